"""Adaptive pruning in the report: why each ratio was chosen, and fixed vs adaptive schedules (Fig. 4)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from lthlib.core import io
from lthlib.report.common import exported_runs, plot_accuracy_by_run, plt, runs_provenance, save_figure
from lthlib.report.imp import first_at_target


def plot_sweeps(sweep: pd.DataFrame, path: Path) -> None:
    """Max training loss on the path to the pruned solution vs pruning ratio, one curve per level
    (mean over replicates), with the LCS threshold: the chosen ratio is the last point below it."""
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    mean = sweep.groupby(["level", "ratio"], as_index=False)[["max_path_loss", "threshold"]].mean()
    colors = plt.cm.viridis([i / max(1, mean["level"].nunique() - 1) for i in range(mean["level"].nunique())])
    for color, (level, rows) in zip(colors, mean.groupby("level")):
        axes.plot(100 * rows["ratio"], rows["max_path_loss"], "o-", color=color, ms=3, label=f"level {level}")
    axes.axhline(mean["threshold"].mean(), color="black", ls="--", label="train LCS threshold")
    axes.set_yscale("log")
    axes.set_xlabel("pruning ratio of the sweep (%)")
    axes.set_ylabel("max training loss on the path")
    axes.set_title("Adaptive pruning: the sweep at each level")
    axes.legend(fontsize=7, ncol=2)
    save_figure(figure, path)


def sweep_section(sweep: pd.DataFrame, out_dir: str | Path) -> str:
    """Markdown for an adaptive run: epsilon, the threshold and the ratio each level chose."""
    plot_sweeps(sweep, Path(out_dir) / "figures" / "adaptive_sweep.png")
    inside = sweep[sweep["inside"]].groupby(["replicate", "level"])["ratio"].max()
    chosen = sweep.groupby(["replicate", "level"])["chosen_ratio"].first().to_frame()
    chosen["largest_inside"] = inside
    per_level = chosen.fillna(0.0).groupby("level").agg(["mean", "min", "max"])
    rows = "\n".join(
        f"| {level} → {level + 1} | {r[('largest_inside', 'mean')]:.2f} | {r[('chosen_ratio', 'mean')]:.2f} "
        f"({r[('chosen_ratio', 'min')]:.2f}–{r[('chosen_ratio', 'max')]:.2f}) |" for level, r in per_level.iterrows())
    thresholds = sweep.groupby("replicate")["threshold"].first()
    return f"""
## Adaptive pruning (Section 2.2)
Threshold of the train LCS-set per replicate (dense training loss on the sweep's training
subsample + epsilon, the std of batch losses over the dense network's last epoch):
{', '.join(f'{t:.4f}' for t in thresholds)}. At each level every ratio of the sweep is evaluated (the
maximum training loss on the path from the solution to its pruned version) and the largest one at or
below the threshold wins, even past a ratio that left the set; the level prunes max(that ratio, floor).

| step | largest ratio inside the LCS-set (mean) | pruned (mean, min–max over replicates) |
|---|---|---|
{rows}

![adaptive sweeps](figures/adaptive_sweep.png)
"""


def sweep_metrics(sweep: pd.DataFrame, imp: pd.DataFrame) -> dict:
    """For metrics.json: epsilon and threshold of the train LCS-set and each level's ratio (means over replicates)."""
    dense = imp[imp["level"] == 0]
    ratios = sweep.groupby(["replicate", "level"])["chosen_ratio"].first().groupby("level").mean()
    return {"adaptive": {
        "epsilon": float(dense["last_epoch_loss_std"].mean()),
        "threshold": float(sweep.groupby("replicate")["threshold"].first().mean()),
        "ratio": {f"level_{level + 1:02d}": float(ratio) for level, ratio in ratios.items()},
    }}


def load_schedules(runs_dir: str | Path) -> pd.DataFrame:
    """One row per run and level from exported runs (params.yaml, imp_summary.csv and, if exported,
    imp_timing.json): the run's schedule and, per level, its wall seconds so far (NaN without timings)."""
    frames, runs = [], exported_runs(runs_dir, ("imp_summary.csv",))
    for folder, config in runs:
        summary = io.load_csv(folder / "imp_summary.csv")
        summary["run"] = folder.name
        summary["schedule"] = "adaptive" if config.pruning.adaptive else f"fixed {100 * config.pruning.ratio:g}%"
        summary["cumulative_seconds"] = _cumulative_seconds(folder / "imp_timing.json", summary["level"])
        frames.append(summary)
    schedules = pd.concat(frames, ignore_index=True)
    schedules.attrs["provenance"] = runs_provenance(runs)
    return schedules


def _cumulative_seconds(path: Path, levels: pd.Series) -> pd.Series:
    """Seconds per replicate to reach each level: its training and every earlier one, and the sweeps that
    chose their masks (the sweep after level L is paid before level L + 1 trains)."""
    if not path.exists():
        return pd.Series(float("nan"), index=levels.index)
    timing = io.load_json(path)["levels"]
    seconds = [timing.get(str(level), {}).get("train_seconds", float("nan"))
               + (timing.get(str(level - 1), {}).get("sweep_seconds", 0.0) if level else 0.0) for level in levels]
    return pd.Series(seconds, index=levels.index).cumsum()


def plot_schedules(runs: pd.DataFrame, target: float, path: Path) -> None:
    """Fig. 4: test accuracy vs weights remaining per run, each point labelled with its retrains."""
    labelled = runs.assign(label=runs["run"] + " (" + runs["schedule"] + ")")
    plot_accuracy_by_run(labelled, path, "Fixed vs adaptive pruning ratio (numbers: trainings so far)", "trainings",
                         target)


def weights_remaining(level: pd.Series) -> str:
    """The level's mean fraction of weights remaining, with its std over replicates where their ratios differed."""
    std = level.get("fraction_remaining_std", 0.0)
    spread = f" ± {100 * std:.2f}%" if std > 0 else ""
    return f"{100 * level['fraction_remaining']:.2f}%{spread} remaining"


def fig4_verdict(adaptive: pd.Series, fixed: pd.Series) -> str:
    """Fig. 4's claim for one pair at the target: fewer retrains at the fixed ratio's accuracy, that is, lower by no
    more than the two runs' spreads over replicates (their stds in quadrature)."""
    if adaptive["retrains"] >= fixed["retrains"]:
        return "not reproduced (no retrain saved)"
    spread = math.hypot(adaptive["test_accuracy_std"], fixed["test_accuracy_std"])
    if adaptive["test_accuracy"] < fixed["test_accuracy"] - spread:
        return f"not reproduced (less accurate by more than the spread, {100 * spread:.2f} points)"
    return f"reproduced (accuracy within the spread, {100 * spread:.2f} points, or above)"


def compare_at_target(runs: pd.DataFrame, target: float) -> list[str]:
    """Sentences comparing every adaptive run with every fixed-ratio run at the target sparsity, and the verdict on
    Fig. 4's claim."""
    reached = {}
    for run, rows in runs.groupby("run"):
        level = first_at_target(rows.reset_index(drop=True), target)
        reached[run] = (rows["schedule"].iloc[0], level)
    sentences = [f"- {run} ({schedule}) did not reach {100 * target:g}% weights remaining."
                 for run, (schedule, level) in reached.items() if level is None]
    done = {run: value for run, value in reached.items() if value[1] is not None}
    verdicts = []
    for run, (schedule, level) in done.items():
        if schedule != "adaptive":
            continue
        for other, (other_schedule, base) in done.items():
            if other_schedule == "adaptive":
                continue
            saved = int(base["retrains"]) - int(level["retrains"])
            seconds = 1 - level["cumulative_seconds"] / base["cumulative_seconds"]
            wall = ("wall times were not exported" if pd.isna(seconds)
                    else f"{100 * abs(seconds):.0f}% {'less' if seconds >= 0 else 'more'} wall time (sweeps included)")
            difference = 100 * (level["test_accuracy"] - base["test_accuracy"])
            verdicts.append(fig4_verdict(level, base))
            sentences.append(
                f"- To reach {100 * target:g}% weights remaining, {run} needed {int(level['trainings'])} trainings "
                f"({int(level['retrains'])} retrains after the dense one, as Sec. 2.2 counts them) and {other} "
                f"({other_schedule}) {int(base['trainings'])} ({int(base['retrains'])}): {saved} retrains saved, "
                f"{wall}. Test accuracy there: "
                f"{100 * level['test_accuracy']:.2f}% ± {100 * level['test_accuracy_std']:.2f}% "
                f"({weights_remaining(level)}) vs {100 * base['test_accuracy']:.2f}% ± "
                f"{100 * base['test_accuracy_std']:.2f}% ({weights_remaining(base)}), "
                f"a difference of {difference:+.2f} points: {verdicts[-1]}.")
    if not verdicts:
        return sentences + ["", "**Fig. 4** (adaptive pruning reaches the target with fewer retrains at the same "
                            "accuracy): inconclusive: no adaptive and fixed-ratio pair reached the target."]
    kinds = {verdict.split(" (")[0] for verdict in verdicts}
    overall = kinds.pop() if len(kinds) == 1 else "inconclusive (the pairs disagree)"
    return sentences + ["", f"**Fig. 4** (adaptive pruning reaches the target with fewer retrains at the same "
                        f"accuracy, within the spread over replicates): {overall}."]


def write_schedule_comparison(runs: pd.DataFrame, target: float, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    plot_schedules(runs, target, out_dir / "adaptive_vs_fixed.png")
    table = "\n".join(
        f"| {run} | {rows['schedule'].iloc[0]} | {int(rows['trainings'].max())} | {int(rows['retrains'].max())} | "
        f"{100 * rows['fraction_remaining'].min():.2f} | {rows['cumulative_seconds'].max():.0f} |"
        for run, rows in runs.groupby("run"))
    text = f"""# Fixed vs adaptive pruning ratio (Fig. 4)

{runs.attrs.get("provenance", "")}

| run | schedule | trainings | retrains | weights remaining at the end (%) | wall seconds per replicate |
|---|---|---|---|---|---|
{table}

At the target sparsity ({100 * target:g}% weights remaining; the first level at or below it, in the mean over
replicates):
{chr(10).join(compare_at_target(runs, target))}

![fixed vs adaptive](adaptive_vs_fixed.png)
"""
    with io.atomic_path(out_dir / "adaptive.md") as tmp:
        tmp.write_text(text)
    return out_dir / "adaptive.md"
