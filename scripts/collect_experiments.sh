#!/usr/bin/env bash
# Export DVC experiments of the current commit into one folder per run, for cross-run reports.
#   scripts/collect_experiments.sh PREFIX DEST
# copies params.yaml and reports/imp_summary.csv of every experiment whose name starts with
# PREFIX into DEST/<name>/. Both files are in Git inside each experiment's commit
# (refs/exps/...): params.yaml always, imp_summary.csv because it is a `cache: false` output.
set -euo pipefail
prefix=${1:?usage: collect_experiments.sh PREFIX DEST}
dest=${2:?usage: collect_experiments.sh PREFIX DEST}
cd "$(git rev-parse --show-toplevel)"
rm -rf "$dest" && mkdir -p "$dest"
baseline=$(git rev-parse HEAD)  # refs/exps/<2 chars>/<rest of the baseline commit>/<name>
for ref in $(git for-each-ref --format='%(refname)' "refs/exps/${baseline:0:2}/${baseline:2}"); do
  name=${ref##*/}
  [[ $name == "$prefix"* ]] || continue
  if git cat-file -e "$ref:reports/imp_summary.csv" 2>/dev/null; then
    mkdir -p "$dest/$name"
    git show "$ref:params.yaml" > "$dest/$name/params.yaml"
    git show "$ref:reports/imp_summary.csv" > "$dest/$name/imp_summary.csv"
  else
    echo "skipping $name: no reports/imp_summary.csv in $ref (failed or unfinished)" >&2
  fi
done
echo "$(find "$dest" -mindepth 1 -maxdepth 1 -type d | wc -l) runs in $dest"
