"""The outputs of a DVC experiment's commit that belong to the experiment, one path per line (used by
scripts/collect_experiments.sh).

    python scripts/fresh_tables.py EXPERIMENT_REF

An experiment's commit holds every `cache: false` table of the pipeline, also those of stages it did not run
(stages outside a `dvc exp run`'s targets): those were made with other params, and exported beside the
experiment's params they would read as its own. A stage's outputs belong to the experiment when its dvc.lock entry
is up to date in that commit, as `dvc status` would find it: the params it recorded are the experiment's, and every
dependency that another stage produces has the hash that stage recorded, that stage being up to date too. (Source
files are not compared: an experiment runs the code of its baseline commit.) DVC has no command that answers this
for a commit other than the workspace.
"""

import subprocess
import sys
from functools import cache
from typing import Iterator

import yaml


def shown_yaml(ref: str, path: str) -> dict:
    shown = subprocess.run(["git", "show", f"{ref}:{path}"], capture_output=True, text=True)
    return (yaml.safe_load(shown.stdout) or {}) if shown.returncode == 0 else {}


def param_value(params: dict, key: str):
    """`train.lr` or a whole section such as `model`, as params.yaml holds it (None where it has no such key)."""
    for part in key.split("."):
        if not isinstance(params, dict) or part not in params:
            return None
        params = params[part]
    return params


def fresh_outputs(stages: dict, params: dict) -> Iterator[str]:
    """The outputs of every stage of the dvc.lock `stages` that is up to date with `params` (params.yaml's)."""
    producer = {out["path"]: (name, out.get("md5")) for name, stage in stages.items() for out in stage.get("outs", [])}

    @cache
    def up_to_date(name: str) -> bool:
        stage = stages[name]
        recorded = stage.get("params", {}).get("params.yaml", {})
        if any(param_value(params, key) != value for key, value in recorded.items()):
            return False
        for dep in stage.get("deps", []):
            if dep["path"] in producer:
                upstream, md5 = producer[dep["path"]]
                if dep.get("md5") != md5 or not up_to_date(upstream):
                    return False
        return True

    for name, stage in stages.items():
        if up_to_date(name):
            yield from (out["path"] for out in stage.get("outs", []))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/fresh_tables.py EXPERIMENT_REF")
    ref = sys.argv[1]
    print("\n".join(fresh_outputs(shown_yaml(ref, "dvc.lock").get("stages", {}), shown_yaml(ref, "params.yaml"))))
