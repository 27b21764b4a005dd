"""The papers' regime: ResNet training throughput on CIFAR-shaped data, measured side by side in one run.

    python bench/bench_resnet.py --device cuda [--models resnet20,resnet18] [--steps 100] [--no-compile]

Random uint8 images of CIFAR-10's shape (50,000 x 3 x 32 x 32, 10 classes) live on the device; the trainer
(`lthlib.core.train.train`) augments them per batch there, as a CIFAR run does. Networks are pruned like IMP's
level 1 (20 %, the profiles' ratio), so masking is part of every step. Per model, 1 and R replicates (vmap),
fp32 and bf16 (`train.mixed_precision`), eager and `train.compile` (compiled in an untimed warm-up), each as
images/s and as a share of the device's bf16 matmul peak (FLOPs of a training step counted by PyTorch's
FlopCounterMode). Ratios: R together / 1, bf16 / fp32, compiled / eager. Then one IMP level of
`profiles/cifar10_resnet20.yaml` (R replicates, steps t_r to the end) and the whole profile, extrapolated
from the fastest ResNet-20 case (training steps only: the per-epoch test evaluations add about 7 %).
"""

from __future__ import annotations

import statistics
import time

import torch
import typer
from torch.utils.flop_counter import FlopCounterMode

from bench_train import _sync, level_one_masks, matmul_peak_gflops, synthetic
from lthlib.cli import select_device
from lthlib.core.config import TrainConfig, load_config
from lthlib.core.data import Dataset
from lthlib.core.models import build_model
from lthlib.core.train import Replicas, ReplicateSeeds, initial_states, train

BATCH, SHAPE, CLASSES = 128, (3, 32, 32), 10


def training_flops_per_image(model_name: str, device) -> float:
    """FLOPs of forward and backward for one image, counted on a batch."""
    model = build_model(model_name, SHAPE, CLASSES).to(device)
    inputs = torch.randn(BATCH, *SHAPE, device=device)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(inputs), torch.zeros(BATCH, dtype=torch.long, device=device)
                                          ).backward()
    return counter.get_total_flops() / BATCH


def images_per_second(dataset: Dataset, model_name: str, steps: int, device, replicates: int,
                      mixed_precision: bool, compiled: bool, warmup: int = 10) -> float:
    """Images/s of `steps` masked training steps after `warmup` untimed ones (which compile, if `compiled`)."""
    config = TrainConfig(steps=warmup + steps, batch_size=BATCH, lr=0.1, momentum=0.9, weight_decay=1e-4,
                         milestones=(), mixed_precision=mixed_precision, compile=compiled)
    seeds = [ReplicateSeeds.for_replicate(0, r) for r in range(replicates)]
    states = initial_states(model_name, SHAPE, CLASSES, [s.init for s in seeds])
    model = build_model(model_name, SHAPE, CLASSES)
    replicas = Replicas.from_state_dicts(model, states, device)
    masks = level_one_masks(model, states, device, ratio=0.2)
    run = dict(masks=masks, augmentation=True, description="bench", curves=False)
    train(replicas, dataset, config, seeds, 0, warmup, **run)
    _sync(device)
    started = time.perf_counter()
    train(replicas, dataset, config, seeds, warmup, warmup + steps, **run)
    _sync(device)
    return steps * BATCH * replicates / (time.perf_counter() - started)


def main(device: str = "auto", models: str = "resnet20,resnet18", steps: int = 100, replicates: int = 4,
         compile: bool = True, repeats: int = 1, threads: int = 0,
         profile: str = "profiles/cifar10_resnet20.yaml"):
    device = select_device(device, threads)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    dataset = synthetic(device, 50000, SHAPE, CLASSES)
    peak = matmul_peak_gflops(device, dtype=torch.bfloat16, size=8192 if device.type == "cuda" else 1024)
    print(f"{name} ({device}), {steps} timed steps of {BATCH} per case, median of {repeats}; "
          f"bf16 matmul peak {peak / 1e3:.1f} TFLOP/s")
    cases = [(model, count, bf16, compiled) for model in models.split(",") for count in (1, replicates)
             for bf16 in (False, True) for compiled in ((False, True) if compile else (False,))]
    flops = {model: training_flops_per_image(model, device) for model in models.split(",")}
    rates = {}
    print(f"{'model':9s} {'replicates':>10s} {'precision':>9s} {'compiled':>8s} {'images/s':>10s} "
          f"{'of bf16 peak':>12s}")
    for case in cases:
        model, count, bf16, compiled = case
        rates[case] = statistics.median(images_per_second(dataset, model, steps, device, count, bf16, compiled)
                                        for _ in range(repeats))
        print(f"{model:9s} {count:10d} {'bf16' if bf16 else 'fp32':>9s} {str(compiled):>8s} {rates[case]:10,.0f} "
              f"{rates[case] * flops[model] / peak / 1e9:12.1%}", flush=True)
    print()
    for (model, count, bf16, compiled), rate in rates.items():
        label = f"{model}, {'bf16' if bf16 else 'fp32'}{', compiled' if compiled else ''}"
        if count == replicates:
            print(f"{label:28s} {replicates} together / 1: {rate / rates[(model, 1, bf16, compiled)]:.2f}x")
        if bf16:
            print(f"{model}, {count} replicate(s){', compiled' if compiled else ''}: bf16 / fp32 "
                  f"{rate / rates[(model, count, False, compiled)]:.2f}x")
        if compiled:
            print(f"{model}, {count} replicate(s), {'bf16' if bf16 else 'fp32'}: compiled / eager "
                  f"{rate / rates[(model, count, bf16, False)]:.2f}x")
    resnet20 = {case: rate for case, rate in rates.items() if case[0] == "resnet20" and case[1] == replicates}
    if resnet20:
        config = load_config(profile)
        (_, _, bf16, compiled), rate = max(resnet20.items(), key=lambda item: item[1])
        level = (config.train.steps - config.pretrain.steps) * BATCH * replicates / rate
        total = level * (config.pruning.levels + 1) + config.pretrain.steps * BATCH * replicates / rate
        print(f"\n{profile} at the best ResNet-20 case ({'bf16' if bf16 else 'fp32'}"
              f"{', compiled' if compiled else ''}, {replicates} replicates together): one IMP level "
              f"({config.train.steps - config.pretrain.steps} steps) {level / 60:.1f} min; pretraining and "
              f"{config.pruning.levels + 1} levels {total / 3600:.2f} h")


if __name__ == "__main__":
    typer.run(main)
