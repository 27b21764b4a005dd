"""EL2N and forgetting scores: how hard each training example is.

Data diet, Definition 2.1 and Appendix A (after Paul et al., 2021): train K networks from
independent initialisations for t iterations; the EL2N score of example (x, y) is the mean
over the K networks of ||softmax(f(x)) - onehot(y)||_2. The K networks train together as
stacked replicas (one vectorised run, not K runs), and scoring evaluates all K networks on
each chunk of examples in one batched pass.

"Training stability and the LTH", Appendix D (after Toneva et al., 2019): the forgetting score
of an example is the mean over the same K networks of its forgetting events during their t
iterations, which the training steps count from the predictions they make anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch.nn import functional as F

from lthlib.analyses.subsets import RANKINGS
from lthlib.core.config import TrainConfig
from lthlib.core.curves import ForgettingCounter
from lthlib.core.data import Dataset, derive_seed
from lthlib.core.errors import UserError
from lthlib.core.train import Replicas, ReplicateSeeds, initial_states, train_replicates

# Purpose of the derived seed of the scoring networks: independent of the IMP replicates' streams.
SCORING_NETWORKS_PURPOSE = 4


@dataclass
class ExampleScores:
    """What the K scoring networks tell about every training example ([K, N] each, on the CPU)."""

    norms: torch.Tensor  # error norms after the t iterations (EL2N)
    events: torch.Tensor  # int: forgetting events during the t iterations
    learned: torch.Tensor  # bool: classified correctly at some presentation


def error_norms(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """||softmax(logits) - onehot(labels)||_2 per example: logits [..., N, C], labels [N] -> [..., N]."""
    probabilities = logits.to(torch.get_default_dtype()).softmax(-1)
    onehot = F.one_hot(labels, logits.shape[-1]).to(probabilities.dtype)
    return (probabilities - onehot).norm(dim=-1)


def el2n_scores(norms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """EL2N score (mean over the K networks) and its spread (standard deviation; 0 when K = 1) from norms [K, N]."""
    spread = norms.std(0) if norms.shape[0] > 1 else torch.zeros_like(norms[0])
    return norms.mean(0), spread


def forgetting_scores(events: torch.Tensor, learned: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forgetting score [N] (mean over the K networks) and its per-network terms [K, N] from forgetting events and
    learned [K, N]: the events, or inf where the network never learned the example (Toneva et al. 2019 rank
    never-learned examples as the most forgettable, as if forgotten infinitely often)."""
    per_network = events.double().masked_fill(~learned, math.inf)
    return per_network.mean(0), per_network


def require_forgetting_epochs(subset_kind: str, steps: int, num_examples: int, batch_size: int) -> None:
    """An example is forgotten between two presentations, so a kind that ranks by forgetting needs `steps`
    to cover two epochs of floor(N / batch size) steps (as BatchOrder: the last partial batch is dropped)."""
    needed = 2 * (num_examples // batch_size)
    if subset_kind in RANKINGS and RANKINGS[subset_kind].column == "forgetting" and steps < needed:
        raise UserError(f"el2n.steps must cover at least 2 epochs ({needed} steps) for subset.kind={subset_kind}, "
                         f"got {steps}")


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
                           seed: int, device, augment: bool = False, vectorize: bool = True
                           ) -> tuple[Replicas, ForgettingCounter]:
    """K networks from independent initialisations, trained together for `steps` iterations of the schedule,
    and the forgetting events counted on the way."""
    seeds = network_seeds(seed, networks)
    states = initial_states(model_name, dataset.input_shape, dataset.num_classes, [s.init for s in seeds])
    replicas, log = train_replicates(model_name, dataset, train_config, states, seeds, 0, steps, None, augment,
                                     vectorize, device, "el2n")
    return replicas, log.curves.forgetting


def compute_scores(dataset: Dataset, model_name: str, train_config: TrainConfig, networks: int, steps: int,
                   seed: int, device, augment: bool = False, vectorize: bool = True) -> ExampleScores:
    """Appendix A, steps 1-2: error norms of every training example after t = `steps` iterations; with them the
    forgetting events of the same K networks over those t iterations."""
    replicas, forgetting = train_scoring_networks(dataset, model_name, train_config, networks, steps, seed, device,
                                                  augment, vectorize)
    norms = score_examples(replicas, dataset, train_config.eval_batch_size, vectorize)
    return ExampleScores(norms, forgetting.events.cpu(), forgetting.learned.cpu())


def scores_needed(subset_kind: str) -> bool:
    return subset_kind in RANKINGS


def scores_table(scores: ExampleScores | None, labels: torch.Tensor) -> pd.DataFrame:
    """The `data/el2n/scores.csv` table: index, label scored against, EL2N score, its spread, one column per
    network (`network_<k>`), forgetting score, one column per network (`forgetting_<k>`, inf: never learned).

    Without scores (no subset needs them) the scores are empty (NaN), so a kind that ranks by them
    can never read scores that were not computed."""
    table = pd.DataFrame({"index": range(len(labels)), "label": labels.cpu().numpy()})
    if scores is None:
        empty = torch.full((len(labels),), torch.nan).numpy()
        return table.assign(score=empty, score_std=empty, forgetting=empty)
    score, spread = el2n_scores(scores.norms)
    forgetting, per_network = forgetting_scores(scores.events, scores.learned)
    columns = {"score": score, "score_std": spread, **{f"network_{k}": row for k, row in enumerate(scores.norms)},
               "forgetting": forgetting, **{f"forgetting_{k}": row for k, row in enumerate(per_network)}}
    return table.assign(**{name: column.numpy() for name, column in columns.items()})
