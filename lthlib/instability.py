"""Instability to SGD noise (Frankle et al. 2020; Vandersmissen & Oramas, Sec. 3.2, 4.1, Appendix B).

From a starting point (the dense run at a rewind step, optionally masked by an IMP level's
mask), two copies train to the end of the schedule with the same initialisation and
different SGD noise (data order and augmentation seeds), and the error barrier between
them is measured. The start is stable when the barrier is below a threshold (2%).
"""

from __future__ import annotations

import pandas as pd
import torch

from lthlib.config import InterpolationConfig, TrainConfig
from lthlib.data import Dataset, derive_seed
from lthlib.interpolate import error_barrier, evaluate_combinations, path_betas, path_coefficients
from lthlib.models import build_model, prunable_names
from lthlib.train import Replicas, ReplicateSeeds, train

# purpose tag of the copies' noise streams, apart from every IMP run's (runs are 0 .. levels + 1)
NOISE = 7919


def noise_seeds(seeds: ReplicateSeeds, copy: int) -> ReplicateSeeds:
    """Copy `copy` of a replicate: the same initialisation seed, its own data order and augmentation."""
    return ReplicateSeeds(seeds.init, derive_seed(seeds.data_order, NOISE, copy),
                          derive_seed(seeds.augmentation, NOISE, copy))


def train_networks(model_name: str, dataset: Dataset, config: TrainConfig, starts: list[dict],
                   seeds: list[ReplicateSeeds], start_step: int, end_step: int, masks: list[dict] | None,
                   augmentation: bool, vectorize: bool, device) -> list[dict]:
    """Train each start (with its seeds and mask) from start_step to end_step, all together; final states."""
    model = build_model(model_name, dataset.input_shape, dataset.num_classes)
    replicas = Replicas.from_state_dicts(model, starts, device)
    stacked = None if masks is None else {n: torch.stack([m[n] for m in masks]).to(device) for n in masks[0]}
    train(replicas, dataset, config, seeds, start_step, end_step, stacked, augmentation, vectorize,
          f"copies from step {start_step}")
    return [replicas.state_dict(r) for r in range(replicas.count)]


def copy_barrier(model_name: str, dataset: Dataset, a: dict, b: dict,
                 evaluation: InterpolationConfig) -> tuple[float, torch.Tensor]:
    """(error barrier, errors along the path [B]) between two trained copies."""
    model = build_model(model_name, dataset.input_shape, dataset.num_classes)
    betas = path_betas(evaluation.path_points)
    errors = evaluate_combinations(model, [a, b], path_coefficients(betas), prunable_names(model), dataset, evaluation)
    return float(error_barrier(errors, betas)), errors


def measure_instability(model_name: str, dataset: Dataset, config: TrainConfig, init_states: list[dict],
                        seeds: list[ReplicateSeeds], masks_by_level: dict[int, list[dict]],
                        rewind_steps: tuple[int, ...], augmentation: bool, vectorize: bool,
                        evaluation: InterpolationConfig, device) -> pd.DataFrame:
    """One row per rewind step, level and replicate: the barrier between two copies trained from
    the dense run at that step, masked by the level's mask (level 0: dense).

    The dense run at step s replays pretraining (run 0's seeds) from initialisation, so at
    s = t_r it is exactly the IMP rewind point.
    """
    replicates, rows = len(init_states), []
    for step in rewind_steps:
        starts = train_networks(model_name, dataset, config, init_states, [s.for_run(0) for s in seeds], 0, step,
                                None, augmentation, vectorize, device)
        for level, masks in masks_by_level.items():
            copies = train_networks(model_name, dataset, config, starts + starts,
                                    [noise_seeds(s, copy) for copy in (0, 1) for s in seeds], step, config.steps,
                                    masks + masks, augmentation, vectorize, device)
            for r in range(replicates):
                barrier, errors = copy_barrier(model_name, dataset, copies[r], copies[replicates + r], evaluation)
                rows.append({"rewind_step": step, "level": level, "replicate": r, "barrier": barrier,
                             "error_a": float(errors[0]), "error_b": float(errors[-1]),
                             "max_error": float(errors.max())})
    return pd.DataFrame(rows)
