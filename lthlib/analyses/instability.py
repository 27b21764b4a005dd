"""Instability to SGD noise (Frankle et al. 2020; Paul et al. 2022, Appendix D).

From a starting point (the dense run at a rewind step, optionally masked by an IMP level's
mask), two copies train to the end of the schedule with the same initialisation and
different SGD noise (data order and augmentation seeds), and the error barrier between
them is measured. The start is stable when the barrier is below a threshold (2%).

The dense run is IMP's own: pretraining (on what pretraining saw, with its learning rate) up
to the rewind point t_r, then level 0's training on the full training set. So the start at
s = t_r is exactly `rewind.pt`, and a start at s < t_r lies on the pretraining trajectory.
From s, the copies train on the full training set with `train.*`, as every IMP level does.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from tqdm.auto import tqdm

from lthlib.core.config import InterpolationConfig, TrainConfig
from lthlib.core.data import Dataset, derive_seed
from lthlib.core.interpolate import (error_barrier, evaluate_combinations, evaluated_examples, path_betas,
                                     path_coefficients)
from lthlib.core.models import build_model, prunable_names
from lthlib.core.train import ReplicateSeeds, train_replicates

# purpose tag of the copies' noise streams, apart from every IMP run's (runs are 0 .. levels + 1)
NOISE = 7919


def noise_seeds(seeds: ReplicateSeeds, copy: int) -> ReplicateSeeds:
    """Copy `copy` of a replicate: the same initialisation seed, its own data order and augmentation."""
    return ReplicateSeeds(seeds.init, derive_seed(seeds.data_order, NOISE, copy),
                          derive_seed(seeds.augmentation, NOISE, copy))


@dataclass
class DenseRun:
    """The dense trajectory of IMP's replicates: phase 1 (run 0) to t_r, then level 0 (run 1)."""

    model_name: str
    init: list[dict]  # step 0 of every replicate (init.pt)
    rewind: list[dict]  # step t_r (rewind.pt)
    rewind_step: int
    seeds: list[ReplicateSeeds]
    pretraining: TrainConfig  # phase 1's schedule (pretrain.lr may differ from train.lr)
    pretraining_data: Dataset  # what phase 1 saw: a subset, possibly with randomized labels
    training: TrainConfig
    data: Dataset  # the full, clean training set of every IMP level
    augmentation: bool = False
    vectorize: bool = True
    device: str | torch.device = "cpu"

    def states_at(self, step: int) -> list[dict]:
        """Every replicate's state_dict at `step` of the dense run."""
        if step == self.rewind_step:
            return self.rewind
        if step < self.rewind_step:
            return self.replay_pretraining(step)
        return self.train(self.data, self.training, self.rewind, [s.for_run(1) for s in self.seeds],
                          self.rewind_step, step, None, "dense run")

    def replay_pretraining(self, step: int) -> list[dict]:
        """Phase 1 replayed from initialisation to `step` (at step t_r it reproduces rewind.pt)."""
        return self.train(self.pretraining_data, self.pretraining, self.init, [s.for_run(0) for s in self.seeds], 0,
                          step, None, "pretraining replay")

    def train(self, data: Dataset, schedule: TrainConfig, states: list[dict], seeds: list[ReplicateSeeds],
              start: int, end: int, masks: list[dict] | None, description: str) -> list[dict]:
        replicas, _ = train_replicates(self.model_name, data, schedule, states, seeds, start, end, masks,
                                       self.augmentation, self.vectorize, self.device, description)
        return [replicas.state_dict(r) for r in range(replicas.count)]

    def copies(self, starts: list[dict], step: int, masks: list[dict] | None) -> tuple[list[dict], list[dict]]:
        """Two copies of every start, differing only in SGD noise, trained from `step` to the end (all together)."""
        seeds = [noise_seeds(s, copy) for copy in (0, 1) for s in self.seeds]
        finals = self.train(self.data, self.training, starts + starts, seeds, step, self.training.steps,
                            None if masks is None else masks + masks, f"copies from step {step}")
        return finals[:len(starts)], finals[len(starts):]


def copy_barrier(model_name: str, dataset: Dataset, a: dict, b: dict,
                 evaluation: InterpolationConfig) -> tuple[float, torch.Tensor]:
    """(error barrier, errors along the path [B]) between two trained copies."""
    model = build_model(model_name, dataset.input_shape, dataset.num_classes)
    betas = path_betas(evaluation.path_points)
    errors = evaluate_combinations(model, [a, b], path_coefficients(betas), prunable_names(model), dataset, evaluation)
    return float(error_barrier(errors, betas)), errors


def measure_instability(run: DenseRun, masks_by_level: dict[int, list[dict]], rewind_steps: tuple[int, ...],
                        evaluation: InterpolationConfig) -> pd.DataFrame:
    """One row per rewind step, level and replicate: the barrier between two copies trained from
    the dense run at that step, masked by the level's mask (level 0: dense)."""
    rows = []
    progress = tqdm(total=len(rewind_steps) * len(masks_by_level), desc="instability", unit="start", leave=False)
    for step in rewind_steps:
        starts = run.states_at(step)
        for level, masks in masks_by_level.items():  # training applies the mask to the start
            first, second = run.copies(starts, step, masks)
            for r, (a, b) in enumerate(zip(first, second)):
                barrier, errors = copy_barrier(run.model_name, run.data, a, b, evaluation)
                rows.append({"rewind_step": step, "level": level, "replicate": r, "barrier": barrier,
                             "error_a": float(errors[0]), "error_b": float(errors[-1]),
                             "max_error": float(errors.max()),
                             "examples": evaluated_examples(run.data, evaluation)})
            progress.update()
    progress.close()
    return pd.DataFrame(rows)
