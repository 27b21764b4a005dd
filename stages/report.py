"""Stage `report`: figures, metrics and the markdown report from the saved tables."""

import typer

from lthlib import io
from lthlib.cli import user_errors_exit
from lthlib.config import load_config
from lthlib.report import write_imp_report


@user_errors_exit
def main(params: str = "params.yaml", table: str = "reports/imp.csv", out: str = "reports"):
    write_imp_report(load_config(params), io.load_csv(table), out)


if __name__ == "__main__":
    typer.run(main)
