"""The data pretraining sees: a subset of M examples and, optionally, randomized labels.

Data diet, Section 3: subsets are (i) M random examples, distributed equally among the classes,
(ii) the M easiest (lowest EL2N score), (iii) the M hardest (highest EL2N score), or all data.
"Training stability and the LTH", Appendix D (after Toneva et al. 2019): the M examples with the fewest
or the most forgetting events (Table 7 removes the easiest or the hardest 20 % or 50 %).
Appendix A: label noise selects a fraction p of the training set uniformly at random and
redraws each selected label uniformly from the C classes, so about p (1 - 1/C) of the labels
are really changed; the corruption is drawn once and reused across subsets and replicates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lthlib.core import io
from lthlib.core.data import Dataset, class_balanced
from lthlib.core.errors import UserError


@dataclass(frozen=True)
class Ranking:
    """How a subset kind that keeps one end of a ranking orders the training examples."""

    column: str  # of data/el2n/scores.csv
    name: str  # of the score, in messages
    keeps_highest: bool  # the hardest examples
    shuffles_ties: bool  # ties in a random order drawn from subset.seed, instead of by index


# EL2N scores are continuous, so ties are rare and go to the lower index. Forgetting events are small counts:
# most examples tie (0 events, or never learned), and ties broken by index would favour the start of the set.
RANKINGS = {"easy": Ranking("score", "EL2N scores", False, False),
            "hard": Ranking("score", "EL2N scores", True, False),
            "forgetting_easy": Ranking("forgetting", "forgetting scores", False, True),
            "forgetting_hard": Ranking("forgetting", "forgetting scores", True, True)}


@dataclass
class LabelNoise:
    """Labels after randomization, and which examples were selected / really changed ([N] each)."""

    labels: torch.Tensor
    selected: torch.Tensor  # bool: the label was redrawn
    corrupted: torch.Tensor  # bool: the redrawn label differs from the true one

    def as_tensors(self) -> dict[str, torch.Tensor]:
        return dataclasses.asdict(self)


def randomize_labels(labels: torch.Tensor, num_classes: int, fraction: float, seed: int) -> LabelNoise:
    """Redraw the labels of round(fraction * N) uniformly chosen examples uniformly from the classes."""
    generator = torch.Generator().manual_seed(seed)
    count = round(fraction * len(labels))
    chosen = torch.randperm(len(labels), generator=generator)[:count]
    noisy = labels.cpu().clone()
    noisy[chosen] = torch.randint(0, num_classes, (count,), generator=generator)
    selected = torch.zeros(len(labels), dtype=torch.bool)
    selected[chosen] = True
    return LabelNoise(noisy, selected, noisy != labels.cpu())


def subset_size(size: int | float, num_examples: int) -> int:
    """M from `subset.size`: an int counts examples, a float is a fraction of the training set."""
    count = size if isinstance(size, int) else round(size * num_examples)
    if not 1 <= count <= num_examples:
        raise UserError(f"subset.size={size!r} gives {count} examples; the training set has {num_examples}")
    return count


def choose_subset(kind: str, count: int, labels: torch.Tensor, scores: torch.Tensor | None = None,
                  seed: int = 0) -> torch.Tensor:
    """Indices of the `count` examples pretraining sees.

    `all`: every example, in order. `random`: equal counts per class of `labels` (a class
    with too few examples gives its share to the others), sorted. `easy` / `hard`: the
    lowest / highest EL2N `scores`, easiest / hardest first; `forgetting_easy` / `forgetting_hard`
    the same by forgetting score, ties in an order drawn from `seed`. Each pair reads one ranking
    from its two ends, so its two subsets with 2M <= N never overlap.
    """
    labels = labels.cpu()
    if kind == "all":
        return torch.arange(len(labels))
    if kind == "random":
        return class_balanced(labels, count, torch.Generator().manual_seed(seed))
    if kind in RANKINGS:
        ranking = RANKINGS[kind]
        if scores is None:
            raise UserError(f"subset.kind={kind!r} needs {ranking.name}")
        if scores.isnan().any():
            raise UserError(f"subset.kind={kind!r} needs {ranking.name}, and some are missing (re-run the el2n stage)")
        ranked = rank_examples(scores.cpu(), seed if ranking.shuffles_ties else None)
        return (ranked.flip(0) if ranking.keeps_highest else ranked)[:count]
    raise ValueError(f"unknown subset kind {kind!r}")


def rank_examples(scores: torch.Tensor, tie_seed: int | None = None) -> torch.Tensor:
    """Example indices by increasing score [N]; ties by index or, with `tie_seed`, in a random order drawn from it."""
    if tie_seed is None:
        return torch.sort(scores, stable=True).indices
    order = torch.randperm(len(scores), generator=torch.Generator().manual_seed(tie_seed))
    return order[torch.sort(scores[order], stable=True).indices]


def ranking_scores(kind: str, scores: pd.DataFrame) -> torch.Tensor | None:
    """The column of the el2n stage's table that `kind` ranks by [N]; None for the kinds that rank nothing."""
    return torch.tensor(scores[RANKINGS[kind].column].to_numpy()) if kind in RANKINGS else None


def subset_table(indices: torch.Tensor, scores: pd.DataFrame, noise: LabelNoise, true_labels: torch.Tensor
                 ) -> pd.DataFrame:
    """The chosen examples in subset order: rank, index, label pretraining uses, true label, EL2N score,
    forgetting score, corrupted."""
    indices = indices.cpu()
    return pd.DataFrame({
        "rank": range(len(indices)), "index": indices.numpy(), "label": noise.labels[indices].numpy(),
        "true_label": true_labels.cpu()[indices].numpy(), "score": scores["score"].to_numpy()[indices.numpy()],
        "forgetting": scores["forgetting"].to_numpy()[indices.numpy()], "corrupted": noise.corrupted[indices].numpy(),
    })


def subset_summary(kind: str, size: int | float, table: pd.DataFrame, num_examples: int, num_classes: int) -> dict:
    """Metrics of a chosen subset; `corrupted_fraction` is what Fig. 3's easy subsets keep low."""
    per_class = table["label"].value_counts().reindex(range(num_classes), fill_value=0)
    return {
        "kind": kind, "size": size, "examples": len(table), "fraction_of_training_set": len(table) / num_examples,
        "corrupted": int(table["corrupted"].sum()), "corrupted_fraction": float(table["corrupted"].mean()),
        # None, not NaN (invalid JSON), when no EL2N scores were computed
        "score_mean": _number(table["score"].mean()), "score_max": _number(table["score"].max()),
        "examples_per_class_min": int(per_class.min()), "examples_per_class_max": int(per_class.max()),
        **_forgetting_summary(table["forgetting"]),
    }


def _forgetting_summary(forgetting: pd.Series) -> dict:
    """The chosen examples' forgetting: as Table 1, examples never learned (score inf, also not valid JSON) are
    counted apart from the mean; None when no forgetting scores were computed."""
    keys = ("forgetting_mean", "unforgettable_fraction", "never_learned_fraction")
    if forgetting.isna().all():
        return dict.fromkeys(keys)
    never_learned = np.isinf(forgetting)
    return dict(zip(keys, (_number(forgetting[~never_learned].mean()), float((forgetting == 0).mean()),
                           float(never_learned.mean()))))


def _number(value) -> float | None:
    return None if pd.isna(value) else float(value)


def noise_summary(noise: LabelNoise, fraction: float, seed: int, num_classes: int) -> dict:
    count = len(noise.labels)
    return {
        "label_noise": fraction, "label_noise_seed": seed, "examples": count, "selected": int(noise.selected.sum()),
        "corrupted": int(noise.corrupted.sum()), "corrupted_fraction": float(noise.corrupted.float().mean()),
        "expected_corrupted_fraction": fraction * (1 - 1 / num_classes),
    }


def pretraining_data(dataset: Dataset, noise_path: str | Path, subset_path: str | Path) -> Dataset:
    """What phase 1 of IMP trains on: the `subset` stage's examples with the `noise` stage's labels."""
    labels = io.load_tensors(noise_path)["labels"]
    indices = torch.tensor(io.load_csv(subset_path)["index"].to_numpy())
    return dataset.training_subset(indices, labels)
