"""What every report shares: figure setup, the sparsity axis, the level summary, verdict caveats and lines,
and the loader of exported runs. Reports are drawn from saved tables only."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from lthlib.core import io  # noqa: E402
from lthlib.core.config import Config, parse_config  # noqa: E402
from lthlib.core.curves import SUMMARY_COLUMNS  # noqa: E402

# a threshold that rests on fewer replicates than this is flagged next to its verdict
MIN_REPLICATES = 3


def level_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over replicates of every level (std is 0 for a single replicate), and the
    compute to reach it as the paper counts it (Sec. 2.2): `trainings` (the dense one included),
    `retrains` (after the dense one) and cumulative training steps. Replicates whose adaptive
    ratios differ reach different sparsities at one level: levels are averaged by index, with
    the spread of the weights remaining in `fraction_remaining_std`. Training-stability columns, where
    the runs recorded them, get their mean and their spread over replicates (`<column>_spread`)."""
    summary = frame.groupby("level").agg(
        fraction_remaining=("fraction_remaining", "mean"),
        fraction_remaining_std=("fraction_remaining", "std"),
        pruning_ratio=("pruning_ratio", "mean"),
        test_accuracy=("test_accuracy", "mean"),
        test_accuracy_std=("test_accuracy", "std"),
        test_loss=("test_loss", "mean"),
        train_loss=("train_loss", "mean"),
        replicates=("replicate", "nunique"),
        train_steps=("train_steps", "mean"),
        test_examples=("test_examples", "min"),
    ).reset_index()
    stability = {f"{column}{suffix}": (column, statistic) for column in SUMMARY_COLUMNS if column in frame
                 for suffix, statistic in (("", "mean"), ("_spread", "std"))}
    if stability:
        summary = summary.merge(frame.groupby("level").agg(**stability).reset_index(), on="level")
    spreads = ["fraction_remaining_std", "test_accuracy_std", *(c for c in summary if c.endswith("_spread"))]
    summary[spreads] = summary[spreads].fillna(0.0)
    summary["matching"] = summary["test_accuracy"] >= matching_threshold(summary)
    summary["trainings"] = summary["level"] + 1
    summary["retrains"] = summary["level"]
    summary["cumulative_train_steps"] = summary["train_steps"].cumsum()
    return summary


def matching_threshold(summary: pd.DataFrame) -> float:
    """Definition A.2: matching means test error within epsilon of the dense network's, where
    epsilon is the standard deviation of the dense test error over independent replicates."""
    dense = summary.loc[summary["level"] == 0].iloc[0]
    return float(dense["test_accuracy"] - dense["test_accuracy_std"])


def threshold_caveat(replicates: int, threshold: float, examples: int) -> str:
    """Why a verdict against `threshold` may be noise: it rests on fewer than MIN_REPLICATES replicates,
    or it is finer than the evaluation resolves (one example in `examples`). Empty when neither."""
    reasons = []
    if replicates < MIN_REPLICATES:
        reasons.append(f"the threshold rests on {replicates} replicate{'s' if replicates != 1 else ''}")
    if threshold < 1 / examples:
        reasons.append(f"the threshold ({100 * threshold:.3g}%) is below the resolution of {examples} examples "
                       f"({100 / examples:.3g}%)")
    return f" (caution: {'; '.join(reasons)})" if reasons else ""


OUTCOME_WORDS = {True: "as the paper", False: "the opposite of the paper", None: "not resolved"}


def accuracy_text(level: pd.Series) -> str:
    """A level summary's test accuracy, "mean ± std" over replicates in percent."""
    return f"{100 * level['test_accuracy']:.2f} ± {100 * level['test_accuracy_std']:.2f}"


def ahead(gap: float, spread: float) -> bool | None:
    """True / False when a gap exceeds the spread (std over replicates) one way or the other, None when it does not:
    not resolved by these replicates."""
    return None if abs(gap) <= spread else bool(gap > 0)


def claim_verdict(claim: str, outcomes: list[bool | None], compared: str = "comparisons") -> str:
    """A claim tested by several comparisons: reproduced when every one is resolved the paper's way, not reproduced
    when one is resolved the other way, inconclusive otherwise; without comparisons, no verdict."""
    if not outcomes:
        return f"{claim}: no comparison."
    verdict = "reproduced" if all(outcomes) else "not reproduced" if False in outcomes else "inconclusive"
    return (f"**{claim}: {verdict}** ({outcomes.count(True)} of {len(outcomes)} {compared} resolved the paper's "
            f"way, {outcomes.count(False)} the other way; ± is the std over replicates).")


def exported_runs(runs_dir: str | Path, required: tuple[str, ...]) -> list[tuple[Path, Config]]:
    """Folders `<runs_dir>/<name>/` of exported experiments (scripts/collect_experiments.sh) holding
    params.yaml and every `required` file, sorted by name, with their parsed params."""
    folders = sorted(p for p in Path(runs_dir).iterdir()
                     if all((p / name).exists() for name in ("params.yaml", *required)))
    if not folders:
        raise FileNotFoundError(f"no runs (folders with params.yaml and {', '.join(required)}) under {runs_dir}")
    return [(folder, parse_config(yaml.safe_load((folder / "params.yaml").read_text()))) for folder in folders]


def refined_first_stable(folder: Path, copies: int) -> dict[tuple[int, int], Path]:
    """A run's refined bisections for the first stable step beside its `first_stable.csv`, by the noise copies per
    initialisation and the steps between their candidates: `first_stable_every<STEPS>[_copies<N>].csv`
    (`scripts/regime_search.py first-stable --every STEPS --copies N`), `copies` (the run's) where N is not named."""
    searches = {}
    for path in sorted(folder.glob("first_stable_every*.csv")):
        if found := re.fullmatch(r"first_stable_every(\d+)(?:_copies(\d+))?", path.stem):  # not the probes beside them
            searches[int(found[2] or copies), int(found[1])] = path
    return searches


def best_first_stable(folder: Path, config: Config) -> tuple[Path, str, int]:
    """The table of a run's best search for the first stable step, with the spacing of its candidates in words and
    its noise copies per initialisation: the one with the most copies (Appendix B measures three), the finest of
    those, among the refinements and the `first_stable` stage's table (`instability.search_every`)."""
    copies = config.instability.search_copies
    searches = [(copies, config.instability.search_every or math.inf, folder / "first_stable.csv"),
                *((n, every, path) for (n, every), path in refined_first_stable(folder, copies).items())]
    # at the stage's own spacing, a refinement (which reused the stage's probes and added its own) is preferred
    copies, every, path = max(searches, key=lambda search: (search[0], -search[1], search[2].stem != "first_stable"))
    return path, "an epoch" if every == math.inf else steps_text(every), copies


def steps_text(steps: int) -> str:
    return f"{steps} step" + ("" if steps == 1 else "s")


# the params a cross-run report names by value when its runs share them
HEADLINE_PARAMS = ("model.name", "data.name", "data.train_examples", "data.image_size", "data.augment", "replicates",
                   "seed", "train.optimizer", "train.steps", "train.batch_size", "train.lr", "train.momentum",
                   "pretrain.steps", "pruning.ratio", "pruning.levels", "pruning.adaptive", "pruning.retrain",
                   "subset.kind", "data.label_noise")


def flat_params(value, prefix: str = "") -> dict[str, object]:
    """A config (or any nested dataclass / dict) as {dotted key: value}, as `dvc exp run -S` names them."""
    items = dataclasses.asdict(value).items() if dataclasses.is_dataclass(value) else value.items()
    flat = {}
    for key, item in items:
        if isinstance(item, dict):
            flat.update(flat_params(item, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = item
    return flat


def runs_provenance(runs: list[tuple[Path, Config]]) -> str:
    """Where a cross-run report's numbers come from, in two lines: the headline params its runs share (by value)
    and every param in which they differ, so that a report of runs from another default says so."""
    params = {folder.name: flat_params(config) for folder, config in runs}
    keys = sorted(set().union(*params.values()))
    varied = [key for key in keys if len({repr(p.get(key)) for p in params.values()}) > 1]
    shared = [f"`{key}={next(iter(params.values()))[key]}`" for key in HEADLINE_PARAMS if key not in varied]
    folder = runs[0][0].parent.as_posix()
    return (f"Runs: {len(runs)} exported experiments (`{folder}/<run>/params.yaml` holds each one's params). "
            f"They share {', '.join(shared)} and every other param except "
            f"{', '.join(f'`{key}`' for key in varied) or 'none'}.")


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-markdown table of `frame`'s columns, cells as they print (reset a meaningful index first)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def series_format(fmt: str, count: int) -> str:
    """A matplotlib format ("o-", "s--", ...) for a series of `count` points: fewer than three are drawn as
    points, since a line between two measurements suggests a trend nobody measured."""
    return fmt[0] if count < 3 else fmt


def save_figure(figure, path: Path, dpi: int = 120, tight: bool = True) -> None:
    """Write a PNG atomically and free the figure (`tight`: lay it out first; not with a shared colour bar)."""
    if tight:
        figure.tight_layout()
    with io.atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    plt.close(figure)


def sparsity_axis(axes) -> None:
    """Weights remaining (%) on a reversed log axis with plain percent ticks, densest on the left."""
    axes.set_xscale("log")
    axes.invert_xaxis()
    ticks = [t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1) if axes.get_xlim()[1] <= t <= axes.get_xlim()[0]]
    axes.set_xticks(ticks, [f"{t:g}" for t in ticks])
    axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xlabel("weights remaining (%)")


def save_accuracy_figure(figure, axes, title: str, path: Path) -> None:
    """Finish and write a figure of test accuracy against weights remaining."""
    sparsity_axis(axes)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=7)
    save_figure(figure, path)


def plot_accuracy_by_run(runs: pd.DataFrame, path: Path, title: str, annotate: str | None = None,
                         target: float | None = None, matching_from: dict[str, float] | None = None) -> None:
    """Test accuracy vs weights remaining, one curve per `label` (mean ± std over replicates);
    optionally each point labelled with its `annotate` column, a vertical line at `target`, and each label's
    matching threshold (Def. A.2) in `matching_from` as a dashed line in its colour (one black line where all agree)."""
    figure, axes = plt.subplots(figsize=(6.8, 4.4))
    colours = {}
    for label, rows in runs.groupby("label", sort=False):
        percent, accuracy = 100 * rows["fraction_remaining"], 100 * rows["test_accuracy"]
        line, = axes.plot(percent, accuracy, "o-", ms=4, label=label)
        colours[label] = line.get_color()
        axes.fill_between(percent, accuracy - 100 * rows["test_accuracy_std"],
                          accuracy + 100 * rows["test_accuracy_std"], color=line.get_color(), alpha=0.2)
        for x, y, text in zip(percent, accuracy, rows[annotate] if annotate else []):
            axes.annotate(str(text), (x, y), textcoords="offset points", xytext=(0, 5), fontsize=6,
                          color=line.get_color(), ha="center")
    if target is not None:
        axes.axvline(100 * target, color="grey", ls=":", label=f"target {100 * target:g}%")
    if matching_from and len(set(matching_from.values())) == 1:
        axes.axhline(100 * next(iter(matching_from.values())), color="black", ls="--", lw=1, label="matching from")
    elif matching_from:
        for label, accuracy in matching_from.items():
            axes.axhline(100 * accuracy, color=colours[label], ls="--", lw=1, label=f"{label}: matching from")
    save_accuracy_figure(figure, axes, title, path)
