"""Stage `pretrain`: initialise the replicates and train them densely to the rewind point t_r."""

import typer

from lthlib.cli import user_errors_exit
from lthlib.config import load_config
from lthlib.data import load_dataset
from lthlib.imp import pretrain
from lthlib.train import select_device


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", out: str = "data/pretrain"):
    config = load_config(params)
    device = select_device(config.compute.device, config.compute.threads)
    pretrain(config, load_dataset(dataset, device), out, device)


if __name__ == "__main__":
    typer.run(main)
