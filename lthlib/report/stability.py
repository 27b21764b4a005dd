"""Training stability ("Training stability and the lottery ticket hypothesis"): the per-run section (first
stable rewind step, error along the copies' paths) and the cross-run study over momentum x batch size
(Tables 1, 2 and 6, Fig. 1, and Sec. 5's reading of Tables 3-4), drawn from saved tables only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lthlib.core import io
from lthlib.core.config import BARRIERS, Config
from lthlib.core.errors import UserError
from lthlib.report.common import (OUTCOME_WORDS, accuracy_text, ahead, best_first_stable, claim_verdict,
                                  exported_runs, markdown_table, plt, runs_provenance, save_figure, threshold_caveat)
from lthlib.report.landscape import barrier_definition
from lthlib.report.tickets import TICKET_TABLES, beats, cross_run_section, mean_std


def epochs_text(values: pd.Series) -> str:
    """Mean ± std over initialisations of first stable epochs; 'never' for a search that found none."""
    found = values.dropna()
    never = len(values) - len(found)
    if found.empty:
        return "never stable"
    spread = f" ± {found.std(ddof=0):.2f}" if len(found) > 1 else ""
    return f"{found.mean():.2f}{spread}" + (f" ({never} of {len(values)} never stable)" if never else "")


def draw_copy_paths(top, bottom, curves) -> None:
    """Fig. 1 as two panels: test error along the copies' linear path (top) and its rise above the mean of the
    end points (bottom; Frankle et al.'s barrier is its peak), mean ± std over replicates, for each
    (label, rows of replicate, beta, error)."""
    for label, rows in curves:
        ends = rows[rows["beta"].isin([0.0, 1.0])].groupby("replicate")["error"].mean()
        rise = rows.assign(error=rows["error"] - rows["replicate"].map(ends))
        for ax, frame in ((top, rows), (bottom, rise)):
            curve = frame.groupby("beta")["error"].agg(["mean", "std"]).fillna(0.0)
            ax.plot(curve.index, 100 * curve["mean"], "o-", ms=3, label=label)
            ax.fill_between(curve.index, 100 * (curve["mean"] - curve["std"]),
                            100 * (curve["mean"] + curve["std"]), alpha=0.15)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    bottom.axhline(0, color="grey", lw=0.8)
    bottom.set_xlabel("interpolation β between the two copies")


def plot_copy_paths(paths: pd.DataFrame, path: Path, title: str) -> None:
    """Fig. 1 for one run: one curve per start (rewind step, mask)."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6), sharex=True)
    draw_copy_paths(top, bottom, [
        (f"from step {step}" + ("" if level == 0 else f", level {level} mask"), rows)
        for (step, level), rows in paths.groupby(["rewind_step", "level"])])
    top.set_ylabel("test error (%)")
    bottom.set_ylabel("above the end points'\nmean (points of %)")
    top.set_title(title)
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    save_figure(figure, path)


def first_stable_section(config: Config, first_stable: pd.DataFrame, paths: pd.DataFrame, out_dir: str | Path) -> str:
    """The report.md section: the first stable rewind step of every initialisation, and Fig. 1 of this run."""
    settings = config.instability
    candidates = f"every {settings.search_every} steps" if settings.search_every else "every epoch"
    plot_copy_paths(paths, Path(out_dir) / "figures" / "instability_paths.png",
                    f"Copies differing in SGD noise, {config.model.name}")
    rows = "\n".join(f"| {int(r.init)} | {_step(r.first_stable_step)} | {_step(r.last_unstable_step)} | "
                     f"{_epochs(r.first_stable_epoch)} | {int(r.probes)} | "
                     f"{int(r.reused)} |" for r in first_stable.itertuples())
    caveat = threshold_caveat(len(first_stable), settings.stable_threshold, int(first_stable["examples"].min()))
    return f"""
## First stable rewind step (Appendix B of "Training stability and the LTH")
From the dense run at a candidate step ({candidates}), {settings.search_copies}
copies per initialisation train to the end with different SGD noise; the step is stable when their mean
error barrier is below {100 * settings.stable_threshold:g}% (the barrier: {BARRIERS[settings.barrier]}, on \
{settings.path_points} points of the path). A bisection with at most {settings.search_probes}
probes per initialisation finds the first stable step (assuming stability persists once reached); verdicts
at the instability stage's starts reuse its copies and cost no probe.
First stable epoch over {len(first_stable)} initialisations: \
**{epochs_text(first_stable['first_stable_epoch'])}**{caveat}.

| initialisation | first stable step | last unstable step | first stable epoch | probes trained | verdicts reused |
|---|---|---|---|---|---|
{rows}

![error along the copies' paths](figures/instability_paths.png)
"""


def forgetting_removal_section(config: Config, removal: pd.DataFrame) -> str:
    """Table 7 of the third paper: accuracy and SGD-noise barrier of dense copies trained without the least / most
    forgotten examples; empty when the stage was off."""
    if removal.empty:
        return ""
    cells = removal.groupby(["removed", "fraction"], sort=False).agg(
        examples=("examples", "first"), accuracy=("test_accuracy", mean_std), barrier=("barrier", mean_std),
        stable=("barrier", lambda b: f"{int((b < config.instability.stable_threshold).sum())} of {len(b)}"))
    rows = "\n".join(f"| {'nothing' if removed == 'none' else f'{removed} {100 * fraction:g} %'} | {r.examples} | "
                     f"{r.accuracy} | {r.barrier} | {r.stable} |" for (removed, fraction), r in cells.iterrows())
    definition = BARRIERS[str(removal["barrier_definition"].iloc[0])]
    return f"""
## Removing the least and most forgotten examples (Table 7, Appendix D of "Training stability and the LTH")
Forgetting scores (Toneva et al. 2019) come from two copies per initialisation trained on the whole training set
(the first row); each later row removes the examples with the fewest (easiest) or most (hardest) forgetting
events and trains two copies of the same initialisations for as many iterations on the rest. Test accuracy and
the error barrier between the two copies ({definition}; stable below \
{100 * config.instability.stable_threshold:g}%), mean ± std over {removal["replicate"].nunique()} replicates:

| removed | examples left | test accuracy (%) | barrier (%) | stable copies |
|---|---|---|---|---|
{rows}
"""


def _step(value) -> str:
    return "-" if pd.isna(value) else str(int(value))


def _epochs(value) -> str:
    return "-" if pd.isna(value) else f"{value:.2f}"


# ---- the cross-run study: one exported DVC experiment per configuration and rewinding setting ----

STUDY_TABLES = ("imp_summary.csv", "instability.csv", "instability_paths.csv", "first_stable.csv")


def configuration_name(momentum: float, batch_size: int) -> str:
    """The grid's name of a configuration (`analyses.stability_grid.Configuration.name`), written here so that
    the report stage does not depend on the training code that module imports."""
    return f"mu{momentum:g}-bs{batch_size}"


def load_stability_runs(runs_dir: str | Path, required: tuple[str, ...] = STUDY_TABLES) -> dict[str, pd.DataFrame]:
    """The exported runs' tables, each with columns `run`, `configuration`, `momentum`, `batch_size` and
    `t_r` (pretrain.steps; 0 = no late rewinding) added."""
    tables = {name: [] for name in (*STUDY_TABLES, *TICKET_TABLES)}
    for folder, config in exported_runs(runs_dir, required):
        keys = {"run": folder.name, "configuration": configuration_name(config.train.momentum, config.train.batch_size),
                "momentum": config.train.momentum, "batch_size": config.train.batch_size,
                "t_r": config.pretrain.steps, "rewinding": "no" if config.pretrain.steps == 0 else
                f"t_r={config.pretrain.steps}"}
        for name, frames in tables.items():
            path, extra = folder / name, {}
            if name == "first_stable.csv" and path.exists():
                path, every, copies = best_first_stable(folder, config)
                extra = {"candidates_every": every, "search_copies": copies}
            if path.exists():  # the ticket stages' tables are optional (runs from before them lack them)
                frames.append(io.load_csv(path).assign(**keys, **extra))
    return {name: pd.concat(frames, ignore_index=True).sort_values(["momentum", "batch_size"], kind="stable")
            for name, frames in tables.items() if frames}


def forgetting_table(summaries: pd.DataFrame) -> pd.DataFrame:
    """Table 1: the dense network (level 0) trained from initialisation (runs without late rewinding)."""
    dense = summaries[(summaries["level"] == 0) & (summaries["t_r"] == 0)]
    return dense[["configuration", "momentum", "batch_size", "test_accuracy", "test_accuracy_std",
                  "forgetting_events", "forgetting_events_std", "forgetting_events_spread", "unforgettable",
                  "unforgettable_spread",
                  "never_learned", "train_auc", "train_auc_spread", "test_auc", "test_auc_spread"]]


def ticket_table(summaries: pd.DataFrame) -> pd.DataFrame:
    """Table 2: test accuracy (mean ± std) per configuration and rewinding, one column per level's sparsity."""
    frame = summaries.assign(
        cell=[f"{100 * a:.2f} ± {100 * s:.2f}" for a, s in zip(summaries["test_accuracy"],
                                                              summaries["test_accuracy_std"])],
        sparsity=[f"{100 * (1 - f):.2f}%" for f in summaries["fraction_remaining"]])
    table = frame.pivot_table(index=["configuration", "rewinding"], columns="sparsity", values="cell",
                              aggfunc="first", sort=False)
    return table[sorted(table.columns, key=lambda c: float(c.rstrip("%")))]


def stable_epoch_table(first_stable: pd.DataFrame) -> pd.DataFrame:
    """Table 6: first stable epoch per configuration (mean ± std over its initialisations, and how many), from the
    dense run from initialisation (runs without late rewinding; all runs if none), and the spacing of the candidates."""
    runs = first_stable[first_stable["t_r"] == 0]
    runs = first_stable if runs.empty else runs
    searches = runs.groupby("configuration", sort=False)
    return pd.DataFrame({"first stable epoch": searches["first_stable_epoch"].apply(epochs_text),
                         "initialisations": searches.size(),
                         "copies": searches["search_copies"].agg(distinct_text),
                         "candidates every": searches["candidates_every"].agg(distinct_text)})


def distinct_text(values: pd.Series) -> str:
    return ", ".join(dict.fromkeys(map(str, values)))


def plot_study_paths(paths: pd.DataFrame, path: Path) -> None:
    """Fig. 1 across configurations: dense copies from initialisation (left) and from t_r (right)."""
    dense = paths[paths["level"] == 0]
    panels = [("from initialisation (no late rewinding)", dense[(dense["t_r"] == 0) & (dense["rewind_step"] == 0)]),
              ("from t_r (late rewinding)", dense[(dense["t_r"] > 0) & (dense["rewind_step"] == dense["t_r"])])]
    figure, axes = plt.subplots(2, 2, figsize=(11, 6.5), sharex=True, sharey="row")
    for column, (title, rows) in enumerate(panels):
        draw_copy_paths(axes[0, column], axes[1, column], rows.groupby("configuration", sort=False))
        axes[0, column].set_title(title, fontsize=9)
        if rows.empty:
            axes[0, column].text(0.5, 0.5, "no such runs", ha="center", va="center",
                                 transform=axes[0, column].transAxes)
    axes[0, 0].set_ylabel("test error (%)")
    axes[1, 0].set_ylabel("above the end points' mean\n(points of %)")
    handles, labels = max((ax.get_legend_handles_labels() for ax in axes[0]), key=lambda h: len(h[1]))
    figure.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0, 0.86, 1))
    save_figure(figure, path, tight=False)


def write_stability_report(runs_dir: str | Path, out_dir: str | Path,
                           few_shot_variant: str | Path | None = None) -> Path:
    """reports/stability/stability.md with Tables 1, 2, 6 and Fig. 1, the verdicts in words (on Table 2:
    `table2_verdicts`), and Tables 3-5 and the baselines where the runs measured them, with Sec. 5's verdicts on
    Tables 3-4 (`ticket_verdicts`). `few_shot_variant` names a folder of the same runs' few-shot tables under other
    settings (`<run>_few_shot.csv`, e.g. more epochs over the subset): Table 4's verdicts are read from them too."""
    out_dir = Path(out_dir)
    tables = load_stability_runs(runs_dir)
    summaries, first_stable = tables["imp_summary.csv"], tables["first_stable.csv"]
    paths = tables["instability_paths.csv"]  # `rewind_step`: where the copies started; `t_r`: the run's
    plot_study_paths(paths, out_dir / "stability_paths.png")
    forgetting, tickets, stable = forgetting_table(summaries), ticket_table(summaries), stable_epoch_table(first_stable)
    instability = tables["instability.csv"]
    # Fig. 1's two panels: dense copies from initialisation (runs without late rewinding) and from t_r
    start = instability["rewind_step"] == instability["t_r"]
    barriers = instability[(instability["level"] == 0) & start]
    runs = exported_runs(runs_dir, STUDY_TABLES)
    thresholds = {folder.name: config.instability.stable_threshold for folder, config in runs}
    variant = few_shot_variant and ticket_verdicts(
        {"few_shot.csv": load_few_shot_variant(few_shot_variant, list(thresholds))}, barriers, thresholds,
        f"Table 4 in words, few-shot tables of `{few_shot_variant}`")
    text = "\n".join(part for part in (_study_markdown(summaries, forgetting, tickets, stable, barriers,
                                                        runs_provenance(runs)),
                                        table2_verdicts(summaries, barriers, thresholds),
                                        cross_run_section(tables, summaries),
                                        ticket_verdicts(tables, barriers, thresholds), variant) if part)
    with io.atomic_path(out_dir / "stability.md") as tmp:
        tmp.write_text(text)
    return out_dir / "stability.md"


TABLE1_HEADER = ("| configuration | test accuracy (%) | forgetting events | unforgettable (%) | never learned (%) "
                 "| train AUC | test AUC |\n|---|---|---|---|---|---|---|")


def table1_rows(forgetting: pd.DataFrame) -> str:
    return "\n".join(
        f"| {r.configuration} | {100 * r.test_accuracy:.2f} ± {100 * r.test_accuracy_std:.2f} | "
        f"{r.forgetting_events:.2f} ± {r.forgetting_events_std:.2f} | {100 * r.unforgettable:.2f} | "
        f"{100 * r.never_learned:.2f} | {r.train_auc:.4f} ± {r.train_auc_spread:.4f} | "
        f"{r.test_auc:.4f} ± {r.test_auc_spread:.4f} |" for r in forgetting.itertuples())


def _study_markdown(summaries, forgetting, tickets, stable, barriers, provenance: str) -> str:
    table1 = table1_rows(forgetting)
    table2 = "\n".join(f"| {configuration} | {rewinding} | " + " | ".join(str(v) if isinstance(v, str) else "-"
                                                                      for v in row) + " |"
                       for (configuration, rewinding), row in tickets.iterrows())
    table6 = "\n".join(f"| {configuration} | {row['first stable epoch']} | {row['initialisations']} | "
                       f"{row['copies']} | {row['candidates every']} |"
                       for configuration, row in stable.iterrows())
    barrier = barriers.groupby(["configuration", "rewind_step"], sort=False)["barrier"].agg(["mean", "std"]).fillna(0.0)
    table_barriers = "\n".join(f"| {configuration} | {'initialisation' if start == 0 else f'step {start}'} | "
                               f"{100 * row['mean']:.2f} ± {100 * row['std']:.2f} |"
                               for (configuration, start), row in barrier.iterrows())
    setup = summaries.drop_duplicates("run")
    return f"""# Training stability and the lottery ticket (momentum x batch size)

{len(setup)} runs: configurations {', '.join(dict.fromkeys(setup['configuration']))}, each with and without late
rewinding (t_r > 0 vs 0). Every number is a mean over the runs' replicates (± std over replicates, except the
forgetting events' ± which is the std over training examples, as the paper's Table 1 reports).

{provenance}

## Table 1: forgetting and convergence of the dense network (trained from initialisation)
{TABLE1_HEADER}
{table1}

## Table 2: ticket test accuracy (%) by sparsity
| configuration | late rewinding | {' | '.join(tickets.columns)} |
|---|---|{'---|' * len(tickets.columns)}
{table2}

## Table 6: first stable epoch (Appendix B)
Appendix B's bisection over rewind points `instability.search_every` steps apart, stable where the mean barrier over
every pair of `instability.search_copies` noise copies is below the threshold; where a run's search was refined
(`scripts/regime_search.py first-stable --every --copies`), the refinement with the most copies, then the finest.

| configuration | first stable epoch | initialisations | copies | candidates every |
|---|---|---|---|---|
{table6}

## Fig. 1: error along the path between two dense copies
Copies from initialisation in the runs without late rewinding, from t_r in those with it; the error barrier is
{barrier_definition(barriers)}, mean ± std over replicates.

| configuration | copies from | error barrier (%) |
|---|---|---|
{table_barriers}

![paths](stability_paths.png)

## In words
{_verdicts(forgetting, summaries, barrier)}
"""


def _verdicts(forgetting: pd.DataFrame, summaries: pd.DataFrame, barrier: pd.DataFrame) -> str:
    """Which configuration was most stable, and whether stability ordered the tickets' accuracy."""
    if 0 not in barrier.index.get_level_values("rewind_step"):
        return "No run measured copies from initialisation; no verdict."
    from_init = barrier.xs(0, level="rewind_step")["mean"]
    most_stable = from_init.idxmin()
    sparsest = summaries[summaries["t_r"] == 0].groupby("configuration")["level"].max().min()
    tickets = summaries[(summaries["t_r"] == 0) & (summaries["level"] == sparsest)].set_index("configuration")
    at_sparsest = tickets["test_accuracy"]
    best_ticket = at_sparsest.idxmax()
    order = from_init.sort_values().index.tolist()
    rank = at_sparsest.reindex(order).rank(ascending=False).tolist()
    agrees = "predicted" if best_ticket == most_stable else "did not predict"
    gap = at_sparsest[best_ticket] - at_sparsest.get(most_stable, float("nan"))
    spread = tickets["test_accuracy_std"].get([best_ticket, most_stable]).max()
    resolved = "" if best_ticket == most_stable or gap > spread else (
        f" (but the most stable configuration's ticket is only {100 * gap:.2f} points behind, within one std over "
        f"replicates: not resolved)")
    correlation = from_init.rank().corr(at_sparsest.reindex(from_init.index).rank())  # Spearman's: ranks' Pearson
    fewest = forgetting.set_index("configuration")["forgetting_events"].idxmin()
    return (f"- Most stable to SGD noise from initialisation (lowest barrier between dense copies): **{most_stable}** "
            f"({100 * from_init[most_stable]:.2f}%); fewest forgetting events: **{fewest}**.\n"
            f"- Without late rewinding, the best ticket at the sparsest common level ({sparsest}) came from "
            f"**{best_ticket}** ({100 * at_sparsest[best_ticket]:.2f}%): stability {agrees} ticket quality on this "
            f"run{resolved}. Ranks of ticket accuracy in order of increasing barrier: "
            f"{', '.join(f'{r:g}' for r in rank)} (Spearman correlation of barrier and ticket accuracy over "
            f"{len(from_init)} configurations: {correlation:+.2f}).")


# Sec. 5's readings of Tables 3-4, by how the more stable ticket was found (`stable_start_pairs`)
STABILITY_CLAIMS = {
    "configuration": ("Table 3 (the tickets of a more stable configuration are better feature extractors)",
                      "Table 4 (the tickets of a more stable configuration train better on few examples)"),
    "late rewinding": ("Table 3 (late rewinding makes tickets better feature extractors)",
                       "Table 4 (late rewinding makes tickets train better on few examples)"),
}


def stable_start_pairs(barriers: pd.DataFrame, thresholds: dict[str, float]) -> list[tuple[str, str, str]]:
    """Sec. 5's comparisons of tickets by the stability of the point they are rewound to, as (kind, more stable run,
    less stable run) by the mean barrier between dense copies from that point: "configuration", at each batch size
    the configurations most and least stable from initialisation (runs without late rewinding); "late rewinding",
    each run with late rewinding against its configuration from initialisation. A pair counts only when its less
    stable run is unstable (barrier at least its `instability.stable_threshold`, in `thresholds` by run): among
    stable runs the claims have nothing to compare."""
    runs = barriers.groupby(["run", "configuration", "batch_size", "t_r"], sort=False)["barrier"].mean().reset_index()
    pairs = []
    for _, rows in runs[runs["t_r"] == 0].groupby("batch_size"):
        if rows["configuration"].nunique() > 1:
            pairs.append(("configuration", rows.loc[rows["barrier"].idxmin(), "run"],
                          rows.loc[rows["barrier"].idxmax(), "run"]))
    for late in runs[runs["t_r"] > 0].itertuples():
        early = runs[(runs["configuration"] == late.configuration) & (runs["t_r"] == 0)]
        if not early.empty:
            pair = (late.run, early["run"].iloc[0])
            pairs.append(("late rewinding", *(pair if late.barrier <= early["barrier"].iloc[0] else pair[::-1])))
    barrier = runs.set_index("run")["barrier"]
    return [(kind, stable, unstable) for kind, stable, unstable in pairs if barrier[unstable] >= thresholds[unstable]]


def run_labels(barriers: pd.DataFrame) -> dict[str, str]:
    """How verdict lines name a run: its configuration, its rewind step and its mean barrier between dense copies."""
    barrier = barriers.groupby("run")["barrier"].mean()
    name = barriers.drop_duplicates("run").set_index("run")
    return {run: f"{name.loc[run, 'configuration']}" + (f" from step {name.loc[run, 't_r']}" if name.loc[run, "t_r"]
                                                         else "") + f" (barrier {100 * barrier[run]:.2f}%)"
            for run in barrier.index}


# Sec. 4.1-4.2's readings of Table 2, by the pairs of `stable_start_pairs`
TABLE2_CLAIMS = {
    "dense": "Table 2, 0.00% column (the more stable configuration's dense network is the less accurate)",
    "sparsity": "Table 2 (without late rewinding, the less stable configuration's tickets lead at the lowest "
                "sparsity, the more stable one's at the deepest)",
    "late rewinding": "Table 2 (late rewinding raises the tickets' accuracy at most sparsities)",
}


def table2_verdicts(summaries: pd.DataFrame, barriers: pd.DataFrame, thresholds: dict[str, float]) -> str:
    """Sec. 4.1-4.2 on Table 2 (`TABLE2_CLAIMS`), for each pair of `stable_start_pairs`: across configurations, the
    less stable one's dense network and its tickets at the lowest sparsity ahead, the more stable one's at the
    deepest level both ran; with late rewinding, its tickets ahead of the same configuration's from initialisation at
    most sparsities (the pair as the paper when ahead at more than half of its levels, the opposite when behind at
    half or more). Ahead: by more than the larger std over replicates."""
    pairs = stable_start_pairs(barriers, thresholds)
    if not pairs:
        return ("## Table 2 in words\nNo two runs differ in stability with the less stable one unstable: Sec. "
                "4.1-4.2's readings of Table 2 have nothing to compare.\n")
    levels, label = summaries.set_index(["run", "level"]), run_labels(barriers)
    lines, outcomes = ({claim: [] for claim in TABLE2_CLAIMS} for _ in range(2))

    def compare(claim: str, level: int, stable: str, unstable: str, stable_ahead: bool) -> bool | None:
        more, less = levels.loc[(stable, level)], levels.loc[(unstable, level)]
        gap = (more["test_accuracy"] - less["test_accuracy"]) * (1 if stable_ahead else -1)
        outcome = ahead(gap, max(more["test_accuracy_std"], less["test_accuracy_std"]))
        lines[claim].append(f"- level {level} ({100 * (1 - more['fraction_remaining']):.2f}% sparse): "
                            f"{accuracy_text(more)} for {label[stable]} against {accuracy_text(less)} for "
                            f"{label[unstable]}: {OUTCOME_WORDS[outcome]}.")
        return outcome

    for kind, stable, unstable in pairs:
        sparse = sorted(set(levels.loc[stable].index) & set(levels.loc[unstable].index) - {0})  # both runs pruned
        if kind == "configuration":
            outcomes["dense"].append(compare("dense", 0, stable, unstable, False))
            if len(sparse) > 1:  # a lowest and a deepest sparsity
                outcomes["sparsity"] += [compare("sparsity", sparse[0], stable, unstable, False),
                                         compare("sparsity", sparse[-1], stable, unstable, True)]
        elif sparse:
            by_level = [compare("late rewinding", level, stable, unstable, True) for level in sparse]
            lead, trail = by_level.count(True), by_level.count(False)
            pair = True if lead > len(by_level) / 2 else False if trail >= len(by_level) / 2 else None
            lines["late rewinding"].append(f"- {label[stable]} against {label[unstable]}: ahead at {lead} and behind "
                                           f"at {trail} of {len(by_level)} sparsities: {OUTCOME_WORDS[pair]}.")
            outcomes["late rewinding"].append(pair)
    parts = ["\n".join(lines[claim]) + "\n\n" + claim_verdict(words, outcomes[claim],
                                                                 "run pairs" if claim == "late rewinding" else
                                                                 "comparisons")
             if outcomes[claim] else f"{words}: no comparison (no such pair with an unstable run and the levels it "
                                     f"needs)."
             for claim, words in TABLE2_CLAIMS.items()]
    return "## Table 2 in words\n" + "\n\n".join(parts) + "\n"


def load_few_shot_variant(folder: str | Path, runs: list[str]) -> pd.DataFrame:
    """The few-shot tables `<run>_few_shot.csv` in `folder` of the named runs, with column `run`."""
    paths = {run: Path(folder) / f"{run}_few_shot.csv" for run in runs}
    frames = [io.load_csv(path).assign(run=run) for run, path in paths.items() if path.exists()]
    if not frames:
        raise UserError(f"few-shot variant {folder}: no <run>_few_shot.csv there for any of the runs {', '.join(runs)}")
    return pd.concat(frames, ignore_index=True)


def ticket_verdicts(tables: dict[str, pd.DataFrame], barriers: pd.DataFrame, thresholds: dict[str, float],
                    title: str = "Tables 3-4 in words") -> str:
    """Sec. 5: tickets rewound to a more stable point are better feature extractors (Table 3: the ticket's probe
    accuracy, each replicate's mean over blocks) and better few-shot learners (Table 4), read separately across
    configurations and for late rewinding (`STABILITY_CLAIMS`); one comparison per pair of `stable_start_pairs`
    that measured the table, per sparsity (and subset size), resolved by `beats`."""
    barrier = barriers.groupby("run")["barrier"].mean()
    if all(barrier[run] < thresholds[run] for run in barrier.index):
        return (f"## {title}\nEvery run is stable from the point its tickets are rewound to: Sec. 5's "
                "comparisons of stable against unstable tickets have nothing to compare.\n")
    label = run_labels(barriers)
    probes = tables.get("probes.csv", pd.DataFrame())
    few_shot = tables.get("few_shot.csv", pd.DataFrame())
    measures = (
        ("probe accuracy", probes[(probes["network"] == "ticket") & (probes["level"] > 0)].groupby(
            ["run", "level", "replicate"])["probe_accuracy"].mean().reset_index() if not probes.empty else probes,
         "probe_accuracy", ["level"]),
        ("few-shot accuracy", few_shot[few_shot["level"] > 0] if not few_shot.empty else few_shot, "test_accuracy",
         ["level", "fraction"]))
    pairs = stable_start_pairs(barriers, thresholds)
    parts = []
    for table, (measure, rows, column, keys) in enumerate(measures):
        for kind, claims in ([] if rows.empty else STABILITY_CLAIMS.items()):
            compared = [comparison for k, stable, unstable in pairs if k == kind
                        for comparison in _compare_tickets(rows, column, keys, label, stable, unstable)]
            outcomes = [outcome for outcome, _ in compared]
            lines = [f"- {measure}, {where}: {OUTCOME_WORDS[outcome]}." for outcome, where in compared]
            parts.append("\n".join(lines) + "\n\n" + claim_verdict(claims[table], outcomes) if outcomes else
                         f"{claims[table]}: no comparison (no such pair with an unstable run measured it).")
    return f"## {title}\n" + "\n\n".join(parts) + "\n" if parts else ""


def _compare_tickets(rows: pd.DataFrame, column: str, keys: list[str], label: dict[str, str], stable: str,
                     unstable: str) -> list[tuple[str, str]]:
    """One pair of runs' tickets compared per sparsity (and subset size): (outcome of `beats`, what was compared)."""
    compared = []
    for key, cell in rows[rows["run"].isin([stable, unstable])].groupby(keys):
        more, less = cell.loc[cell["run"] == stable, column], cell.loc[cell["run"] == unstable, column]
        if more.empty or less.empty:
            continue
        where = f"level {key[0]}" + (f", {100 * key[1]:g}% of the data" if len(keys) > 1 else "")
        if "train_steps" in cell:  # few-shot budgets differ with t_r (T - t_r compressed onto the subset)
            steps = [int(cell.loc[cell["run"] == run, "train_steps"].iloc[0]) for run in (stable, unstable)]
            where += f" ({steps[0]} and {steps[1]} training steps)"
        compared.append((beats(more, less), f"{where}: {mean_std(more)} for {label[stable]} against "
                                            f"{mean_std(less)} for {label[unstable]}"))
    return compared


# ---- Table 1 alone: the dense network of each configuration, a curve point every epoch ----

def _mean_spread(value: float, spread: float) -> str:
    return f"{value:.4f} ± {spread:.4f}"


# The paper's reading of Table 1 (Sec. 4.1, Conclusion): with momentum, examples are forgotten more often and
# training and validation accuracy converge more slowly (lower AUC, Eq. 3). Unforgettable examples it reads by batch
# size, not momentum (its Table 1 has fewer with momentum at batch 100 and 256, more at 1024).
# Each: (column, words, True if momentum should raise it, format of mean and spread).
MOMENTUM_FINDINGS = (("forgetting_events", "forgetting events per example", True, _mean_spread),
                     ("train_auc", "train AUC", False, _mean_spread),
                     ("test_auc", "test AUC", False, _mean_spread))
# Fig. 1 and Table 6 (column, words, format); whether each rises with the factor compared is the claim's
STABILITY_FINDINGS = (("barrier", "error barrier from initialisation",
                       lambda value, spread: f"{100 * value:.2f} ± {100 * spread:.2f} %"),
                      ("first_stable_epoch", "first stable epoch",
                       lambda value, spread: "undefined" if pd.isna(value) else
                       f"{value:.2f} ± {spread:.2f}"))
# the paper (Sec. 6.2, Table 6): momentum and a smaller batch make training less stable to SGD noise. Each:
# (factor, compared at each value of, True if instability rises with the factor, claim)
STABILITY_CLAIMS_BY_FACTOR = (
    ("momentum", "batch_size", True, "Fig. 1 and Table 6 (momentum: a higher barrier between copies from "
                                     "initialisation, a later first stable epoch)"),
    ("batch_size", "momentum", False, "Fig. 1 and Table 6 (a larger batch: a lower barrier between copies from "
                                      "initialisation, an earlier first stable epoch)"))


def write_convergence_report(runs_dir: str | Path, out_dir: str | Path) -> Path:
    """table1.md: Table 1 from runs of the dense network trained from initialisation, one per configuration, with
    a curve point every epoch (`train.curve_steps: 0`), ending with a verdict on momentum; where the runs also
    measured two copies from initialisation and the first stable step (`--dense-only --stability`), Fig. 1's
    barrier and Table 6 by configuration, with verdicts on momentum and on batch size."""
    runs = exported_runs(runs_dir, ("imp_summary.csv",))
    tables = load_stability_runs(runs_dir, ("imp_summary.csv",))
    forgetting = forgetting_table(tables["imp_summary.csv"])
    text = f"""# Table 1: forgetting and convergence of the dense network, a curve point every epoch

{len(runs)} runs, the dense network of each configuration trained from initialisation. Every number is a mean over
replicates (± std over replicates, except the forgetting events' ± which is the std over training examples, as the
paper's Table 1 reports); AUC is Eq. 3 over the per-epoch accuracy curve.

{runs_provenance(runs)}

{TABLE1_HEADER}
{table1_rows(forgetting)}

## In words
{momentum_verdict(forgetting)}
"""
    if {"instability.csv", "first_stable.csv"} <= set(tables):
        text += stability_from_initialisation(tables["instability.csv"], tables["first_stable.csv"])
    with io.atomic_path(Path(out_dir) / "table1.md") as tmp:
        tmp.write_text(text)
    return Path(out_dir) / "table1.md"


FIG1_TABLE6_HEADER = markdown_table(pd.DataFrame(columns=[
    "configuration", "error barrier (%)", "copies", "candidates every", "initialisations", "first stable epoch",
    "last unstable epoch"]))


def stability_from_initialisation(instability: pd.DataFrame, first_stable: pd.DataFrame) -> str:
    """Fig. 1's barrier between two dense copies from initialisation and Table 6's first stable epoch by
    configuration (mean ± std over initialisations), and each compared by momentum and by batch size."""
    copies = instability[(instability["level"] == 0) & (instability["rewind_step"] == 0)]
    keys = ["configuration", "momentum", "batch_size"]
    barrier = copies.groupby(keys, sort=False)["barrier"].agg(barrier="mean", barrier_spread="std")
    searches = first_stable.assign(lower=last_unstable_epoch(first_stable)).groupby(keys, sort=False)
    # a search that found no stable step leaves its configuration's mean undefined: compared as not resolved
    epochs = searches.agg(first_stable_epoch=("first_stable_epoch",
                                              lambda e: e.mean() if e.notna().all() else float("nan")),
                          first_stable_epoch_spread=("first_stable_epoch", lambda e: e.std(ddof=0)),
                          first_stable_epoch_lower=("lower", "mean"))
    frame = barrier.join(epochs).fillna({"barrier_spread": 0.0}).reset_index()
    found = stable_epoch_table(first_stable)
    rows = "\n".join(f"| {r.configuration} | {100 * r.barrier:.2f} ± {100 * r.barrier_spread:.2f} | "
                     + (f"{found.at[r.configuration, 'copies']} | {found.at[r.configuration, 'candidates every']} | "
                        f"{found.at[r.configuration, 'initialisations']} | "
                        f"{found.at[r.configuration, 'first stable epoch']} | {_epochs(r.first_stable_epoch_lower)} |"
                        if r.configuration in found.index else "- | - | - | not searched | - |")
                     for r in frame.itertuples())
    verdicts = []
    for factor, within, rises, claim in STABILITY_CLAIMS_BY_FACTOR:
        findings = [(column, words, rises, text) for column, words, text in STABILITY_FINDINGS]
        lines, outcomes = compare_neighbours(frame, factor, within, findings)
        verdicts.append("\n".join(lines) + "\n\n" + claim_verdict(claim, outcomes) if outcomes else
                        f"No {_word(within)} was run with two values of {factor.replace('_', ' ')}; no verdict on it.")
    return f"""
## Fig. 1 and Table 6: stability to SGD noise from initialisation
Two copies of each initialisation's dense network trained from step 0 with different SGD noise, mean ± std over
initialisations (the population std for the first stable epoch, as the study report's Table 6).
The error barrier is {barrier_definition(copies)}.
The first stable epoch is Appendix B's bisection over rewind points `instability.search_every` steps apart, stable
where the mean barrier over every pair of `instability.search_copies` noise copies is below the threshold, or where a
run's search was refined (`scripts/regime_search.py first-stable --every --copies`), the refinement with the most
copies, then the finest (copies and spacing are in the table); a configuration where a search found no stable step
(or none ran) has no mean epoch ("undefined"), and its comparisons are not resolved. The bisection knows each first
stable step only to its bracket, above the last step it found unstable (the mean of those, in epochs, is the last
column): two first stable epochs are resolved only when, besides a gap larger than the larger std, the later one's
last unstable epoch reaches the earlier one's first stable epoch.

{FIG1_TABLE6_HEADER}
{rows}

## In words: stability
{(chr(10) * 2).join(verdicts)}
"""


def last_unstable_epoch(first_stable: pd.DataFrame) -> pd.Series:
    """The lower end of each search's bracket, in epochs: its last step found unstable (0 where the first stable
    step is 0 or no unstable step was probed; undefined where no stable step was found)."""
    per_step = first_stable["first_stable_epoch"] / first_stable["first_stable_step"].where(
        first_stable["first_stable_step"] > 0)
    lower = (first_stable["last_unstable_step"] * per_step).fillna(0.0)
    return lower.where(first_stable["first_stable_epoch"].notna())


def momentum_verdict(forgetting: pd.DataFrame) -> str:
    """Each of `MOMENTUM_FINDINGS` at each batch size between each two neighbouring momenta, resolved when the gap
    exceeds the larger std over replicates, and a last line: reproduced when every one is resolved the paper's way,
    not reproduced when one is resolved the other way, inconclusive otherwise."""
    lines, outcomes = compare_neighbours(forgetting, "momentum", "batch_size", MOMENTUM_FINDINGS)
    if not outcomes:
        return "No batch size was run with two momenta; no verdict."
    return "\n".join(lines) + "\n\n" + claim_verdict(
        "Table 1 (momentum: more forgetting events, slower convergence of train and test accuracy)", outcomes)


def compare_neighbours(frame: pd.DataFrame, factor: str, within: str,
                       findings) -> tuple[list[str], list[bool | None]]:
    """Each finding (column, words, whether the paper has it rise with `factor`, format) between each two
    neighbouring values of `factor` at each value of `within` (the paper's claims are monotonic: with three batch
    sizes, 32 against 128 and 128 against 512): as the paper when the gap, larger than the larger of the two
    `<column>_spread` and, for a bisection's value, beyond its bracket (`beyond_bracket`), goes the paper's way; the
    opposite when it goes the other way; else (or undefined) not resolved. One line per comparison, and the
    outcomes."""
    lines, outcomes = [], []
    for key, rows in frame.groupby(within):
        values = list(rows.set_index(factor).sort_index().iterrows())
        for (low_value, low), (high_value, high) in zip(values, values[1:]):
            for column, words, rises, text in findings:
                gap = (high[column] - low[column]) * (1 if rises else -1)
                spread = max(high[f"{column}_spread"], low[f"{column}_spread"])
                apart = not pd.isna(gap) and abs(gap) > spread and beyond_bracket(low, high, column)
                outcome = bool(gap > 0) if apart else None
                outcomes.append(outcome)
                lines.append(f"- {_word(within)} {key:g}: {words} {text(high[column], high[f'{column}_spread'])} "
                             f"with {_word(factor)} {high_value:g}, {text(low[column], low[f'{column}_spread'])} "
                             f"with {low_value:g}: {OUTCOME_WORDS[outcome]}.")
    return lines, outcomes


def beyond_bracket(low: pd.Series, high: pd.Series, column: str) -> bool:
    """For a value a bisection measured (a `<column>_lower` beside it: the mean last step found unstable), whether
    the later of the two lies above the bracket of the earlier one: its lower end at or past the other's value (up
    to rounding). Other values have no bracket."""
    if f"{column}_lower" not in low.index:
        return True
    earlier, later = sorted((low, high), key=lambda row: row[column])
    return later[f"{column}_lower"] >= earlier[column] - 1e-9


def _word(column: str) -> str:
    """How the verdict lines name a configuration's column: batch 128, momentum 0.9."""
    return column.replace("batch_size", "batch")

