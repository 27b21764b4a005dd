"""Stage `instability`: error barrier between two copies trained with different SGD noise from each rewind step,
and the error along each path between them."""

import typer

from lthlib.analyses.instability import load_dense_run, measure_instability
from lthlib.analyses.subsets import pretraining_data
from lthlib.cli import load_stage_inputs, training_stage, user_errors_exit
from lthlib.core import io


@user_errors_exit
@training_stage
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", noise: str = "data/noise.pt",
         subset: str = "data/subset.csv", pretrained: str = "data/pretrain", imp: str = "data/selected/instability",
         table: str = "reports/instability.csv", paths: str = "reports/instability_paths.csv"):
    config, device, data = load_stage_inputs(params, dataset)
    replicates = config.studied_replicates(config.instability)
    masks = {level: [io.load_tensors(io.level_dir(imp, r, level) / "mask.pt") for r in range(replicates)]
             for level in config.instability.levels}
    run = load_dense_run(config, data, pretraining_data(data, noise, subset), pretrained, replicates, device)
    barriers, errors = measure_instability(run, masks, config.instability.rewind_steps, config.instability_evaluation(),
                                           config.instability.barrier)
    io.save_csv(barriers, table)
    io.save_csv(errors, paths)


if __name__ == "__main__":
    typer.run(main)
