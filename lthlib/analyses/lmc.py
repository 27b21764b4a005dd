"""Linear mode connectivity of IMP solutions (Paul et al. 2022, Sec. 2.1, Fig. 2, Appendix C).

For every replicate, the error along (1 - beta) w(i) + beta w(j) between all pairs of level
solutions i < j. Successive pairs (j = i + 1) make the piecewise linear path of Fig. 2
(left); the maximum over beta of every pair makes its heatmap (right).
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from lthlib.core.config import InterpolationConfig
from lthlib.core.data import Dataset
from lthlib.core.interpolate import error_barrier, evaluate_combinations, evaluated_examples, path_betas
from lthlib.core.models import prunable_names


def pair_paths(model: nn.Module, solutions: list[dict], dataset: Dataset, config: InterpolationConfig,
               description: str = "lmc") -> torch.Tensor:
    """Errors [levels, levels, B] along the path from solution i to solution j (i < j; the rest is NaN).

    All paths of a replicate are one batch of combinations of its solutions; the end points
    are evaluated once per solution and shared by every path that meets there.
    """
    betas = path_betas(config.path_points)
    count, inner = len(solutions), betas[1:-1]
    pairs = [(i, j) for i in range(count) for j in range(i + 1, count)]
    rows = [torch.eye(count, dtype=torch.float64)]
    for i, j in pairs:
        block = torch.zeros(len(inner), count, dtype=torch.float64)
        block[:, i], block[:, j] = 1 - inner, inner
        rows.append(block)
    # all betas are inside the hull of two networks: every tensor is interpolated
    values = evaluate_combinations(model, solutions, torch.cat(rows), prunable_names(model), dataset, config,
                                   description=description)
    ends, interior = values[:count], values[count:].view(len(pairs), len(inner))
    paths = torch.full((count, count, len(betas)), torch.nan, dtype=values.dtype)
    for index, (i, j) in enumerate(pairs):
        paths[i, j] = torch.cat([ends[i:i + 1], interior[index], ends[j:j + 1]])
    return paths


def connectivity_tables(model: nn.Module, solutions_by_replicate: list[list[dict]], dataset: Dataset,
                        config: InterpolationConfig, rewind_step: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(paths, pairs): mean and std over replicates of the successive-level paths and of all pairs.

    paths: one row per level L (the path from L to L + 1) and beta; pairs: one row per i < j
    with the maximum error along the path and the error barrier of Definition A.1.
    """
    betas = path_betas(config.path_points)
    paths = torch.stack([pair_paths(model, solutions, dataset, config, f"lmc, replicate {r}")
                         for r, solutions in enumerate(solutions_by_replicate)])
    replicates, count = paths.shape[0], paths.shape[1]
    path_rows, pair_rows = [], []
    for i in range(count):
        for j in range(i + 1, count):
            errors = paths[:, i, j]  # [R, B]
            maxima, barriers = errors.amax(-1), error_barrier(errors, betas)
            pair_rows.append({"level_a": i, "level_b": j, **_spread("max_error", maxima),
                              **_spread("barrier", barriers), "replicates": replicates})
            if j == i + 1:
                path_rows += [{"level": i, "beta": round(float(beta), 12), **_spread("error", errors[:, b]),
                               "replicates": replicates} for b, beta in enumerate(betas)]
    frames = pd.DataFrame(path_rows), pd.DataFrame(pair_rows)
    for frame in frames:
        frame.insert(0, "rewind_step", rewind_step)
        frame["examples"] = evaluated_examples(dataset, config)  # the resolution of an error is 1 / examples
    return frames


def _spread(name: str, values: torch.Tensor) -> dict:
    """Mean and standard deviation over replicates (std 0 for one replicate, as in the IMP summary)."""
    return {f"{name}_mean": float(values.mean()),
            f"{name}_std": float(values.std()) if len(values) > 1 else 0.0}
