"""EL2N: K scoring networks trained together (one vectorised run) vs K sequential runs.

Prints, for both, the wall time of training for t steps and of scoring every training
example (median of interleaved repeats, so that a noisy neighbour hurts both alike), and
the ratios. Runs on the default dataset (data/dataset.pt) or on random images of its size.

    python bench/bench_el2n.py [--networks 4] [--steps 468] [--threads 2] [--device cuda]
    python bench/bench_el2n.py --model resnet20 --channels 3 --side 32 --networks 10 --device cuda
"""

import statistics
import time
from pathlib import Path

import torch
import typer

from lthlib.core.config import TrainConfig
from lthlib.core.data import Dataset, load_dataset
from lthlib.analyses.el2n import network_seeds, score_examples, train_scoring_networks
from lthlib.core.models import build_model
from lthlib.cli import select_device
from lthlib.core.train import Replicas, initial_states, train


def stand_in(examples: int, channels: int, side: int, device) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (examples, channels, side, side), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 10, (examples,), generator=generator)
    images, labels = images.to(device), labels.to(device)
    return Dataset("random", [str(c) for c in range(10)], images, labels, images[:100], labels[:100],
                   torch.full((channels,), 0.5, device=device), torch.full((channels,), 0.25, device=device))


def together(data, model, config, networks, steps, device) -> list[Replicas]:
    return [train_scoring_networks(data, model, config, networks, steps, 0, device)[0]]


def sequential(data, model, config, networks, steps, device) -> list[Replicas]:
    runs = []
    for seeds in network_seeds(0, networks):
        states = initial_states(model, data.input_shape, data.num_classes, [seeds.init])
        replicas = Replicas.from_state_dicts(build_model(model, data.input_shape, data.num_classes), states, device)
        train(replicas, data, config, [seeds], 0, steps, description="el2n")
        runs.append(replicas)
    return runs


def timed(function, device) -> tuple[float, object]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, result


def main(dataset: str = "data/dataset.pt", model: str = "lenet_300_100", networks: int = 4, steps: int = 468,
         examples: int = 60000, channels: int = 1, side: int = 28, device: str = "auto", threads: int = 2,
         repeats: int = 3):
    device = select_device(device, threads)
    use_file = Path(dataset).exists() and model == "lenet_300_100"
    data = load_dataset(dataset, device) if use_file else stand_in(examples, channels, side, device)
    config = TrainConfig(steps=max(steps, 1), batch_size=128, lr=0.05, eval_batch_size=5000)
    modes = {"together": together, "sequential": sequential}
    for mode in modes.values():  # warm-up
        for replicas in mode(data, model, config, networks, 2, device):
            score_examples(replicas, data, config.eval_batch_size)
    seconds = {(name, part): [] for name in modes for part in ("train", "score")}
    for _ in range(repeats):
        for name, mode in modes.items():
            train_seconds, runs = timed(lambda: mode(data, model, config, networks, steps, device), device)
            score_seconds, _ = timed(lambda: [score_examples(r, data, config.eval_batch_size) for r in runs], device)
            seconds[name, "train"].append(train_seconds)
            seconds[name, "score"].append(score_seconds)
    median = {key: statistics.median(values) for key, values in seconds.items()}
    print(f"K={networks} {model} networks, t={steps} steps of 128, scoring {len(data.train_y)} examples, "
          f"{device} ({torch.get_num_threads()} threads), median of {repeats} interleaved repeats")
    print(f"{'':12s} {'train':>8s} {'score':>8s} {'total':>8s}")
    for name in modes:
        train_seconds, score_seconds = median[name, "train"], median[name, "score"]
        print(f"{name:12s} {train_seconds:7.2f}s {score_seconds:7.2f}s {train_seconds + score_seconds:7.2f}s")
    for part in ("train", "score"):
        print(f"speed-up together / sequential, {part}: {median['sequential', part] / median['together', part]:.2f}x")
    total = {name: median[name, "train"] + median[name, "score"] for name in modes}
    print(f"speed-up together / sequential, total: {total['sequential'] / total['together']:.2f}x")


if __name__ == "__main__":
    typer.run(main)
