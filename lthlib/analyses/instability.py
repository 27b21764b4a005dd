"""Instability to SGD noise (Frankle et al. 2020; Paul et al. 2022, Appendix D).

From a starting point (the dense run at a rewind step, optionally masked by an IMP level's
mask), two copies train to the end of the schedule with the same initialisation and
different SGD noise (data order and augmentation seeds), and the error barrier between
them is measured: by default Frankle et al.'s (the maximum error along the path minus the mean of
the end points' errors, on 30 points), Definition A.1 recorded beside it. The start is stable when
the barrier is below a threshold (2%).

The dense run is IMP's own: pretraining (on what pretraining saw, with its learning rate) up
to the rewind point t_r, then level 0's training on the full training set. So the start at
s = t_r is exactly `rewind.pt`, and a start at s < t_r lies on the pretraining trajectory.
From s, the copies train on the full training set with `train.*`, as every IMP level does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from lthlib.core import io
from lthlib.core.config import BARRIERS, Config, InterpolationConfig, TrainConfig
from lthlib.core.data import Dataset
from lthlib.core.interpolate import (error_barrier, evaluate_combinations, evaluated_examples, path_betas,
                                     path_coefficients)
from lthlib.core.models import build_model, prunable_names
from lthlib.core.train import ReplicateSeeds, replicate_seeds, train_replicates

# purpose tag of the copies' noise streams, apart from every IMP run's (runs are 0 .. levels + 1)
NOISE = 7919


def noise_seeds(seeds: ReplicateSeeds, copy: int) -> ReplicateSeeds:
    """Copy `copy` of a replicate: the same initialisation seed, its own data order and augmentation."""
    return seeds.for_run(NOISE, copy)


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

    def states_at(self, steps: Sequence[int]) -> dict[int, list[dict]]:
        """Every replicate's state_dict at each of `steps` of the dense run, from at most two training passes."""
        states = {step: self.rewind for step in steps if step == self.rewind_step}
        early = tuple(step for step in steps if step < self.rewind_step)
        if early:  # phase 1 replayed from initialisation (at step t_r it reproduces rewind.pt)
            states |= self.snapshots(self.pretraining_data, self.pretraining, self.init, 0, 0, early,
                                     "pretraining replay")
        late = tuple(step for step in steps if step > self.rewind_step)
        if late:  # level 0's training, continued from the rewind point
            states |= self.snapshots(self.data, self.training, self.rewind, 1, self.rewind_step, late, "dense run")
        return states

    def snapshots(self, data: Dataset, schedule: TrainConfig, states: list[dict], run: int, start: int,
                  steps: tuple[int, ...], description: str) -> dict[int, list[dict]]:
        """The states at `steps` of one pass of training run `run` from `start`."""
        _, log = train_replicates(self.model_name, data, schedule, states, [s.for_run(run) for s in self.seeds],
                                  start, max(steps), None, self.augmentation, self.vectorize, self.device,
                                  description, curves=False, snapshot_steps=steps)
        return log.snapshots

    def copies(self, starts: list[dict], step: int, masks: list[dict] | None, count: int = 2,
               curves: bool = True) -> tuple[list[list[dict]], dict[str, torch.Tensor]]:
        """`count` copies of every start, differing only in SGD noise, trained from `step` to the end (all
        together). Returns the copies' final states (copy-major: [copy][start]) and, with `curves`, their
        training-stability summary (`TrainingCurves.summary`, per network in the same order)."""
        seeds = [noise_seeds(s, copy) for copy in range(count) for s in self.seeds]
        replicas, log = train_replicates(self.model_name, self.data, self.training, starts * count, seeds, step,
                                         self.training.steps, None if masks is None else masks * count,
                                         self.augmentation, self.vectorize, self.device, f"copies from step {step}",
                                         curves)
        finals = [replicas.state_dict(r) for r in range(replicas.count)]
        return [finals[c * len(starts):(c + 1) * len(starts)] for c in range(count)], (
            log.curves.summary() if curves else {})


def load_dense_run(config: Config, data: Dataset, pretraining_data: Dataset, pretrain_dir: str | Path,
                   replicates: int, device) -> DenseRun:
    """The dense run of IMP's first `replicates` replicates, from the pretrain stage's outputs."""
    states = {name: [io.load_tensors(io.replicate_dir(pretrain_dir, r) / name) for r in range(replicates)]
              for name in ("init.pt", "rewind.pt")}
    return DenseRun(config.model.name, states["init.pt"], states["rewind.pt"], config.pretrain.steps,
                    replicate_seeds(config.seed, replicates), config.pretraining_schedule(), pretraining_data,
                    config.train, data, config.data.augment, config.compute.vectorize, device)


def copy_barrier(model_name: str, dataset: Dataset, a: dict, b: dict, evaluation: InterpolationConfig,
                 baseline: str = "mean") -> tuple[float, torch.Tensor]:
    """(error barrier by `baseline`, see `config.BARRIERS`; errors along the path [B]) between two copies."""
    model = build_model(model_name, dataset.input_shape, dataset.num_classes)
    betas = path_betas(evaluation.path_points)
    errors = evaluate_combinations(model, [a, b], path_coefficients(betas), prunable_names(model), dataset, evaluation)
    return float(error_barrier(errors, betas, baseline)), errors


def measure_instability(run: DenseRun, masks_by_level: dict[int, list[dict]], rewind_steps: tuple[int, ...],
                        evaluation: InterpolationConfig, baseline: str = "mean") -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per rewind step, level and replicate: the barrier between two copies trained from
    the dense run at that step, masked by the level's mask (level 0: dense): `barrier` by `baseline` (which
    decides stability; named in `barrier_definition`), and both definitions apart; with the copies' convergence
    AUC and forgetting (mean of the two); and the error at every point of each path (Fig. 1 of the third paper).
    The copies of every level from one step share a schedule, so they train together: one run of
    2 x levels x replicates networks per step."""
    rows, paths = [], []
    betas = path_betas(evaluation.path_points)
    starts = run.states_at(rewind_steps)
    levels, replicates = list(masks_by_level), len(run.seeds)
    every_level = replace(run, seeds=run.seeds * len(levels))
    masks = [mask for level in levels for mask in masks_by_level[level]]  # training applies them to the starts
    for step in tqdm(rewind_steps, desc="instability", unit="start", leave=False):
        (first, second), stability = every_level.copies(starts[step] * len(levels), step, masks)
        for network, (a, b) in enumerate(zip(first, second)):
            level, r = levels[network // replicates], network % replicates
            errors = copy_barrier(run.model_name, run.data, a, b, evaluation, baseline)[1]
            barriers = {name: float(error_barrier(errors, betas, name)) for name in BARRIERS}
            rows.append({"rewind_step": step, "level": level, "replicate": r, "barrier": barriers[baseline],
                         "barrier_definition": baseline,
                         **{f"barrier_{name}": value for name, value in barriers.items()},
                         "error_a": float(errors[0]), "error_b": float(errors[-1]),
                         "max_error": float(errors.max()),
                         "examples": evaluated_examples(run.data, evaluation),
                         **{name: float(value.view(2, -1)[:, network].mean()) for name, value in stability.items()}})
            paths += [{"rewind_step": step, "level": level, "replicate": r, "beta": float(beta),
                       "error": float(error)} for beta, error in zip(betas, errors)]
    return pd.DataFrame(rows), pd.DataFrame(paths)
