"""The IMP part of the report: accuracy vs weights remaining, matching, compute, metrics.json."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lthlib.core import io
from lthlib.core.config import Config
from lthlib.core.models import DEFAULT_IGNORED
from lthlib.report.common import level_summary, matching_threshold, plt, save_figure, sparsity_axis, threshold_caveat

# `pruning.retrain` (Renda et al. 2020), as the report names it and says what a level trains
RETRAINING = {"rewind_weights": "weight rewinding", "rewind_lr": "learning-rate rewinding", "finetune": "fine-tuning"}
RETRAINED = {"rewind_weights": "m(L) * w_{t_r} on the schedule from t_r",
             "rewind_lr": "m(L) * (level L-1's solution) on the schedule from t_r",
             "finetune": "m(L) * (level L-1's solution) at the schedule's last learning rate"}


def left_dense(config: Config) -> str:
    """The tensors `pruning.ignore` keeps dense, by name."""
    if config.pruning.ignore != "default":
        return ", ".join(config.pruning.ignore) or "nothing"
    names = DEFAULT_IGNORED.get(config.model.name, ())
    return f"{', '.join(names) or 'nothing'} (the model's default)"


def first_at_target(summary: pd.DataFrame, target: float) -> pd.Series | None:
    """The first level whose mean fraction of weights remaining is at or below `target`."""
    reached = summary[summary["fraction_remaining"] <= target + 1e-12]
    return None if reached.empty else reached.iloc[0]


def sparsest_matching(summary: pd.DataFrame) -> pd.Series | None:
    matching = summary[summary["matching"]]
    return None if matching.empty else matching.loc[matching["fraction_remaining"].idxmin()]


def matching_caveat(summary: pd.DataFrame) -> str:
    """The caveat of every matching verdict: the dense std is its margin (Definition A.2)."""
    dense = summary.loc[summary["level"] == 0].iloc[0]
    return threshold_caveat(int(dense["replicates"]), float(dense["test_accuracy_std"]), int(dense["test_examples"]))


def imp_metrics(summary: pd.DataFrame, target: float) -> dict:
    """What `dvc exp show` compares: dense accuracy, the sparsest matching level, compute to the target
    (trainings and retrains as in Sec. 2.2; wall times are in reports/imp_timing.json)."""
    dense, last, best = summary.iloc[0], summary.iloc[-1], sparsest_matching(summary)
    at_target = first_at_target(summary, target)

    def at(column, kind=float):
        return None if at_target is None else kind(at_target[column])

    return {
        "dense_test_accuracy": float(dense["test_accuracy"]),
        "dense_test_accuracy_std": float(dense["test_accuracy_std"]),
        "replicates": int(dense["replicates"]),
        "matching_threshold": matching_threshold(summary),
        "sparsest_matching_fraction_remaining": None if best is None else float(best["fraction_remaining"]),
        "sparsest_matching_level": None if best is None else int(best["level"]),
        "last_level_fraction_remaining": float(last["fraction_remaining"]),
        "last_level_test_accuracy": float(last["test_accuracy"]),
        "target_fraction_remaining": target,
        "trainings_to_target": at("trainings", int),
        "retrains_to_target": at("retrains", int),
        "train_steps_to_target": at("cumulative_train_steps"),
        "test_accuracy_at_target": at("test_accuracy"),
    }


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


def plot_convergence_vs_sparsity(summary: pd.DataFrame, path: Path, title: str) -> None:
    """Fig. 4 analogue: convergence AUC (Eq. 3) of train and test accuracy at every level, ± std over replicates."""
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    percent = 100 * summary["fraction_remaining"]
    for column, label in (("test_auc", "test accuracy"), ("train_auc", "train accuracy")):
        axes.errorbar(percent, summary[column], yerr=summary[f"{column}_spread"], fmt="o-", capsize=3,
                      label=f"AUC of {label}")
    sparsity_axis(axes)
    axes.set_ylabel("convergence AUC (Eq. 3)")
    axes.set_title(f"Convergence speed, {title}", fontsize=9)
    axes.grid(alpha=0.3, which="both")
    axes.legend()
    save_figure(figure, path)


def load_level_curves(imp_dir: str | Path, frame: pd.DataFrame) -> pd.DataFrame:
    """curves.csv of every replicate and level in `frame` (imp.csv), with columns replicate and level added."""
    return pd.concat([io.load_csv(io.level_dir(imp_dir, int(r), int(level)) / "curves.csv").assign(
        replicate=int(r), level=int(level)) for r, level in zip(frame["replicate"], frame["level"])],
        ignore_index=True)


def plot_learning_curves(curves: pd.DataFrame, summary: pd.DataFrame, path: Path, title: str) -> None:
    """Test accuracy along every level's training, mean over replicates: the curves behind the AUC (Eq. 3)."""
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(summary)))
    for colour, row in zip(colours, summary.itertuples()):
        mean = curves[curves["level"] == row.level].groupby("step")["test_accuracy"].mean()
        axes.plot(mean.index, 100 * mean, "o-", ms=2, color=colour,
                  label=f"level {row.level} ({100 * row.fraction_remaining:.1f}%)")
    axes.set_xlabel("training step")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(f"Learning curves, {title}", fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=6, ncol=2)
    save_figure(figure, path)


def stability_markdown(summary: pd.DataFrame) -> str:
    """Training stability of every level's run (the third paper, Table 1 and Fig. 4, per level)."""
    rows = "\n".join(
        f"| {int(r.level)} | {_remaining(r)} | {r.train_auc:.4f} ± {r.train_auc_spread:.4f} | "
        f"{r.test_auc:.4f} ± {r.test_auc_spread:.4f} | {r.forgetting_events:.2f} ± {r.forgetting_events_std:.2f} | "
        f"{100 * r.unforgettable:.2f} ± {100 * r.unforgettable_spread:.2f} | {100 * r.never_learned:.2f} |"
        for r in summary.itertuples())
    return f"""
## Training stability of every level
Recorded during each level's own training (from t_r to the end): *convergence AUC* (Eq. 3 of "Training
stability and the LTH": 1 when the final accuracy is reached after the first epoch, lower when it comes late;
each point of the curves evaluates the network in eval mode, on the test set and on as many training examples),
and from the predictions the training steps made, *forgetting events* per training example (Toneva et al.:
correct at one presentation, wrong at the next; mean ± std over examples), *unforgettable* examples (learned and
never forgotten) and examples *never learned*. AUC and unforgettable are mean ± std over replicates. The curves (a
point every epoch or `train.curve_steps`) are in `data/imp/rep_<r>/level_<L>/curves.csv`, per-example counts in
its `forgetting.pt`.

| level | weights remaining (%) | train AUC | test AUC | forgetting events | unforgettable (%) | never learned (%) |
|---|---|---|---|---|---|---|
{rows}

![convergence AUC vs weights remaining](figures/imp_convergence.png)
"""


def write_imp_report(config: Config, frame: pd.DataFrame, out_dir: str | Path,
                     sections: tuple[str, ...] = (), extra_metrics: dict | None = None,
                     curves: pd.DataFrame | None = None) -> None:
    """The IMP report, followed by the markdown `sections` of later analyses; `extra_metrics`
    join the IMP metrics in metrics.json (what `dvc exp show` compares); `curves` (`load_level_curves`)
    are the levels' learning curves."""
    out_dir = Path(out_dir)
    summary = level_summary(frame)
    metrics = {**imp_metrics(summary, config.report.target_fraction_remaining), **(extra_metrics or {})}
    io.save_json(metrics, out_dir / "metrics.json")
    title = f"{config.model.name} on {config.data.name}, rewind step {config.pretrain.steps}"
    plot_accuracy_vs_sparsity(summary, out_dir / "figures" / "imp_accuracy.png", f"IMP, {title}")
    stability = ""
    if "test_auc" in summary:
        plot_convergence_vs_sparsity(summary, out_dir / "figures" / "imp_convergence.png", title)
        stability = stability_markdown(summary)
        if curves is not None:
            plot_learning_curves(curves, summary, out_dir / "figures" / "imp_curves.png", title)
            stability += "![test accuracy along each level's training](figures/imp_curves.png)\n"
    with io.atomic_path(out_dir / "report.md") as tmp:
        tmp.write_text("\n".join((_markdown(config, summary, metrics), stability, *sections)))


def _remaining(row) -> str:
    """Weights remaining (%), with its spread where replicates pruned different ratios."""
    spread = f" ± {100 * row.fraction_remaining_std:.2f}" if row.fraction_remaining_std > 0 else ""
    return f"{100 * row.fraction_remaining:.2f}{spread}"


def _markdown(config: Config, summary: pd.DataFrame, metrics: dict) -> str:
    best, caveat = sparsest_matching(summary), matching_caveat(summary)
    verdict = ("No sparse level is matching" if best is None or best["level"] == 0 else
               f"The sparsest matching level is level {int(best['level'])} with "
               f"{100 * best['fraction_remaining']:.2f}% of weights remaining "
               f"({100 * best['test_accuracy']:.2f}% ± {100 * best['test_accuracy_std']:.2f}%)") + caveat + "."
    rows = "\n".join(
        f"| {int(r.level)} | {_remaining(r)} | {100 * r.test_accuracy:.2f} ± "
        f"{100 * r.test_accuracy_std:.2f} | {r.test_loss:.4f} | {r.train_loss:.4f} | "
        f"{'yes' if r.matching else 'no'} |" for r in summary.itertuples())
    compute_rows = "\n".join(
        f"| {int(r.level)} | {'-' if pd.isna(r.pruning_ratio) else f'{r.pruning_ratio:.2f}'} | {int(r.trainings)} | "
        f"{int(r.retrains)} | {r.cumulative_train_steps:.0f} |" for r in summary.itertuples())
    adaptive = config.adaptive
    if config.pruning.adaptive:
        pruning = f"adaptive ratios (Section 2.2, see below), at least {100 * adaptive.floor:g}% per level"
        averaging = ("\nReplicates choose their own ratios, so one level can mean different sparsities: levels are "
                     "averaged by index, and weights remaining show their spread over replicates where they differ.")
        sweep_cost = (f" Choosing each ratio costs one sweep: {1 + len(adaptive.ratios) * (adaptive.path_points - 1)}"
                      f" networks evaluated on {adaptive.train_examples or 'all'} training examples, per replicate.")
    else:
        pruning, averaging, sweep_cost = f"{100 * config.pruning.ratio:g}% of the remaining weights per level", "", ""
    train = config.train
    dense = f"{100 * metrics['dense_test_accuracy']:.2f}% ± {100 * metrics['dense_test_accuracy_std']:.2f}%"
    optimizer = {"sgd": f"SGD, momentum {train.momentum}", "adam": "Adam (betas 0.9, 0.999)",
                 "sgdw": f"SGDW (decoupled weight decay), momentum {train.momentum}"}[train.optimizer]
    smoothing = f", label smoothing {train.label_smoothing:g}" if train.label_smoothing else ""
    output = ("" if config.pruning.output_ratio is None
              else f", the output layer at {100 * config.pruning.output_ratio:g}% per level")
    return f"""# IMP with {RETRAINING[config.pruning.retrain]}

## What was run
- {config.model.name} on {config.data.name} (augmentation {'on' if config.data.augment else 'off'}),
  {config.replicates} replicates from seed {config.seed}.
- Training: {optimizer}, lr {train.lr} ({train.schedule} schedule, milestones {list(train.milestones)}, gamma \
{train.gamma}, warm-up {train.warmup_steps}), weight decay {train.weight_decay}{smoothing},
  batch {train.batch_size}, {train.steps} iterations.
- Rewind step t_r = {config.pretrain.steps}; each level L >= 1 trains {RETRAINED[config.pruning.retrain]}
  for {train.steps - config.pretrain.steps} iterations (`pruning.retrain: {config.pruning.retrain}`).
- Pruning: {config.pruning.levels} levels, {pruning}{output},
  {config.pruning.scope} magnitude; left dense: {left_dense(config)}.

## Results
Dense (level 0) test accuracy: **{dense}** over {metrics['replicates']} replicates.
A level is *matching* when its mean test accuracy is at least the dense mean minus the dense
standard deviation over replicates ({100 * metrics['matching_threshold']:.2f}%; Definition A.2){caveat}.{averaging}

{verdict}

| level | weights remaining (%) | test accuracy (%) | test loss | train loss | matching |
|---|---|---|---|---|---|
{rows}

![accuracy vs weights remaining](figures/imp_accuracy.png)

## Compute
Counted as in Sec. 2.2: *trainings* include the dense one, *retrains* are the trainings after it. Every
level trains {config.train.steps - config.pretrain.steps} iterations per replicate (from t_r to the end).{sweep_cost}
{_target_sentence(metrics)}
Wall seconds per level are in `reports/imp_timing.json` (`dvc exp show` shows their total); they stay
out of this report so that a re-run with other timings re-runs nothing.

| level | pruning ratio | trainings | retrains | cumulative steps |
|---|---|---|---|---|
{compute_rows}
"""


def _target_sentence(metrics: dict) -> str:
    target = 100 * metrics["target_fraction_remaining"]
    if metrics["trainings_to_target"] is None:
        return f"The run did not reach the target of {target:g}% weights remaining."
    return (f"Reaching the target of {target:g}% weights remaining took {metrics['trainings_to_target']} trainings "
            f"({metrics['retrains_to_target']} retrains) and {metrics['train_steps_to_target']:.0f} steps per "
            f"replicate (test accuracy there: {100 * metrics['test_accuracy_at_target']:.2f}%).")
