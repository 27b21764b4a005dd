"""One training across several processes (data parallel), with PyTorch's own launcher and collectives.

`compute.processes: N` makes a training stage launch N workers through the elastic launch API behind `torchrun`
(`launch`, from `cli.training_stage`); a stage already started under `torchrun` or `srun` joins the group it is in.
Inside a Slurm allocation of several tasks (`sbatch --nodes M --ntasks-per-node G`), the workers are that
allocation's tasks, started with `srun` on every node (`compute.processes: auto` takes them all). Every worker holds
every replicate; each takes a contiguous shard of every global batch, and gradients are averaged across workers
before the masked optimizer step, so the global batch and the update are a single process's (up to the order of
float additions, and BatchNorm, whose batch statistics are each shard's, as with PyTorch's DistributedDataParallel;
running statistics are averaged after each step). Augmentation draws for the global batch, as one process would.
Rank 0 alone writes outputs (`io.writes_outputs`). NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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
        require_equal_shards(tensor.shape[dim], self.size)
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


def require_equal_shards(batch_size: int, processes: int) -> None:
    if batch_size % processes:
        raise UserError(f"train.batch_size {batch_size} is not divisible by compute.processes {processes}: every "
                        f"process takes an equal shard of each batch")


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


def adopt_slurm_step() -> None:
    """In a Slurm job step of several tasks (`srun`), take torchrun's variables from Slurm's, so that `join`, the
    GPU choice (LOCAL_RANK) and rank 0's writes work as under torchrun. The rendezvous is task 0's node, on the
    port the launcher chose (`launch_srun`) or one derived from the job id."""
    if "WORLD_SIZE" in os.environ or "SLURM_STEP_ID" not in os.environ or int(os.environ.get("SLURM_NTASKS", 1)) < 2:
        return
    os.environ.update(RANK=os.environ["SLURM_PROCID"], LOCAL_RANK=os.environ["SLURM_LOCALID"],
                      WORLD_SIZE=os.environ["SLURM_NTASKS"])
    if "MASTER_ADDR" not in os.environ:
        os.environ["MASTER_ADDR"] = _first_host(os.environ["SLURM_STEP_NODELIST"])
    os.environ.setdefault("MASTER_PORT", str(20000 + int(os.environ["SLURM_JOB_ID"]) % 20000))


def slurm_tasks() -> int:
    """The tasks of the Slurm allocation this process runs in as its batch script (0 outside one, or in a step)."""
    if "SLURM_JOB_ID" not in os.environ or "SLURM_STEP_ID" in os.environ:
        return 0
    return int(os.environ.get("SLURM_NTASKS", 1))


def processes_to_launch(processes: int | str) -> int:
    """How many workers a stage launches for `compute.processes` (0 when it already runs in a launched group)."""
    if "WORLD_SIZE" in os.environ:  # started by torchrun / srun / our own launch: join, do not launch
        return 0
    tasks = slurm_tasks()
    if processes == "auto":
        count = tasks if tasks > 1 else max(torch.cuda.device_count(), 1)
    else:
        count = int(processes)
        if tasks > 1 and count > tasks:
            raise UserError(f"compute.processes is {count}, but this Slurm allocation has {tasks} tasks "
                            f"(sbatch --ntasks-per-node)")
        if not tasks and torch.cuda.is_available() and count > torch.cuda.device_count() > 0:
            raise UserError(f"compute.processes is {count}, but {torch.cuda.device_count()} GPUs are visible")
    return count if count > 1 else 0


def launch(count: int, entrypoint, *args) -> None:
    """Run `entrypoint(*args)` in `count` workers: the tasks of the Slurm allocation this runs in, or local
    workers started by the elastic launcher (`torchrun --standalone`)."""
    if slurm_tasks() > 1:
        return launch_srun(count, entrypoint, *args)
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=count, run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.5)
    elastic_launch(config, entrypoint)(*args)


def launch_srun(count: int, entrypoint, *args) -> None:
    """`entrypoint(*args)` in `count` tasks of this allocation, on all its nodes, with `srun`; task 0 runs on this
    (the batch script's, the first) node, where the rendezvous port is chosen. A failing task ends them all."""
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "MASTER_ADDR": _first_host(os.environ["SLURM_JOB_NODELIST"]),
                   "MASTER_PORT": str(port), "LTHLIB_WORKER": json.dumps([entrypoint.__module__,
                                                                          entrypoint.__name__, list(args)],
                                                                         default=str)}
    command = ["srun", f"--ntasks={count}", "--kill-on-bad-exit=1", sys.executable, "-m", __name__]
    finished = subprocess.run(command, env=environment)
    if finished.returncode:
        raise RuntimeError(f"srun --ntasks={count}: a worker failed (exit status {finished.returncode}; its "
                           f"traceback is above)")


def _first_host(nodelist: str) -> str:
    """The first host name of a Slurm node list (`node[01-04]` included), as `scontrol show hostnames` expands."""
    return subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                          check=True).stdout.split()[0]


if __name__ == "__main__":  # a task of `launch_srun`: the entry point it names
    import importlib

    module, name, arguments = json.loads(os.environ["LTHLIB_WORKER"])
    getattr(importlib.import_module(module), name)(*arguments)
