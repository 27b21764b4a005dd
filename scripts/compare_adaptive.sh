#!/usr/bin/env bash
# Fixed vs adaptive pruning ratio (Paul, Chen, Larsen et al. 2022, Fig. 4) as two DVC experiments.
#   scripts/compare_adaptive.sh [run]   # run both experiments one after the other, then collect
#   scripts/compare_adaptive.sh collect # only collect the finished ones
# Both start from the current params.yaml; the adaptive one only sets pruning.adaptive=true
# (add -S pruning.levels=N through EXTRA if it should stop earlier). The comparison lands in
# reports/adaptive/adaptive.md with its figure; `dvc plots diff` shows the two curves too.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
EXTRA=${EXTRA:-}
if [ "${1:-run}" = run ]; then
  dvc exp run -n adaptive-off -S pruning.adaptive=false $EXTRA
  dvc exp run -n adaptive-on -S pruning.adaptive=true $EXTRA
fi
bash scripts/collect_experiments.sh adaptive- runs/adaptive
python -m stages.adaptive_report --runs runs/adaptive --out reports/adaptive
