"""One training across several processes (data parallel), with PyTorch's own launcher and collectives.

`compute.processes: N` makes a training stage launch N workers through the elastic launch API behind
`torchrun` (`launch`, from `cli.training_stage`); a stage already started under `torchrun` joins the group it
is in. Every worker holds every replicate; each takes a contiguous shard of every global batch, and gradients
are averaged across workers before the masked optimizer step, so the global batch and the update are a single
process's (up to the order of float additions, and BatchNorm, whose batch statistics are each shard's, as with
PyTorch's DistributedDataParallel; running statistics are averaged after each step). Augmentation draws for
the global batch, as one process would. Rank 0 alone writes outputs (`io.writes_outputs`). NCCL on GPUs, gloo
on CPUs.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lthlib.core.errors import UserError


@dataclass(frozen=True)
class Group:
    rank: int
    size: int

    def shard(self, tensor: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """This worker's contiguous part of a global batch along `dim` (the batch dim of [R, B, ...])."""
        if tensor.shape[dim] % self.size:
            raise UserError(f"train.batch_size {tensor.shape[dim]} is not divisible by compute.processes "
                            f"{self.size}: every worker takes an equal shard of each batch")
        return tensor.chunk(self.size, dim)[self.rank]

    def average_(self, tensors: list[torch.Tensor]) -> None:
        """Replace every tensor by its mean over the workers, in one collective."""
        if not tensors:
            return
        flat = torch.cat([t.reshape(-1).to(torch.get_default_dtype()) for t in tensors])
        dist.all_reduce(flat)
        flat /= self.size
        for tensor, part in zip(tensors, flat.split([t.numel() for t in tensors])):
            tensor.copy_(part.view_as(tensor))

    def gather(self, shard: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """The global batch from every worker's shard (the inverse of `shard`)."""
        parts = [torch.empty_like(shard) for _ in range(self.size)]
        dist.all_gather(parts, shard.contiguous())
        return torch.cat(parts, dim)


def current() -> Group | None:
    """The data-parallel group this process trains in, or None when it trains alone."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return Group(dist.get_rank(), dist.get_world_size())
    return None


def barrier() -> None:
    if current() is not None:
        dist.barrier()


def join(device: torch.device) -> None:
    """Join the process group the launcher started this worker in (no-op outside one)."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def processes_to_launch(processes: int | str) -> int:
    """How many workers a stage launches for `compute.processes` (0 when it already runs in a launched group)."""
    if "WORLD_SIZE" in os.environ:  # started by torchrun / srun / our own launch: join, do not launch
        return 0
    count = torch.cuda.device_count() if processes == "auto" else int(processes)
    if processes == "auto":
        count = max(count, 1)
    elif torch.cuda.is_available() and count > torch.cuda.device_count() > 0:
        raise UserError(f"compute.processes is {count}, but {torch.cuda.device_count()} GPUs are visible")
    return count if count > 1 else 0


def launch(count: int, entrypoint, *args) -> None:
    """Run `entrypoint(*args)` in `count` local workers with the elastic launcher (`torchrun --standalone`)."""
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=count, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.5)
    elastic_launch(config, entrypoint)(*args)
