"""Stage `data`: read the raw dataset (and the transfer target, if any) with torchvision's loaders into tensor files."""

import typer

from lthlib.core import io
from lthlib.cli import user_errors_exit
from lthlib.core.config import load_config
from lthlib.core.data import conform_input_shape, reduce_training_set, select_classes, stored
from lthlib.core.readers import ReadOptions, read_raw


@user_errors_exit
def main(params: str = "params.yaml", out: str = "data/dataset.pt", target: str = "data/transfer.pt"):
    config = load_config(params)
    data = config.data
    options = ReadOptions(data.image_size, data.split_seed, data.test_fraction, data.storage, data.decoder)
    source = reduce_training_set(select_classes(read_raw(data.name, data.root, options), data.classes, "data.classes"),
                                 data.train_examples, data.image_size, data.train_examples_seed)
    transfer = {}  # no target: an empty file, so that the stage's outputs always exist
    if config.transfer.name is not None:
        try:
            raw = read_raw(config.transfer.name, config.transfer.root, ReadOptions(split_seed=data.split_seed))
        except FileNotFoundError as error:
            raise FileNotFoundError(f"transfer.name: {error}") from None
        transfer = conform_input_shape(select_classes(raw, config.transfer.classes, "transfer.classes"),
                                       tuple(source["train_x"].shape[1:]))
    io.save_tensors(stored(source), out)
    io.save_tensors(transfer, target)


if __name__ == "__main__":
    typer.run(main)
