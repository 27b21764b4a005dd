"""Fixed vs adaptive pruning ratio across runs (Fig. 4); not a dvc.yaml stage.

It reads one folder per run (params.yaml + imp_summary.csv), as exported from DVC experiments
by scripts/compare_adaptive.sh, and writes adaptive.md with its figure.
"""

from typing import Optional

import typer

from lthlib.cli import user_errors_exit
from lthlib.core.config import load_config
from lthlib.report.adaptive import load_schedules, write_schedule_comparison


@user_errors_exit
def main(runs: str = "runs/adaptive", out: str = "reports/adaptive", target: Optional[float] = None,
         params: str = "params.yaml"):
    target = load_config(params).report.target_fraction_remaining if target is None else target
    print(write_schedule_comparison(load_schedules(runs), target, out))


if __name__ == "__main__":
    typer.run(main)
