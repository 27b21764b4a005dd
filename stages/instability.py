"""Stage `instability`: error barrier between two copies trained with different SGD noise from each rewind step."""

import typer

from lthlib.analyses.instability import DenseRun, measure_instability
from lthlib.analyses.subsets import pretraining_data
from lthlib.cli import load_stage_inputs, user_errors_exit
from lthlib.core import io
from lthlib.core.train import replicate_seeds


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", noise: str = "data/noise.pt",
         subset: str = "data/subset.csv", pretrained: str = "data/pretrain", imp: str = "data/imp",
         table: str = "reports/instability.csv"):
    config, device, data = load_stage_inputs(params, dataset)
    replicates = range(config.instability.replicates or config.replicates)
    states = {name: [io.load_tensors(io.replicate_dir(pretrained, r) / name) for r in replicates]
              for name in ("init.pt", "rewind.pt")}
    masks = {level: [io.load_tensors(io.level_dir(imp, r, level) / "mask.pt") for r in replicates]
             for level in config.instability.levels}
    run = DenseRun(config.model.name, states["init.pt"], states["rewind.pt"], config.pretrain.steps,
                   replicate_seeds(config.seed, len(replicates)), config.pretraining_schedule(),
                   pretraining_data(data, noise, subset), config.train, data, config.data.augment,
                   config.compute.vectorize, device)
    io.save_csv(measure_instability(run, masks, config.instability.rewind_steps, config.interpolation), table)


if __name__ == "__main__":
    typer.run(main)
