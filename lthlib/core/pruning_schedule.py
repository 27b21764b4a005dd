"""Pruning schedules: the rule that gives each IMP level's pruning ratio from its solution.

`FixedRatio` is plain IMP (the same ratio at every level). `AdaptiveRatio` keeps the pruned
solution in the train LCS-set, Paul, Chen, Larsen et al. (2022), Section 2.2:
1. epsilon = standard deviation of the training loss across batches over the last epoch of
   training the dense network; threshold = dense training loss + epsilon (the train LCS-set).
2. At the level-L solution w, sweep ratios p = 0.1, 0.2, ... and find the largest p such that
   the training loss along the linear path from w to its pruned version m_p * w stays below
   the threshold.
3. Prune max(p, floor) of the remaining weights.

The dense training loss is measured the way the sweep measures losses (eval mode, on the same
random training subsample), so that the threshold and the path compare like with like. Every
ratio of the sweep is evaluated (one batched evaluation) and the largest one whose path stays in
the set wins, as step 2 asks, even if a smaller ratio's path left the set.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from lthlib.core.config import AdaptiveConfig, InterpolationConfig, PruningConfig
from lthlib.core.data import Dataset, derive_seed
from lthlib.core.interpolate import evaluate_combinations, path_betas
from lthlib.core.models import prunable_names
from lthlib.core.pruning import Prune, projection

SWEEP_COLUMNS = ["replicate", "level", "ratio", "max_path_loss", "threshold", "inside", "chosen_ratio"]


def path_losses(model: nn.Module, solution: dict, mask: dict, ratios, prune: Prune, subsample: Dataset,
                evaluation: InterpolationConfig) -> torch.Tensor:
    """Training loss [len(ratios), path_points] along (1 - beta) w + beta m_p * w for every ratio p.

    One batched evaluation: the solution (beta = 0, shared by every path) and the interior and
    end points of all paths. All points lie inside the hull of the networks.
    """
    betas = path_betas(evaluation.path_points)[1:]
    projections = [projection(solution, prune(solution, mask, ratio)) for ratio in ratios]
    rows = [torch.zeros(1, 1 + len(ratios), dtype=torch.float64)]
    rows[0][0, 0] = 1
    for k in range(len(ratios)):
        block = torch.zeros(len(betas), 1 + len(ratios), dtype=torch.float64)
        block[:, 0], block[:, 1 + k] = 1 - betas, betas
        rows.append(block)
    losses = evaluate_combinations(model, [solution, *projections], torch.cat(rows), prunable_names(model),
                                   subsample, evaluation)
    return torch.cat([losses[:1].expand(len(ratios), 1), losses[1:].view(len(ratios), len(betas))], dim=1)


def largest_inside_ratio(ratios, max_losses: torch.Tensor, threshold: float) -> float:
    """Step 2: the largest ratio whose path stays at or below the threshold; 0 when none does."""
    return max((ratio for ratio, loss in zip(ratios, max_losses.tolist()) if loss <= threshold), default=0.0)


class FixedRatio:
    """The pruning-ratio rule of plain IMP: the same fraction at every level, at no extra cost."""

    sweep = pd.DataFrame(columns=SWEEP_COLUMNS)

    def __init__(self, ratio: float):
        self.ratio = ratio

    def __call__(self, level, replicas, masks, records) -> list[float]:
        return [self.ratio] * len(records)

    def restore(self, sweep: pd.DataFrame) -> None:
        """Nothing to restore: the rule sweeps nothing."""


class AdaptiveRatio:
    """The pruning-ratio rule of adaptive IMP, called by `run_imp` after each level's training.

    Thresholds come from level 0 (the dense network) of each replicate; every sweep is kept
    in `sweep` (one row per replicate, level and ratio) so a reader can see why a ratio won.
    """

    def __init__(self, config: AdaptiveConfig, model: nn.Module, prune: Prune, dataset: Dataset,
                 seed: int, batch_size: int):
        self.config, self.model, self.prune = config, model, prune
        count = len(dataset.train_y)
        size = config.train_examples or count
        generator = torch.Generator().manual_seed(derive_seed(seed, config.seed))
        self.subsample = dataset.training_subset(torch.randperm(count, generator=generator)[:size])
        # BatchNorm statistics are interpolated along the path, as everywhere in the papers
        self.evaluation = InterpolationConfig(metric="train_loss", path_points=config.path_points, eval_examples=0,
                                              batch_size=batch_size)
        self.thresholds: dict[int, float] = {}  # per replicate, from its dense network
        self.rows: list[dict] = []

    def __call__(self, level: int, replicas, masks: list[dict], records: list[dict]) -> list[float]:
        chosen = []
        for i, record in enumerate(records):
            r = record["replicate"]
            losses = path_losses(self.model, replicas.state_dict(i), masks[i], self.config.ratios, self.prune,
                                 self.subsample, self.evaluation)
            if level == 0:  # step 1: dense loss (the path's start) + epsilon of the last epoch
                self.thresholds[r] = float(losses[0, 0]) + record["last_epoch_loss_std"]
            maxima = losses.amax(dim=1)
            ratio = max(largest_inside_ratio(self.config.ratios, maxima, self.thresholds[r]), self.config.floor)
            chosen.append(ratio)
            self.rows += [{"replicate": r, "level": level, "ratio": p, "max_path_loss": float(m),
                           "threshold": self.thresholds[r], "inside": bool(m <= self.thresholds[r]),
                           "chosen_ratio": ratio} for p, m in zip(self.config.ratios, maxima.tolist())]
        return chosen

    def restore(self, sweep: pd.DataFrame) -> None:
        """Take back sweeps an earlier run kept with the levels they chose (`SWEEP_COLUMNS` rows), thresholds
        included, as if this run had made them."""
        self.rows += sweep[SWEEP_COLUMNS].to_dict("records")
        self.thresholds.update(zip(sweep["replicate"].tolist(), sweep["threshold"].tolist()))

    @property
    def sweep(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=SWEEP_COLUMNS)


def ratio_rule(pruning: PruningConfig, adaptive: AdaptiveConfig, model: nn.Module, prune: Prune,
               dataset: Dataset, seed: int, batch_size: int) -> FixedRatio | AdaptiveRatio:
    """`pruning.adaptive` picks the rule: the fixed `pruning.ratio`, or the LCS-set heuristic."""
    if pruning.adaptive:
        return AdaptiveRatio(adaptive, model, prune, dataset, seed, batch_size)
    return FixedRatio(pruning.ratio)
