"""EL2N scores: how hard each training example is early in training.

Data diet, Definition 2.1 and Appendix A (after Paul et al., 2021): train K networks from
independent initialisations for t iterations; the EL2N score of example (x, y) is the mean
over the K networks of ||softmax(f(x)) - onehot(y)||_2. The K networks train together as
stacked replicas (one vectorised run, not K runs), and scoring evaluates all K networks on
each chunk of examples in one batched pass.
"""

from __future__ import annotations

import pandas as pd
import torch
from torch.nn import functional as F

from lthlib.core.config import TrainConfig
from lthlib.core.data import Dataset, derive_seed
from lthlib.core.train import Replicas, ReplicateSeeds, initial_states, train_replicates

# subset kinds that rank examples by EL2N; for the others the el2n stage trains nothing
RANKED_KINDS = ("easy", "hard")
# Purpose of the derived seed of the scoring networks: independent of the IMP replicates' streams.
SCORING_NETWORKS_PURPOSE = 4


def error_norms(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """||softmax(logits) - onehot(labels)||_2 per example: logits [..., N, C], labels [N] -> [..., N]."""
    probabilities = logits.float().softmax(-1)
    onehot = F.one_hot(labels, logits.shape[-1]).to(probabilities.dtype)
    return (probabilities - onehot).norm(dim=-1)


def el2n_scores(norms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """EL2N score (mean over the K networks) and its spread (standard deviation; 0 when K = 1) from norms [K, N]."""
    spread = norms.std(0) if norms.shape[0] > 1 else torch.zeros_like(norms[0])
    return norms.mean(0), spread


def network_seeds(seed: int, networks: int) -> list[ReplicateSeeds]:
    base = derive_seed(seed, SCORING_NETWORKS_PURPOSE)
    return [ReplicateSeeds.for_replicate(base, k) for k in range(networks)]


@torch.no_grad()
def score_examples(replicas: Replicas, dataset: Dataset, batch_size: int, vectorize: bool = True) -> torch.Tensor:
    """Error norms [K, N] of every training example (against `dataset.train_y`) under each of the K networks."""
    replicas.model.eval()
    norms = []
    for start in range(0, len(dataset.train_y), batch_size):
        images = dataset.normalize(dataset.train_x[start:start + batch_size])
        logits = replicas.forward(images, shared=True, vectorize=vectorize)  # [K, B, C], all networks at once
        norms.append(error_norms(logits, dataset.train_y[start:start + batch_size]))
    return torch.cat(norms, dim=1).cpu()


def train_scoring_networks(dataset: Dataset, model_name: str, train_config: TrainConfig, networks: int, steps: int,
                           seed: int, device, augment: bool = False, vectorize: bool = True) -> Replicas:
    """K networks from independent initialisations, trained together for `steps` iterations of the schedule."""
    seeds = network_seeds(seed, networks)
    states = initial_states(model_name, dataset.input_shape, dataset.num_classes, [s.init for s in seeds])
    replicas, _ = train_replicates(model_name, dataset, train_config, states, seeds, 0, steps, None, augment,
                                   vectorize, device, "el2n")
    return replicas


def compute_el2n(dataset: Dataset, model_name: str, train_config: TrainConfig, networks: int, steps: int,
                 seed: int, device, augment: bool = False, vectorize: bool = True) -> torch.Tensor:
    """Appendix A, steps 1-2: error norms [K, N] of every training example after t = `steps` iterations."""
    replicas = train_scoring_networks(dataset, model_name, train_config, networks, steps, seed, device, augment,
                                      vectorize)
    return score_examples(replicas, dataset, train_config.eval_batch_size, vectorize)


def scores_needed(subset_kind: str) -> bool:
    return subset_kind in RANKED_KINDS


def scores_table(norms: torch.Tensor | None, labels: torch.Tensor) -> pd.DataFrame:
    """The `data/el2n/scores.csv` table: index, label scored against, score, spread, one column per network.

    Without norms (no subset needs them) the scores are empty (NaN), so a kind that ranks by EL2N
    can never read scores that were not computed."""
    empty = torch.full((len(labels),), torch.nan)
    score, spread = (empty, empty) if norms is None else el2n_scores(norms)
    table = pd.DataFrame({"index": range(len(labels)), "label": labels.cpu().numpy(),
                          "score": score.numpy(), "score_std": spread.numpy()})
    for k, row in enumerate([] if norms is None else norms):
        table[f"network_{k}"] = row.numpy()
    return table
