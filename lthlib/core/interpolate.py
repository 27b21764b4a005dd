"""Points between and around trained networks, the error barrier, and their batched evaluation.

A point is an affine combination sum_k c_k w_k of a few networks' state dicts (K = 2 for a
linear path, K = 3 for the plane of an IMP step). Many points are built at once as stacked
tensors [P, ...] and evaluated together as P "replicas" of the trainer (one vectorised
forward pass per chunk of points), so the landscape of a level costs a few passes over the
evaluation subset rather than thousands.

Paul et al. (2022), Appendix C: inside the convex hull of the networks every parameter and
buffer is combined; outside it (extrapolation) only the prunable parameters are extrapolated
and the non-prunable ones (biases, BatchNorm parameters and statistics) are taken at the
closest point of the hull. BatchNorm running statistics are combined like every other tensor
(the papers' choice) or re-estimated on training batches at each point.
"""

from __future__ import annotations

import copy
from collections.abc import Collection

import torch
from torch import nn
from torch.func import functional_call, vmap
from tqdm.auto import tqdm

from lthlib.core.config import BARRIERS, InterpolationConfig
from lthlib.core.data import Dataset
from lthlib.core.train import Replicas, evaluate, evaluate_logits


def path_betas(points: int) -> torch.Tensor:
    """beta = 0, 1/(points-1), ..., 1 (float64)."""
    return torch.linspace(0, 1, points, dtype=torch.float64)


def path_coefficients(betas: torch.Tensor) -> torch.Tensor:
    """Coefficients [P, 2] of (1 - beta) w_a + beta w_b."""
    return torch.stack([1 - betas, betas], dim=1)


def combine(states: list[dict[str, torch.Tensor]], coefficients: torch.Tensor, prunable: Collection[str],
            hull_coefficients: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Stacked points [P, ...]: point p is sum_k coefficients[p, k] * states[k], tensor by tensor.

    Appendix C: prunable tensors take `coefficients` (they may extrapolate); every other
    tensor takes `hull_coefficients`, the closest point of the convex hull (default: the same
    coefficients, i.e. a point inside the hull). Integer buffers (BatchNorm's batch counter,
    unused in evaluation) are taken from the first network.
    """
    hull = coefficients if hull_coefficients is None else hull_coefficients
    count = coefficients.shape[0]
    points = {}
    for name in states[0]:
        stacked = torch.stack([state[name] for state in states])  # [K, ...]
        if not stacked.is_floating_point():
            points[name] = stacked[0].expand(count, *stacked.shape[1:]).clone()
            continue
        weights = (coefficients if name in prunable else hull).to(stacked.device, stacked.dtype)
        points[name] = (weights @ stacked.flatten(1)).view(count, *stacked.shape[1:])
    return points


def error_barrier(errors: torch.Tensor, betas: torch.Tensor, baseline: str = "line") -> torch.Tensor:
    """The error barrier of a path: errors [..., B] at `betas` [B], which must start at 0 and end at 1 (the end
    points). Returns the barrier [...] (>= 0 under both definitions).

    "line" (Definition A.1): the smallest epsilon with E((1-b) w_a + b w_b) <= (1-b) E(w_a) + b E(w_b) + epsilon.
    "mean" (Frankle et al. 2020): max_b E((1-b) w_a + b w_b) - (E(w_a) + E(w_b)) / 2. The two agree when the end
    points' errors are equal and differ by at most half their difference otherwise (either way round).
    """
    betas = betas.to(errors.dtype)
    if betas[0] != 0 or betas[-1] != 1:
        raise ValueError(f"the path must include both end points (beta 0 and 1), got {betas.tolist()}")
    if baseline == "mean":
        return errors.amax(-1) - (errors[..., 0] + errors[..., -1]) / 2
    if baseline != "line":
        raise ValueError(f"baseline must be one of {sorted(BARRIERS)}, got {baseline!r}")
    line = (1 - betas) * errors[..., :1] + betas * errors[..., -1:]
    return (errors - line).amax(-1).clamp_min(0)


def flat_parameters(state: dict[str, torch.Tensor], names: Collection[str]) -> torch.Tensor:
    return torch.cat([state[name].detach().double().flatten() for name in names])


def plane_coordinates(origin: dict, projection: dict, solution: dict, names: Collection[str]) -> torch.Tensor:
    """Coordinates [3, 2] of three networks in an orthonormal basis of their plane (Fig. 3).

    Gram-Schmidt over the parameters `names`: the first axis runs from the origin w(L) to
    its projection m(L+1) * w(L), the second is the component of w(L+1) - w(L) orthogonal to
    it. Rows: origin (0, 0), projection (|p - o|, 0), solution (x, y > 0).
    """
    o, p, s = (flat_parameters(state, names) for state in (origin, projection, solution))
    along = p - o
    length = along.norm()
    if length == 0:
        raise ValueError("the projection equals the origin: the mask prunes nothing")
    x = (s - o) @ along / length
    y = (s - o - x * along / length).norm()
    if y <= 1e-9 * max(float(length), float((s - o).norm())):
        raise ValueError("the three networks are collinear: they do not span a plane")
    return torch.tensor([[0.0, 0.0], [float(length), 0.0], [float(x), float(y)]], dtype=torch.float64)


def barycentric(points: torch.Tensor, triangle: torch.Tensor) -> torch.Tensor:
    """Coefficients [P, 3] (summing to 1) with points [P, 2] = coefficients @ triangle [3, 2]."""
    system = torch.cat([triangle.T, torch.ones(1, 3, dtype=triangle.dtype)])  # [3, 3]
    rhs = torch.cat([points.T, torch.ones(1, len(points), dtype=points.dtype)])
    return torch.linalg.solve(system, rhs).T


def closest_in_triangle(points: torch.Tensor, triangle: torch.Tensor) -> torch.Tensor:
    """Barycentric coefficients [P, 3] of the closest point of the (closed) triangle to each point [P, 2]."""
    inside = barycentric(points, triangle)
    best_distance = torch.full((len(points),), torch.inf, dtype=points.dtype)
    best = torch.zeros_like(inside)
    for i, j in ((0, 1), (1, 2), (0, 2)):  # outside, the closest point lies on an edge
        start, edge = triangle[i], triangle[j] - triangle[i]
        t = ((points - start) @ edge / (edge @ edge)).clamp(0, 1)
        distance = (points - start - t[:, None] * edge).norm(dim=1)
        closer = distance < best_distance
        on_edge = torch.zeros_like(best)
        on_edge[:, i], on_edge[:, j] = 1 - t, t
        best = torch.where(closer[:, None], on_edge, best)
        best_distance = torch.where(closer, distance, best_distance)
    return torch.where((inside >= 0).all(dim=1, keepdim=True), inside, best)


def plane_grid(triangle: torch.Tensor, size: int, margin: float, orthogonal_scale: float):
    """The N x N grid of a level's plane (Appendix C) in scaled and in true plane coordinates.

    Scaled coordinates fix the figure: the projection sits at (1, 0) and w(L+1) at height 1
    (the two axes have different scales, as in the paper). The grid covers the three points
    with `margin` of their extent on each side, vertically stretched by `orthogonal_scale`.
    Returns (xs [N], ys [N], points [N * N, 2] in true coordinates, row-major over ys then xs).
    """
    unit = torch.stack([triangle[1, 0], triangle[2, 1]])
    scaled = triangle / unit
    low, high = scaled[:, 0].min(), scaled[:, 0].max()
    pad = margin * (high - low)
    xs = torch.linspace(float(low - pad), float(high + pad), size, dtype=torch.float64)
    half = orthogonal_scale * (0.5 + margin)
    ys = torch.linspace(0.5 - half, 0.5 + half, size, dtype=torch.float64)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1) * unit
    return xs, ys, points


def split_metric(metric: str) -> tuple[str, str]:
    """'test_error' -> ('test', 'error')."""
    split, quantity = metric.split("_")
    return split, quantity


def evaluated_examples(dataset: Dataset, config: InterpolationConfig) -> int:
    """How many examples each point is evaluated on (the first `eval_examples` of the metric's split)."""
    count = len(dataset.split(split_metric(config.metric)[0])[1])
    return min(config.eval_examples, count) if config.eval_examples else count


@torch.no_grad()
def evaluate_combinations(model: nn.Module, states: list[dict], coefficients: torch.Tensor, prunable: Collection[str],
                          dataset: Dataset, config: InterpolationConfig,
                          hull_coefficients: torch.Tensor | None = None, description: str = "points") -> torch.Tensor:
    """The metric (error or loss, [P]) at every combination of `states`, config.points_per_pass at a time.

    Points are built chunk by chunk, so memory holds points_per_pass networks, never all P. Everything
    runs on the dataset's device; `model` only lends its structure (its own tensors are never read).
    """
    split, quantity = split_metric(config.metric)
    device = dataset.train_y.device
    parameter_names = {name for name, _ in model.named_parameters()}
    states = [{name: tensor.to(device) for name, tensor in state.items()} for state in states]
    hull = coefficients if hull_coefficients is None else hull_coefficients
    layer = flat_input_layer(model, dataset.input_shape) if config.batchnorm == "interpolate" else None
    if layer is not None:
        loss, accuracy = _evaluate_through_input_layer(model, layer, states, coefficients, hull, prunable, dataset,
                                                       config, description)
        return loss if quantity == "loss" else 1 - accuracy
    values = []
    starts = range(0, len(coefficients), config.points_per_pass)
    for start in tqdm(starts, desc=description, unit="pass", mininterval=2, leave=False, disable=len(starts) < 2):
        chunk = slice(start, start + config.points_per_pass)
        points = combine(states, coefficients[chunk], prunable, hull[chunk])
        params = {n: t for n, t in points.items() if n in parameter_names}
        buffers = {n: t for n, t in points.items() if n not in parameter_names}
        if config.batchnorm == "reestimate":  # (BatchNorm models; `flat_input_layer` serves MLPs)
            buffers = reestimate_batchnorm(model, params, buffers, dataset, config.reestimate_batches,
                                           config.batch_size)
        loss, accuracy = evaluate(Replicas(model, params, buffers), dataset, split, config.batch_size,
                                  limit=config.eval_examples or None)
        values.append(loss if quantity == "loss" else 1 - accuracy)
    return torch.cat(values)


class _FoundInputLayer(Exception):
    pass


def flat_input_layer(model: nn.Module, input_shape) -> str | None:
    """The name of the linear layer that reads the flattened input before any parameter is used
    (an MLP's first layer), or None (a conv net, or a parameter used earlier).

    Found by running the model's forward up to the first module that owns a parameter, on a copy
    with uninitialised tensors: no parameter has been read by then, so no value matters.
    """
    network = copy.deepcopy(model).to_empty(device="cpu")
    inputs = torch.randn(2, *input_shape)
    found = []

    def first_call(module, args):
        found.append(isinstance(module, nn.Linear) and torch.equal(args[0], inputs.flatten(1))
                     and next(name for name, m in network.named_modules() if m is module))
        raise _FoundInputLayer

    for module in network.modules():
        if any(True for _ in module.parameters(recurse=False)):
            module.register_forward_pre_hook(first_call)
    try:
        network(inputs)
    except _FoundInputLayer:
        pass
    return (found[0] or None) if found else None


class _GivenOutput(nn.Module):
    """Stands in for the input layer: returns its `output` buffer, the layer's output computed beforehand."""

    def forward(self, inputs):
        return self.output


def _evaluate_through_input_layer(model, layer, states, coefficients, hull, prunable, dataset, config, description):
    """Loss and accuracy [P] of the combinations of `states`, with the input layer computed once per network.

    The input layer is linear in its weights: (sum_k c_k W_k) x + sum_k h_k b_k = sum_k c_k (W_k x) + sum_k h_k b_k.
    So each batch passes the K networks' input layers once, and every point only combines K outputs. For
    LeNet-300-100 the input layer holds 88% of the multiply-adds; what remains per point is bound by memory
    traffic, and evaluation runs 2.3-2.7x faster on a 2-core CPU (bench/bench_landscape.py).
    """
    weight, bias = f"{layer}.weight", f"{layer}.bias"
    weights = torch.stack([state[weight] for state in states])  # [K, out, in]
    biases = torch.stack([state[bias] for state in states]) if bias in states[0] else None  # [K, out]
    # one matrix mixes the K input-layer outputs (coefficients) and the K biases (Appendix C: hull coefficients)
    mixing = torch.cat([coefficients if weight in prunable else hull] + ([] if biases is None else [hull]), dim=1)
    mixing = mixing.to(weights)
    rest = combine([{n: t for n, t in state.items() if n not in (weight, bias)} for state in states], coefficients,
                   prunable, hull)  # every point at once: without the input layer, an MLP's tensors are small
    network = copy.deepcopy(model)
    parent, _, child = layer.rpartition(".")
    network.get_submodule(parent).register_module(child, _GivenOutput())
    network.eval()
    parameter_names = {name for name, _ in network.named_parameters()}
    params = {n: t for n, t in rest.items() if n in parameter_names}
    buffers = {n: t for n, t in rest.items() if n not in parameter_names}

    def call(point_params, point_buffers, output, inputs):
        return functional_call(network, (point_params, {**point_buffers, f"{layer}.output": output}), (inputs,))

    def forward(x):
        outputs = torch.einsum("bi,koi->kbo", x.flatten(1), weights)  # each network's input layer, once
        if biases is not None:
            outputs = torch.cat([outputs, biases[:, None, :].expand(-1, len(x), -1)])
        outputs = outputs.flatten(1)
        logits = []
        starts = range(0, len(coefficients), config.points_per_pass)
        for start in tqdm(starts, desc=description, unit="pass", mininterval=2, leave=False, disable=len(starts) < 2):
            chunk = slice(start, start + config.points_per_pass)
            output = (mixing[chunk] @ outputs).view(-1, len(x), weights.shape[1])
            logits.append(vmap(call, in_dims=(0, 0, 0, None))({n: t[chunk] for n, t in params.items()},
                                                              {n: t[chunk] for n, t in buffers.items()}, output, x))
        return torch.cat(logits)

    return evaluate_logits(forward, dataset, split_metric(config.metric)[0], config.batch_size,
                           limit=config.eval_examples or None)


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, params: dict, buffers: dict, dataset: Dataset, batches: int,
                         batch_size: int) -> dict[str, torch.Tensor]:
    """Stacked buffers with every BatchNorm's running statistics recomputed at each point.

    The statistics are the exact average over the first `batches` training batches
    (momentum None), in train mode, one point at a time, on the dataset's device: the points'
    tensors are passed to `functional_call`, the model only lends its structure. Models without
    BatchNorm are unchanged.
    """
    network = copy.deepcopy(model)  # momentum None on a copy: the caller's model stays as it was
    norms = {name: module for name, module in network.named_modules()
             if isinstance(module, nn.modules.batchnorm._BatchNorm)}
    if not norms:
        return buffers
    for norm in norms.values():
        norm.momentum = None
    network.train()
    images = dataset.train_x[:batches * batch_size]
    estimated = {name: tensor.clone() for name, tensor in buffers.items()}
    for point in range(next(iter(params.values())).shape[0]):
        statistics = {name: tensor[point] for name, tensor in estimated.items()}  # views: updated in place
        for name in norms:  # reset_running_stats, on the point's own buffers
            statistics[f"{name}.running_mean"].zero_()
            statistics[f"{name}.running_var"].fill_(1)
            statistics[f"{name}.num_batches_tracked"].zero_()
        weights = {name: tensor[point] for name, tensor in params.items()}
        for start in range(0, len(images), batch_size):
            functional_call(network, (weights, statistics), (dataset.normalize(images[start:start + batch_size]),))
    return estimated
