"""Stage `instability`: error barrier between two copies trained with different SGD noise from each rewind step."""

import typer

from lthlib import io
from lthlib.cli import user_errors_exit
from lthlib.config import load_config
from lthlib.data import load_dataset
from lthlib.imp import replicate_seeds
from lthlib.instability import measure_instability
from lthlib.train import select_device


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", pretrained: str = "data/pretrain",
         imp: str = "data/imp", table: str = "reports/instability.csv"):
    config = load_config(params)
    device = select_device(config.compute.device, config.compute.threads)
    replicates = range(config.instability.replicates or config.replicates)
    init_states = [io.load_tensors(io.replicate_dir(pretrained, r) / "init.pt") for r in replicates]
    masks = {level: [io.load_tensors(io.level_dir(imp, r, level) / "mask.pt") for r in replicates]
             for level in config.instability.levels}
    table_rows = measure_instability(config.model.name, load_dataset(dataset, device), config.train, init_states,
                                     replicate_seeds(config)[:len(replicates)], masks,
                                     config.instability.rewind_steps, config.data.augment, config.compute.vectorize,
                                     config.interpolation, device)
    io.save_csv(table_rows, table)


if __name__ == "__main__":
    typer.run(main)
