"""The search for a CPU-sized regime in which the papers' phenomena appear (scripts/regime_search.py).

One row per exported run (params.yaml + instability.csv): the configuration, the dense test accuracy, and
the SGD-noise barrier (Frankle et al. 2020: max error on the copies' path minus the mean of the end points')
from initialisation and from each later rewind step, mean ± std over replicates, with a figure of barrier
against rewind point per configuration and one of the barrier from initialisation against the effective learning
rate lr / (1 - momentum). Where the run's folder has them, the first stable epoch
(`first_stable.csv`) and IMP's level summaries with rewinding to step t (`imp_summary_rewind<t>.csv`) add
claim 2's columns: the sparsest matching level from step 0 and from a later step, and claim 2's outcome by the
rewind comparison's Fig. 5 rule. Runs whose bisection was refined (`first_stable_every<STEPS>[_copies<N>].csv`) get a
table of their own.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd

from lthlib.core import io
from lthlib.core.config import Config
from lthlib.report.common import (OUTCOME_WORDS, exported_runs, markdown_table, plt, refined_first_stable,
                                  save_figure, series_format)
from lthlib.report.imp import sparsest_matching
from lthlib.report.landscape import dense_reference, rewinding_comparisons, with_matching
from lthlib.report.tickets import mean_std


def steps_per_epoch(config: Config) -> int | None:
    """One epoch of the run's training subset in steps; None for the whole training set (its size is not in params)."""
    return config.data.train_examples // config.train.batch_size if config.data.train_examples else None


def in_epochs(step: int, epoch: int | None) -> str:
    return f"epoch {step / epoch:g}" if epoch else f"step {step}"


SETTINGS = ("model", "examples", "image", "batch", "lr", "momentum", "epochs", "warm-up", "augment")


def configuration(config: Config) -> dict:
    """The settings the search varies, as table cells."""
    train, data = config.train, config.data
    epoch = steps_per_epoch(config)
    cells = (config.model.name, data.train_examples or "all", data.image_size or "stored", train.batch_size,
             f"{train.lr:g}", f"{train.momentum:g}", f"{train.steps / epoch:g}" if epoch else train.steps,
             train.warmup_steps, "yes" if data.augment else "no")
    return dict(zip(SETTINGS, cells))


def search_table(runs_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The table (one row per run), the barriers behind it (run, rewind_step, rewind_epoch, replicate, barrier) and
    the first stable epochs (run, init, first_stable_epoch) of the runs that have them. Rewind points are in epochs,
    so that runs of other batch or data sizes share columns."""
    rows, barriers, first_stable = [], [], []
    for folder, config in exported_runs(runs_dir, ("instability.csv",)):
        epoch = steps_per_epoch(config)
        table = pd.read_csv(folder / "instability.csv")
        table = table[table["level"] == 0]
        dense = 1 - table[table["rewind_step"] == 0][["error_a", "error_b"]].mean(axis=1)
        row = {"run": folder.name, **configuration(config), "dense accuracy (%)": mean_std(dense),
               "replicates": table["replicate"].nunique()}
        for step, at_step in table.groupby("rewind_step"):
            row[f"barrier from {in_epochs(step, epoch)} (%)"] = mean_std(at_step["barrier_mean"])
        if (folder / "first_stable.csv").exists():
            epochs = pd.read_csv(folder / "first_stable.csv")[["init", "first_stable_epoch"]]
            row["first stable epoch"] = first_stable_cell(epochs["first_stable_epoch"], row["replicates"])
            first_stable.append(epochs.assign(run=folder.name))
        row.update(rewinding_columns(folder, epoch))
        seconds = folder / "seconds.txt"
        row["minutes"] = f"{float(seconds.read_text()) / 60:.1f}" if seconds.exists() else "-"
        rows.append(row)
        table = table.assign(run=folder.name, rewind_epoch=table["rewind_step"] / (epoch or 1))
        barriers.append(table[["run", "rewind_step", "rewind_epoch", "replicate", "barrier_mean"]])
    frame = pd.DataFrame(rows)  # columns in the order rows bring them; minutes, which every row has, last
    first_stable = pd.concat(first_stable, ignore_index=True) if first_stable else pd.DataFrame(
        columns=["init", "first_stable_epoch", "run"])
    return (frame[[*frame.columns.drop("minutes"), "minutes"]].fillna("-"), pd.concat(barriers, ignore_index=True),
            first_stable)


def first_stable_cell(epochs: pd.Series, replicates: int) -> str:
    """Mean ± std over initialisations of the first stable epoch, how many had none within training, and how many
    there were where not the run's replicates (more searched with `first-stable --initialisations`)."""
    found = epochs.dropna()
    cell = f"{found.mean():.2f} ± {found.std() if len(found) > 1 else 0.0:.2f}" if len(found) else "none"
    if len(found) < len(epochs):
        return f"{cell} ({len(epochs) - len(found)} of {len(epochs)} never stable)"
    return cell if len(epochs) == replicates else f"{cell} ({len(epochs)} initialisations)"


def effective_learning_rate(lr, momentum):
    """lr / (1 - momentum): for small steps, SGD with momentum m at lr takes the steps of plain SGD at this rate."""
    return lr / (1 - momentum)


def finer_searches(runs_dir: str | Path, table: pd.DataFrame) -> pd.DataFrame:
    """One row per refined bisection (`first_stable_every<STEPS>[_copies<N>].csv` beside a run's
    `first_stable.csv`): the settings in which the refined runs differ (noise copies among them), each
    initialisation's first stable step and their mean in epochs, beside the coarser search's, rows by momentum,
    then lr."""
    runs = table.set_index("run")
    rows = []
    for folder, config in exported_runs(runs_dir, ("instability.csv",)):
        for (copies, spacing), path in refined_first_stable(folder, config.instability.search_copies).items():
            run, found = folder.name, pd.read_csv(path)
            lr, momentum = float(runs.loc[run, "lr"]), float(runs.loc[run, "momentum"])
            steps = ", ".join("never" if pd.isna(step) else str(int(step)) for step in found["first_stable_step"])
            rows.append({"run": run, **runs.loc[run, list(SETTINGS)],
                         "lr / (1 - momentum)": f"{effective_learning_rate(lr, momentum):g}",
                         "candidates every (steps)": spacing, "copies": copies,
                         "first stable step of each initialisation": steps,
                         "first stable epoch": first_stable_cell(found["first_stable_epoch"], len(found)),
                         "every third of an epoch": runs.loc[run, "first stable epoch"]})
    frame = pd.DataFrame(rows)
    if not rows:
        return frame
    constant = [key for key in (*SETTINGS, "copies")
                if key not in ("lr", "momentum") and frame[key].astype(str).nunique() == 1]
    return frame.drop(columns=constant).sort_values(["momentum", "lr"], key=lambda cells: cells.astype(float))


def rewinding_columns(folder: Path, epoch: int | None) -> dict:
    """Claim 2 (unmasking paper Fig. 5, data-diet Fig. 2): the sparsest matching level of IMP rewound to step 0 and
    to the latest step the folder has a summary for, and whether the later one matches where step 0 no longer does,
    by Fig. 5's rule (`rewinding_comparisons`: beyond the spread, or not resolved); matching against the dense
    networks of every rewind step as one sample, as the rewind comparison's default."""
    tables = {int(path.stem.removeprefix("imp_summary_rewind")): pd.read_csv(path)
              for path in folder.glob("imp_summary_rewind*.csv")}
    if 0 not in tables or len(tables) < 2:
        return {}
    every = pd.concat([table.assign(rewind_step=step) for step, table in tables.items()], ignore_index=True)
    every = with_matching(every, dense_reference(every, "pooled"))
    summaries = dict(tuple(every.groupby("rewind_step")))
    later = max(summaries)
    _, (outcome,) = rewinding_comparisons(every[every["rewind_step"].isin([0, later])])
    # the dense level always matches itself, so each summary has a sparsest matching level
    from_zero, from_later = (float(sparsest_matching(summaries[step])["fraction_remaining"]) for step in (0, later))
    return {"IMP replicates": str(summaries[0]["replicates"].min()),
            "sparsest matching from step 0 (% of weights)": f"{100 * from_zero:.3g}",
            "sparsest matching from a later step (% of weights)": f"{100 * from_later:.3g} ({in_epochs(later, epoch)})",
            "claim 2": OUTCOME_WORDS[outcome]}


def plot_barriers(barriers: pd.DataFrame, threshold: float, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(10, 4.5))
    for index, (run, rows) in enumerate(barriers.groupby("run", sort=False)):
        by_step = rows.groupby("rewind_epoch")["barrier_mean"].agg(["mean", "std"]).fillna(0.0)
        marker = "os^D"[index // 20 % 4]  # tab20's 20 colours (the default has 10), then the next marker
        axes.errorbar(by_step.index, 100 * by_step["mean"], yerr=100 * by_step["std"],
                      fmt=series_format(marker + "-", len(by_step)), capsize=3,
                      color=plt.cm.tab20.colors[index % 20], label=run)
    axes.axhline(100 * threshold, color="black", linestyle="--", linewidth=1, label="stable below")
    axes.set_xlabel("rewind point (epochs of training the two copies start from)")
    axes.set_ylabel("error barrier between the copies (%)")
    axes.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the curves, not on them
    save_figure(figure, path)


def from_initialisation(barriers: pd.DataFrame) -> pd.DataFrame:
    """Each run's barrier between copies from step 0: mean and std over replicates, runs in table order."""
    at_zero = barriers[barriers["rewind_step"] == 0].groupby("run", sort=False)["barrier_mean"]
    return at_zero.agg(["mean", "std"]).fillna(0.0)


def first_stable_by_run(first_stable: pd.DataFrame) -> pd.DataFrame:
    """Each run's first stable epoch: mean and std over its initialisations, runs in table order."""
    return first_stable.groupby("run", sort=False)["first_stable_epoch"].agg(["mean", "std"]).fillna(0.0)


def differ_in_lr_and_momentum_alone(table: pd.DataFrame) -> pd.DataFrame:
    """The largest group of runs whose other settings are all the same."""
    others = [key for key in SETTINGS if key not in ("lr", "momentum")]
    group = table[others].astype(str).agg(" ".join, axis=1)
    return table[group == group.value_counts(sort=False).idxmax()]


def plot_effective_learning_rate(table: pd.DataFrame, barriers: pd.DataFrame, first_stable: pd.DataFrame,
                                 threshold: float, path: Path) -> list:
    """The barrier from initialisation and the first stable epoch against the effective learning rate
    (`effective_learning_rate`), one series per momentum, for the runs that differ in lr and momentum alone: where the
    series lie on one curve, momentum acts through the step size alone. Returns the runs drawn."""
    runs = differ_in_lr_and_momentum_alone(table)
    panels = {"error barrier from initialisation (%)": 100 * from_initialisation(barriers),
              "first stable epoch": first_stable_by_run(first_stable)}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    by_momentum = sorted(runs.groupby("momentum"), key=lambda item: float(item[0]))
    for panel, (label, stats) in zip(axes, panels.items()):
        for marker, (momentum, group) in zip(itertools.cycle("s^vDo"), by_momentum):
            group = group[group["run"].isin(stats.index)]  # the first stable epoch: where it was measured
            if group.empty:
                continue
            effective = effective_learning_rate(group["lr"].astype(float), float(momentum))
            order = effective.argsort().to_numpy()
            drawn = stats.loc[group["run"].to_numpy()[order]]
            panel.errorbar(effective.to_numpy()[order], drawn["mean"], yerr=drawn["std"],
                           fmt=series_format(marker + "-", len(group)), capsize=3, label=f"momentum {momentum}")
        panel.set_xscale("log")
        panel.set_xlabel("effective learning rate lr / (1 - momentum)")
        panel.set_ylabel(label)
    axes[0].axhline(100 * threshold, color="black", linestyle="--", linewidth=1, label="stable below")
    axes[0].legend(fontsize=8)
    save_figure(figure, path)
    return runs["run"].tolist()


def plot_first_stable_against_barrier(table: pd.DataFrame, barriers: pd.DataFrame, first_stable: pd.DataFrame,
                                      path: Path) -> float:
    """Each run's first stable epoch against its barrier from initialisation, runs with warm-up apart (warm-up delays
    the first stable step). Returns Spearman's rank correlation between the two over the runs drawn."""
    epochs = first_stable_by_run(first_stable)
    runs = table.set_index("run").loc[epochs.index]
    barrier = 100 * from_initialisation(barriers).loc[epochs.index, "mean"]
    figure, axes = plt.subplots(figsize=(8, 5))
    for warmed, marker, label in ((False, "o", "no warm-up"), (True, "s", "warm-up")):
        chosen = (runs["warm-up"].astype(int) > 0) == warmed
        axes.errorbar(barrier[chosen], epochs.loc[chosen, "mean"], yerr=epochs.loc[chosen, "std"], fmt=marker,
                      capsize=3, label=label)
    for index, (run, x, y) in enumerate(zip(epochs.index, barrier, epochs["mean"])):  # labels above, below, above
        axes.annotate(run, (x, y), textcoords="offset points", xytext=(4, 3 - 10 * (index % 2)), fontsize=6)
    axes.set_xlabel("error barrier from initialisation (%)")
    axes.set_ylabel("first stable epoch")
    axes.legend(fontsize=8)
    save_figure(figure, path)
    return float(barrier.rank().corr(epochs["mean"].rank()))


def rewinding_sentence(table: pd.DataFrame) -> str:
    """Claim 2's outcome in each run whose IMP was run from step 0 and from a later step."""
    if "claim 2" not in table:
        return ""
    measured = table[table["claim 2"] != "-"]
    outcomes = "; ".join(f"{words} in: {', '.join(measured.loc[measured['claim 2'] == words, 'run']) or 'none'}"
                         for words in OUTCOME_WORDS.values())
    return (f"\nIMP rewound to step 0 and to a later step (matching: within one dense std of the dense accuracy, "
            f"Definition A.2, both over the dense networks of both rewind steps) in {len(measured)} runs. Claim 2, the "
            f"later step matching where step 0 no longer does (at the later step's sparsest matching level, beyond the "
            f"larger std, as the rewind comparison's Fig. 5): {outcomes}.\n")


def write_search_report(runs_dir: str | Path, out_dir: str | Path, threshold: float = 0.02) -> Path:
    out_dir = Path(out_dir)
    table, barriers, first_stable = search_table(runs_dir)
    plot_barriers(barriers, threshold, out_dir / "barriers.png")
    from_init = from_initialisation(barriers)["mean"]
    unstable = from_init[from_init >= threshold].index
    by_effective_lr = plot_effective_learning_rate(table, barriers, first_stable, threshold,
                                                   out_dir / "effective_lr.png")
    sections = ""  # the first stable epoch against the barrier, and the refined searches: where there are
    if not first_stable.empty:
        correlation = plot_first_stable_against_barrier(table, barriers, first_stable, out_dir / "first_stable.png")
        sections = f"""
The first stable epoch against the barrier from initialisation, over the {first_stable["run"].nunique()} runs that
have it (Spearman's rank correlation {correlation:.2f}):

![first stable epoch against the barrier from initialisation](first_stable.png)
"""
    finer = finer_searches(runs_dir, table)
    if not finer.empty:
        sections += f"""
## The first stable step at a finer spacing

Runs whose bisection was refined (`scripts/regime_search.py first-stable --every STEPS`): candidate rewind steps
that many apart, the same initialisations, the coarser search's probes reused; the settings in which these runs
differ, and in the last column the search table's first stable epoch.

{markdown_table(finer)}
"""
    text = f"""# The CPU-regime search (scripts/regime_search.py)

Fashion-MNIST, the default pipeline with the settings below changed; each run trains the dense network and two
copies (other data order) from initialisation and from later rewind steps, per replicate. The error barrier
between the copies is Frankle et al. (2020)'s: the maximum test error on 11 evenly spaced points of their
linear path minus the mean of the two end points' errors; stable below {100 * threshold:g} %. Mean ± std over
replicates; minutes of one run on one core of a 2-core CPU whose other core was busy (timings, not results).
Rewind points are in epochs of the run's training subset. The first stable epoch is Frankle et al. (2020)'s
bisection over rewind steps a third of an epoch apart, each probe two copies of every initialisation (the run's
own, and more searched from scratch where the cell names their number). Where a run has
them, IMP with rewinding to step 0 and to a later step (5 levels of 50 %; the sparsest level whose mean accuracy
is within one dense std of the dense networks', Definition A.2, the dense networks of both rewind steps as one
sample) comes from runs of the same configuration with `IMP replicates` replicates.

{markdown_table(table)}

Unstable from initialisation (mean barrier at least {100 * threshold:g} %): {', '.join(unstable) or 'none'}.
{rewinding_sentence(table)}

![barrier against rewind step](barriers.png)

The barrier from initialisation and the first stable epoch by the effective learning rate lr / (1 - momentum), the
step of plain SGD that momentum's approximates, over the runs that differ in lr and momentum alone (the first stable
epoch where it was measured): {', '.join(by_effective_lr)}.

![barrier from initialisation and first stable epoch against the effective learning rate](effective_lr.png)
{sections}"""
    with io.atomic_path(out_dir / "search.md") as tmp:
        tmp.write_text(text)
    return out_dir / "search.md"

