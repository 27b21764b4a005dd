"""The data diet's per-run EL2N page (`reports/el2n/`, written by the subset stage): EL2N histograms and the
easiest and hardest images, with a short el2n.md. Without scores (EL2N is computed only for the subset kinds that
rank examples) the page says so in a line and draws nothing. Kept apart from the cross-run data-diet report and
from the el2n stage, so that editing a figure re-runs neither EL2N training nor the data-diet report.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch

from lthlib.core import io
from lthlib.report.common import plt, save_figure


def plot_el2n_histograms(scores: pd.DataFrame, corrupted: torch.Tensor, classes: list, path: str | Path) -> None:
    """One panel per class (the label scored against): EL2N scores of clean and of corrupted examples."""
    columns = math.ceil(math.sqrt(len(classes)))
    rows = math.ceil(len(classes) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 1.9 * rows), sharex=True, squeeze=False)
    corrupted = corrupted.cpu().numpy()
    bins = [i / 20 * math.sqrt(2) for i in range(21)]  # EL2N lies in [0, sqrt(2)]
    for c, axis in enumerate(axes.flat):
        if c >= len(classes):
            axis.axis("off")
            continue
        in_class = (scores["label"] == c).to_numpy()
        axis.hist([scores["score"][in_class & ~corrupted], scores["score"][in_class & corrupted]], bins=bins,
                  stacked=True, color=["tab:blue", "tab:red"], label=["clean", "corrupted"])
        axis.set_title(str(classes[c]), fontsize=8)
        axis.tick_params(labelsize=6)
    axes.flat[0].legend(fontsize=6)
    figure.supxlabel("EL2N score")
    figure.supylabel("examples")
    save_figure(figure, Path(path))


def plot_easiest_hardest(images: torch.Tensor, scores: pd.DataFrame, true_labels: torch.Tensor, classes: list,
                         path: str | Path, count: int = 8) -> None:
    """The `count` easiest (top row) and hardest (bottom row) training images with label and EL2N score."""
    order = scores.sort_values(["score", "index"], kind="stable")["index"].to_numpy()
    figure, axes = plt.subplots(2, count, figsize=(1.4 * count, 3.4), squeeze=False)
    for row, (name, chosen) in enumerate((("easiest", order[:count]), ("hardest", order[::-1][:count]))):
        for axis, index in zip(axes[row], chosen):
            image = images[int(index)].cpu()
            axis.imshow(image[0] if image.shape[0] == 1 else image.permute(1, 2, 0), cmap="gray")
            label, true = int(scores["label"].iloc[index]), int(true_labels[int(index)])
            title = f"{classes[label]}" + ("" if label == true else f"\n(true {classes[true]})")
            axis.set_title(f"{title}\n{scores['score'].iloc[index]:.3f}", fontsize=7)
            axis.axis("off")
        axes[row][0].text(-0.3, 0.5, name, transform=axes[row][0].transAxes, rotation=90, va="center", ha="right")
    save_figure(figure, Path(path))


def write_el2n_page(folder: str | Path, scores: pd.DataFrame, corrupted: torch.Tensor, images: torch.Tensor,
                    true_labels: torch.Tensor, classes: list, kind: str) -> None:
    """reports/el2n/: el2n.md, and histograms.png and examples.png where the run computed EL2N scores (the
    `scores` table's labels are those pretraining sees, after label noise)."""
    with io.atomic_dir(folder) as out:
        if scores["score"].isna().all():
            text = (f"No EL2N scores in this run: they are computed only for the subset kinds that rank examples "
                    f"(easy, hard, forgetting_easy, forgetting_hard); `subset.kind` is {kind}.\n")
        else:
            plot_el2n_histograms(scores, corrupted, classes, out / "histograms.png")
            plot_easiest_hardest(images, scores, true_labels, classes, out / "examples.png")
            noisy = int(corrupted.sum())
            text = (f"EL2N scores of the {len(scores)} training examples (Paul et al. 2021), against the labels "
                    f"pretraining sees ({noisy} of them randomized); `subset.kind` is {kind}.\n\n"
                    "![EL2N by class](histograms.png)\n\n![easiest and hardest](examples.png)\n")
        (out / "el2n.md").write_text("# EL2N scores\n\n" + text)
