"""Stage `instability`: error barrier between two copies trained with different SGD noise from each rewind step."""

import typer

from lthlib import io
from lthlib.cli import load_stage_inputs, user_errors_exit
from lthlib.imp import replicate_seeds
from lthlib.instability import measure_instability


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", pretrained: str = "data/pretrain",
         imp: str = "data/imp", table: str = "reports/instability.csv"):
    config, device, data = load_stage_inputs(params, dataset)
    replicates = range(config.instability.replicates or config.replicates)
    init_states = [io.load_tensors(io.replicate_dir(pretrained, r) / "init.pt") for r in replicates]
    masks = {level: [io.load_tensors(io.level_dir(imp, r, level) / "mask.pt") for r in replicates]
             for level in config.instability.levels}
    table_rows = measure_instability(config.model.name, data, config.train, init_states,
                                     replicate_seeds(config)[:len(replicates)], masks,
                                     config.instability.rewind_steps, config.data.augment, config.compute.vectorize,
                                     config.interpolation, device)
    io.save_csv(table_rows, table)


if __name__ == "__main__":
    typer.run(main)
