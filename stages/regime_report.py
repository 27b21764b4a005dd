"""The CPU-regime search table; not a dvc.yaml stage.

It reads one folder per run (params.yaml, instability.csv, seconds.txt), as exported by
scripts/regime_search.py collect, and writes search.md with its figure.
"""

import typer

from lthlib.cli import user_errors_exit
from lthlib.report.regime import write_search_report


@user_errors_exit
def main(runs: str = "reports/regime/runs", out: str = "reports/regime"):
    print(write_search_report(runs, out))


if __name__ == "__main__":
    typer.run(main)
