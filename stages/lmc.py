"""Stage `lmc`: errors along the linear paths between every pair of IMP level solutions, per replicate."""

import typer

from lthlib.core import io
from lthlib.cli import load_stage_inputs, user_errors_exit
from lthlib.analyses.lmc import connectivity_tables
from lthlib.core.models import build_model


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", imp: str = "data/imp",
         paths: str = "reports/lmc_paths.csv", pairs: str = "reports/lmc_pairs.csv"):
    config, device, data = load_stage_inputs(params, dataset)
    levels = range(config.pruning.levels + 1)
    solutions = [[io.load_tensors(io.level_dir(imp, r, level) / "final.pt") for level in levels]
                 for r in range(config.replicates)]
    model = build_model(config.model.name, data.input_shape, data.num_classes)
    path_table, pair_table = connectivity_tables(model, solutions, data, config.interpolation, config.pretrain.steps)
    io.save_csv(path_table, paths)
    io.save_csv(pair_table, pairs)


if __name__ == "__main__":
    typer.run(main)
