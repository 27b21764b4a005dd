"""Removing the least and most forgotten examples ("Training stability and the LTH", Appendix D, Table 7).

Toneva et al. (2019) train on CIFAR-10 without the examples forgotten least and lose no accuracy; the third
paper asks what that does to stability. Here:
1. every replicate's initialisation trains two copies (different SGD noise) for the whole schedule on the
   whole training set: the table's "original" row, and the full training runs the forgetting scores come
   from (Toneva et al.: events counted at every presentation; inf for an example never learned, so it ranks
   as the most forgotten), averaged over every copy of every replicate;
2. for each fraction f, the f easiest (fewest forgetting events, ties in a seeded random order) or hardest
   examples are removed and the same initialisations train two copies on the rest, for the same schedule
   (as many iterations: more passes over fewer examples);
3. each pair of copies gives its test accuracy (their mean) and the error barrier between them.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import torch
from tqdm.auto import tqdm

from lthlib.analyses.el2n import forgetting_scores
from lthlib.analyses.instability import DenseRun, copy_barrier, noise_seeds
from lthlib.analyses.subsets import rank_examples
from lthlib.core.config import InterpolationConfig
from lthlib.core.train import train_replicates

COLUMNS = ["removed", "fraction", "examples", "replicate", "test_accuracy", "barrier", "barrier_definition",
           "test_examples"]


def train_copies(run: DenseRun) -> tuple[list[list[dict]], torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two copies of every replicate's initialisation trained on `run.data` for the whole schedule: their final
    states ([copy][replicate]), test accuracy [copy x replicates] and forgetting events and learned flags
    [copy x replicates, N]."""
    seeds = [noise_seeds(s, copy) for copy in range(2) for s in run.seeds]
    replicas, log = train_replicates(run.model_name, run.data, run.training, run.init * 2, seeds, 0,
                                     run.training.steps, None, run.augmentation, run.vectorize, run.device,
                                     f"copies on {len(run.data.train_y)} examples")
    finals = [replicas.state_dict(r) for r in range(replicas.count)]
    accuracy = log.curves.test_accuracy[-1].cpu()  # the last point of the curves: the final network
    counter = log.curves.forgetting
    return [finals[:len(run.init)], finals[len(run.init):]], accuracy, counter.events.cpu(), counter.learned.cpu()


def kept_examples(scores: torch.Tensor, removed: str, fraction: float, seed: int) -> torch.Tensor:
    """Sorted indices of the examples left when the `fraction` easiest or hardest by forgetting score are removed."""
    ranked = rank_examples(scores, seed)  # easiest first
    count = round(fraction * len(scores))
    kept = ranked[count:] if removed == "easiest" else ranked[:len(scores) - count]
    return kept.sort().values


def forgetting_removal(run: DenseRun, fractions: tuple[float, ...], evaluation: InterpolationConfig,
                       baseline: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 7: one row per setting (`original`, or `easiest` / `hardest` removed at a fraction) and replicate;
    and the forgetting score of every training example (the ranking)."""
    settings = [("none", 0.0)] + [(removed, f) for removed in ("easiest", "hardest") for f in fractions]
    rows, scores = [], None
    for removed, fraction in tqdm(settings, desc="forgetting removal", unit="setting", leave=False):
        kept = run.data if scores is None else run.data.training_subset(kept_examples(scores, removed, fraction, seed))
        (first, second), accuracy, events, learned = train_copies(replace(run, data=kept))
        if scores is None:
            scores = forgetting_scores(events, learned)[0]
        for r, (a, b) in enumerate(zip(first, second)):
            barrier = copy_barrier(run.model_name, run.data, a, b, evaluation, baseline)[0]
            rows.append({"removed": removed, "fraction": fraction, "examples": len(kept.train_y), "replicate": r,
                         "test_accuracy": float(accuracy.view(2, -1)[:, r].mean()), "barrier": barrier,
                         "barrier_definition": baseline, "test_examples": len(run.data.test_y)})
    return pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame({"forgetting": scores.numpy()})
