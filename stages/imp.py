"""Stage `imp`: levels 0..pruning.levels of IMP with rewinding; resumes at the first unfinished level.
With `compute.processes` > 1 it launches that many data-parallel workers (lthlib/core/distributed.py)."""

import typer

from lthlib.cli import load_stage_inputs, user_errors_exit
from lthlib.core import distributed, io
from lthlib.core.config import ConfigError, load_config
from lthlib.core.imp import run_imp


@user_errors_exit
def main(params: str = "params.yaml", dataset: str = "data/dataset.pt", pretrained: str = "data/pretrain",
         out: str = "data/imp", table: str = "reports/imp.csv", sweep: str = "reports/adaptive_sweep.csv",
         timing: str = "reports/imp_timing.json",
         resume: str = typer.Option("", envvar="LTHLIB_IMP_RESUME",
                                    help="a folder that keeps finished levels across killed experiments")):
    config = load_config(params)
    workers = distributed.processes_to_launch(config.compute.processes)
    if workers and config.train.batch_size % workers:
        raise ConfigError(f"train.batch_size {config.train.batch_size} is not divisible by compute.processes "
                          f"{workers}: every process takes an equal shard of each batch")
    if workers:
        print(f"imp: {workers} processes share every training batch (compute.processes)")
        distributed.launch(workers, imp, params, dataset, pretrained, out, table, sweep, timing, resume)
    else:
        imp(params, dataset, pretrained, out, table, sweep, timing, resume)


def imp(params, dataset, pretrained, out, table, sweep, timing, resume) -> None:
    config, device, data = load_stage_inputs(params, dataset)
    distributed.join(device)
    levels, sweeps = run_imp(config, data, pretrained, out, device, timing, resume or None)
    io.save_csv(levels, table)
    io.save_csv(sweeps, sweep)


if __name__ == "__main__":
    typer.run(main)
