"""Figures and the report section of the error-landscape analyses, drawn from saved tables and grids only.

Thresholds (Paul et al. 2022, Appendix A): epsilon is the standard deviation over replicates
of the dense network's metric (Def. A.2). A level is matching when its mean is within
epsilon of the dense mean (from reports/imp.csv, the full test set, as in the IMP report);
figures mark the matching error as the dense mean on the evaluation subset plus epsilon, so
that it compares with the interpolated errors measured on that subset. The 2D slices outline the
LCS-set of w(L) as Fig. 3's caption says: the error of w(L) itself plus epsilon (Definition 2.1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import PowerNorm

from lthlib.core import io
from lthlib.core.config import BARRIERS, Config
from lthlib.core.errors import UserError
from lthlib.report.common import (OUTCOME_WORDS, accuracy_text, claim_verdict, exported_runs, level_summary,
                                  plot_accuracy_by_run, plt, runs_provenance, save_figure, series_format,
                                  threshold_caveat)


def dense_spread(imp: pd.DataFrame, metric: str) -> tuple[float, float]:
    """Mean and std over replicates of the dense (level 0) network's metric in reports/imp.csv."""
    split, quantity = metric.split("_")
    dense = imp[imp["level"] == 0]
    values = 1 - dense[f"{split}_accuracy"] if quantity == "error" else dense[f"{split}_loss"]
    return float(values.mean()), float(values.std()) if len(values) > 1 else 0.0


def matching_error(paths: pd.DataFrame, epsilon: float) -> float:
    """The dense network's mean error on the evaluation subset plus epsilon (Def. A.2)."""
    dense = paths[(paths["level"] == 0) & (paths["beta"] == 0)]
    return float(dense["error_mean"].iloc[0]) + epsilon


def plot_paths(paths: pd.DataFrame, threshold: float, label: str, path: Path) -> None:
    """Fig. 2 (left): the piecewise linear path through the level solutions, one curve per rewind step."""
    figure, axes = plt.subplots(figsize=(7.5, 4))
    for step, frame in paths.groupby("rewind_step"):
        position = frame["level"] + frame["beta"]
        axes.plot(position, 100 * frame["error_mean"], ".-", label=f"rewind step {step}")
        axes.fill_between(position, 100 * (frame["error_mean"] - frame["error_std"]),
                          100 * (frame["error_mean"] + frame["error_std"]), alpha=0.25)
    axes.axhline(100 * threshold, color="grey", ls="--", label="matching")
    axes.set_xlabel("level L + beta (path from w(L) to w(L+1))")
    axes.set_ylabel(f"{label} (%)" if "error" in label else label)
    axes.grid(alpha=0.3)
    axes.legend()
    save_figure(figure, path)


def plot_pairs(pairs: pd.DataFrame, threshold: float, label: str, path: Path) -> None:
    """Fig. 2 (right): max over beta of the error between every pair of levels; darkest = matching."""
    count = int(pairs["level_b"].max()) + 1
    matrix = np.zeros((count, count))
    for row in pairs.itertuples():
        matrix[row.level_a, row.level_b] = matrix[row.level_b, row.level_a] = row.max_error_mean
    np.fill_diagonal(matrix, np.nan)
    scale, unit = (100, " (%)") if "error" in label else (1, "")
    figure, axes = plt.subplots(figsize=(5.5, 4.5))
    image = axes.imshow(scale * matrix, cmap="viridis", vmin=scale * threshold,
                        vmax=scale * max(np.nanmax(matrix), threshold + 1e-6))
    figure.colorbar(image, ax=axes, label=f"max {label} along the path{unit}")
    axes.set_xlabel("level j")
    axes.set_ylabel("level i")
    axes.set_title("darkest: at or below the matching error")
    save_figure(figure, path)


def lcs_threshold(grid: dict, epsilon: float) -> float:
    """The edge of the LCS-set of w(L) (Definition 2.1, Fig. 3): the error of w(L) itself plus epsilon."""
    return float(grid["point_error"][0]) + epsilon


def draw_slice(axes, grid: dict, epsilon: float, level: int, scale: float):
    """Fig. 3: the metric on the plane (times `scale`: 100 for errors in %), the LCS-set of w(L), the axial
    subspace and the three networks, on the panel's own colour scale (one level's peak must not flatten the
    others)."""
    x, y, error, points = grid["x"], grid["y"], grid["error"], grid["points"]
    # a square-root scale: the basin around the solutions, not the far corners, gets most of the colours
    mesh = axes.pcolormesh(x, y, scale * error, cmap="viridis", shading="nearest", norm=PowerNorm(0.5))
    edge = lcs_threshold(grid, epsilon)
    if error.min() <= edge <= error.max():
        axes.contour(x, y, error, levels=[edge], colors="white", linewidths=1.5, linestyles="dashed")
    axes.plot([], [], color="white", ls="--", label="LCS-set of w(L): error ≤ E(w(L)) + ε")
    axes.axvline(points[1, 0], color="magenta", ls=":", lw=1, label="axial subspace of m(L+1)")
    axes.plot(*points[0], "^", color="grey", ms=9, mec="black", label="w(L)")
    axes.plot(*points[1], "x", color="orange", ms=9, mew=2.5, label="m(L+1) ⊙ w(L)")
    axes.plot(*points[2], "^", color="orange", ms=9, mec="black", label="w(L+1)")
    axes.set_title(f"level {level} -> {level + 1}", fontsize=9)
    return mesh


def plot_slices(grids: dict[int, dict], epsilon: float, label: str, folder: Path) -> None:
    """One figure per level plus a grid of all levels (Fig. 7/8), each panel with its own colour bar."""
    percent = "error" in label
    scale, unit = (100.0, f"{label} (%)") if percent else (1.0, label)
    x_label = "towards m(L+1) ⊙ w(L) (units of its distance)"
    y_label = "towards w(L+1) (units of its distance)"
    for level, grid in grids.items():
        figure, axes = plt.subplots(figsize=(5.2, 5.2))
        figure.colorbar(draw_slice(axes, grid, epsilon, level, scale), ax=axes, label=unit)
        axes.set_xlabel(x_label, fontsize=8)
        axes.set_ylabel(y_label, fontsize=8)
        figure.legend(*axes.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=7, frameon=False)
        figure.tight_layout(rect=(0, 0.1, 1, 1))
        save_figure(figure, folder / f"landscape_level_{level:02d}.png", tight=False)
    columns = min(4, len(grids))
    rows = -(-len(grids) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.1 * rows + 0.6), squeeze=False)
    for index, (ax, (level, grid)) in enumerate(zip(axes.flat, grids.items())):
        last_column = index % columns == columns - 1 or index == len(grids) - 1
        figure.colorbar(draw_slice(ax, grid, epsilon, level, scale), ax=ax, label=unit if last_column else None)
    for ax in axes.flat[len(grids):]:
        ax.axis("off")
    for column in range(columns):  # the lowest panel of each column
        axes[(len(grids) - 1 - column) // columns, column].set_xlabel(x_label, fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel(y_label, fontsize=7)
    figure.legend(*axes.flat[0].get_legend_handles_labels(), loc="lower center", ncol=5, fontsize=8,
                  frameon=False)
    figure.tight_layout(rect=(0, 0.6 / (3.1 * rows + 0.6), 1, 1))
    save_figure(figure, folder / "landscape_all.png", tight=False)


def plot_instability(instability: pd.DataFrame, stable_threshold: float, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for level, frame in instability.groupby("level"):
        barrier = frame.groupby("rewind_step")["barrier"].agg(["mean", "std"]).fillna(0.0)
        axes.errorbar(barrier.index, 100 * barrier["mean"], 100 * barrier["std"],
                      fmt=series_format("o-", len(barrier)), capsize=3,
                      label="dense" if level == 0 else f"level {level} mask")
    axes.axhline(100 * stable_threshold, color="grey", ls="--", label="stable threshold")
    axes.set_xlabel("rewind step")
    axes.set_ylabel("error barrier between the two copies (%)")
    axes.grid(alpha=0.3)
    axes.legend()
    save_figure(figure, path)


def barrier_definition(instability: pd.DataFrame) -> str:
    """What the `barrier` column of instability tables measures, in words (`config.BARRIERS`); a table
    without `barrier_definition` holds Definition A.1's. Tables of different definitions are an error."""
    definitions = set(instability["barrier_definition"]) if "barrier_definition" in instability else {"line"}
    if len(definitions) > 1:
        raise UserError(f"the instability tables measure barriers by different definitions: {sorted(definitions)}")
    return BARRIERS[definitions.pop()]


def connectivity_verdicts(summary: pd.DataFrame, pairs: pd.DataFrame, barrier_threshold: float) -> pd.DataFrame:
    """Per IMP step L -> L + 1: are both solutions matching (the level summary's verdicts), are they linearly
    connected?"""
    matching = summary.set_index("level")["matching"].astype(bool)
    successive = pairs[pairs["level_b"] == pairs["level_a"] + 1]
    return pd.DataFrame([{
        "level": int(row.level_a), "matching": bool(matching.loc[row.level_a]),
        "next_matching": bool(matching.loc[row.level_b]),
        "barrier_mean": row.barrier_mean, "barrier_std": row.barrier_std,
        "connected": row.barrier_mean < barrier_threshold,
    } for row in successive.itertuples()])


def sparse_steps(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The steps the central claim is about, from level 1 on: Sec. 2.1 leaves the dense network's step aside (levels 0
    and 1 may not be connected, the dense network not yet stable at the rewind step; Appendix D)."""
    return verdicts[verdicts["level"] >= 1]


def claim_outcomes(verdicts: pd.DataFrame, barrier_threshold: float, settled: pd.Series) -> list[bool | None]:
    """Per step, whether it agrees with the central claim (linearly connected iff both solutions are matching) where
    its mean barrier is more than its std over replicates from the threshold and whether both are matching is settled
    (`settled` by level: the level's mean accuracy more than its std from the matching threshold): one settled level
    not matching settles it, else both must be; None (not resolved) where either is not."""
    now, next_ = (levels.map(settled).astype(bool) for levels in (verdicts["level"], verdicts["level"] + 1))
    known = (now & ~verdicts["matching"]) | (next_ & ~verdicts["next_matching"]) | (now & next_)
    apart = ((verdicts["barrier_mean"] - barrier_threshold).abs() > verdicts["barrier_std"]) & known
    agree = (verdicts["matching"] & verdicts["next_matching"]) == verdicts["connected"]
    return [bool(a) if resolved else None for a, resolved in zip(agree, apart)]


def imp_step_rows(verdicts: pd.DataFrame, settled: pd.Series, outcomes: dict[int, bool | None]) -> list[str]:
    """Table rows of the IMP steps L -> L + 1: whether each solution is matching (* where `settled` says its mean
    accuracy is within its std of the threshold), the barrier, connected, and the step's outcome for the central
    claim (`claim_outcomes`); a step without one, the dense step, is left aside (Sec. 2.1)."""
    return [f"| {r.level} -> {r.level + 1} | {matching_cell(r.matching, settled[r.level])} | "
            f"{matching_cell(r.next_matching, settled[r.level + 1])} | {100 * r.barrier_mean:.2f} ± "
            f"{100 * r.barrier_std:.2f} | {'yes' if r.connected else 'no'} | "
            f"{OUTCOME_WORDS[outcomes[r.level]] if r.level in outcomes else 'left aside (dense step)'} |"
            for r in verdicts.itertuples()]


def claim_failures(verdicts: pd.DataFrame) -> str:
    """The steps where "linearly connected iff both matching" fails, and how, e.g. '; fails at 8 -> 9
    (connected, w(L+1) not matching)'; empty when it holds everywhere."""
    failures = []
    for r in verdicts.itertuples():
        both = r.matching and r.next_matching
        if both != r.connected:
            why = ", ".join(name for name, ok in (("w(L)", r.matching), ("w(L+1)", r.next_matching)) if not ok)
            failures.append(f"{r.level} -> {r.level + 1} (connected, {why} not matching)" if r.connected
                            else f"{r.level} -> {r.level + 1} (both matching, not connected)")
    return f"; fails at {', '.join(failures)}" if failures else ""


def landscape_section(config: Config, imp: pd.DataFrame, paths: pd.DataFrame, pairs: pd.DataFrame,
                      landscape: pd.DataFrame, grids: dict[int, dict], instability: pd.DataFrame,
                      out_dir: str | Path) -> str:
    """Draw the figures into out_dir/figures and return the markdown section of the report."""
    figures = Path(out_dir) / "figures"
    evaluation, metric = config.interpolation, config.interpolation.metric
    label = metric.replace("_", " ")
    mean, epsilon = dense_spread(imp, metric)
    threshold = matching_error(paths, epsilon) if not paths.empty else mean + epsilon
    barrier_threshold = epsilon if config.lmc.barrier_threshold == "dense_std" else config.lmc.barrier_threshold
    threshold_rule = (f"the standard deviation of the dense {label} over replicates, {100 * epsilon:.3f}% (Def. A.1)"
                      if config.lmc.barrier_threshold == "dense_std" else
                      f"lmc.barrier_threshold = {100 * barrier_threshold:.2f}%")
    batchnorm = ("interpolated like every other tensor (the papers' choice)" if evaluation.batchnorm == "interpolate"
                 else f"re-estimated at every point on {evaluation.reestimate_batches} training batches")
    subset = f"the first {evaluation.eval_examples}" if evaluation.eval_examples else "all"
    lines = [
        "## Error landscape of IMP (Paul et al. 2022, Sec. 2.1)",
        f"- Metric: {label} on {subset} examples of the {metric.split('_')[0]} split; "
        f"{evaluation.path_points} points per linear path.",
        f"- BatchNorm running statistics: {batchnorm}.",
        "- Interpolation rule (Appendix C): every tensor is combined inside the convex hull of the networks; "
        "outside it only prunable weights extrapolate and the other tensors sit on the closest hull point.",
        f"- A step is *linearly connected* when the error barrier (Def. A.1) between w(L) and w(L+1), mean over "
        f"replicates, is below {threshold_rule}. Matching follows the IMP table above (Def. A.2).",
    ]
    replicates = int(imp.loc[imp["level"] == 0, "replicate"].nunique())
    if not pairs.empty:
        caveat = threshold_caveat(replicates, barrier_threshold, int(pairs["examples"].min()))
        plot_paths(paths, threshold, label, figures / "lmc_paths.png")
        plot_pairs(pairs, threshold, label, figures / "lmc_pairs.png")
        summary = level_summary(imp).assign(rewind_step=config.pretrain.steps)
        summary = with_matching(summary, dense_reference(summary, "per-run"))  # this run's own dense networks
        settled = summary.set_index("level")["matching_settled"]
        verdicts = connectivity_verdicts(summary, pairs, barrier_threshold)
        claimed = sparse_steps(verdicts)
        outcomes = claim_outcomes(claimed, barrier_threshold, settled)
        agree = (claimed["matching"] & claimed["next_matching"]) == claimed["connected"]
        lines += ["", "A step resolves the central claim where its mean barrier is more than its std over replicates "
                      "from the connectivity threshold and whether both solutions are matching is settled (a verdict "
                      "marked * rests on a mean accuracy within its std of the matching threshold)."]
        lines += [""] + ([f"Read these verdicts with care{caveat}.", ""] if caveat else [])
        lines += ["| step | w(L) matching | w(L+1) matching | error barrier (%) | linearly connected | the claim |",
                  "|---|---|---|---|---|---|"]
        lines += imp_step_rows(verdicts, settled, dict(zip(claimed["level"], outcomes)))
        lines += ["", claim_verdict("Central claim (successive solutions are linearly connected if and only if both "
                                    "are matching, steps from level 1 on)", outcomes, "IMP steps")
                  + f" Without the spread: holds at {int(agree.sum())} of {len(agree)} steps"
                    f"{claim_failures(claimed)}{caveat}.",
                  "", "![piecewise linear path](figures/lmc_paths.png) ![all pairs](figures/lmc_pairs.png)"]
    if grids:
        plot_slices(grids, epsilon, label, figures)
        edge = landscape["error_solution"] + epsilon  # the LCS-set of w(L), Definition 2.1
        lcs_caveat = threshold_caveat(replicates, epsilon, int(pairs["examples"].min()))  # same evaluation as lmc

        def inside(errors):
            return (errors <= edge).map({True: "yes", False: "no"})

        lines += ["", f"### 2D slices (replicate {config.landscape.replicate}, "
                      f"{config.landscape.grid_size}x{config.landscape.grid_size} grid)",
                  f"The dotted contour outlines the LCS-set of w(L): {label} ≤ E(w(L)) + ε, with ε = "
                  f"{100 * epsilon:.3f}% the dense std over replicates (Fig. 3). Inside it, the axial subspace "
                  f"m(L+1) meets the LCS-set of w(L){lcs_caveat}.",
                  "", "| level | error w(L) (%) | error projection (%) | error w(L+1) (%) | projection in the LCS-set "
                  "of w(L) | w(L+1) in it |", "|---|---|---|---|---|---|"]
        lines += [f"| {int(r.level)} | {100 * r.error_solution:.2f} | {100 * r.error_projection:.2f} | "
                  f"{100 * r.error_next:.2f} | {p} | {n} |"
                  for r, p, n in zip(landscape.itertuples(), inside(landscape["error_projection"]),
                                     inside(landscape["error_next"]))]
        lines += ["", "![all levels](figures/landscape_all.png)"]
    if not instability.empty:
        plot_instability(instability, config.instability.stable_threshold, figures / "instability.png")
        grouped = instability.groupby(["rewind_step", "level"])["barrier"].agg(["mean", "std"]).fillna(0.0)
        stable_caveat = threshold_caveat(int(instability["replicate"].nunique()),
                                         config.instability.stable_threshold, int(instability["examples"].min()))
        lines += ["", "### Instability to SGD noise (Frankle et al. 2020)",
                  f"Two copies per replicate from each start on IMP's dense run, differing only in data order and "
                  f"augmentation. Error barrier: {barrier_definition(instability)}, on "
                  f"{config.instability.path_points} evenly spaced points of the path. Stable when the barrier, mean "
                  f"over {instability['replicate'].nunique()} replicates, "
                  f"is below {100 * config.instability.stable_threshold:g}%{stable_caveat}.", "",
                  "| rewind step | network | error barrier (%) | stable | barrier by Definition A.1 (%) |",
                  "|---|---|---|---|---|"]
        line = (instability.groupby(["rewind_step", "level"])["barrier_line"].agg(["mean", "std"]).fillna(0.0)
                if "barrier_line" in instability else None)
        lines += [f"| {step} | {'dense' if level == 0 else f'level {level} mask'} | "
                  f"{100 * row['mean']:.2f} ± {100 * row['std']:.2f} | "
                  f"{'yes' if row['mean'] < config.instability.stable_threshold else 'no'} | "
                  + ("-" if line is None else f"{100 * line.loc[(step, level), 'mean']:.2f} ± "
                                              f"{100 * line.loc[(step, level), 'std']:.2f}") + " |"
                  for (step, level), row in grouped.iterrows()]
        lines += ["", "![instability](figures/instability.png)"]
    return "\n".join(lines) + "\n"


def load_rewind_runs(runs_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(paths, pairs, IMP summaries) of every exported run holding imp_summary.csv, lmc_paths.csv and
    lmc_pairs.csv (as exported by scripts/compare_rewind.sh)."""
    tables = {"lmc_paths.csv": [], "lmc_pairs.csv": [], "imp_summary.csv": []}
    for folder, config in exported_runs(runs_dir, tuple(tables)):
        for name, frames in tables.items():
            frames.append(io.load_csv(folder / name).assign(run=folder.name, rewind_step=config.pretrain.steps))
    paths, pairs, summaries = (pd.concat(frames, ignore_index=True).sort_values("rewind_step", kind="stable")
                               for frames in tables.values())
    return paths, pairs, summaries


# Def. A.2's ε across rewind steps: IMP's dense network does not depend on the rewind step, so the paper has one set of
# dense networks for every step; each of lthlib's rewind runs trains its own. "pooled": all of them as one sample (the
# likeliest reading); "per-run": each run's own replicates, as its per-run report.
EPSILON_READINGS = {"pooled": "the dense networks of every rewind step as one sample",
                    "per-run": "each rewind step's own dense networks"}


def dense_reference(summaries: pd.DataFrame, reading: str) -> pd.DataFrame:
    """Per rewind step, the dense test accuracy a level must come within ε of to match (Def. A.2) and ε, the std of
    the dense test accuracy over independently trained networks, by `reading` (`EPSILON_READINGS`); pooled exactly
    from each run's mean, std and count."""
    if reading not in EPSILON_READINGS:
        raise UserError(f"epsilon must be one of {', '.join(EPSILON_READINGS)}, not {reading!r}")
    dense = summaries[summaries["level"] == 0].set_index("rewind_step")
    reference = pd.DataFrame({"dense_accuracy": dense["test_accuracy"], "epsilon": dense["test_accuracy_std"]})
    if reading == "pooled":
        count, mean = dense["replicates"], dense["test_accuracy"]
        pooled = (count * mean).sum() / count.sum()
        variance = (((count - 1) * dense["test_accuracy_std"] ** 2).sum() + (count * (mean - pooled) ** 2).sum()) / max(
            count.sum() - 1, 1)  # one network alone: no spread, as level_summary's std of one replicate
        reference = reference.assign(dense_accuracy=pooled, epsilon=float(np.sqrt(variance)))
    return reference


def with_matching(summaries: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """The levels' `matching` against `dense_reference`'s threshold of their rewind step, and `matching_settled`:
    whether their mean accuracy is more than its std over replicates from that threshold."""
    threshold = reference["dense_accuracy"] - reference["epsilon"]
    margin = summaries["test_accuracy"] - summaries["rewind_step"].map(threshold)
    return summaries.assign(matching=margin >= 0, matching_settled=margin.abs() > summaries["test_accuracy_std"])


def matching_cell(matching: bool, settled: bool) -> str:
    return ("yes" if matching else "no") + ("" if settled else "*")


def rewinding_comparisons(summaries: pd.DataFrame) -> tuple[list[str], list[bool | None]]:
    """Fig. 5: each earlier rewind step against the latest, at the sparsest level the latest one matches: as the
    paper when the earlier one does not match there and is behind by more than the larger std over replicates, the
    opposite when it matches there too by more than its std (`with_matching`'s `matching_settled`), else (or without
    that level) not resolved. One line per comparison, and the outcomes."""
    steps = sorted(summaries["rewind_step"].unique())
    late = summaries[summaries["rewind_step"] == steps[-1]].set_index("level")
    level = int(late.index[late["matching"].astype(bool)].max())
    where = f"level {level} ({100 * late.loc[level, 'fraction_remaining']:.2f}% of weights)"
    lines, outcomes = [], []
    for step in steps[:-1]:
        early = summaries[summaries["rewind_step"] == step].set_index("level")
        if level not in early.index:
            lines.append(f"- rewind step {step} has no {where}: {OUTCOME_WORDS[None]}.")
            outcomes.append(None)
            continue
        gap = late.loc[level, "test_accuracy"] - early.loc[level, "test_accuracy"]
        spread = max(late.loc[level, "test_accuracy_std"], early.loc[level, "test_accuracy_std"])
        matches, settled = bool(early.loc[level, "matching"]), bool(early.loc[level, "matching_settled"])
        outcome = (False if settled else None) if matches else True if gap > spread else None
        verdict = ("matching" if matches else "not matching") + ("" if settled else ", within its std of the threshold")
        lines.append(f"- {where}: {accuracy_text(early.loc[level])}% rewinding to step {step} "
                     f"({verdict}), {accuracy_text(late.loc[level])}% rewinding "
                     f"to step {steps[-1]}: {OUTCOME_WORDS[outcome]}.")
        outcomes.append(outcome)
    return lines, outcomes


def write_rewind_comparison(runs_dir: str | Path, out_dir: str | Path, epsilon: str = "pooled") -> Path:
    """Fig. 2 (left) and Fig. 5 across rewind steps: the piecewise linear path of each rewind step, accuracy vs
    weights remaining, per rewind step which IMP steps are matching and connected, and a verdict for each figure;
    ε and the matching verdicts by the `epsilon` reading (`EPSILON_READINGS`)."""
    out_dir = Path(out_dir)
    paths, pairs, summaries = load_rewind_runs(runs_dir)
    reference = dense_reference(summaries, epsilon)
    summaries = with_matching(summaries, reference)
    threshold = float((1 - reference["dense_accuracy"] + reference["epsilon"]).mean())
    plot_paths(paths, threshold, "test error", out_dir / "lmc_paths_by_rewind.png")
    plot_accuracy_by_run(summaries.assign(label="rewind step " + summaries["rewind_step"].astype(str)),
                         out_dir / "accuracy_by_rewind.png", "IMP by rewind step",
                         matching_from={f"rewind step {step}": row.dense_accuracy - row.epsilon
                                        for step, row in reference.iterrows()})
    rows, step_rows, outcomes = [], [], []
    for step, summary in summaries.groupby("rewind_step"):
        step_epsilon = float(reference.loc[step, "epsilon"])
        claimed = sparse_steps(connectivity_verdicts(summary, pairs[pairs["rewind_step"] == step], step_epsilon))
        both = claimed["matching"] & claimed["next_matching"]
        settled = summary.set_index("level")["matching_settled"]
        resolved = claim_outcomes(claimed, step_epsilon, settled)
        sparsest = summary.loc[summary["matching"].astype(bool), "fraction_remaining"].min()
        matching_from = reference.loc[step, "dense_accuracy"] - step_epsilon
        rows.append(f"| {step} | {100 * summary['test_accuracy'].iloc[0]:.2f} | {100 * step_epsilon:.2f} | "
                    f"{100 * matching_from:.2f} | "
                    f"{100 * sparsest:.2f} | {int(both.sum())} of {len(claimed)} | "
                    f"{int(claimed['connected'].sum())} of {len(claimed)} | "
                    f"{int((both == claimed['connected']).sum())} of {len(claimed)} |")
        step_rows += [f"| {step} {row}"
                      for row in imp_step_rows(claimed, settled, dict(zip(claimed["level"], resolved)))]
        outcomes += resolved
    connectivity = claim_verdict("Fig. 2 (successive IMP solutions are linearly connected if and only if both are "
                                 "matching, at every rewind step)", outcomes, "IMP steps")
    if summaries["rewind_step"].nunique() > 1:
        lines, compared = rewinding_comparisons(summaries)
        latest = summaries["rewind_step"].max()
        rewinding = "\n".join(lines) + "\n\n" + claim_verdict(
            f"Fig. 5 (rewinding to initialisation or early stops matching where rewinding to step {latest} still "
            f"matches)", compared, "rewind steps")
    else:
        rewinding = "Fig. 5 needs two rewind steps or more: not compared."
    text = f"""# IMP by rewind step (Paul et al. 2022, Fig. 2 left and Fig. 5)

{runs_provenance(exported_runs(runs_dir, ()))}

Per rewind step, the successive IMP steps L -> L+1 from level 1 on (Sec. 2.1 leaves the dense step aside): where
both solutions are matching (Def. A.2: test accuracy within ε of the dense networks'), where they are linearly
connected (error barrier, Def. A.1, below ε), and where the two agree (the paper's central claim).
ε: the std of the dense test accuracy over {EPSILON_READINGS[epsilon]} (`--epsilon {epsilon}`).

| rewind step | dense accuracy (%) | ε (%) | matching from (%) | sparsest matching (% remaining) | both matching \
| connected | claim holds |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

![paths](lmc_paths_by_rewind.png)
![accuracy](accuracy_by_rewind.png)

Each step resolves the claim where its mean barrier is more than its std over replicates away from ε, and whether both
solutions are matching is settled (a verdict marked * rests on a mean accuracy within its std of the threshold):

| rewind step | IMP step | w(L) matching | w(L+1) matching | error barrier (%) | linearly connected | the claim |
|---|---|---|---|---|---|---|
{chr(10).join(step_rows)}

{connectivity}

{rewinding}
"""
    with io.atomic_path(out_dir / "rewind.md") as tmp:
        tmp.write_text(text)
    return out_dir / "rewind.md"
