"""Search for a CPU-sized regime in which the papers' phenomena appear (docs/regime.md).

    python scripts/regime_search.py run [NAME ...]   # each configuration as a DVC experiment rs-<name>
    python scripts/regime_search.py collect          # export the finished ones to reports/regime/runs/<name>/
    python scripts/regime_search.py first-stable [--initialisations N] [--every STEPS] [--copies N] [--runs DIR]
                                    NAME ...
    python scripts/regime_search.py add-imp NAME RUN # claim 2's columns from a finished `dvc repro imp` in RUN
    python -m stages.regime_report                   # the search table: reports/regime/search.md

Each configuration changes the default (Fashion-MNIST) in the ways below and runs the pipeline up to
`first_stable`: the dense network (IMP level 0), two noise copies from initialisation, from one epoch and from
three epochs of dense training, per replicate, and the bisection for the first stable step among every third of an
epoch. Runs go one after another in the workspace, one thread each (the other core stays free); a finished run is
not repeated (its experiment exists). Exported runs made up to `instability` get the bisection from
`first-stable`, which runs the stages it needs in a scratch folder and writes only the run's first-stable tables;
`--every` refines a run's bisection to candidates that many steps apart; `--copies` measures each verdict with that
many noise copies per initialisation (Appendix B's three) instead of the run's; `--runs` names another folder of
exported runs (reports/regime/runs by default), such as a stability grid's.

Claim 2 (rewinding to step 0 stops matching where a later step still matches) needs IMP itself: `dvc repro imp` of
the configuration's profile (4 replicates, 5 levels of 50 %) once with `pretrain.steps: 0` and once at the later
step, each in a clone of its own (docs/regime.md); `add-imp` stores each run's level summary in the search folder.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from lthlib.analyses.stability import candidate_steps, exact_probes  # noqa: E402
from lthlib.analyses.stability_grid import experiment_config  # noqa: E402
from lthlib.core import io  # noqa: E402
from lthlib.core.config import load_config, to_dict  # noqa: E402
from lthlib.experiments import params_for_each_run  # noqa: E402
from lthlib.report.common import level_summary  # noqa: E402

RUNS = Path("reports/regime/runs")  # exported runs, committed with the report they make
PREFIX = "rs-"


def third_of_an_epoch(epoch: int) -> int:
    """The bisection's default spacing of candidate steps (the profile's)."""
    return max(epoch // 3, 1)


def first_stable_search(steps: int, every: int) -> dict[str, int]:
    """The bisection's candidates `every` steps apart, with probes enough to be exact."""
    return {"instability.search_every": every,
            "instability.search_probes": exact_probes(len(candidate_steps(steps, every)))}


@dataclass(frozen=True)
class Regime:
    name: str
    model: str = "resnet20_8"
    examples: int = 5000  # training examples (class-balanced subset of the 60,000)
    image_size: int = 14
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = 10
    warmup_epochs: int = 0
    augment: bool = False
    replicates: int = 2

    def overrides(self) -> list[str]:
        epoch = self.examples // self.batch_size
        steps = self.epochs * epoch
        settings = {
            "replicates": self.replicates, "model.name": self.model, "data.train_examples": self.examples,
            "data.image_size": self.image_size, "data.augment": str(self.augment).lower(),
            "train.steps": steps, "train.batch_size": self.batch_size, "train.lr": self.lr,
            "train.momentum": self.momentum, "train.weight_decay": self.weight_decay,
            "train.milestones": f"[{round(0.7 * steps)},{round(0.9 * steps)}]",
            "train.warmup_steps": self.warmup_epochs * epoch, "pretrain.steps": epoch,
            "pruning.levels": 0, "el2n.steps": epoch, "tickets.levels": "[]", "instability.levels": "[0]",
            "instability.rewind_steps": f"[0,{epoch},{3 * epoch}]", "instability.path_points": 11,
            **first_stable_search(steps, third_of_an_epoch(epoch)), "compute.threads": 1,
        }
        return [arg for key, value in settings.items() for arg in ("-S", f"{key}={value}")]


BASE = Regime("base")
REGIMES = [  # most informative first: a run is a quarter to three quarters of an hour on one core (docs/regime.md)
    BASE,
    replace(BASE, name="momentum0", momentum=0.0),
    replace(BASE, name="lr0.2", lr=0.2),
    replace(BASE, name="resnet14_8", model="resnet14_8"),
    replace(BASE, name="resnet8_8", model="resnet8_8"),
    replace(BASE, name="lr0.4-warmup2", lr=0.4, warmup_epochs=2),
    replace(BASE, name="resnet20_4", model="resnet20_4"),
    replace(BASE, name="augment", augment=True),
    replace(BASE, name="lr0.05", lr=0.05),
    replace(BASE, name="batch32", batch_size=32),
    replace(BASE, name="examples2000", examples=2000, epochs=20),
    replace(BASE, name="lenet", model="lenet_300_100"),
    # without BatchNorm the network does not train at lr 0.1, warm-up or not; lr0.01 is nobn-lr0.01's pair with it
    replace(BASE, name="nobn-lr0.01", model="resnet20_8_nobn", lr=0.01),
    replace(BASE, name="lr0.01", lr=0.01),
    replace(BASE, name="nobn-lr0.05-warmup2", model="resnet20_8_nobn", lr=0.05, warmup_epochs=2),
    replace(BASE, name="warmup2", warmup_epochs=2),
    replace(BASE, name="batch512", batch_size=512),
    replace(BASE, name="resnet32_8", model="resnet32_8"),
    replace(BASE, name="resnet20", model="resnet20"),  # the papers' width: 16, 32 and 64 channels
    replace(BASE, name="momentum0.5", momentum=0.5),
    replace(BASE, name="lr0.4", lr=0.4),  # lr0.4-warmup2's pair, as base is warmup2's
    # the effective learning rate lr / (1 - momentum) held at base's 1 and lr0.05's 0.5 with less momentum: does
    # momentum change the barrier beyond it? (at lr0.4's 4 the barrier is near its ceiling, chance minus the error)
    replace(BASE, name="lr1-momentum0", lr=1.0, momentum=0.0),
    replace(BASE, name="lr0.5-momentum0.5", lr=0.5, momentum=0.5),
    replace(BASE, name="lr0.5-momentum0", lr=0.5, momentum=0.0),
    replace(BASE, name="lr0.25-momentum0.5", lr=0.25, momentum=0.5),
    # momentum's buffer starts empty and grows the step over about 1 / (1 - momentum) steps, a warm-up of its own:
    # with one epoch of warm-up, does lr1-momentum0 come down to base's barrier?
    replace(BASE, name="lr1-momentum0-warmup1", lr=1.0, momentum=0.0, warmup_epochs=1),
    replace(BASE, name="warmup1", warmup_epochs=1),
    # more momentum than base's at its effective learning rate of 1: does the barrier keep falling?
    replace(BASE, name="lr0.05-momentum0.95", lr=0.05, momentum=0.95),
    replace(BASE, name="lr0.01-momentum0.99", lr=0.01, momentum=0.99),
]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def experiment_ref(name: str) -> str | None:
    """The workspace's experiment of that name, whichever commit it was run on."""
    found = [ref for ref in git("for-each-ref", "--format=%(refname)", "refs/exps").split()
             if ref.endswith(f"/{PREFIX}{name}")]
    if len(found) > 1:
        raise SystemExit(f"{len(found)} experiments are named {PREFIX}{name}: keep one (dvc exp remove)")
    return found[0] if found else None


def run(names: list[str]) -> None:
    chosen = [regime for regime in REGIMES if not names or regime.name in names]
    with params_for_each_run() as reset:
        for regime in chosen:
            if experiment_ref(regime.name):
                print(f"{regime.name}: done", flush=True)
                continue
            reset()
            start = time.time()
            subprocess.run(["dvc", "exp", "run", "-n", PREFIX + regime.name, *regime.overrides(), "first_stable"],
                           check=True)
            seconds = time.time() - start
            (RUNS / regime.name).mkdir(parents=True, exist_ok=True)
            (RUNS / regime.name / "seconds.txt").write_text(f"{seconds:.0f}\n")
            print(f"{regime.name}: {seconds / 60:.1f} min", flush=True)


def collect() -> None:
    for regime in REGIMES:
        ref = experiment_ref(regime.name)
        if ref is None:
            continue
        folder = RUNS / regime.name
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("params.yaml", "reports/instability.csv", "reports/first_stable.csv",
                     "reports/first_stable_probes.csv"):
            if git("ls-tree", ref, name).strip():  # runs made before the search measured the first stable step
                (folder / Path(name).name).write_text(git("show", f"{ref}:{name}"))
    print(f"{sum(1 for _ in RUNS.glob('*/instability.csv'))} runs in {RUNS}")


def earlier_probes(folder: Path, path: Path) -> Path | None:
    """The probes of the run's earlier bisections, at any spacing and number of copies, as one table at `path`
    (None if there are none): the `first_stable` stage reuses each step's pairs where they hold all of its copies."""
    tables = [io.load_csv(earlier) for earlier in sorted(folder.glob("first_stable*_probes.csv"))]
    if not tables:
        return None
    io.save_csv(pd.concat(tables), path)
    return path


def rebuild_dense_run(params: Path, folder: Path) -> dict[str, Path]:
    """The dense network of `params` trained to its rewind point by the stages `data` to `pretrain`, run one by
    one with every file in `folder` (the workspace and DVC untouched); returns the files stage `first_stable` reads,
    by option."""
    files = {"--dataset": folder / "dataset.pt", "--noise": folder / "noise.pt", "--subset": folder / "subset.csv",
             "--pretrained": folder / "pretrain"}
    data, noise = {"--dataset": files["--dataset"]}, {"--dataset": files["--dataset"], "--noise": files["--noise"]}
    for stage, options in (("data", {"--out": files["--dataset"], "--target": folder / "transfer.pt"}),
                           ("noise", {**data, "--out": files["--noise"], "--metrics": folder / "noise.json"}),
                           ("el2n", {**noise, "--out": folder / "el2n"}),
                           ("subset", {**noise, "--scores": folder / "el2n" / "scores.csv", "--out": files["--subset"],
                                       "--metrics": folder / "subset.json", "--figures": folder / "el2n_page"}),
                           ("pretrain", {**noise, "--subset": files["--subset"], "--out": files["--pretrained"]})):
        run_stage(stage, {"--params": params, **options})
    return files


def run_stage(stage: str, options: dict[str, Path]) -> None:
    """`python -m stages.<stage>` with its path options, as DVC runs it."""
    subprocess.run([sys.executable, "-m", f"stages.{stage}",
                    *(arg for option, file in options.items() for arg in (option, str(file)))], check=True)


def first_stable(names: list[str], initialisations: int | None = None, every: int | None = None,
                 runs: Path = RUNS, copies: int | None = None) -> None:
    """The first stable step of exported runs (`runs/<name>/`), from their folders alone (the experiments need not
    exist): the dense network rebuilt from the run's params in a scratch folder (`rebuild_dense_run`, its first
    epoch: seconds), then the `first_stable` stage with `run`'s bisection settings, reusing the exported copies'
    verdicts at 0, 1 and 3 epochs and every pair the run's earlier searches measured (`earlier_probes`).
    `initialisations` beyond the run's replicates are searched from scratch (the first ones are the run's: a
    replicate's seeds do not depend on how many there are). `every` refines an earlier search: candidates that many
    steps apart, the tables written beside the run's as first_stable_every<STEPS>*.csv. `copies` other than the
    run's `instability.search_copies` judges each step probed by the mean barrier over every pair of that many
    copies, reusing only steps where an earlier search measured them all (the exported copies are one pair), the
    tables named first_stable_every<STEPS>_copies<N>*.csv. Only those tables are written outside the scratch folder."""
    for name in names:  # every one checked before any runs
        if not (runs / name / "instability.csv").exists():
            raise SystemExit(f"no exported run {runs / name} (params.yaml and instability.csv): `run {name}` and "
                             f"`collect` first, or name its folder with --runs")
        if not every and not load_config(runs / name / "params.yaml").data.train_examples:
            raise SystemExit(f"{runs / name} trains on every example (data.train_examples: 0), so a third of an "
                             f"epoch is not known from its params: name the spacing with --every STEPS")
    for name in names:
        folder = runs / name
        config = load_config(folder / "params.yaml")
        epoch = config.data.train_examples // config.train.batch_size
        spacing = every or third_of_an_epoch(epoch)
        search = first_stable_search(config.train.steps, spacing)
        if initialisations:  # the run's instability section may study fewer replicates than it has
            search["replicates"] = search["instability.replicates"] = initialisations
        if copies:
            search["instability.search_copies"] = copies
        start = time.time()
        with tempfile.TemporaryDirectory() as scratch:
            params = Path(scratch) / "params.yaml"
            params.write_text(yaml.safe_dump(to_dict(experiment_config(config, search)), sort_keys=False))
            stem = (f"first_stable_every{spacing}_copies{copies}" if copies else
                    f"first_stable_every{every}" if every else "first_stable")
            earlier = earlier_probes(folder, Path(scratch) / "earlier.csv")
            tables = {**rebuild_dense_run(params, Path(scratch)), "--params": params,
                      "--instability": folder / "instability.csv", **({"--earlier": earlier} if earlier else {}),
                      "--table": folder / f"{stem}.csv", "--probes": folder / f"{stem}_probes.csv"}
            run_stage("first_stable", tables)
        print(f"{name}: first stable step in {(time.time() - start) / 60:.1f} min", flush=True)


def add_imp(name: str, run_dir: str) -> None:
    """IMP's level summary of a finished run (its params.yaml and reports/imp.csv) as the search folder `name`'s
    `imp_summary_rewind<t>.csv`, t its rewind step."""
    step = load_config(Path(run_dir) / "params.yaml").pretrain.steps
    summary = level_summary(io.load_csv(Path(run_dir) / "reports/imp.csv"))
    io.save_csv(summary, RUNS / name / f"imp_summary_rewind{step}.csv")
    print(f"{name}: rewind step {step}, {int(summary['replicates'].min())} replicates")


def first_stable_command(args: list[str]) -> None:
    """`first-stable [--initialisations N] [--every STEPS] [--copies N] [--runs DIR] NAME ...`"""
    options = {"--initialisations": None, "--every": None, "--copies": None, "--runs": RUNS}
    while args[:1] and args[0] in options:
        option, value, args = args[0], args[1] if len(args) > 1 else "", args[2:]
        if option == "--runs":
            if not Path(value).is_dir():
                raise SystemExit(f"--runs takes a folder of exported runs, not {value!r}")
            options[option] = Path(value)
        elif option == "--copies" and not (value.isdigit() and int(value) >= 2):
            raise SystemExit("--copies takes a whole number of at least 2 (a barrier needs a pair)")
        elif not value.isdigit() or int(value) < 1:
            raise SystemExit(f"{option} takes a positive whole number")
        else:
            options[option] = int(value)
    if not args:
        raise SystemExit(f"first-stable: name at least one exported run ({options['--runs']}/NAME)")
    first_stable(args, options["--initialisations"], options["--every"], options["--runs"], options["--copies"])


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["run"]
    commands = {"run": lambda: run(rest), "collect": collect, "first-stable": lambda: first_stable_command(rest),
                "add-imp": lambda: add_imp(*rest)}
    if command not in commands:
        raise SystemExit(f"unknown command {command!r}: one of {', '.join(commands)} (see the docstring)")
    commands[command]()
