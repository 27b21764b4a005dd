"""Stage `noise`: randomize data.label_noise of the training labels once (pretraining and EL2N use them)."""

import typer

from lthlib.core import io
from lthlib.cli import user_errors_exit
from lthlib.core.config import load_config
from lthlib.analyses.subsets import noise_summary, randomize_labels


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", out: str = "data/noise.pt",
         metrics: str = "reports/noise.json"):
    config = load_config(params)
    raw = io.load_tensors(dataset)
    classes = len(raw["classes"])
    noise = randomize_labels(raw["train_y"], classes, config.data.label_noise, config.data.label_noise_seed)
    io.save_tensors(noise.as_tensors(), out)
    io.save_json(noise_summary(noise, config.data.label_noise, config.data.label_noise_seed, classes), metrics)


if __name__ == "__main__":
    typer.run(main)
