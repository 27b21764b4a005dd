"""EL2N: K scoring networks trained together (one vectorised run) vs K sequential runs.

Prints the wall time of both (training for t steps + scoring every training example) and
their ratio. Runs on the default dataset (data/dataset.pt) or a random stand-in of its shape.

    python bench/bench_el2n.py [--networks 4] [--steps 468] [--threads 2]
"""

import time
from pathlib import Path

import torch
import typer

from lthlib.config import TrainConfig
from lthlib.data import Dataset, load_dataset
from lthlib.el2n import compute_el2n, network_seeds, score_examples
from lthlib.models import build_model
from lthlib.train import Replicas, initial_states, select_device, train


def stand_in(examples: int) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (examples, 1, 28, 28), generator=generator, dtype=torch.uint8)
    labels = torch.randint(0, 10, (examples,), generator=generator)
    return Dataset("random", [str(c) for c in range(10)], images, labels, images[:100], labels[:100],
                   torch.tensor([0.5]), torch.tensor([0.25]))


def sequential(data, model, config, networks, steps, seed, device):
    norms = []
    for seeds in network_seeds(seed, networks):
        replicas = Replicas.from_state_dicts(build_model(model, data.input_shape, data.num_classes),
                                             initial_states(model, data.input_shape, data.num_classes, [seeds.init]),
                                             device)
        train(replicas, data, config, [seeds], 0, steps)
        norms.append(score_examples(replicas, data, config.eval_batch_size)[0])
    return torch.stack(norms)


def main(dataset: str = "data/dataset.pt", model: str = "lenet_300_100", networks: int = 4, steps: int = 100,
         examples: int = 60000, device: str = "auto", threads: int = 2):
    device = select_device(device, threads)
    data = load_dataset(dataset, device) if Path(dataset).exists() else stand_in(examples)
    config = TrainConfig(steps=max(steps, 1), batch_size=128, lr=0.05, eval_batch_size=5000)
    timings = {}
    for name, run in (("together", compute_el2n), ("sequential", sequential)):
        run(data, model, config, networks, 2, 0, device)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        norms = run(data, model, config, networks, steps, 0, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings[name] = time.perf_counter() - started
        print(f"{name:>10}: {timings[name]:.2f} s for K={networks} {model} networks, t={steps} steps, "
              f"scoring {norms.shape[1]} examples on {device} ({torch.get_num_threads()} threads)")
    print(f"speed-up of training the K networks together: {timings['sequential'] / timings['together']:.2f}x")


if __name__ == "__main__":
    typer.run(main)
