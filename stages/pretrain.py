"""Stage `pretrain`: initialise the replicates and train them densely to the rewind point t_r,
on the chosen subset with its (possibly randomized) labels."""

import typer

from lthlib.analyses.subsets import pretraining_data
from lthlib.cli import load_stage_inputs, training_stage, user_errors_exit
from lthlib.core.imp import pretrain


@user_errors_exit
@training_stage
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", noise: str = "data/noise.pt",
         subset: str = "data/subset.csv", out: str = "data/pretrain",
         replicate: int = typer.Option(None, help="this replicate alone: a job of its own (docs/experiments.md)")):
    config, device, data = load_stage_inputs(params, dataset)
    pretrain(config, pretraining_data(data, noise, subset), out, device, replicate)


if __name__ == "__main__":
    typer.run(main)
