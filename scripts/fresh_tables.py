"""The outputs a DVC experiment produced itself, one path per line (used by scripts/collect_experiments.sh).

    python scripts/fresh_tables.py EXPERIMENT_REF BASELINE_REF

An experiment's commit holds every `cache: false` table of the pipeline, also those of stages it did not run (a
`dvc exp run` with targets, or stages outside them): those are the baseline's tables, and exporting them as the
experiment's would put another configuration's numbers beside its params. A stage the experiment ran has a dvc.lock
entry of its own (its params or the hashes of its dependencies differ); a stage it did not run keeps the baseline's.
"""

import subprocess
import sys
from typing import Iterator

import yaml


def lock_stages(ref: str) -> dict:
    shown = subprocess.run(["git", "show", f"{ref}:dvc.lock"], capture_output=True, text=True)
    return yaml.safe_load(shown.stdout)["stages"] if shown.returncode == 0 else {}


def fresh_outputs(experiment: dict, baseline: dict) -> Iterator[str]:
    """The outputs of every stage whose dvc.lock entry in the experiment differs from the baseline's."""
    for name, stage in experiment.items():
        if stage != baseline.get(name):
            yield from (out["path"] for out in stage.get("outs", []))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python scripts/fresh_tables.py EXPERIMENT_REF BASELINE_REF")
    experiment_ref, baseline_ref = sys.argv[1:]
    print("\n".join(fresh_outputs(lock_stages(experiment_ref), lock_stages(baseline_ref))))
