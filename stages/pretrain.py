"""Stage `pretrain`: initialise the replicates and train them densely to the rewind point t_r,
on the chosen subset with its (possibly randomized) labels."""

import torch
import typer

from lthlib import io
from lthlib.cli import load_stage_inputs, user_errors_exit
from lthlib.imp import pretrain


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", noise: str = "data/noise.pt",
         subset: str = "data/subset.csv", out: str = "data/pretrain"):
    config, device, data = load_stage_inputs(params, dataset)
    labels = io.load_tensors(noise)["labels"]
    indices = torch.tensor(io.load_csv(subset)["index"].to_numpy())
    pretrain(config, data.training_subset(indices, labels), out, device)


if __name__ == "__main__":
    typer.run(main)
