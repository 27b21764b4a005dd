"""What a training run records about itself as it goes ("Training stability and the lottery ticket
hypothesis", Sec. 3.2): accuracy curves, their convergence AUC (Eq. 3), and forgetting events
(Toneva et al. 2019).

Each point evaluates the networks on the test set and on as many fixed training examples; forgetting
comes from the predictions the training steps already make (no extra pass over the data).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

# The per-run summary (`TrainingCurves.summary`), as columns of imp.csv: convergence AUC (Eq. 3) of train and test
# accuracy and the forgetting statistics (forgetting_events_std is the std over examples within a run, as Table 1)
SUMMARY_COLUMNS = ("train_auc", "test_auc", "forgetting_events", "forgetting_events_std", "unforgettable",
                   "never_learned")


def convergence_auc(accuracies: torch.Tensor) -> torch.Tensor:
    """Eq. 3: the rescaled area under an accuracy curve, (1/t) sum_{ep=1..t} (acc_ep - acc_0) / (acc_t - acc_0).

    `accuracies` [..., t + 1] holds acc_0 (before training) and the accuracy after each of t epochs.
    1 means the final accuracy was reached after the first epoch; a curve that rises late is near 0.
    """
    if accuracies.shape[-1] < 2:
        raise ValueError("a convergence curve needs the accuracy before training and after at least one epoch")
    gain = accuracies[..., 1:] - accuracies[..., :1]
    return (gain / gain[..., -1:]).mean(-1)


@dataclass(frozen=True)
class CurvePoint:
    """What one point of the curves measures, per network [R]."""

    train_accuracy: torch.Tensor
    test_accuracy: torch.Tensor
    test_loss: torch.Tensor


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
                   torch.zeros(shape, dtype=torch.int32, device=device))

    def update(self, indices: torch.Tensor, correct: torch.Tensor) -> None:
        """Presentations `indices` [R, B] of examples, `correct` [R, B] the predictions made on them: one or
        more training steps of one epoch, so that an example appears at most once (batches are slices of
        one permutation per epoch)."""
        previous = self.last_correct.gather(1, indices)
        self.events.scatter_add_(1, indices, (previous & ~correct).int())
        self.learned.scatter_(1, indices, self.learned.gather(1, indices) | correct)
        self.last_correct.scatter_(1, indices, correct)

    def summary(self) -> dict[str, torch.Tensor]:
        """Per network [R]: forgetting events per example (mean, std), fractions unforgettable and never learned."""
        events = self.events.double()
        return {"forgetting_events": events.mean(1), "forgetting_events_std": events.std(1),
                "unforgettable": (self.learned & (self.events == 0)).double().mean(1),
                "never_learned": (~self.learned).double().mean(1)}

    def per_example(self, replicate: int) -> dict[str, torch.Tensor]:
        """One network's counts [N], for selecting examples by forgetting score later."""
        return {"events": self.events[replicate].cpu(), "learned": self.learned[replicate].cpu()}


@dataclass
class TrainingCurves:
    """Accuracy of R networks at points of one run: the start, then every `interval` steps and the end.

    Every point of both curves is one instrument: the networks in eval mode on fixed clean examples. Train
    accuracy on as many training examples as the test set has (the same ones at every point, not augmented);
    test accuracy, with its loss, on the whole test set (so the run's final evaluation is the last point).
    The running accuracy of the training batches would be cheaper but measures other networks (the weights
    change within an epoch, batch statistics, augmentation) than acc_0 at the start, which no batch gives.

    Forgetting events come from the training steps' own predictions (Toneva et al.: presentations during
    training), kept as they come and counted at `flush` (one batched update instead of several small
    operations per step): the trainer flushes at the end of every epoch, before any example is seen again.
    """

    forgetting: ForgettingCounter
    steps: list[int] = field(default_factory=list)
    train_accuracy: list[torch.Tensor] = field(default_factory=list)  # [R] per point, on the device
    test_accuracy: list[torch.Tensor] = field(default_factory=list)
    test_loss: list[torch.Tensor] = field(default_factory=list)
    _pending: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)  # (indices, correct) [R, B]

    @classmethod
    def start(cls, replicates: int, examples: int, step: int, point: CurvePoint, device="cpu") -> "TrainingCurves":
        curves = cls(ForgettingCounter.start(replicates, examples, device))
        curves.record_point(step, point)
        return curves

    def record_batch(self, indices: torch.Tensor, correct: torch.Tensor) -> None:
        """The predictions [R, B] one training step made on the examples `indices` [R, B]."""
        self._pending.append((indices, correct))

    def flush(self) -> None:
        """Count the forgetting events of the predictions recorded since the last flush (all from one epoch)."""
        if self._pending:
            self.forgetting.update(*(torch.cat(parts, 1) for parts in zip(*self._pending)))
            self._pending.clear()

    def record_point(self, step: int, point: CurvePoint) -> None:
        """A point at `step`: the networks' accuracies [R] measured there."""
        self.flush()
        self.steps.append(step)
        self.train_accuracy.append(point.train_accuracy)
        self.test_loss.append(point.test_loss)
        self.test_accuracy.append(point.test_accuracy)

    def table(self, replicate: int) -> pd.DataFrame:
        """One row per point: step, train_accuracy, test_accuracy, test_loss (the file curves.csv)."""
        return pd.DataFrame({"step": self.steps,
                             **{name: [float(value[replicate]) for value in getattr(self, name)]
                                for name in ("train_accuracy", "test_accuracy", "test_loss")}})

    def summary(self) -> dict[str, torch.Tensor]:
        """Per network [R]: convergence AUC of train and test accuracy (Eq. 3) and the forgetting statistics."""
        return {"train_auc": convergence_auc(torch.stack(self.train_accuracy, 1).cpu().double()),
                "test_auc": convergence_auc(torch.stack(self.test_accuracy, 1).cpu().double()),
                **{name: value.cpu() for name, value in self.forgetting.summary().items()}}
