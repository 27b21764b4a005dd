"""The comparison of pretraining schemes across runs (data diet), drawn from exported tables only.

One folder per DVC experiment (see scripts/data_diet_grid.sh): accuracy vs sparsity per scheme (data
diet, Fig. 2; Fig. 3 with label noise), accuracy vs subset size at fixed sparsities (Fig. 4), and the
dominance relations of Definitions 3.1 / 3.2 in words. The per-run EL2N figures are in report/el2n.py.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.ticker
import pandas as pd

from lthlib.core import io
from lthlib.report.common import exported_runs, plt, runs_provenance, save_figure, sparsity_axis


def load_runs(runs_dir: str | Path) -> pd.DataFrame:
    """One row per run and level from exported runs (params.yaml, imp_summary.csv, subset.json if any)."""
    frames, runs = [], exported_runs(runs_dir, ("imp_summary.csv",))
    for folder, config in runs:
        summary = io.load_csv(folder / "imp_summary.csv")
        summary = summary[["level", "fraction_remaining", "test_accuracy", "test_accuracy_std"]].copy()
        summary["run"] = folder.name
        summary["kind"] = config.subset.kind
        summary["size"] = 1.0 if config.subset.kind == "all" else config.subset.size
        summary["rewind_step"] = config.pretrain.steps
        summary["label_noise"] = config.data.label_noise
        summary["per_class"], summary["corrupted"] = _subset_composition(folder / "subset.json")
        summary["setup"] = (f"{config.model.name} on {config.data.name}, {config.replicates} replicates, "
                            f"{config.pruning.levels} levels of {config.pruning.ratio:g} pruning, "
                            f"{config.train.steps} training steps per level")
        frames.append(summary)
    table = pd.concat(frames, ignore_index=True)
    table.attrs["provenance"] = runs_provenance(runs)
    return table


def _subset_composition(path: Path) -> tuple[str, str]:
    """What pretraining saw, from the run's `reports/subset.json`: examples per class (min-max), % corrupted."""
    if not path.exists():
        return "", ""
    subset = io.load_json(path)
    return (f"{subset['examples_per_class_min']}-{subset['examples_per_class_max']}",
            f"{100 * subset['corrupted_fraction']:.1f}")


def scheme_name(kind: str, size, rewind_step: int, label_noise: float) -> str:
    data = "all data" if kind == "all" else f"{kind} {size:g}" if isinstance(size, float) else f"{kind} {size}"
    return f"{data}, t_r={rewind_step}" + (f", {100 * label_noise:g}% noise" if label_noise else "")


def dominance(candidate: pd.DataFrame, reference: pd.DataFrame) -> str:
    """Definition 3.1 over the sparse levels both runs have: 'dominates' when the candidate's mean
    accuracy is above the reference's by more than the reference's replicate std at every level,
    'weakly dominates' when it is never below it by more than that std, else 'does not dominate'."""
    joined = candidate.merge(reference, on="level", suffixes=("", "_ref"))
    joined = joined[joined["level"] > 0]
    if joined.empty:
        return "not comparable"
    margin = joined["test_accuracy"] - joined["test_accuracy_ref"]
    if (margin > joined["test_accuracy_std_ref"]).all():
        return "dominates"
    if (margin >= -joined["test_accuracy_std_ref"]).all():
        return "weakly dominates"
    return "does not dominate"


def compare_schemes(runs: pd.DataFrame, t_star: int | None = None) -> tuple[list[str], int]:
    """Sentences stating, for every run, whether it dominates the full-data rewind points w_{t*} and
    w_{t*/2} (noise-free), i.e. whether it is a matching initialization for t* (Definition 3.2)."""
    clean_all = runs[(runs["kind"] == "all") & (runs["label_noise"] == 0)]
    t_star = t_star if t_star is not None else int(clean_all["rewind_step"].max()) if len(clean_all) else 0
    references = {step: clean_all[clean_all["rewind_step"] == step] for step in (t_star, t_star // 2)}
    sentences = []
    for run, frame in runs.groupby("run", sort=False):
        first = frame.iloc[0]
        name = scheme_name(first["kind"], first["size"], int(first["rewind_step"]), first["label_noise"])
        verdicts = {step: dominance(frame, reference) for step, reference in references.items()
                    if not reference.empty and reference["run"].iloc[0] != run}
        if verdicts:
            matching = verdicts.get(t_star) in ("dominates", "weakly dominates")
            sentences.append(f"- `{run}` ({name}) " + " and ".join(
                f"{verdict} w_{{{step}}} (all data, t_r={step})" for step, verdict in verdicts.items())
                + (": a matching initialization for t*." if matching else "."))
    return sentences, t_star


def figure_verdicts(runs: pd.DataFrame, t_star: int) -> list[str]:
    """The paper's Fig. 2 and Fig. 3 claims, each reproduced / not reproduced / inconclusive. Fig. 2: easy subsets
    at t*/2 give a matching initialization for t* where all data at t*/2 does not (the paper's premise: without it
    there is no gap to close). Fig. 3: with randomized labels, the easy subset at t*/2 stays matching for t* while
    all data or a random subset at t*/2 stops being so."""
    clean_all = runs[(runs["kind"] == "all") & (runs["label_noise"] == 0)]
    reference = clean_all[clean_all["rewind_step"] == t_star]
    at_half = runs[runs["rewind_step"] == t_star // 2]
    if reference.empty:
        return [f"**Fig. 2 and 3**: inconclusive: no run on all data at t* = {t_star} to compare with."]

    def matching(kinds, noisy: bool) -> list[tuple[str, bool]]:
        chosen = at_half[at_half["kind"].isin(kinds) & ((at_half["label_noise"] > 0) == noisy)]
        return [(run, dominance(frame, reference) in ("dominates", "weakly dominates"))
                for run, frame in chosen.groupby("run", sort=False)]

    def names(pairs) -> str:
        return ", ".join(f"`{run}`" for run, _ in pairs)

    full, easy = matching(["all"], False), matching(["easy"], False)
    if not full or not easy:
        fig2 = "inconclusive: it needs a run on all data and one on an easy subset, both at t*/2"
    elif all(match for _, match in full):
        fig2 = (f"inconclusive: all data at t*/2 = {t_star // 2} is already a matching initialization for t*, so there "
                f"is no gap for a subset to close")
    elif any(match for _, match in easy):
        fig2 = f"reproduced: {names([e for e in easy if e[1]])} matching for t* at t*/2, all data at t*/2 not"
    else:
        fig2 = f"not reproduced: no easy subset at t*/2 ({names(easy)}) is a matching initialization for t*"
    noisy_easy, noisy_other = matching(["easy"], True), matching(["all", "random"], True)
    if not noisy_easy or not noisy_other:
        fig3 = "inconclusive: it needs, with label noise, an easy subset and all data or a random subset at t*/2"
    elif all(match for _, match in noisy_other):
        fig3 = (f"inconclusive: with label noise, all data or a random subset at t*/2 ({names(noisy_other)}) is still "
                f"a matching initialization for t*: the noise did no harm for the easy subset to avoid")
    elif any(match for _, match in noisy_easy):
        fig3 = (f"reproduced: with label noise, {names([e for e in noisy_easy if e[1]])} matching for t*, "
                f"{names([o for o in noisy_other if not o[1]])} not")
    else:
        fig3 = f"not reproduced: with label noise, no easy subset at t*/2 ({names(noisy_easy)}) is matching for t*"
    return [f"**Fig. 2** (the easiest examples give a matching initialization for t* in t*/2 steps): {fig2}.",
            f"**Fig. 3** (and so they do with randomized labels, where all data does not): {fig3}."]


# Fig. 2's colours and markers per subset kind (noisy all-data runs in purple)
KIND_STYLES = {"random": ("tab:green", "o"), "easy": ("tab:red", "^"), "hard": ("tab:pink", "x"),
               "all": ("tab:purple", "s")}


def _baseline_color(step: int, t_star: int) -> str:
    """The paper's dashed baselines: rewind 0 yellow, t*/2 orange, t* blue."""
    return {0: "gold", t_star // 2: "tab:orange", t_star: "tab:blue"}.get(step, "grey")


def _best_size(frame: pd.DataFrame) -> pd.DataFrame:
    """Fig. 2 shows, per subset kind, the size whose sparse levels have the best mean accuracy."""
    sparse = frame[frame["level"] > 0].groupby("run")["test_accuracy"].mean()
    return frame[frame["run"] == sparse.idxmax()]


def _plot_with_spread(axis, frame: pd.DataFrame, **style) -> None:
    """Mean test accuracy vs weights remaining, shaded by one standard deviation over replicates."""
    x, mean, std = 100 * frame["fraction_remaining"], 100 * frame["test_accuracy"], 100 * frame["test_accuracy_std"]
    axis.plot(x, mean, **style)
    axis.fill_between(x, mean - std, mean + std, color=style["color"], alpha=0.15, linewidth=0)


def plot_schemes_vs_sparsity(runs: pd.DataFrame, t_star: int, path: str | Path) -> None:
    """Fig. 2 (noise-free panel) and Fig. 3 (one panel per label-noise level): accuracy vs weights remaining."""
    noises = sorted(runs["label_noise"].unique())
    figure, axes = plt.subplots(1, len(noises), figsize=(6 * len(noises), 4.2), squeeze=False)
    baselines = runs[(runs["kind"] == "all") & (runs["label_noise"] == 0)]
    for axis, noise in zip(axes[0], noises):
        for step, frame in baselines.groupby("rewind_step"):
            _plot_with_spread(axis, frame, ls="--", color=_baseline_color(step, t_star),
                              label=f"all data, t_r={step}" + (" (t*)" if step == t_star else ""))
        noisy = runs[runs["label_noise"] == noise]
        for kind, (color, marker) in KIND_STYLES.items():
            chosen = noisy[noisy["kind"] == kind]
            if kind == "all":
                chosen = chosen if noise > 0 else chosen.iloc[0:0]  # noise-free all-data runs are the baselines
            if chosen.empty:
                continue
            for run, frame in (_best_size(chosen).groupby("run") if kind != "all" else chosen.groupby("run")):
                first = frame.iloc[0]
                _plot_with_spread(axis, frame, marker=marker, color=color,
                                  label=scheme_name(kind, first["size"], int(first["rewind_step"]), 0))
        sparsity_axis(axis)
        axis.set_ylabel("test accuracy (%)")
        axis.set_title("no label noise" if noise == 0 else f"{100 * noise:g}% of labels randomized in pretraining")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=7)
    save_figure(figure, Path(path))


def plot_accuracy_vs_subset_size(runs: pd.DataFrame, levels: list[int], t_star: int, path: str | Path) -> None:
    """Fig. 4: accuracy vs subset size at fixed levels (sparsities), one line per subset kind and noise,
    with the noise-free full-data rewind points as horizontal lines."""
    figure, axes = plt.subplots(1, len(levels), figsize=(4.6 * len(levels), 3.8), squeeze=False)
    subsets = runs[runs["kind"].isin(["random", "easy", "hard"])]
    baselines = runs[(runs["kind"] == "all") & (runs["label_noise"] == 0)]
    for axis, level in zip(axes[0], levels):
        at_level = subsets[subsets["level"] == level]
        for (kind, noise, step), frame in at_level.groupby(["kind", "label_noise", "rewind_step"]):
            frame = frame.sort_values("size")
            color, marker = KIND_STYLES[kind]
            axis.plot(frame["size"], 100 * frame["test_accuracy"], marker=marker, color=color,
                      ls="-" if noise == 0 else "--" if noise < 0.3 else ":",
                      label=f"{kind}, t_r={step}" + (f", {100 * noise:g}% noise" if noise else ""))
        for step, frame in baselines[baselines["level"] == level].groupby("rewind_step"):
            axis.axhline(100 * frame["test_accuracy"].iloc[0], ls="--", color=_baseline_color(step, t_star),
                         label=f"all data, t_r={step}")
        remaining = runs.loc[runs["level"] == level, "fraction_remaining"]
        axis.set_title(f"level {level}: {100 * remaining.mean():.1f}% weights remaining", fontsize=9)
        _subset_size_axis(axis, sorted(subsets["size"].unique()))
        axis.set_ylabel("test accuracy (%)")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=6)
    save_figure(figure, Path(path))


def _subset_size_axis(axis, sizes: list) -> None:
    """Log-scaled subset sizes, ticked at the sizes the grid ran: fractions in %, counts as they are."""
    axis.set_xscale("log")
    axis.set_xticks(sizes, [f"{100 * size:g}%" if isinstance(size, float) else str(size) for size in sizes])
    axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axis.set_xlabel("subset size M")


def write_data_diet_report(runs: pd.DataFrame, out_dir: str | Path, t_star: int | None = None,
                           levels: list[int] | None = None) -> str:
    """Figures 2-4 and `data_diet.md` with the dominance relations; returns the markdown."""
    out_dir = Path(out_dir)
    sentences, t_star = compare_schemes(runs, t_star)
    last = int(runs["level"].max())
    levels = levels or sorted({max(1, last - 4), max(1, last - 2), last})
    plot_schemes_vs_sparsity(runs, t_star, out_dir / "data_diet_sparsity.png")
    plot_accuracy_vs_subset_size(runs, levels, t_star, out_dir / "data_diet_subset_size.png")
    table = 100 * runs[runs["level"].isin(levels)].pivot_table(index="run", columns="level", values="test_accuracy")
    table.columns = [f"level {c}" for c in table.columns]
    table = table.join(runs.groupby("run")[["per_class", "corrupted"]].first().rename(
        columns={"per_class": "pretraining examples per class", "corrupted": "of them corrupted (%)"}))
    markdown = f"""# Pretraining on a data diet

{runs['run'].nunique()} runs of {' / '.join(runs['setup'].unique())}; t* = {t_star}. A run *dominates* \
(*weakly dominates*) a reference when,
at every pruned level both have, its mean test accuracy is above the reference's by more than
(not below it by more than) the reference's standard deviation over replicates (Definition 3.1).
A run that weakly dominates w_{{t*}} is a *matching initialization* for t* (Definition 3.2).

{runs.attrs.get("provenance", "")}

{chr(10).join(sentences) or '- No noise-free full-data reference run (subset.kind all, label_noise 0).'}

{(chr(10) * 2).join(figure_verdicts(runs, t_star))}

## Test accuracy (%) at levels {levels}

{_markdown_table(table)}

![accuracy vs weights remaining per scheme (Fig. 2, 3)](data_diet_sparsity.png)

![accuracy vs subset size (Fig. 4)](data_diet_subset_size.png)
"""
    with io.atomic_path(out_dir / "data_diet.md") as tmp:
        tmp.write_text(markdown)
    return markdown


def _markdown_table(table: pd.DataFrame) -> str:
    header = "| run | " + " | ".join(table.columns) + " |"
    rows = [f"| {run} | " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in values) + " |"
            for run, values in table.iterrows()]
    return "\n".join([header, "|---" * (len(table.columns) + 1) + "|", *rows])
