"""IMP across rewind steps (Fig. 2 left, Fig. 5); not a dvc.yaml stage.

It reads one folder per run (params.yaml, imp_summary.csv, lmc_paths.csv, lmc_pairs.csv), as
exported from DVC experiments by scripts/compare_rewind.sh, and writes rewind.md with its figures.
"""

import typer

from lthlib.cli import user_errors_exit
from lthlib.report.landscape import write_rewind_comparison


@user_errors_exit
def main(runs: str = "runs/rewind", out: str = "reports/rewind", epsilon: str = "pooled"):
    """`epsilon`: Def. A.2's ε over the dense networks of every rewind step as one sample (`pooled`) or each rewind
    step's own (`per-run`)."""
    print(write_rewind_comparison(runs, out, epsilon))


if __name__ == "__main__":
    typer.run(main)
