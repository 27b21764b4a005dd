"""Linear probes on frozen networks ("Training stability and the LTH", Sec. 5.1, 5.3).

At a probe point (a residual block's output, an MLP's hidden activation) the features of the frozen
network are pooled per channel (global average for conv features) and a linear classifier is trained on
them; nothing else moves. The probed networks:
- the untrained tickets m(L) * w_{t_r} and their permuted-mask baselines (the same weights and per-layer
  sparsity, random positions: Table 3), with the dense network at w_{t_r} for reference;
- for transfer (Table 5): the tickets and the trained dense network (level 0's solution) with a new head
  at the last point on a target dataset, against a dense network trained from scratch there.

All probed networks and all their probe points train together: each batch's features are computed once,
by one vectorised forward pass of every frozen network, and feed every probe.
"""

from __future__ import annotations

from functools import partial

import pandas as pd
import torch
from torch.func import functional_call
from torch.nn import functional as F
from tqdm.auto import tqdm

from lthlib.analyses.tickets import Tickets, reinitialised
from lthlib.core.config import ProbesConfig, TrainConfig
from lthlib.core.data import BatchOrder, Dataset, derive_seed
from lthlib.core.errors import UserError
from lthlib.core.interpolate import reestimate_batchnorm
from lthlib.core.models import build_model, probe_points
from lthlib.core.train import Replicas, evaluate, train_replicates

# training examples whose features fix each probe's standardisation
STATISTICS_EXAMPLES = 5000
TRANSFER = 7004  # purpose of the seeds of the networks trained from scratch on the target
PROBE_COLUMNS = ["level", "network", "replicate", "block", "module", "probe_accuracy", "test_examples"]
TRANSFER_COLUMNS = ["level", "network", "replicate", "test_accuracy", "test_examples"]


def probe_blocks(model_name: str, model: torch.nn.Module, blocks: tuple[int, ...]) -> list[str]:
    """The modules of `probes.blocks` (numbered from 1; () = every probe point)."""
    points = probe_points(model)
    unknown = [b for b in blocks if b > len(points)]
    if unknown:
        raise UserError(f"probes.blocks names block {unknown[0]}, but {model_name} has {len(points)} probe points "
                         f"(1..{len(points)}: {', '.join(points)})")
    return [points[b - 1] for b in blocks] if blocks else points


def _pooled(features: torch.Tensor) -> torch.Tensor:
    """Channel-wise pooling (global average over space) of conv features [B, C, H, W]; flat features as they are."""
    return features.mean((2, 3)) if features.dim() == 4 else features


def block_features(replicas: Replicas, names: list[str], inputs: torch.Tensor,
                   vectorize: bool = True) -> tuple[torch.Tensor, ...]:
    """Pooled features [R, B, C_b] of every network at each module of `names`, for one shared batch [B, ...]."""
    def call(params, buffers, x):
        captured = {}
        hooks = [replicas.model.get_submodule(name).register_forward_hook(partial(_capture, captured, name))
                 for name in names]
        try:
            functional_call(replicas.model, (params, buffers), (x,))
        finally:
            for hook in hooks:
                hook.remove()
        return tuple(_pooled(captured[name]) for name in names)

    return replicas.apply(call, inputs, shared=True, vectorize=vectorize)


def _capture(captured: dict, name: str, module, inputs, output) -> None:
    captured[name] = output


class LinearProbes:
    """One linear classifier per network and probe point, on features standardised with fixed statistics
    (a linear classifier of standardised features is one of the features: Adam just trains it better)."""

    def __init__(self, statistics: list[tuple[torch.Tensor, torch.Tensor]], classes: int):
        self.statistics = statistics  # (mean, std) [R, 1, C_b] per point
        self.weights = [torch.zeros(mean.shape[0], mean.shape[2], classes, device=mean.device, requires_grad=True)
                        for mean, _ in statistics]
        self.biases = [torch.zeros(mean.shape[0], 1, classes, device=mean.device, requires_grad=True)
                       for mean, _ in statistics]

    def logits(self, features: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """[R, B, classes] per point."""
        return [torch.baddbmm(bias, (f - mean) / std, weight) for f, (mean, std), weight, bias
                in zip(features, self.statistics, self.weights, self.biases)]

    def parameters(self) -> list[torch.Tensor]:
        return self.weights + self.biases


@torch.no_grad()
def feature_statistics(replicas: Replicas, names: list[str], dataset: Dataset, batch_size: int,
                       vectorize: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Mean and std [R, 1, C_b] of every point's features on the first training examples."""
    parts = []
    for start in range(0, min(STATISTICS_EXAMPLES, len(dataset.train_y)), batch_size):
        parts.append(block_features(replicas, names, dataset.normalize(dataset.train_x[start:start + batch_size]),
                                    vectorize))
    stacked = [torch.cat(point, 1) for point in zip(*parts)]
    return [(f.mean(1, keepdim=True), f.std(1, keepdim=True).clamp_min(1e-6)) for f in stacked]


def train_probes(replicas: Replicas, names: list[str], dataset: Dataset, config: ProbesConfig,
                 vectorize: bool = True, description: str = "probes") -> torch.Tensor:
    """Test accuracy [R, points] of a linear probe at each of `names` on each frozen network, all trained
    together with Adam for `config.epochs` passes over the training set (shuffled from `config.seed`).

    The networks' parameters are frozen; their BatchNorm layers follow `config.batchnorm`: `batch` normalises
    each training batch by its own statistics (the network in train mode, as probing code usually runs) and
    tests with the running statistics those batches leave; `reestimate` recomputes the statistics once on the
    first training examples, `frozen` keeps the network's own (an untrained ticket's: mean 0, variance 1)."""
    for param in replicas.params.values():
        param.requires_grad_(False)
    if config.batchnorm == "reestimate":
        replicas.buffers = reestimate_batchnorm(replicas.model, replicas.params, replicas.buffers, dataset,
                                                STATISTICS_EXAMPLES // config.batch_size, config.batch_size)
    replicas.model.train(config.batchnorm == "batch")
    probes = LinearProbes(feature_statistics(replicas, names, dataset, config.batch_size, vectorize),
                          dataset.num_classes)
    optimizer = torch.optim.Adam(probes.parameters(), lr=config.lr)
    order = BatchOrder(derive_seed(config.seed), len(dataset.train_y), min(config.batch_size, len(dataset.train_y)),
                       dataset.train_y.device)
    for step in tqdm(range(config.epochs * order.steps_per_epoch), desc=description, unit="step", mininterval=2,
                     leave=False):
        index = order.indices(step)
        with torch.no_grad():
            features = block_features(replicas, names, dataset.normalize(dataset.train_x[index]), vectorize)
        labels = dataset.train_y[index].repeat(replicas.count)
        loss = sum(F.cross_entropy(logits.flatten(0, 1), labels) for logits in probes.logits(features))
        optimizer.zero_grad(set_to_none=True)
        (loss * replicas.count).backward()  # the sum over networks of each network's mean loss
        optimizer.step()
    replicas.model.eval()
    return probe_accuracy(replicas, names, probes, dataset, config.batch_size, vectorize)


@torch.no_grad()
def probe_accuracy(replicas: Replicas, names: list[str], probes: LinearProbes, dataset: Dataset, batch_size: int,
                   vectorize: bool) -> torch.Tensor:
    correct = 0
    for start in range(0, len(dataset.test_y), batch_size):
        features = block_features(replicas, names, dataset.normalize(dataset.test_x[start:start + batch_size]),
                                  vectorize)
        labels = dataset.test_y[start:start + batch_size]
        correct = correct + torch.stack([(logits.argmax(-1) == labels).sum(1) for logits in probes.logits(features)], 1)
    return (correct / len(dataset.test_y)).cpu()


def frozen(model_name: str, dataset: Dataset, states: list[dict], device) -> Replicas:
    return Replicas.from_state_dicts(build_model(model_name, dataset.input_shape, dataset.num_classes), states, device)


def probe_tickets(tickets: Tickets, dataset: Dataset, config: ProbesConfig, vectorize: bool = True,
                  device="cpu") -> pd.DataFrame:
    """One row per network (`ticket` or `permuted` at a level; level 0: the dense network at w_{t_r}),
    replicate and probe point, with the probe's test accuracy; no rows when no level is studied."""
    if not tickets.masks:
        return pd.DataFrame(columns=PROBE_COLUMNS)
    networks = [(0, "ticket", r, tickets.ticket(0, r)) for r in range(tickets.replicates)]
    for level in tickets.masks:
        networks += [(level, "ticket", r, tickets.ticket(level, r)) for r in range(tickets.replicates)]
        networks += [(level, "permuted", r, tickets.randomly_pruned(level, r)) for r in range(tickets.replicates)]
    replicas = frozen(tickets.model_name, dataset, [state for *_, state in networks], device)
    names = probe_blocks(tickets.model_name, replicas.model, config.blocks)
    accuracy = train_probes(replicas, names, dataset, config, vectorize)
    points = probe_points(replicas.model)
    return pd.DataFrame([{"level": level, "network": network, "replicate": r, "block": points.index(name) + 1,
                          "module": name, "probe_accuracy": float(accuracy[index, column]),
                          "test_examples": len(dataset.test_y)}
                         for index, (level, network, r, _) in enumerate(networks)
                         for column, name in enumerate(names)], columns=PROBE_COLUMNS)


def transfer_tickets(tickets: Tickets, dense_solutions: list[dict], source: Dataset, target: Dataset,
                     config: ProbesConfig, schedule: TrainConfig, augmentation: bool = False, vectorize: bool = True,
                     device="cpu") -> pd.DataFrame:
    """Table 5: one row per network and replicate with its test accuracy on the target: each ticket and the
    trained dense network (`dense_finetuned`), frozen, with a new linear head at the last probe point; and a
    dense network trained from scratch on the target with `schedule` (`dense_retrained`)."""
    networks = [(level, "ticket", r, tickets.ticket(level, r)) for level in tickets.masks
                for r in range(tickets.replicates)]
    networks += [(0, "dense_finetuned", r, state) for r, state in enumerate(dense_solutions)]
    replicas = frozen(tickets.model_name, source, [state for *_, state in networks], device)
    head = probe_points(replicas.model)[-1:]
    accuracy = train_probes(replicas, head, target, config, vectorize, "transfer heads")[:, 0]
    fresh = reinitialised(tickets, target)
    seeds = [s.for_run(TRANSFER) for s in tickets.seeds]
    retrained, _ = train_replicates(tickets.model_name, target, schedule, fresh, seeds, 0, schedule.steps, None,
                                    augmentation, vectorize, device, "dense on the target", curves=False)
    scratch = evaluate(retrained, target, "test", schedule.eval_batch_size, vectorize)[1]
    rows = [{"level": level, "network": network, "replicate": r, "test_accuracy": float(accuracy[index])}
            for index, (level, network, r, _) in enumerate(networks)]
    rows += [{"level": 0, "network": "dense_retrained", "replicate": r, "test_accuracy": float(scratch[r])}
             for r in range(tickets.replicates)]
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS[:-1]).assign(test_examples=len(target.test_y))
