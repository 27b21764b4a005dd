"""Stage `imp`: levels 0..pruning.levels of IMP with rewinding; resumes at the first unfinished level."""

import typer

from lthlib import io
from lthlib.cli import user_errors_exit
from lthlib.config import load_config
from lthlib.data import load_dataset
from lthlib.imp import run_imp
from lthlib.train import select_device


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", pretrained: str = "data/pretrain",
         out: str = "data/imp", table: str = "reports/imp.csv", sweep: str = "reports/adaptive_sweep.csv"):
    config = load_config(params)
    device = select_device(config.compute.device, config.compute.threads)
    levels, sweeps = run_imp(config, load_dataset(dataset, device), pretrained, out, device)
    io.save_csv(levels, table)
    io.save_csv(sweeps, sweep)


if __name__ == "__main__":
    typer.run(main)
