"""Stage `select_levels`: the IMP files the later analyses read, copied out of data/imp, so that each analysis
depends on its own levels only: adding or retraining other levels re-runs none of them."""

import typer

from lthlib.cli import user_errors_exit
from lthlib.core import io
from lthlib.core.config import load_config

DENSE_SOLUTION = (0, "final.pt")  # what the transfer stage compares the tickets with


@user_errors_exit
def main(params: str = "params.yaml", imp: str = "data/imp", instability: str = "data/selected/instability",
         tickets: str = "data/selected/tickets"):
    config = load_config(params)
    io.copy_level_files(imp, instability, [(level, "mask.pt") for level in config.instability.levels],
                        config.studied_replicates(config.instability))
    io.copy_level_files(imp, tickets, [(level, "mask.pt") for level in config.tickets.levels] + [DENSE_SOLUTION],
                        config.studied_replicates(config.tickets))


if __name__ == "__main__":
    typer.run(main)
