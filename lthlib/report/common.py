"""Figures, metrics and the markdown report, drawn from saved tables only."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from lthlib.core import io  # noqa: E402
from lthlib.core.config import Config  # noqa: E402


def level_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread over replicates of every level (std is 0 for a single replicate), with
    the compute it took: a level's seconds are its training plus the ratio sweep that chose
    its mask (summed over replicates); cumulative columns count from the dense training on."""
    grouped = frame.groupby("level")
    summary = grouped.agg(
        fraction_remaining=("fraction_remaining", "mean"),
        fraction_remaining_std=("fraction_remaining", "std"),
        pruning_ratio=("pruning_ratio", "mean"),
        test_accuracy=("test_accuracy", "mean"),
        test_accuracy_std=("test_accuracy", "std"),
        test_loss=("test_loss", "mean"),
        train_loss=("train_loss", "mean"),
        replicates=("replicate", "nunique"),
        train_steps=("train_steps", "mean"),
        wall_seconds=("wall_seconds", "sum"),
        sweep_seconds=("sweep_seconds", "sum"),
    ).reset_index()
    summary[["fraction_remaining_std", "test_accuracy_std"]] = summary[
        ["fraction_remaining_std", "test_accuracy_std"]].fillna(0.0)
    summary["matching"] = summary["test_accuracy"] >= matching_threshold(summary)
    summary["retrains"] = summary["level"] + 1  # trainings to reach this level, the dense one included
    summary["cumulative_train_steps"] = summary["train_steps"].cumsum()
    # the sweep after level L is paid before level L + 1 trains
    summary["cumulative_seconds"] = (summary["wall_seconds"] + summary["sweep_seconds"].shift(fill_value=0)).cumsum()
    return summary


def first_at_target(summary: pd.DataFrame, target: float) -> pd.Series | None:
    """The first level whose mean fraction of weights remaining is at or below `target`."""
    reached = summary[summary["fraction_remaining"] <= target + 1e-12]
    return None if reached.empty else reached.iloc[0]


def matching_threshold(summary: pd.DataFrame) -> float:
    """Definition A.2: matching means test error within epsilon of the dense network's, where
    epsilon is the standard deviation of the dense test error over independent replicates."""
    dense = summary.loc[summary["level"] == 0].iloc[0]
    return float(dense["test_accuracy"] - dense["test_accuracy_std"])


def sparsest_matching(summary: pd.DataFrame) -> pd.Series | None:
    matching = summary[summary["matching"]]
    return None if matching.empty else matching.loc[matching["fraction_remaining"].idxmin()]


def imp_metrics(summary: pd.DataFrame, target: float) -> dict:
    dense, last, best = summary.iloc[0], summary.iloc[-1], sparsest_matching(summary)
    at_target = first_at_target(summary, target)
    return {
        "dense_test_accuracy": float(dense["test_accuracy"]),
        "dense_test_accuracy_std": float(dense["test_accuracy_std"]),
        "matching_threshold": matching_threshold(summary),
        "sparsest_matching_fraction_remaining": None if best is None else float(best["fraction_remaining"]),
        "sparsest_matching_level": None if best is None else int(best["level"]),
        "last_level_fraction_remaining": float(last["fraction_remaining"]),
        "last_level_test_accuracy": float(last["test_accuracy"]),
        "wall_seconds": float(last["cumulative_seconds"]),
        "target_fraction_remaining": target,
        "retrains_to_target": None if at_target is None else int(at_target["retrains"]),
        "train_steps_to_target": None if at_target is None else float(at_target["cumulative_train_steps"]),
        "seconds_to_target": None if at_target is None else float(at_target["cumulative_seconds"]),
        "test_accuracy_at_target": None if at_target is None else float(at_target["test_accuracy"]),
    }


def save_figure(figure, path: Path, dpi: int = 120) -> None:
    """Write a PNG atomically and free the figure."""
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


def plot_accuracy_vs_sparsity(summary: pd.DataFrame, path: Path, title: str) -> None:
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    percent = 100 * summary["fraction_remaining"]
    accuracy, spread = 100 * summary["test_accuracy"], 100 * summary["test_accuracy_std"]
    axes.plot(percent, accuracy, "o-", color="tab:blue", label="IMP (mean over replicates)")
    axes.fill_between(percent, accuracy - spread, accuracy + spread, color="tab:blue", alpha=0.25, label="± 1 std")
    axes.axhline(100 * matching_threshold(summary), color="grey", ls="--", label="matching threshold")
    sparsity_axis(axes)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    save_figure(figure, path)


def plot_accuracy_by_run(runs: pd.DataFrame, path: Path, title: str, annotate: str | None = None,
                         target: float | None = None) -> None:
    """Test accuracy vs weights remaining, one curve per `label` (mean ± std over replicates);
    optionally each point labelled with its `annotate` column and a vertical line at `target`."""
    figure, axes = plt.subplots(figsize=(6.8, 4.4))
    for label, rows in runs.groupby("label", sort=False):
        percent, accuracy = 100 * rows["fraction_remaining"], 100 * rows["test_accuracy"]
        line, = axes.plot(percent, accuracy, "o-", ms=4, label=label)
        axes.fill_between(percent, accuracy - 100 * rows["test_accuracy_std"],
                          accuracy + 100 * rows["test_accuracy_std"], color=line.get_color(), alpha=0.2)
        for x, y, text in zip(percent, accuracy, rows[annotate] if annotate else []):
            axes.annotate(str(text), (x, y), textcoords="offset points", xytext=(0, 5), fontsize=6,
                          color=line.get_color(), ha="center")
    if target is not None:
        axes.axvline(100 * target, color="grey", ls=":", label=f"target {100 * target:g}%")
    sparsity_axis(axes)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=7)
    save_figure(figure, path)


def write_imp_report(config: Config, frame: pd.DataFrame, out_dir: str | Path,
                     sections: tuple[str, ...] = (), extra_metrics: dict | None = None) -> None:
    """The IMP report, followed by the markdown `sections` of later analyses; `extra_metrics`
    join the IMP metrics in metrics.json (what `dvc exp show` compares)."""
    out_dir = Path(out_dir)
    summary = level_summary(frame)
    metrics = {**imp_metrics(summary, config.report.target_fraction_remaining), **(extra_metrics or {})}
    io.save_csv(summary, out_dir / "imp_summary.csv")
    io.save_json(metrics, out_dir / "metrics.json")
    plot_accuracy_vs_sparsity(summary, out_dir / "figures" / "imp_accuracy.png",
                              f"IMP, {config.model.name} on {config.data.name}, rewind step {config.pretrain.steps}")
    with io.atomic_path(out_dir / "report.md") as tmp:
        tmp.write_text("\n".join((_markdown(config, summary, metrics), *sections)))


def _markdown(config: Config, summary: pd.DataFrame, metrics: dict) -> str:
    best = sparsest_matching(summary)
    verdict = ("No sparse level is matching." if best is None or best["level"] == 0 else
               f"The sparsest matching level is level {int(best['level'])} with "
               f"{100 * best['fraction_remaining']:.2f}% of weights remaining "
               f"({100 * best['test_accuracy']:.2f}% ± {100 * best['test_accuracy_std']:.2f}%).")
    rows = "\n".join(
        f"| {int(r.level)} | {100 * r.fraction_remaining:.2f} | {100 * r.test_accuracy:.2f} ± "
        f"{100 * r.test_accuracy_std:.2f} | {r.test_loss:.4f} | {r.train_loss:.4f} | "
        f"{'yes' if r.matching else 'no'} |" for r in summary.itertuples())
    compute_rows = "\n".join(
        f"| {int(r.level)} | {'-' if pd.isna(r.pruning_ratio) else f'{r.pruning_ratio:.2f}'} | {int(r.retrains)} | "
        f"{r.cumulative_train_steps:.0f} | {r.cumulative_seconds:.0f} |" for r in summary.itertuples())
    pruning = ("adaptive ratios (Section 2.2, see below), at least "
               f"{100 * config.adaptive.floor:g}% per level" if config.pruning.adaptive
               else f"{100 * config.pruning.ratio:g}% of the remaining weights per level")
    train = config.train
    return f"""# IMP with weight rewinding

## What was run
- {config.model.name} on {config.data.name} (augmentation {'on' if config.data.augment else 'off'}),
  {config.replicates} replicates from seed {config.seed}.
- Training: SGD, lr {train.lr} ({train.schedule} schedule, milestones {list(train.milestones)}, gamma {train.gamma},
  warm-up {train.warmup_steps}), momentum {train.momentum}, weight decay {train.weight_decay},
  batch {train.batch_size}, {train.steps} iterations.
- Rewind step t_r = {config.pretrain.steps}; each level retrains from t_r to {train.steps}.
- Pruning: {config.pruning.levels} levels, {pruning},
  global magnitude, ignored tensors: {config.pruning.ignore}.

## Results
Dense (level 0) test accuracy: **{100 * metrics['dense_test_accuracy']:.2f}% ± {100 * metrics['dense_test_accuracy_std']:.2f}%**.
A level is *matching* when its mean test accuracy is at least the dense mean minus the dense
standard deviation over replicates ({100 * metrics['matching_threshold']:.2f}%; Definition A.2).

{verdict}

| level | weights remaining (%) | test accuracy (%) | test loss | train loss | matching |
|---|---|---|---|---|---|
{rows}

![accuracy vs weights remaining](figures/imp_accuracy.png)

## Compute
Every level trains {config.train.steps - config.pretrain.steps} iterations per replicate (from t_r to the end).
{_target_sentence(metrics)}
Total, all levels and replicates (training{' and ratio sweeps' if config.pruning.adaptive else ''}): {metrics['wall_seconds']:.0f} s.

| level | pruning ratio | retrains | cumulative steps | cumulative seconds |
|---|---|---|---|---|
{compute_rows}
"""


def _target_sentence(metrics: dict) -> str:
    target = 100 * metrics["target_fraction_remaining"]
    if metrics["retrains_to_target"] is None:
        return f"The run did not reach the target of {target:g}% weights remaining."
    return (f"Reaching the target of {target:g}% weights remaining took {metrics['retrains_to_target']} trainings, "
            f"{metrics['train_steps_to_target']:.0f} steps per replicate and {metrics['seconds_to_target']:.0f} s "
            f"(test accuracy there: {100 * metrics['test_accuracy_at_target']:.2f}%).")
