"""Stage `landscape`: the error on a grid of the plane of every IMP step (w(L), m(L+1) * w(L), w(L+1))."""

import pandas as pd
import typer

from lthlib.core import io
from lthlib.cli import load_stage_inputs, user_errors_exit
from lthlib.analyses.landscape import level_slice, slice_summary
from lthlib.core.models import build_model


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", imp: str = "data/imp",
         out: str = "data/landscape", table: str = "reports/landscape.csv"):
    config, device, data = load_stage_inputs(params, dataset)
    model = build_model(config.model.name, data.input_shape, data.num_classes)
    replicate, rows = config.landscape.replicate, []
    with io.atomic_dir(out) as folder:
        for level in range(config.pruning.levels):
            solution, next_solution, next_mask = (
                io.load_tensors(io.level_dir(imp, replicate, lv) / name)
                for lv, name in ((level, "final.pt"), (level + 1, "final.pt"), (level + 1, "mask.pt")))
            grid = level_slice(model, solution, next_solution, next_mask, data, config.landscape, config.interpolation,
                               f"landscape, level {level}")
            io.save_npz(grid, folder / f"level_{level:02d}.npz")
            rows.append(slice_summary(level, grid))
    io.save_csv(pd.DataFrame(rows), table)


if __name__ == "__main__":
    typer.run(main)
