"""Tickets against their baselines, and tickets trained on little data.

A ticket of level L is m(L) * w_{t_r}: the level's mask on the rewind point. "Is it a winning ticket?" is
answered against two baselines (Frankle & Carbin 2019; OpenLTH's branches), trained exactly like the level
(the same schedule from t_r, the same data order) so that only the weights or the mask differ:
- random reinit: the level's mask on a fresh initialisation;
- random pruning: a random mask with the level's per-layer sparsity on w_{t_r} (`permuted_mask`).
Few-shot ("Training stability and the LTH", Sec. 5.2): tickets and the dense network at w_{t_r} train on
the same class-balanced random subset of the training set (one per replicate), for as many epochs of the subset
as a level trains epochs of the whole set (coreset work's budget), or for the level's iterations
(`few_shot.budget`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from lthlib.core import io
from lthlib.core.config import Config, FewShotConfig, TrainConfig
from lthlib.core.data import Dataset, class_balanced, derive_seed
from lthlib.core.errors import UserError
from lthlib.core.models import build_model, prunable_names
from lthlib.core.pruning import dense_mask, fraction_remaining, permuted_mask, projection
from lthlib.core.train import ReplicateSeeds, evaluate, initial_states, replicate_seeds, train_replicates

# purposes of derived seeds, apart from IMP's runs (0 .. levels + 1) and the instability copies
REINIT, RANDOM_MASK, FEW_SHOT = 7001, 7002, 7003
BASELINES = ("random_reinit", "random_pruning")
BASELINE_COLUMNS = ["level", "baseline", "replicate", "fraction_remaining", "test_accuracy", "test_loss",
                    "test_examples"]
FEW_SHOT_COLUMNS = ["fraction", "examples", "level", "replicate", "fraction_remaining", "train_steps",
                    "test_accuracy", "test_examples"]


@dataclass
class Tickets:
    """What the ticket stages read from IMP: every studied replicate's rewind point, init seeds and masks."""

    model_name: str
    seed: int
    rewind_step: int
    rewind: list[dict]  # w_{t_r} per replicate
    seeds: list[ReplicateSeeds]
    masks: dict[int, list[dict]]  # level -> m(L) per replicate

    @property
    def replicates(self) -> int:
        return len(self.rewind)

    def ticket(self, level: int, replicate: int) -> dict:
        """m(L) * w_{t_r} (level 0: the dense network at the rewind point)."""
        state = self.rewind[replicate]
        return state if level == 0 else projection(state, self.masks[level][replicate])

    def random_pruning_mask(self, level: int, replicate: int) -> dict:
        """The level's mask with every layer's entries permuted (seeded per level and replicate)."""
        generator = torch.Generator().manual_seed(derive_seed(self.seed, RANDOM_MASK, level, replicate))
        return permuted_mask(self.masks[level][replicate], generator)

    def randomly_pruned(self, level: int, replicate: int) -> dict:
        """The random-pruning baseline of a ticket: its permuted mask on w_{t_r}."""
        return projection(self.rewind[replicate], self.random_pruning_mask(level, replicate))


def load_tickets(config: Config, pretrain_dir: str | Path, imp_dir: str | Path) -> Tickets:
    """The tickets of `tickets.levels` for the first `tickets.replicates` replicates (0: all)."""
    replicates = config.studied_replicates(config.tickets)
    rewind = [io.load_tensors(io.replicate_dir(pretrain_dir, r) / "rewind.pt") for r in range(replicates)]
    masks = {level: [io.load_tensors(io.level_dir(imp_dir, r, level) / "mask.pt") for r in range(replicates)]
             for level in config.tickets.levels}
    return Tickets(config.model.name, config.seed, config.pretrain.steps, rewind,
                   replicate_seeds(config.seed, replicates), masks)


def reinitialised(tickets: Tickets, dataset: Dataset) -> list[dict]:
    """A fresh initialisation per replicate, independent of IMP's (seeded from the replicate's init seed)."""
    seeds = [derive_seed(s.init, REINIT) for s in tickets.seeds]
    return initial_states(tickets.model_name, dataset.input_shape, dataset.num_classes, seeds)


def train_baselines(tickets: Tickets, dataset: Dataset, schedule: TrainConfig, augmentation: bool = False,
                    vectorize: bool = True, device="cpu") -> pd.DataFrame:
    """One row per level, baseline and replicate: both baselines of every level trained like the level
    (level L's run seeds, t_r to the end of `schedule`), all of them together (one schedule, one vectorised run);
    no rows (and no training) when no level is studied."""
    networks = [(level, baseline, r) for level in tickets.masks for baseline in BASELINES
                for r in range(tickets.replicates)]
    if not networks:
        return pd.DataFrame(columns=BASELINE_COLUMNS)
    fresh = reinitialised(tickets, dataset)
    starts = [fresh[r] if baseline == "random_reinit" else tickets.rewind[r] for _, baseline, r in networks]
    masks = [tickets.masks[level][r] if baseline == "random_reinit" else tickets.random_pruning_mask(level, r)
             for level, baseline, r in networks]
    seeds = [tickets.seeds[r].for_run(level + 1) for level, _, r in networks]
    replicas, _ = train_replicates(tickets.model_name, dataset, schedule, starts, seeds, tickets.rewind_step,
                                   schedule.steps, masks, augmentation, vectorize, device, "baselines", curves=False)
    loss, accuracy = evaluate(replicas, dataset, "test", schedule.eval_batch_size, vectorize)
    rows = [{"level": level, "baseline": baseline, "replicate": r, "fraction_remaining": fraction_remaining(mask),
             "test_accuracy": float(accuracy[index]), "test_loss": float(loss[index]),
             "test_examples": len(dataset.test_y)}
            for index, ((level, baseline, r), mask) in enumerate(zip(networks, masks))]
    return pd.DataFrame(rows, columns=BASELINE_COLUMNS)


def few_shot_subset(labels: torch.Tensor, fraction: float, seed: int, replicate: int = 0) -> torch.Tensor:
    """Sec. 5.2: round(fraction * N) examples, equally many per class, drawn per replicate from (seed, their count,
    the replicate): the spread over replicates includes the sampling of the subset."""
    count = round(fraction * len(labels))
    return class_balanced(labels, count, torch.Generator().manual_seed(derive_seed(seed, count, replicate)))


def few_shot_schedule(schedule: TrainConfig, start: int, examples: int, budget: FewShotConfig,
                      epoch_steps: int) -> tuple[TrainConfig, int]:
    """The schedule a subset of `examples` trains on and its start step. `steps`: the level's own, from t_r =
    `start` to the end. `epochs`: `budget.epochs` passes over the subset (0: as many as a level makes over the
    whole training set, whose epoch is `epoch_steps`; coreset work, e.g. DeepCore, trains subsets this way),
    from step 0, with the level's schedule from t_r compressed onto them (milestones and warm-up scaled; a cosine
    runs whole)."""
    if budget.budget == "steps":
        return schedule, start
    level_steps = schedule.steps - start
    epochs = budget.epochs or level_steps / epoch_steps
    steps = max(1, round(epochs * (examples // schedule.batch_size)))
    scale = steps / level_steps
    milestones = tuple(sorted({round((m - start) * scale) for m in schedule.milestones if m > start} - {0, steps}))
    warmup = round(max(0, schedule.warmup_steps - start) * scale)
    return dataclasses.replace(schedule, steps=steps, milestones=milestones, warmup_steps=warmup), 0


def train_few_shot(tickets: Tickets, dataset: Dataset, schedule: TrainConfig, budget: FewShotConfig,
                   augmentation: bool = False, vectorize: bool = True, device="cpu") -> pd.DataFrame:
    """One row per fraction, network (`dense` or a level) and replicate: the dense network at w_{t_r} and every
    ticket of a replicate trained together on that replicate's subset, with the same data order; no rows (and
    no training) when no level is studied: there is no ticket to compare."""
    fractions = budget.fractions if tickets.masks else ()
    levels = [0, *tickets.masks]
    names = prunable_names(build_model(tickets.model_name, dataset.input_shape, dataset.num_classes))
    for fraction in fractions:  # every subset is checked before any trains
        count = round(fraction * len(dataset.train_y))
        if count < schedule.batch_size:
            raise UserError(f"few_shot.fractions: {fraction} gives {count} training examples, fewer than "
                             f"one batch (train.batch_size={schedule.batch_size})")
    rows = []
    epoch_steps = len(dataset.train_y) // schedule.batch_size
    for fraction, r in tqdm([(f, r) for f in fractions for r in range(tickets.replicates)], desc="few-shot",
                            unit="subset", leave=False):
        indices = few_shot_subset(dataset.train_y, fraction, budget.seed, r)
        masks = [dense_mask({n: tickets.rewind[r][n] for n in names}), *(tickets.masks[level][r]
                                                                         for level in tickets.masks)]
        subset_schedule, start = few_shot_schedule(schedule, tickets.rewind_step, len(indices), budget, epoch_steps)
        seeds = [tickets.seeds[r].for_run(FEW_SHOT, len(indices))] * len(levels)
        replicas, _ = train_replicates(tickets.model_name, dataset.training_subset(indices), subset_schedule,
                                       [tickets.rewind[r]] * len(levels), seeds, start, subset_schedule.steps, masks,
                                       augmentation, vectorize, device, f"few-shot {fraction:g}", curves=False)
        accuracy = evaluate(replicas, dataset, "test", schedule.eval_batch_size, vectorize)[1]
        rows += [{"fraction": fraction, "examples": len(indices), "level": level, "replicate": r,
                  "fraction_remaining": fraction_remaining(mask), "train_steps": subset_schedule.steps - start,
                  "test_accuracy": float(accuracy[index]), "test_examples": len(dataset.test_y)}
                 for index, (level, mask) in enumerate(zip(levels, masks))]
    return pd.DataFrame(rows, columns=FEW_SHOT_COLUMNS)
