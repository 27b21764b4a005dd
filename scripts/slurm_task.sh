#!/usr/bin/env bash
# One array task of scripts/slurm_grid.py: experiment number $SLURM_ARRAY_TASK_ID of $LTHLIB_COMMANDS.
# Clones $LTHLIB_GIT_REMOTE at $LTHLIB_COMMIT into $LTHLIB_WORK/runs/<experiment> (or finds the clone of a
# killed earlier attempt there), pulls the dataset from $LTHLIB_DVC_REMOTE, runs the experiment's `dvc exp run`
# line and pushes the experiment (Git ref and outputs) back. IMP keeps its finished levels in
# $LTHLIB_WORK/resume/<experiment>, so a resubmitted task resumes at the first unfinished level.
set -euo pipefail
line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$LTHLIB_COMMANDS")
read -ra words <<< "$line"
for i in "${!words[@]}"; do [ "${words[$i]}" = -n ] && name=${words[$((i + 1))]}; done
clone=$LTHLIB_WORK/runs/$name
echo "task $SLURM_ARRAY_TASK_ID (job ${SLURM_JOB_ID:-?}) on $(hostname): $name"
if [ -d "$clone/.git" ]; then
  echo "resuming in $clone"
else
  git clone -q "$LTHLIB_GIT_REMOTE" "$clone"
fi
cd "$clone"
git fetch -q origin
git checkout -q -f "$LTHLIB_COMMIT"  # a killed attempt's params.yaml and dvc.lock are reset
git config user.email >/dev/null || git config user.email "lthlib@localhost"
git config user.name >/dev/null || git config user.name "lthlib"
if [ -n "${LTHLIB_VENV:-}" ]; then
  . "$LTHLIB_VENV/bin/activate"
else
  bash scripts/setup.sh --no-data && . .venv/bin/activate
fi
dvc remote add --local --force --default lthlib-grid "$LTHLIB_DVC_REMOTE"
dvc pull -q --run-cache data  # the dataset (data/raw is not in Git); the run cache restores unchanged stages
# dvc exp run resets data/imp to the baseline's when it starts: IMP keeps its finished levels here as well
export LTHLIB_IMP_RESUME=$LTHLIB_WORK/resume/$name
eval "$line"
dvc exp push -q origin "$name"
echo "pushed experiment $name"
