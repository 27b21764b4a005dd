"""Training-stability measurements of "Training stability and the lottery ticket hypothesis" (the third
paper): convergence AUC (Eq. 3), forgetting events (Toneva et al. 2019), and the binary search for the
first rewind step that is stable to SGD noise (Appendix B).

Pure functions and one small streaming counter, so that the trainer can feed them the predictions its
training steps already make; nothing here trains a network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


def convergence_auc(accuracies: torch.Tensor) -> torch.Tensor:
    """Eq. 3: the rescaled area under an accuracy curve, (1/t) sum_{ep=1..t} (acc_ep - acc_0) / (acc_t - acc_0).

    `accuracies` [..., t + 1] holds acc_0 (before training) and the accuracy after each of t epochs.
    1 means the final accuracy was reached after the first epoch; a curve that rises late is near 0.
    """
    if accuracies.shape[-1] < 2:
        raise ValueError("a convergence curve needs the accuracy before training and after at least one epoch")
    gain = accuracies[..., 1:] - accuracies[..., :1]
    return (gain / gain[..., -1:]).mean(-1)


@dataclass
class ForgettingCounter:
    """Forgetting events of N training examples in R networks, from the predictions of the training steps.

    Toneva et al. (2019): an example is *forgotten* when it was classified correctly the last time it was
    seen and incorrectly now; *unforgettable* when it was learned (correct at least once) and never
    forgotten. Examples never learned are counted apart: they have no forgetting event but are not
    unforgettable.
    """

    last_correct: torch.Tensor  # [R, N] bool: correct at the last presentation
    learned: torch.Tensor  # [R, N] bool: correct at some presentation
    events: torch.Tensor  # [R, N] int: forgetting events so far

    @classmethod
    def start(cls, replicates: int, examples: int, device="cpu") -> "ForgettingCounter":
        shape = (replicates, examples)
        return cls(torch.zeros(shape, dtype=torch.bool, device=device),
                   torch.zeros(shape, dtype=torch.bool, device=device),
                   torch.zeros(shape, dtype=torch.int64, device=device))

    def update(self, indices: torch.Tensor, correct: torch.Tensor) -> None:
        """One training step: `indices` [R, B] of the examples each network saw, `correct` [R, B] its predictions.

        An example appears at most once per batch (batches are slices of a permutation)."""
        previous = self.last_correct.gather(1, indices)
        self.events.scatter_add_(1, indices, (previous & ~correct).long())
        self.learned.scatter_(1, indices, self.learned.gather(1, indices) | correct)
        self.last_correct.scatter_(1, indices, correct)

    def summary(self) -> dict[str, torch.Tensor]:
        """Per network [R]: mean forgetting events per example, fractions unforgettable and never learned."""
        return {"forgetting_events": self.events.double().mean(1),
                "unforgettable": (self.learned & (self.events == 0)).double().mean(1),
                "never_learned": (~self.learned).double().mean(1)}


def first_stable_step(is_stable: Callable[[int], bool], candidates: Sequence[int], probes: int,
                      known: dict[int, bool] | None = None) -> tuple[int | None, int | None]:
    """Appendix B: the earliest candidate rewind step whose copies are stable, by binary search.

    Assumes stability, once reached, persists. The first probe checks the last candidate (if it is
    unstable, no step is: returns (None, last)); each further probe halves the bracket (last unstable,
    first stable). With `probes` = ceil(log2 n) + 1 for n candidates the answer is exact (the paper:
    9 probes for 200 epochs); fewer probes return the bracket's stable end, an upper bound.
    `known` caches every probed step's verdict, so a repeated or refined search re-trains no copy.
    Returns (first stable step found, last unstable step known, or None when the first candidate is stable).
    """
    if probes < 1:
        raise ValueError(f"the binary search needs at least one probe, got {probes}")
    steps = sorted(candidates)
    known = {} if known is None else known

    def stable(index: int) -> bool:
        nonlocal probes
        step = steps[index]
        if step not in known:
            probes -= 1
            known[step] = bool(is_stable(step))
        return known[step]

    if not stable(len(steps) - 1):
        return None, steps[-1]
    # the bracket: steps[low] unstable (-1: before the first candidate), steps[high] stable; start from
    # the tightest one the cache already proves
    low = max((i for i, step in enumerate(steps) if known.get(step) is False), default=-1)
    high = min(i for i, step in enumerate(steps) if i > low and known.get(step))
    while high - low > 1 and (probes > 0 or steps[(low + high) // 2] in known):
        middle = (low + high) // 2
        low, high = (low, middle) if stable(middle) else (middle, high)
    return steps[high], None if low < 0 else steps[low]

