"""Points per second of interpolated-network evaluation: batched (vmap over points) vs one by one,
and the input-layer shortcut (each network's first layer once per batch) vs full forward passes.

    python bench/bench_landscape.py [--dataset data/dataset.pt] [--points 64] [--examples 1000]

LeNet-300-100 on the default dataset (or a random Fashion-MNIST-shaped set when the file is
absent); the points are a linear path between two independently initialised networks.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import typer

from lthlib.core import interpolate
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


def main(dataset: str = "data/dataset.pt", points: int = 64, examples: int = 1000, batch_size: int = 500,
         points_per_pass: int = 16, device: str = "cpu", threads: int = 2, repeats: int = 3):
    torch.set_num_threads(threads)
    data = _dataset(dataset, device)
    model = build_model("lenet_300_100", data.input_shape, data.num_classes)
    states = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        states.append(build_model("lenet_300_100", data.input_shape, data.num_classes).state_dict())
    coefficients = path_coefficients(path_betas(points))
    find_input_layer = interpolate.flat_input_layer

    def rate(per_pass: int, shortcut: bool = True) -> float:
        interpolate.flat_input_layer = find_input_layer if shortcut else (lambda *args: None)
        config = InterpolationConfig(eval_examples=examples, batch_size=batch_size, points_per_pass=per_pass)
        evaluate_combinations(model, states, coefficients[:per_pass], prunable_names(model), data, config)  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        evaluate_combinations(model, states, coefficients, prunable_names(model), data, config)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return points / (time.perf_counter() - started)

    rates = {"shortcut": [], "full": [], "single": []}
    for _ in range(repeats):  # interleaved, so that a noisy neighbour hits every variant alike
        rates["shortcut"].append(rate(points_per_pass))
        rates["full"].append(rate(points_per_pass, shortcut=False))
        rates["single"].append(rate(1, shortcut=False))
    shortcut, full, single = (sorted(v)[len(v) // 2] for v in rates.values())  # medians
    print(f"lenet_300_100, {points} points x {examples} examples on {device} ({threads} thread(s)), "
          f"median of {repeats}:")
    print(f"  batched, input-layer shortcut:   {shortcut:8.1f} points/s")
    print(f"  batched ({points_per_pass:3d} points per pass): {full:8.1f} points/s")
    print(f"  one by one:                      {single:8.1f} points/s")
    print(f"  ratio batched / one by one:      {full / single:.2f}x")
    print(f"  ratio shortcut / full passes:    {shortcut / full:.2f}x")


if __name__ == "__main__":
    typer.run(main)
