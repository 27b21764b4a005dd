#!/usr/bin/env bash
# Export DVC experiments of the current commit into one folder per run, for cross-run reports.
#   scripts/collect_experiments.sh PREFIX DEST
# copies params.yaml, reports/imp_summary.csv and, where present, the wall times reports/imp_timing.json, the landscape
# tables reports/lmc_paths.csv and lmc_pairs.csv, the data diet's reports/subset.json, the tickets' tables (baselines,
# probes, few_shot, transfer .csv) and the stability tables (instability.csv, instability_paths.csv, first_stable.csv
# and its probes, which a finer search reuses: scripts/regime_search.py first-stable --every) of every experiment
# whose name starts with PREFIX into DEST/<name>/. They are in Git inside each experiment's commit (refs/exps/...):
# params.yaml always, the tables because they are `cache: false` outputs. Only the tables of stages up to date in the
# experiment's commit are exported (scripts/fresh_tables.py): the others there were made with other params.
set -euo pipefail
prefix=${1:?usage: collect_experiments.sh PREFIX DEST}
dest=${2:?usage: collect_experiments.sh PREFIX DEST}
cd "$(git rev-parse --show-toplevel)"
rm -rf "$dest" && mkdir -p "$dest"
baseline=$(git rev-parse HEAD)  # refs/exps/<2 chars>/<rest of the baseline commit>/<name>
for ref in $(git for-each-ref --format='%(refname)' "refs/exps/${baseline:0:2}/${baseline:2}"); do
  name=${ref##*/}
  [[ $name == "$prefix"* ]] || continue
  fresh=$(python scripts/fresh_tables.py "$ref")
  if grep -qx reports/imp_summary.csv <<< "$fresh"; then
    mkdir -p "$dest/$name"
    git show "$ref:params.yaml" > "$dest/$name/params.yaml"
    for table in imp_summary.csv imp_timing.json lmc_paths.csv lmc_pairs.csv subset.json instability.csv \
        baselines.csv probes.csv few_shot.csv transfer.csv \
        instability_paths.csv first_stable.csv first_stable_probes.csv; do
      if grep -qx "reports/$table" <<< "$fresh"; then
        git show "$ref:reports/$table" > "$dest/$name/$table"
      fi
    done
  else
    echo "skipping $name: no up-to-date reports/imp_summary.csv in $ref (failed, unfinished or not a target)" >&2
  fi
done
echo "$(find "$dest" -mindepth 1 -maxdepth 1 -type d | wc -l) runs in $dest"
