"""The report.md section "What a ticket knows": baselines, linear probes, few-shot and transfer
("Training stability and the LTH", Sec. 5, Tables 3-5; Frankle & Carbin's baselines), from saved tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lthlib.core.config import Config
from lthlib.report.common import (ahead, level_summary, markdown_table, plt, save_accuracy_figure, save_figure,
                                  series_format)

BASELINE_NAMES = {"random_reinit": "random reinit", "random_pruning": "random pruning"}
NETWORK_NAMES = {"ticket": "ticket", "permuted": "permuted mask", "dense_finetuned": "finetuned dense network",
                 "dense_retrained": "retrained dense network"}


def mean_std(values: pd.Series) -> str:
    """`values` (fractions) as "mean ± std" percent over replicates."""
    spread = values.std() if len(values) > 1 else 0.0
    return f"{100 * values.mean():.2f} ± {100 * spread:.2f}"


def beats(better: pd.Series, worse: pd.Series) -> bool | None:
    """Whether `better` is ahead of `worse` by more than the larger std over replicates (`ahead`)."""
    spread = max(better.std() if len(better) > 1 else 0.0, worse.std() if len(worse) > 1 else 0.0)
    return ahead(better.mean() - worse.mean(), spread)


def baselines_table(imp: pd.DataFrame, baselines: pd.DataFrame) -> pd.DataFrame:
    """One row per studied level: the ticket, both baselines, whether the ticket matches the dense network
    (Definition A.2) and beats each baseline (None: not resolved)."""
    summary = level_summary(imp).set_index("level")
    rows = []
    for level, group in baselines.groupby("level"):
        ticket = imp.loc[imp.level == level, "test_accuracy"]
        row = {"level": level, "fraction_remaining": summary.loc[level, "fraction_remaining"],
               "ticket": mean_std(ticket), "matching": bool(summary.loc[level, "matching"])}
        for baseline, name in BASELINE_NAMES.items():
            accuracy = group.loc[group.baseline == baseline, "test_accuracy"]
            row[name], row[f"beats {name}"] = mean_std(accuracy), beats(ticket, accuracy)
        rows.append(row)
    return pd.DataFrame(rows)


def winning_verdict(row) -> str:
    """Frankle & Carbin: a winning ticket matches the dense network and beats its random reinitialisation."""
    verdicts = [row[f"beats {name}"] for name in BASELINE_NAMES.values()]
    if row["matching"] and all(v is True for v in verdicts):
        return "winning ticket"
    if any(v is False for v in verdicts):
        return "a baseline does better"
    if any(v is None for v in verdicts):
        return "not resolved" + ("" if row["matching"] else " (not matching)")
    return "beats both baselines, not matching"


def plot_baselines(imp: pd.DataFrame, baselines: pd.DataFrame, path: Path, title: str) -> None:
    """Test accuracy vs weights remaining: IMP's tickets at every level and both baselines where trained."""
    figure, axes = plt.subplots(figsize=(6.8, 4.4))
    summary = level_summary(imp)
    axes.errorbar(100 * summary.fraction_remaining, 100 * summary.test_accuracy, 100 * summary.test_accuracy_std,
                  fmt="o-", ms=4, capsize=2, label="IMP ticket (rewound)")
    for baseline, name in BASELINE_NAMES.items():
        rows = baselines[baselines.baseline == baseline].groupby("level").agg(
            remaining=("fraction_remaining", "mean"), accuracy=("test_accuracy", "mean"),
            spread=("test_accuracy", "std")).fillna(0.0)
        axes.errorbar(100 * rows.remaining, 100 * rows.accuracy, 100 * rows.spread, fmt=series_format("s--", len(rows)),
                      ms=4, capsize=2, label=name)
    save_accuracy_figure(figure, axes, title, path)


def plot_probes(probes: pd.DataFrame, remaining: dict[int, float], path: Path, title: str) -> None:
    """Probe accuracy at every block (Fig. 5 analogue): one line per level and network, mean ± std."""
    figure, axes = plt.subplots(figsize=(6.8, 4.4))
    colours = {level: f"C{index}" for index, level in enumerate(sorted(probes.level.unique()))}  # one per level
    for (level, network), rows in probes.groupby(["level", "network"]):
        by_block = rows.groupby("block").probe_accuracy.agg(["mean", "std"]).fillna(0.0)
        label = "dense at the rewind point" if level == 0 else (
            f"{NETWORK_NAMES[network]}, {100 * remaining[level]:.1f}% remaining")
        axes.errorbar(by_block.index, 100 * by_block["mean"], 100 * by_block["std"], capsize=2, color=colours[level],
                      fmt=series_format("o-" if network == "ticket" else "s:", len(by_block)), ms=4, label=label)
    axes.set_xlabel("probe block")
    axes.set_xticks(sorted(probes.block.unique()))
    axes.set_ylabel("probe test accuracy (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    save_figure(figure, path)


def probes_table(probes: pd.DataFrame, remaining: dict[int, float]) -> pd.DataFrame:
    """Table 3 analogue: one row per level and network, one column per block."""
    cells = probes.groupby(["level", "network", "block"]).probe_accuracy.apply(mean_std).unstack("block")
    cells.columns = [f"block {b} ({probes.loc[probes.block == b, 'module'].iloc[0]})" for b in cells.columns]
    cells.insert(0, "remaining (%)", [f"{100 * remaining[level]:.2f}" for level, _ in cells.index])
    cells.index = pd.Index([f"level {level} {NETWORK_NAMES[network]}" if level else "dense at the rewind point"
                            for level, network in cells.index], name="network")
    return cells


BATCHNORM_READINGS = {
    "batch": "each training batch normalised by its own statistics (the network in train mode; tested with the "
             "running statistics those batches left)",
    "reestimate": "statistics re-estimated once on the first 5,000 training examples",
    "frozen": "the network's own statistics (an untrained ticket's: mean 0, variance 1)",
}


def few_shot_budget(config: Config, few_shot: pd.DataFrame) -> str:
    """How long the subsets trained (`few_shot.budget`), with the steps each fraction took."""
    steps = ", ".join(f"{steps} steps at {fraction:g}" for fraction, steps
                      in few_shot.groupby("fraction").train_steps.first().items())
    if config.few_shot.budget == "steps":
        return f"the level's {config.train.steps - config.pretrain.steps} iterations ({steps})"
    epochs = (f"{config.few_shot.epochs} epochs of the subset" if config.few_shot.epochs
              else "as many epochs of the subset as a level makes over the whole training set")
    return f"{epochs}, the level's schedule compressed onto them ({steps})"


def few_shot_table(few_shot: pd.DataFrame, remaining: dict[int, float]) -> pd.DataFrame:
    """Table 4 analogue: one row per network (the dense one last), one column per subset size."""
    cells = few_shot.groupby(["level", "fraction"]).test_accuracy.apply(mean_std).unstack("fraction")
    examples = few_shot.groupby("fraction").examples.first()
    cells.columns = [f"{100 * f:g}% ({examples[f]} examples)" for f in cells.columns]
    cells = pd.concat([cells.drop(index=0), cells.loc[[0]]])
    cells.index = pd.Index([f"ticket, level {level} ({100 * remaining[level]:.2f}% remaining)" if level
                            else "dense network" for level in cells.index], name="network")
    return cells


def transfer_table(transfer: pd.DataFrame, remaining: dict[int, float]) -> pd.DataFrame:
    """Table 5 analogue: target test accuracy per network."""
    rows = []
    for (level, network), group in transfer.groupby(["level", "network"], sort=False):
        name = f"frozen ticket, level {level} ({100 * remaining[level]:.2f}% remaining)" if network == "ticket" else (
            NETWORK_NAMES[network])
        rows.append({"network": name, "target test accuracy (%)": mean_std(group.test_accuracy)})
    return pd.DataFrame(rows)


def ticket_metrics(baselines: pd.DataFrame, probes: pd.DataFrame, imp: pd.DataFrame) -> dict:
    """Per studied level, for `dvc exp show`: mean test accuracy of the ticket and its baselines, and the mean probe
    accuracy at the last block of the frozen ticket and of its permuted mask."""
    metrics = {}
    for level, group in baselines.groupby("level"):
        entry = {"ticket": float(imp.loc[imp.level == level, "test_accuracy"].mean()),
                 **{name: float(rows.test_accuracy.mean()) for name, rows in group.groupby("baseline")}}
        last = probes[(probes.level == level) & (probes.block == probes.block.max())]
        entry |= {f"probe_{network}": float(rows.probe_accuracy.mean()) for network, rows in last.groupby("network")}
        metrics[f"level_{level}"] = entry
    return {"tickets": metrics} if metrics else {}


def tickets_section(config: Config, imp: pd.DataFrame, baselines: pd.DataFrame, probes: pd.DataFrame,
                    few_shot: pd.DataFrame, transfer: pd.DataFrame, out_dir: str | Path) -> str:
    """Markdown for whatever the ticket stages measured (empty when `tickets.levels` is)."""
    if baselines.empty:
        return ""
    figures = Path(out_dir) / "figures"
    remaining = level_summary(imp).set_index("level").fraction_remaining.to_dict()
    title = f"{config.model.name} on {config.data.name}"
    plot_baselines(imp, baselines, figures / "tickets_baselines.png", f"Tickets and their baselines, {title}")
    table = baselines_table(imp, baselines)
    table["verdict"] = table.apply(winning_verdict, axis=1)
    table["fraction_remaining"] = (100 * table["fraction_remaining"]).map("{:.2f}".format)
    shown = table[["level", "fraction_remaining", "ticket", *BASELINE_NAMES.values(), "verdict"]].rename(
        columns={"fraction_remaining": "remaining (%)", "ticket": "ticket (%)",
                 **{name: f"{name} (%)" for name in BASELINE_NAMES.values()}})
    replicates = baselines.replicate.nunique()
    parts = [f"""
## What a ticket knows ("Training stability and the LTH", Sec. 5)
A ticket is m(L) * w_t_r, the level's mask on the rewind point. Its baselines train exactly like the level
(the same schedule from step {config.pretrain.steps} and data order): *random reinit* puts the mask on a fresh
initialisation, *random pruning* permutes each layer's mask (the same per-layer sparsity) on w_t_r. A *winning
ticket* matches the dense network (Definition A.2) and beats both; a gap within the larger std over the
{replicates} replicates is *not resolved*. Test accuracy, mean ± std over replicates:

{markdown_table(shown)}

![tickets and their baselines](figures/tickets_baselines.png)
"""]
    if not probes.empty:
        plot_probes(probes, remaining, figures / "tickets_probes.png", f"Linear probes on frozen tickets, {title}")
        parts.append(f"""
### Linear probes on frozen, untrained tickets (Table 3, Fig. 5)
A linear classifier on each block's features (channels averaged over space), everything else frozen:
{config.probes.epochs} epoch(s) of Adam (lr {config.probes.lr:g}, batch {config.probes.batch_size}) on standardised
features. The permuted mask keeps the ticket's weights and per-layer sparsity, with random positions.
BatchNorm: {BATCHNORM_READINGS[config.probes.batchnorm]} (`probes.batchnorm: {config.probes.batchnorm}`).
Probe test accuracy (%), mean ± std over replicates:

{markdown_table(probes_table(probes, remaining).reset_index())}

![probe accuracy per block](figures/tickets_probes.png)
""")
    if not few_shot.empty:
        parts.append(f"""
### Few-shot training (Table 4)
Tickets and the dense network at the rewind point train on the same class-balanced random subset, one per
replicate (seed {config.few_shot.seed}), for {few_shot_budget(config, few_shot)}.
Test accuracy (%), mean ± std over replicates (and subsets):

{markdown_table(few_shot_table(few_shot, remaining).reset_index())}
""")
    if not transfer.empty:
        classes = f" (classes {list(config.transfer.classes)})" if config.transfer.classes else ""
        parts.append(f"""
### Transfer to {config.transfer.name}{classes} (Table 5)
Frozen networks with a new linear head at the last block, trained as the probes are; the retrained dense
network trains from scratch on the target with `train.*`. Target test accuracy (%):

{markdown_table(transfer_table(transfer, remaining))}
""")
    return "".join(parts)


# the ticket stages' tables, exported with each run of a grid (scripts/collect_experiments.sh)
TICKET_TABLES = ("baselines.csv", "probes.csv", "few_shot.csv", "transfer.csv")
RUN_KEYS = ["configuration", "rewinding"]


def _cells(frame: pd.DataFrame, rows: list[str], columns: list[str], value: str) -> pd.DataFrame:
    """mean ± std over replicates of `value`, one row per `rows`, one column per `columns` (in order of appearance)."""
    cells = frame.groupby(rows + columns, sort=False)[value].apply(mean_std).unstack(columns)
    cells.columns = [" ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in cells.columns]
    return cells.fillna("-").reset_index()


def _with_sparsity(table: pd.DataFrame, summaries: pd.DataFrame) -> pd.DataFrame:
    """`table` (run, level, ...) with the sparsity of its level in that run, e.g. "89.26% sparse"."""
    remaining = summaries[["run", "level", "fraction_remaining"]]
    merged = table.merge(remaining, on=["run", "level"], how="left", suffixes=("_row", ""))
    return merged.assign(sparsity=[f"{100 * (1 - f):.2f}% sparse" for f in merged["fraction_remaining"]])


def cross_run_section(tables: dict[str, pd.DataFrame], summaries: pd.DataFrame) -> str:
    """Tables 3-5 (and the baselines) across the runs of a grid, from the runs that exported them; every table's
    rows carry the run's `RUN_KEYS` and `run`, and `summaries` the runs' level summaries."""
    parts = []
    baselines = tables.get("baselines.csv", pd.DataFrame())
    if not baselines.empty:
        keys = RUN_KEYS + ["sparsity"]
        table = _cells(_with_sparsity(baselines, summaries).replace({"baseline": BASELINE_NAMES}), keys,
                       ["baseline"], "test_accuracy")
        levels = _with_sparsity(summaries.drop(columns="fraction_remaining"), summaries)  # the tickets themselves
        ticket = {tuple(row[keys]): f"{100 * row.test_accuracy:.2f} ± {100 * row.test_accuracy_std:.2f}"
                  for _, row in levels.iterrows()}
        table.insert(len(keys), "ticket", [ticket[tuple(row)] for row in table[keys].itertuples(index=False)])
        parts.append(f"## Tickets and their baselines: test accuracy (%)\n{markdown_table(table)}\n")
    probes = tables.get("probes.csv", pd.DataFrame())
    if not probes.empty:
        probes = _with_sparsity(probes[probes.level > 0], summaries).replace({"network": NETWORK_NAMES})
        table = _cells(probes.assign(block=[f"block {b}" for b in probes.block]), RUN_KEYS + ["network"],
                       ["sparsity", "block"], "probe_accuracy")
        parts.append(f"## Table 3: linear probes on frozen, untrained tickets: probe accuracy (%)\n"
                     f"{markdown_table(table)}\n")
    few_shot = tables.get("few_shot.csv", pd.DataFrame())
    if not few_shot.empty:
        few_shot = _with_sparsity(few_shot, summaries)
        few_shot = few_shot.assign(network=["dense network" if level == 0 else f"ticket, {sparsity}"
                                            for level, sparsity in zip(few_shot.level, few_shot.sparsity)],
                                   subset=[f"{100 * f:g}%" for f in few_shot.fraction])
        table = _cells(few_shot, RUN_KEYS + ["network"], ["subset"], "test_accuracy")
        parts.append(f"## Table 4: few-shot training: test accuracy (%) by subset size\n{markdown_table(table)}\n")
    transfer = tables.get("transfer.csv", pd.DataFrame())
    if not transfer.empty:
        transfer = _with_sparsity(transfer, summaries)
        transfer = transfer.assign(network=[f"frozen ticket, {sparsity}" if network == "ticket" else
                                            NETWORK_NAMES[network] for network, sparsity in
                                            zip(transfer.network, transfer.sparsity)], target="target accuracy")
        table = _cells(transfer, RUN_KEYS + ["network"], ["target"], "test_accuracy")
        parts.append(f"## Table 5: transfer of frozen tickets: target test accuracy (%)\n{markdown_table(table)}\n")
    return "\n".join(parts)
