"""Points per second of interpolated-network evaluation: batched (vmap over points) vs one by one,
and the input-layer shortcut (each network's first layer once per batch) vs full forward passes.

    python bench/bench_landscape.py [--dataset data/dataset.pt] [--points 64] [--examples 1000]
    python bench/bench_landscape.py --model resnet20_8 --points-per-pass 8   # vmap vs lthlib's loop on a CPU

LeNet-300-100 (or `--model`) on the default dataset (or a random Fashion-MNIST-shaped set when the file is
absent); the points are a linear path between two independently initialised networks. A network with
convolutions is evaluated one point at a time on a CPU (`lthlib.core.train.vmap_pays`); its rows add the
same passes forced under vmap.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer

from lthlib.core import interpolate, train
from lthlib.core.config import InterpolationConfig
from lthlib.core.data import Dataset, load_dataset
from lthlib.core.interpolate import evaluate_combinations, path_betas, path_coefficients
from lthlib.core.models import build_model, prunable_names


def _dataset(path: str, device) -> Dataset:
    if Path(path).exists():
        return load_dataset(path, device)
    images = torch.randint(0, 256, (10000, 1, 28, 28), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 10, (10000,), device=device)
    return Dataset("random", [str(c) for c in range(10)], images, labels, images, labels,
                   torch.tensor([0.5], device=device), torch.tensor([0.25], device=device))


def main(dataset: str = "data/dataset.pt", model: str = "lenet_300_100", points: int = 64, examples: int = 1000,
         batch_size: int = 500, points_per_pass: int = 16, device: str = "cpu", threads: int = 2, repeats: int = 3):
    torch.set_num_threads(threads)
    data = _dataset(dataset, device)
    network = build_model(model, data.input_shape, data.num_classes)
    states = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        states.append(build_model(model, data.input_shape, data.num_classes).state_dict())
    coefficients = path_coefficients(path_betas(points))
    find_input_layer, lthlib_rule = interpolate.flat_input_layer, train.vmap_pays
    prunable = prunable_names(network)
    convolutional = any(isinstance(module, torch.nn.Conv2d) for module in network.modules())

    def rate(per_pass: int, shortcut: bool = True, stacked: bool = False) -> float:
        interpolate.flat_input_layer = find_input_layer if shortcut else (lambda *args: None)
        train.vmap_pays = (lambda replicas: True) if stacked else lthlib_rule
        config = InterpolationConfig(eval_examples=examples, batch_size=batch_size, points_per_pass=per_pass)
        evaluate_combinations(network, states, coefficients[:per_pass], prunable, data, config)  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        evaluate_combinations(network, states, coefficients, prunable, data, config)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return points / (time.perf_counter() - started)

    variants = {"shortcut": dict(), "full": dict(shortcut=False), "vmap": dict(shortcut=False, stacked=True)}
    del variants["vmap" if not convolutional else "shortcut"]  # an MLP stays under vmap; a conv net has no shortcut
    rates = {name: [] for name in [*variants, "single"]}
    for _ in range(repeats):  # interleaved, so that a noisy neighbour hits every variant alike
        for name, options in variants.items():
            rates[name].append(rate(points_per_pass, **options))
        rates["single"].append(rate(1, shortcut=False))
    median = {name: sorted(values)[len(values) // 2] for name, values in rates.items()}
    rows = {"shortcut": "batched, input-layer shortcut", "full": f"batched ({points_per_pass} points per pass)",
            "vmap": "the same forced under vmap", "single": "one by one"}
    print(f"{model}, {points} points x {examples} examples on {device} ({threads} thread(s)), median of {repeats}:")
    for name, value in median.items():
        print(f"  {rows[name] + ':':34s}{value:8.1f} points/s")
    print(f"  {'ratio batched / one by one:':34s}{median['full'] / median['single']:8.2f}x")
    if convolutional:
        print(f"  {'ratio lthlib (loop) / vmap:':34s}{median['full'] / median['vmap']:8.2f}x")
    else:
        print(f"  {'ratio shortcut / full passes:':34s}{median['shortcut'] / median['full']:8.2f}x")


if __name__ == "__main__":
    typer.run(main)
