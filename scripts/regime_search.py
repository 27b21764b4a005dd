"""Search for a CPU-sized regime in which the papers' phenomena appear (docs/regime.md).

    python scripts/regime_search.py run [NAME ...]   # each configuration as a DVC experiment rs-<name>
    python scripts/regime_search.py collect          # export the finished ones to reports/regime/runs/<name>/
    python scripts/regime_search.py add-imp NAME RUN # claim 2's columns from a finished `dvc repro imp` in RUN
    python -m stages.regime_report                   # the search table: reports/regime/search.md

Each configuration changes the default (Fashion-MNIST) in the ways below and runs the pipeline up to
`instability`: the dense network (IMP level 0) and two noise copies from initialisation, from one epoch and
from three epochs of dense training, per replicate. Runs go one after another in the workspace, one thread
each (the other core stays free); a finished run is not repeated (its experiment exists).

Claim 2 (rewinding to step 0 stops matching where a later step still matches) needs IMP itself: `dvc repro imp` of
the configuration's profile (4 replicates, 5 levels of 50 %) once with `pretrain.steps: 0` and once at the later
step, each in a clone of its own (docs/regime.md); `add-imp` stores each run's level summary in the search folder.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lthlib.core import io  # noqa: E402
from lthlib.core.config import load_config  # noqa: E402
from lthlib.experiments import params_for_each_run  # noqa: E402
from lthlib.report.common import level_summary  # noqa: E402

RUNS = Path("reports/regime/runs")  # exported runs, committed with the report they make
PREFIX = "rs-"


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
            "compute.threads": 1,
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
    head = git("rev-parse", "HEAD").strip()
    ref = f"refs/exps/{head[:2]}/{head[2:]}/{PREFIX}{name}"
    return ref if git("for-each-ref", ref).strip() else None


def run(names: list[str]) -> None:
    chosen = [regime for regime in REGIMES if not names or regime.name in names]
    with params_for_each_run() as reset:
        for regime in chosen:
            if experiment_ref(regime.name):
                print(f"{regime.name}: done", flush=True)
                continue
            reset()
            start = time.time()
            subprocess.run(["dvc", "exp", "run", "-n", PREFIX + regime.name, *regime.overrides(), "instability"],
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
        for name in ("params.yaml", "reports/instability.csv"):
            (folder / Path(name).name).write_text(git("show", f"{ref}:{name}"))
    print(f"{sum(1 for _ in RUNS.glob('*/instability.csv'))} runs in {RUNS}")


def add_imp(name: str, run_dir: str) -> None:
    """IMP's level summary of a finished run (its params.yaml and reports/imp.csv) as the search folder `name`'s
    `imp_summary_rewind<t>.csv`, t its rewind step."""
    step = load_config(Path(run_dir) / "params.yaml").pretrain.steps
    summary = level_summary(io.load_csv(Path(run_dir) / "reports/imp.csv"))
    io.save_csv(summary, RUNS / name / f"imp_summary_rewind{step}.csv")
    print(f"{name}: rewind step {step}, {int(summary['replicates'].min())} replicates")


if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["run"]
    {"run": lambda: run(rest), "collect": collect, "add-imp": lambda: add_imp(*rest)}[command]()
