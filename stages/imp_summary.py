"""Stage `imp_summary`: IMP's levels averaged over replicates (reports/imp_summary.csv, `dvc plots`' curve).

A stage of its own, right after `imp`, so that an experiment run to `imp_summary` alone (the stability grid's
`--dense-only`) carries its own summary, not the one its baseline commit holds."""

import typer

from lthlib.cli import user_errors_exit
from lthlib.core import io
from lthlib.report.common import level_summary


@user_errors_exit
def main(table: str = "reports/imp.csv", out: str = "reports/imp_summary.csv"):
    io.save_csv(level_summary(io.load_csv(table)), out)


if __name__ == "__main__":
    typer.run(main)
