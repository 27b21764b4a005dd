#!/usr/bin/env bash
# IMP and its error landscape at several rewind steps (Paul, Chen, Larsen et al. 2022, Fig. 2 left:
# one piecewise linear path per rewind step) as DVC experiments.
#   scripts/compare_rewind.sh [run]   # one experiment per rewind step in STEPS, then collect
#   scripts/compare_rewind.sh collect # only collect the finished ones
# STEPS (default "0 <pretrain.steps>"): the rewind steps t_r. SET: more params for every experiment, e.g.
# SET="tickets.levels=[] few_shot.fractions=[]" to skip stages the comparison does not read. The comparison lands
# in reports/rewind/rewind.md with its figures.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
STEPS=${STEPS:-"0 $(python -c "from lthlib.core.config import load_config; print(load_config().pretrain.steps)")"}
if [ "${1:-run}" = run ]; then
  for step in $STEPS; do
    overrides=(-S "pretrain.steps=$step")
    for param in ${SET:-}; do overrides+=(-S "$param"); done
    dvc exp run -n "rewind-$step" "${overrides[@]}"
  done
fi
bash scripts/collect_experiments.sh rewind- runs/rewind
python -m stages.rewind_report --runs runs/rewind --out reports/rewind
