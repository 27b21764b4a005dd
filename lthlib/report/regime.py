"""The search for a CPU-sized regime in which the papers' phenomena appear (scripts/regime_search.py).

One row per exported run (params.yaml + instability.csv): the configuration, the dense test accuracy, and
the SGD-noise barrier (Frankle et al. 2020: max error on the copies' path minus the mean of the end points')
from initialisation and from each later rewind step, mean ± std over replicates, with a figure of barrier
against rewind step per configuration.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lthlib.core import io
from lthlib.core.config import Config
from lthlib.report.common import exported_runs, markdown_table, plt, save_figure, series_format
from lthlib.report.tickets import mean_std


def configuration(config: Config) -> dict:
    """The settings the search varies, as table cells."""
    train, data = config.train, config.data
    epoch = data.train_examples // train.batch_size if data.train_examples else None
    return {"model": config.model.name, "examples": data.train_examples or "all",
            "image": data.image_size or "stored", "batch": train.batch_size, "lr": f"{train.lr:g}",
            "momentum": f"{train.momentum:g}", "epochs": f"{train.steps / epoch:g}" if epoch else train.steps,
            "warm-up": train.warmup_steps, "augment": "yes" if data.augment else "no"}


def search_table(runs_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table (one row per run) and the barriers behind it (run, rewind_step, replicate, barrier)."""
    rows, barriers = [], []
    for folder, config in exported_runs(runs_dir, ("instability.csv",)):
        table = pd.read_csv(folder / "instability.csv")
        table = table[table["level"] == 0]
        dense = 1 - table[table["rewind_step"] == 0][["error_a", "error_b"]].mean(axis=1)
        row = {"run": folder.name, **configuration(config), "dense accuracy (%)": mean_std(dense),
               "replicates": table["replicate"].nunique()}
        for step, at_step in table.groupby("rewind_step"):
            row[f"barrier from step {step} (%)"] = mean_std(at_step["barrier_mean"])
        seconds = folder / "seconds.txt"
        row["minutes"] = f"{float(seconds.read_text()) / 60:.1f}" if seconds.exists() else "-"
        rows.append(row)
        barriers.append(table.assign(run=folder.name)[["run", "rewind_step", "replicate", "barrier_mean"]])
    return pd.DataFrame(rows).fillna("-"), pd.concat(barriers, ignore_index=True)


def plot_barriers(barriers: pd.DataFrame, threshold: float, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for run, rows in barriers.groupby("run", sort=False):
        by_step = rows.groupby("rewind_step")["barrier_mean"].agg(["mean", "std"]).fillna(0.0)
        axes.errorbar(by_step.index, 100 * by_step["mean"], yerr=100 * by_step["std"],
                      fmt=series_format("o-", len(by_step)), capsize=3,
                      label=run)
    axes.axhline(100 * threshold, color="black", linestyle="--", linewidth=1, label="stable below")
    axes.set_xlabel("rewind step (training step the two copies start from)")
    axes.set_ylabel("error barrier between the copies (%)")
    axes.legend(fontsize=7, ncol=2)
    save_figure(figure, path)


def write_search_report(runs_dir: str | Path, out_dir: str | Path, threshold: float = 0.02) -> Path:
    out_dir = Path(out_dir)
    table, barriers = search_table(runs_dir)
    plot_barriers(barriers, threshold, out_dir / "barriers.png")
    from_init = barriers[barriers["rewind_step"] == 0].groupby("run", sort=False)["barrier_mean"].mean()
    unstable = from_init[from_init >= threshold].index
    text = f"""# The CPU-regime search (scripts/regime_search.py)

Fashion-MNIST, the default pipeline with the settings below changed; each run trains the dense network and two
copies (other data order) from initialisation and from later rewind steps, per replicate. The error barrier
between the copies is Frankle et al. (2020)'s: the maximum test error on 11 evenly spaced points of their
linear path minus the mean of the two end points' errors; stable below {100 * threshold:g} %. Mean ± std over
replicates; minutes of one run on one core of a 2-core CPU whose other core was busy (timings, not results).

{markdown_table(table)}

Unstable from initialisation (mean barrier at least {100 * threshold:g} %): {', '.join(unstable) or 'none'}.

![barrier against rewind step](barriers.png)
"""
    with io.atomic_path(out_dir / "search.md") as tmp:
        tmp.write_text(text)
    return out_dir / "search.md"

