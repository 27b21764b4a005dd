"""Stage `data`: read the raw dataset with torchvision's loader into one tensor file."""

import typer

from lthlib.core import io
from lthlib.cli import user_errors_exit
from lthlib.core.config import load_config
from lthlib.core.data import read_raw


@user_errors_exit
def main(params: str = "params.yaml", out: str = "data/dataset.pt"):
    config = load_config(params)
    io.save_tensors(read_raw(config.data.name, config.data.root), out)


if __name__ == "__main__":
    typer.run(main)
