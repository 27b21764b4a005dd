"""Data-parallel training (`compute.processes`) against one process, side by side in one run.

    python bench/bench_distributed.py [--model imagenet_resnet50] [--size 224] [--batch 16] [--steps 6]

On the CPU: one process with every core's threads against N gloo processes sharing the cores (threads split
between them), each taking batch / N images of every step, as the imp stage runs them. The ratio says what
the all-reduce and the smaller per-process batches cost or gain; on GPUs (NCCL, one GPU per process) the same
script measures scaling. Masked, one replicate, augmentation off, no curves: training steps only.
"""

from __future__ import annotations

import os
import tempfile
import time

import torch
import typer

from bench_train import level_one_masks, synthetic
from lthlib.core import distributed, io
from lthlib.core.config import TrainConfig
from lthlib.core.models import build_model
from lthlib.core.train import Replicas, ReplicateSeeds, initial_states, train


def images_per_second(model_name: str, size: int, batch: int, steps: int, threads: int) -> float:
    """Masked training steps per second x batch, after 2 untimed steps; in whatever group this process is in."""
    torch.set_num_threads(threads)
    device = torch.device("cpu")
    distributed.join(device)
    shape, classes = (3, size, size), 1000 if size >= 64 else 10
    dataset = synthetic(device, 4 * batch, shape, classes)
    config = TrainConfig(steps=2 + steps, batch_size=batch, lr=0.1, momentum=0.9, weight_decay=1e-4, milestones=())
    seeds = [ReplicateSeeds.for_replicate(0, 0)]
    states = initial_states(model_name, shape, classes, [s.init for s in seeds])
    model = build_model(model_name, shape, classes)
    replicas = Replicas.from_state_dicts(model, states, device)
    run = dict(masks=level_one_masks(model, states, device, ratio=0.2), curves=False, description="bench")
    train(replicas, dataset, config, seeds, 0, 2, **run)
    distributed.barrier()
    started = time.perf_counter()
    train(replicas, dataset, config, seeds, 2, 2 + steps, **run)
    distributed.barrier()
    return steps * batch / (time.perf_counter() - started)


def _worker(model_name: str, size: int, batch: int, steps: int, threads: int, out: str) -> None:
    rate = images_per_second(model_name, size, batch, steps, threads)
    io.save_json({"images_per_second": rate}, out)  # rank 0's (every rank times the same global steps)


def main(model: str = "imagenet_resnet50", size: int = 224, batch: int = 16, steps: int = 6, processes: int = 2):
    cores = os.cpu_count() or 1
    print(f"{model} at {size} px, global batch {batch}, {steps} timed steps, {cores} cores")
    alone = images_per_second(model, size, batch, steps, cores)
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "rate.json")
        distributed.launch(processes, _worker, model, size, batch, steps, max(1, cores // processes), out)
        shared = io.load_json(out)["images_per_second"]
    print(f"1 process, {cores} threads:           {alone:8.1f} images/s")
    print(f"{processes} processes, {max(1, cores // processes)} thread(s) each (gloo): {shared:8.1f} images/s")
    print(f"ratio {processes} processes / 1:        {shared / alone:.2f}x")


if __name__ == "__main__":
    typer.run(main)
