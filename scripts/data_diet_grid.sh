#!/usr/bin/env bash
# The comparison grid of "Pretraining on a data diet" (Fig. 2-4) as DVC experiments.
#
#   scripts/data_diet_grid.sh run       # run the grid one experiment after another in the workspace
#   scripts/data_diet_grid.sh queue     # or: queue it, then `dvc queue start -j N` (see below)
#   scripts/data_diet_grid.sh collect   # export each finished run, write reports/data_diet/data_diet.md
#   scripts/data_diet_grid.sh print     # print the `dvc exp run` lines (for scripts/slurm_grid.py submit)
#
# Runs, all from the current params.yaml (take t* = pretrain.steps there, e.g.
# profiles/data_diet_cifar10_resnet20.yaml with t* = 400):
#   all data at t_r = 0, t*/2 and t*;
#   random / easy / hard subsets of each size in SIZES at t_r = t*/2;
#   with label noise p in NOISES (Fig. 3): all data, random and easy subsets at t*/2.
# Environment: T_STAR (default: pretrain.steps of params.yaml), SIZES (default "0.05 0.1 0.2 0.4",
# counts or fractions), NOISES (default "0.1 0.5"; "" for none), THREADS (compute.threads, default 1),
# EXTRA (more `-S key=value` overrides for every run, e.g. EXTRA="-S pruning.levels=9").
#
# Queued experiments run in temporary copies made from Git; run `dvc repro` once in the workspace
# first, so that they restore the dataset (data/raw is git-ignored) from DVC's cache. Stages with
# unchanged deps and params (data, and el2n for every noise-free run) come from DVC's run cache
# instead of being recomputed.
#
# Collecting: scripts/collect_experiments.sh copies every dd-* experiment's params.yaml and
# reports/imp_summary.csv of the current commit into runs/data_diet/<experiment>/, then
# stages/data_diet_report.py reports on that folder.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

T_STAR=${T_STAR:-$(python -c "from lthlib.core.config import load_config; print(load_config().pretrain.steps)")}
HALF=$((T_STAR / 2))
SIZES=${SIZES:-"0.05 0.1 0.2 0.4"}
NOISES=${NOISES-"0.1 0.5"}
THREADS=${THREADS:-1}
EXTRA=${EXTRA:-}
RUNS=runs/data_diet

experiment() {  # experiment NAME STEPS KIND SIZE NOISE; $QUEUE is --queue or empty; $RUN empty or print_command
  $RUN dvc exp run $QUEUE -n "dd-${1//./p}" -S "pretrain.steps=$2" -S "subset.kind=$3" -S "subset.size=$4" \
    -S "data.label_noise=$5" -S "compute.threads=$THREADS" $EXTRA
}

print_command() {
  printf '%q ' "$@" && echo
}

grid() {
  experiment all-t0 0 all 1.0 0.0
  experiment "all-t$HALF" "$HALF" all 1.0 0.0
  experiment "all-t$T_STAR" "$T_STAR" all 1.0 0.0
  for size in $SIZES; do
    for kind in random easy hard; do
      experiment "$kind-$size-t$HALF" "$HALF" "$kind" "$size" 0.0
    done
  done
  for noise in $NOISES; do
    experiment "all-t$HALF-noise$noise" "$HALF" all 1.0 "$noise"
    for size in $SIZES; do
      for kind in random easy; do
        experiment "$kind-$size-t$HALF-noise$noise" "$HALF" "$kind" "$size" "$noise"
      done
    done
  done
}

collect() {
  bash scripts/collect_experiments.sh dd- "$RUNS"
  python -m stages.data_diet_report --runs "$RUNS" --out reports/data_diet --t-star "$T_STAR"
}

case "${1:-}" in
  run) QUEUE="" RUN="" grid ;;
  queue) QUEUE=--queue RUN="" grid && dvc queue status ;;
  print) QUEUE="" RUN=print_command grid ;;
  collect) collect ;;
  *) sed -n '2,25p' "$0"; exit 2 ;;
esac
