"""Training throughput, measured side by side in one run (ratios, not absolute promises).

    python bench/bench_train.py [--steps 2574] [--threads 2] [--device cpu]

Cases, all LeNet-300-100 at batch 128 on Fashion-MNIST (data/dataset.pt if present, else
random images of the same shape); the trainer's networks are pruned like IMP's level 1 (40 % of the
weights, global magnitude), so masking is part of every step:
  1. a plain PyTorch loop over a DataLoader (the baseline most codebases use; dense, no masks);
  2. this project's trainer (`lthlib.core.train.train`), one replicate, eager and with `train.compile`
     (torch.compile of the step; its compilation is done in the warm-up and timed apart);
  3. R replicates vectorised with vmap vs the same R looped, vs R separate runs, eager and compiled; 2R
     together vs R (what two configurations of a grid that share a model would gain by training together);
  4. the cost of the curves (per epoch, test accuracy and train accuracy on as many fixed training examples, both
     in eval mode; forgetting events: the third paper's measurements), before/after in one run: the trainer
     without curves, followed by the one test evaluation an IMP level made before the curves existed (its last
     curve point is that evaluation now).
The default of 2574 steps is one IMP level of the default params (t_r = 234 to 2808: 7 curve points).
It also measures this machine's fp32 matmul peak and reports the trainer's share of it.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
import typer
from torch.utils.data import DataLoader, TensorDataset

from lthlib.core.config import TrainConfig
from lthlib.core.data import Dataset, load_dataset
from lthlib.core.models import build_model, prunable_names
from lthlib.core.pruning import dense_mask, magnitude_prune
from lthlib.cli import select_device
from lthlib.core.train import Replicas, ReplicateSeeds, evaluate, initial_states, train

BATCH = 128


def matmul_peak_gflops(device, size: int = 1024, repeats: int = 20, dtype=torch.float32) -> float:
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    _sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * size ** 3 * repeats / (time.perf_counter() - started) / 1e9


def flops_per_image(model) -> float:
    """Forward 2 x MACs of the linear layers, backward twice that: 6 x weights per image."""
    return 6 * sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight"))


def dataloader_images_per_second(dataset: Dataset, steps: int, device) -> float:
    model = build_model("lenet_300_100", dataset.input_shape, dataset.num_classes).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    inputs = dataset.normalize(dataset.train_x).cpu()
    loader = DataLoader(TensorDataset(inputs, dataset.train_y.cpu()), batch_size=BATCH, shuffle=True, drop_last=True)
    done, started = 0, time.perf_counter()
    while done < steps:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            done += 1
            if done == steps:
                break
    _sync(device)
    return steps * BATCH / (time.perf_counter() - started)


def trainer_images_per_second(dataset: Dataset, steps: int, device, replicates: int, vectorize: bool,
                              curves: bool = True, compiled: bool = False) -> float:
    """Images/s of the whole `train` call on masked networks, the curves' start and per-epoch test evaluations
    included; without curves, followed by one test evaluation (what an IMP level did before it recorded curves)."""
    config = TrainConfig(steps=steps, batch_size=BATCH, lr=0.05, milestones=(), eval_batch_size=5000,
                         compile=compiled)
    seeds = [ReplicateSeeds.for_replicate(0, r) for r in range(replicates)]
    states = initial_states("lenet_300_100", dataset.input_shape, dataset.num_classes, [s.init for s in seeds])
    model = build_model("lenet_300_100", dataset.input_shape, dataset.num_classes)
    replicas = Replicas.from_state_dicts(model, states, device)
    masks = level_one_masks(model, states, device)
    started = time.perf_counter()
    train(replicas, dataset, config, seeds, 0, steps, masks, vectorize=vectorize, description="bench",
          curves=curves)
    if not curves:
        evaluate(replicas, dataset, "test", config.eval_batch_size, vectorize)
    _sync(device)
    return steps * BATCH * replicates / (time.perf_counter() - started)


def level_one_masks(model, states: list[dict], device, ratio: float = 0.4) -> dict[str, torch.Tensor]:
    """Stacked masks [R, ...] pruning `ratio` of each network's prunable weights by global magnitude (the
    default's level 1)."""
    names = prunable_names(model)
    masks = [magnitude_prune(state, dense_mask({n: state[n] for n in names}), ratio) for state in states]
    return {name: torch.stack([m[name] for m in masks]).to(device) for name in names}


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def synthetic(device, examples: int = 60000, shape=(1, 28, 28), classes: int = 10) -> Dataset:
    """Random uint8 images of a dataset's shape (default: Fashion-MNIST's) on the device; its first 10,000 are
    the test set."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (examples, *shape), generator=g, dtype=torch.uint8).to(device)
    labels = torch.randint(0, classes, (examples,), generator=g).to(device)
    return Dataset("synthetic", [str(i) for i in range(classes)], images, labels, images[:10000], labels[:10000],
                   torch.full((shape[0],), 0.5, device=device), torch.full((shape[0],), 0.29, device=device))


def main(steps: int = 2574, threads: int = 2, device: str = "auto", replicates: int = 4, repeats: int = 3):
    device = select_device(device, threads)
    path = Path("data/dataset.pt")
    dataset = load_dataset(path, device) if path.exists() else synthetic(device)
    print(f"device {device}, {torch.get_num_threads()} threads, data: {dataset.name}, {steps} steps of {BATCH}, "
          f"median of {repeats} interleaved repeats")
    peak = matmul_peak_gflops(device)
    flops = flops_per_image(build_model("lenet_300_100", dataset.input_shape, dataset.num_classes))
    run = trainer_images_per_second
    cases = {
        "plain DataLoader loop": lambda: dataloader_images_per_second(dataset, steps, device),
        "lthlib trainer, 1 replicate": lambda: run(dataset, steps, device, 1, True),
        "1 replicate, train.compile": lambda: run(dataset, steps, device, 1, True, compiled=True),
        f"lthlib, {replicates} replicates, vmap": lambda: run(dataset, steps, device, replicates, True),
        f"{replicates} replicates, vmap, train.compile": lambda: run(dataset, steps, device, replicates, True,
                                                                    compiled=True),
        f"lthlib, {replicates} replicates, loop": lambda: run(dataset, steps, device, replicates, False),
        f"{2 * replicates} replicates, vmap": lambda: run(dataset, steps, device, 2 * replicates, True),
        f"{2 * replicates} replicates, vmap, train.compile": lambda: run(dataset, steps, device, 2 * replicates,
                                                                        True, compiled=True),
        "1 replicate, before curves": lambda: run(dataset, steps, device, 1, True, curves=False),
        f"{replicates} replicates, vmap, before curves": lambda: run(dataset, steps, device, replicates, True,
                                                                    curves=False),
    }
    run(dataset, 50, device, 1, True)  # warm-up
    started = time.perf_counter()
    for count in (1, replicates, 2 * replicates):  # compiles the step per shape (torch.compile caches it per process)
        run(dataset, 50, device, count, True, compiled=True)
    print(f"train.compile: compiling the step for 1, {replicates} and {2 * replicates} replicates took "
          f"{time.perf_counter() - started:.1f} s (once per process)")
    samples = {name: [] for name in cases}
    for _ in range(repeats):  # interleaved, so that a noisy neighbour hurts every case alike
        for name, case in cases.items():
            samples[name].append(case())
    rates = {name: statistics.median(values) for name, values in samples.items()}
    print(f"\nfp32 matmul peak (1024^3): {peak:.1f} GFLOP/s = {peak * 1e9 / flops:,.0f} images/s for this model")
    print(f"{'case':40s} {'images/s':>10s} {'of peak':>8s}")
    for name, rate in rates.items():
        print(f"{name:40s} {rate:10,.0f} {rate * flops / peak / 1e9:8.1%}")
    (baseline, ours, ours_compiled, vectorised, vectorised_compiled, looped, doubled, doubled_compiled, ours_bare,
     vectorised_bare) = rates.values()
    print(f"\nratio lthlib / DataLoader:                 {ours / baseline:.2f}x (1 masked replicate)")
    print(f"ratio lthlib, train.compile / DataLoader:  {ours_compiled / baseline:.2f}x (1 masked replicate)")
    print(f"ratio train.compile / eager, {replicates} replicates: {vectorised_compiled / vectorised:.2f}x")
    print(f"ratio {replicates} replicates vmap / loop:          {vectorised / looped:.2f}x")
    print(f"ratio {replicates} replicates vmap / 1 run:         {vectorised / ours:.2f}x (per-image throughput)")
    print(f"ratio {2 * replicates} together / {replicates} twice:            {doubled / vectorised:.2f}x eager, "
          f"{doubled_compiled / vectorised_compiled:.2f}x train.compile (two configurations in one run)")
    for label, after, before in (("1 replicate", ours, ours_bare), (f"{replicates} replicates", vectorised,
                                                                      vectorised_bare)):
        print(f"cost of the curves, {label + ':':14s} {before / after - 1:+.1%} time "
              f"({after / before:.3f}x throughput)")

if __name__ == "__main__":
    typer.run(main)
