"""The papers' regime: ResNet training throughput on CIFAR-shaped data, measured side by side in one run.

    python bench/bench_resnet.py --device cuda [--models resnet20,resnet18] [--steps 100] [--no-compile]
    python bench/bench_resnet.py --device cuda --models imagenet_resnet50 --side 224 --classes 1000 --batch 256 \
        --images 4096 --replicates 1 --no-compile --channels-last     # ImageNet-shaped: Appendix C's ResNet-50

Random uint8 images of CIFAR-10's shape (50,000 x 3 x 32 x 32, 10 classes; or `--images` x 3 x `--side`^2) live on
the device; the trainer
(`lthlib.core.train.train`) augments them per batch there, as a CIFAR run does. Networks are pruned like IMP's
level 1 (20 %, the profiles' ratio), so masking is part of every step. Per model, 1 and R replicates (vmap),
fp32 and bf16 (`train.mixed_precision`), eager and `train.compile` (compiled in an untimed warm-up), with
`--channels-last` also NCHW and NHWC conv weights (`train.channels_last`), each as
images/s and as a share of the device's bf16 matmul peak (FLOPs of a training step counted by PyTorch's
FlopCounterMode). Ratios: R together / 1, bf16 / fp32, compiled / eager, channels-last / NCHW. Then one IMP level of
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

def training_flops_per_image(model_name: str, dataset: Dataset, batch: int, device) -> float:
    """FLOPs of forward and backward for one image, counted on a batch."""
    model = build_model(model_name, dataset.input_shape, dataset.num_classes).to(device)
    inputs = torch.randn(batch, *dataset.input_shape, device=device)
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(inputs), torch.zeros(batch, dtype=torch.long, device=device)
                                          ).backward()
    return counter.get_total_flops() / batch


def images_per_second(dataset: Dataset, model_name: str, steps: int, batch: int, device, replicates: int,
                      mixed_precision: bool, compiled: bool, channels_last: bool, warmup: int = 10) -> float:
    """Images/s of `steps` masked training steps after `warmup` untimed ones (which compile, if `compiled`)."""
    config = TrainConfig(steps=warmup + steps, batch_size=batch, lr=0.1, momentum=0.9, weight_decay=1e-4,
                         milestones=(), mixed_precision=mixed_precision, compile=compiled,
                         channels_last=channels_last)
    seeds = [ReplicateSeeds.for_replicate(0, r) for r in range(replicates)]
    states = initial_states(model_name, dataset.input_shape, dataset.num_classes, [s.init for s in seeds])
    model = build_model(model_name, dataset.input_shape, dataset.num_classes)
    replicas = Replicas.from_state_dicts(model, states, device)
    masks = level_one_masks(model, states, device, ratio=0.2)
    run = dict(masks=masks, augmentation=True, description="bench", curves=False)
    train(replicas, dataset, config, seeds, 0, warmup, **run)
    _sync(device)
    started = time.perf_counter()
    train(replicas, dataset, config, seeds, warmup, warmup + steps, **run)
    _sync(device)
    return steps * batch * replicates / (time.perf_counter() - started)


def main(device: str = "auto", models: str = "resnet20,resnet18", steps: int = 100, replicates: int = 4,
         compile: bool = True, channels_last: bool = False, repeats: int = 1, threads: int = 0,
         side: int = 32, classes: int = 10, batch: int = 128, images: int = 50000,
         profile: str = "profiles/cifar10_resnet20.yaml"):
    device = select_device(device, threads)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    dataset = synthetic(device, images, (3, side, side), classes)
    peak = matmul_peak_gflops(device, dtype=torch.bfloat16, size=8192 if device.type == "cuda" else 1024)
    print(f"{name} ({device}), {steps} timed steps of {batch} images of 3 x {side} x {side} per case, median of "
          f"{repeats}; bf16 matmul peak {peak / 1e3:.1f} TFLOP/s")
    cases = [(model, count, bf16, compiled, nhwc) for model in models.split(",") for count in sorted({1, replicates})
             for bf16 in (False, True) for compiled in ((False, True) if compile else (False,))
             for nhwc in ((False, True) if channels_last else (False,))]
    flops = {model: training_flops_per_image(model, dataset, batch, device) for model in models.split(",")}
    rates = {}
    print(f"{'model':17s} {'replicates':>10s} {'precision':>9s} {'compiled':>8s} {'layout':>6s} {'images/s':>10s} "
          f"{'of bf16 peak':>12s}")
    for case in cases:
        model, count, bf16, compiled, nhwc = case
        rates[case] = statistics.median(images_per_second(dataset, model, steps, batch, device, count, bf16, compiled,
                                                          nhwc) for _ in range(repeats))
        print(f"{model:17s} {count:10d} {'bf16' if bf16 else 'fp32':>9s} {str(compiled):>8s} "
              f"{'NHWC' if nhwc else 'NCHW':>6s} {rates[case]:10,.0f} {rates[case] * flops[model] / peak / 1e9:12.1%}",
              flush=True)
    print()
    for (model, count, bf16, compiled, nhwc), rate in rates.items():
        label = (f"{model}, {count} replicate(s), {'bf16' if bf16 else 'fp32'}{', compiled' if compiled else ''}"
                 f"{', NHWC' if nhwc else ''}")
        if count == replicates > 1:
            print(f"{label}: {replicates} together / 1: {rate / rates[(model, 1, bf16, compiled, nhwc)]:.2f}x")
        if bf16:
            print(f"{label}: bf16 / fp32 {rate / rates[(model, count, False, compiled, nhwc)]:.2f}x")
        if compiled:
            print(f"{label}: compiled / eager {rate / rates[(model, count, bf16, False, nhwc)]:.2f}x")
        if nhwc:
            print(f"{label}: channels-last / NCHW {rate / rates[(model, count, bf16, compiled, False)]:.2f}x")
    resnet20 = {case: rate for case, rate in rates.items() if case[0] == "resnet20" and case[1] == replicates}
    if resnet20 and side == 32:
        config = load_config(profile)
        (_, _, bf16, compiled, nhwc), rate = max(resnet20.items(), key=lambda item: item[1])
        level = (config.train.steps - config.pretrain.steps) * batch * replicates / rate
        total = level * (config.pruning.levels + 1) + config.pretrain.steps * batch * replicates / rate
        print(f"\n{profile} at the best ResNet-20 case ({'bf16' if bf16 else 'fp32'}"
              f"{', compiled' if compiled else ''}{', NHWC' if nhwc else ''}, {replicates} replicates together): one "
              f"IMP level ({config.train.steps - config.pretrain.steps} steps) {level / 60:.1f} min; pretraining and "
              f"{config.pruning.levels + 1} levels {total / 3600:.2f} h")


if __name__ == "__main__":
    typer.run(main)
