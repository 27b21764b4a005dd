"""Stage `imp`: levels 0..pruning.levels of IMP with rewinding; resumes at the first unfinished level."""

import typer

from lthlib.cli import load_stage_inputs, training_stage, user_errors_exit
from lthlib.core import io
from lthlib.core.imp import run_imp


@user_errors_exit
@training_stage
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", pretrained: str = "data/pretrain",
         out: str = "data/imp", table: str = "reports/imp.csv", sweep: str = "reports/adaptive_sweep.csv",
         timing: str = "reports/imp_timing.json",
         resume: str = typer.Option("", envvar="LTHLIB_IMP_RESUME",
                                    help="a folder that keeps finished levels across killed experiments"),
         replicate: int = typer.Option(None, help="this replicate alone, a job of its own: it writes its folders in "
                                                  "OUT and no table (docs/experiments.md)")):
    config, device, data = load_stage_inputs(params, dataset)
    alone = replicate is not None  # the run of all replicates, reusing this one's levels, writes the tables
    levels, sweeps = run_imp(config, data, pretrained, out, device, None if alone else timing, resume or None,
                             replicate)
    if not alone:
        io.save_csv(levels, table)
        io.save_csv(sweeps, sweep)


if __name__ == "__main__":
    typer.run(main)
