"""The stability study of "Training stability and the lottery ticket hypothesis" as DVC experiments.

    python scripts/stability_grid.py run       # one experiment after another, in the workspace
    python scripts/stability_grid.py queue     # or queue them: then `dvc queue start -j N`
    python scripts/stability_grid.py collect   # export finished runs, write reports/stability/stability.md
    ... run --dense-only, collect --dense-only # Table 1 alone (table1.md): the dense network from initialisation
    ... run --dense-only --stability           # and its Fig. 1 barrier and Table 6 first stable epoch

Each configuration (mu<momentum>-bs<batch size>) runs twice: IMP rewinding to initialisation and to
`--rewind-epochs`. Both carry the whole pipeline: IMP with its curves and forgetting, instability from
initialisation and t_r, the first-stable search, the ticket stages (baselines, probes, few-shot) at
`--ticket-levels`. Everything else comes from params.yaml, which every run starts from as it was when the grid
started (and finds again at the end; the workspace keeps the last run's outputs). Run `dvc repro` once first: the
experiments restore data/dataset.pt from DVC's cache, and the grid reads its size.
With `--dense-only`, each configuration trains its dense network from initialisation alone (`imp` with
`pruning.levels: 0`, then `imp_summary`), enough for Table 1's forgetting and convergence at a fraction of the
cost; `--stability` adds two copies of it from initialisation (`instability`, Fig. 1) and the search for its first
stable step (`first_stable`, Table 6), which table1.md then reports by momentum and by batch size.
"""

import shlex
import subprocess
import sys
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lthlib.analyses.stability_grid import Configuration, experiment_config, experiment_overrides  # noqa: E402
from lthlib.cli import user_errors_exit  # noqa: E402
from lthlib.core import io  # noqa: E402
from lthlib.core.config import load_config  # noqa: E402
from lthlib.core.errors import UserError  # noqa: E402
from lthlib.experiments import params_for_each_run  # noqa: E402
from lthlib.report.stability import write_convergence_report, write_stability_report  # noqa: E402

PREFIX = "st-"
DENSE_PREFIX = "st1-"  # --dense-only runs (Table 1); not matched by PREFIX
DEFAULT = "mu0-bs128,mu0-bs512,mu0.9-bs128,mu0.9-bs512"


@user_errors_exit
def main(action: str = typer.Argument(..., help="run | queue | collect"),
         configurations: str = typer.Option(DEFAULT, help="comma-separated mu<momentum>-bs<batch size>"),
         epochs: float = typer.Option(3.0, help="training epochs per run"),
         rewind_epochs: float = typer.Option(0.5, help="late rewinding point t_r, in epochs"),
         replicates: int = typer.Option(3, help="replicates = initialisations of every run"),
         levels: int = typer.Option(6, help="IMP levels (pruning.ratio from params.yaml)"),
         ticket_levels: str = typer.Option("3,6", help="tickets.levels of every run: the levels whose baselines, "
                                                       "probes and few-shot training are measured (at most --levels)"),
         threads: int = typer.Option(0, help="compute.threads of every run; 0: params.yaml's for `run`, 1 for "
                                             "`queue` (parallel workers must not share cores)"),
         runs: str = "runs/stability", out: str = "reports/stability",
         dense_only: bool = typer.Option(False, help="the dense network from initialisation alone: Table 1"),
         stability: bool = typer.Option(False, help="with --dense-only: also its instability from initialisation "
                                                    "and first stable step (Fig. 1, Table 6)"),
         dry_run: bool = typer.Option(False, help="print the dvc commands instead of running them"),
         few_shot_variant: str = typer.Option("", help="collect: a folder of the runs' few-shot tables under other "
                                                       "settings (<run>_few_shot.csv), whose Table 4 verdicts the "
                                                       "report adds")):
    if stability and not dense_only:
        raise UserError("--stability goes with --dense-only (the whole grid measures stability anyway)")
    if action == "collect":
        subprocess.run(["bash", "scripts/collect_experiments.sh", DENSE_PREFIX if dense_only else PREFIX, runs],
                       check=True)
        print(write_convergence_report(runs, out) if dense_only else
              write_stability_report(runs, out, few_shot_variant or None))
        return
    if action not in ("run", "queue"):
        raise UserError(f"action must be run, queue or collect, got {action!r}")
    targets = (["imp_summary", "first_stable"] if stability else ["imp_summary"]) if dense_only else []
    base = load_config()
    threads = threads or (base.compute.threads if action == "run" else 1)
    examples = len(io.load_tensors("data/dataset.pt")["train_y"])
    grid = [Configuration.parse(name.strip(), examples) for name in configurations.split(",")]
    commands = []
    for configuration in grid:  # every run's params validated before the first one runs
        for rewind in (0.0,) if dense_only else (0.0, rewind_epochs):
            overrides = {**experiment_overrides(base, configuration, examples, epochs, rewind),
                         "replicates": replicates, "pruning.levels": 0 if dense_only else levels,
                         "compute.threads": threads,
                         "tickets.levels": [] if dense_only else [int(level) for level in ticket_levels.split(",")
                                                                  if level.strip()],
                         "landscape.grid_size": 5, **({"instability.levels": [0]} if dense_only else {})}
            experiment_config(base, overrides)
            prefix = DENSE_PREFIX if dense_only else PREFIX
            name = f"{prefix}{configuration.name}-t{overrides['pretrain.steps']}".replace(".", "p")
            command = ["dvc", "exp", "run", "-n", name, *(["--queue"] if action == "queue" else [])]
            commands.append(command + [arg for key, value in overrides.items()
                                       for arg in ("-S", f"{key}={_yaml(value)}")] + targets)
    with params_for_each_run() as reset:
        for command in commands:
            print(shlex.join(command), flush=True)
            if not dry_run:
                reset()
                subprocess.run(command, check=True)


def _yaml(value) -> str:
    return "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else str(value).lower() \
        if isinstance(value, bool) else str(value)


if __name__ == "__main__":
    typer.run(main)
