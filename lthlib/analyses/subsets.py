"""The data pretraining sees: a subset of M examples and, optionally, randomized labels.

Data diet, Section 3: subsets are (i) M random examples, distributed equally among the classes,
(ii) the M easiest (lowest EL2N score), (iii) the M hardest (highest EL2N score), or all data.
Appendix A: label noise selects a fraction p of the training set uniformly at random and
redraws each selected label uniformly from the C classes, so about p (1 - 1/C) of the labels
are really changed; the corruption is drawn once and reused across subsets and replicates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pathlib import Path

import pandas as pd
import torch

from lthlib.core import io
from lthlib.core.data import Dataset


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
        raise ValueError(f"subset.size={size!r} gives {count} examples; the training set has {num_examples}")
    return count


def choose_subset(kind: str, count: int, labels: torch.Tensor, scores: torch.Tensor | None = None,
                  seed: int = 0) -> torch.Tensor:
    """Indices of the `count` examples pretraining sees.

    `all`: every example, in order. `random`: equal counts per class of `labels` (a class
    with too few examples gives its share to the others), sorted. `easy` / `hard`: the
    lowest / highest EL2N `scores`, easiest / hardest first. Both read one ranking (by score, ties
    by index) from its two ends, so easy and hard subsets with 2M <= N never overlap.
    """
    labels = labels.cpu()
    if kind == "all":
        return torch.arange(len(labels))
    if kind == "random":
        return _class_balanced(labels, count, torch.Generator().manual_seed(seed))
    if kind in ("easy", "hard"):
        if scores is None:
            raise ValueError(f"subset.kind={kind!r} needs EL2N scores")
        if scores.isnan().any():
            raise ValueError(f"subset.kind={kind!r} needs EL2N scores, and some are missing (re-run the el2n stage)")
        ranked = torch.sort(scores.cpu(), stable=True).indices
        return (ranked if kind == "easy" else ranked.flip(0))[:count]
    raise ValueError(f"unknown subset kind {kind!r}")


def _class_balanced(labels: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    classes = int(labels.max()) + 1
    available = torch.bincount(labels, minlength=classes)
    quotas = balanced_quotas(available, count, generator)
    chosen = []
    for c in range(classes):
        members = torch.nonzero(labels == c).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:quotas[c]]])
    return torch.cat(chosen).sort().values


def balanced_quotas(available: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Per-class counts summing to `count`, as equal as `available` allows (water-filling).

    Every class gets min(available, level) for the largest level that fits; the few examples
    left over go, one each, to classes with room, chosen at random.
    """
    low, high = 0, int(available.max())
    while low < high:  # the largest level with sum(min(available, level)) <= count
        middle = (low + high + 1) // 2
        low, high = (middle, high) if int(available.clamp(max=middle).sum()) <= count else (low, middle - 1)
    quotas = available.clamp(max=low)
    leftover = count - int(quotas.sum())
    with_room = torch.nonzero(available > low).flatten()
    quotas[with_room[torch.randperm(len(with_room), generator=generator)[:leftover]]] += 1
    return quotas


def subset_table(indices: torch.Tensor, scores: pd.DataFrame, noise: LabelNoise, true_labels: torch.Tensor
                 ) -> pd.DataFrame:
    """The chosen examples in subset order: rank, index, label pretraining uses, true label, EL2N score, corrupted."""
    indices = indices.cpu()
    return pd.DataFrame({
        "rank": range(len(indices)), "index": indices.numpy(), "label": noise.labels[indices].numpy(),
        "true_label": true_labels.cpu()[indices].numpy(), "score": scores["score"].to_numpy()[indices.numpy()],
        "corrupted": noise.corrupted[indices].numpy(),
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
    }


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
