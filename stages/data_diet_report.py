"""The data-diet comparison (Fig. 2-4, Definitions 3.1/3.2) across runs; not a dvc.yaml stage.

It reads one folder per run (params.yaml + imp.csv or imp_summary.csv), as exported from DVC
experiments by scripts/data_diet_grid.sh, and writes data_diet.md with its figures.
"""

from typing import Optional

import typer

from lthlib.cli import user_errors_exit
from lthlib.report.data_diet import load_runs, write_data_diet_report


@user_errors_exit
def main(runs: str = "runs/data_diet", out: str = "reports/data_diet", t_star: Optional[int] = None):
    print(write_data_diet_report(load_runs(runs), out, t_star))


if __name__ == "__main__":
    typer.run(main)
