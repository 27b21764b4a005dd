"""What stage scripts share: their start (params, device, dataset on it), one-line errors with a non-zero exit
instead of tracebacks, and data-parallel workers for the stages that train."""

from __future__ import annotations

import fcntl
import functools
import importlib
import itertools
import os
import sys
import tempfile
from pathlib import Path

import torch

from lthlib.core import distributed
from lthlib.core.config import Config, ConfigError, load_config
from lthlib.core.data import Dataset, load_dataset
from lthlib.core.errors import UserError

# Errors a user can cause and fix (bad params and inputs, missing files); anything else is a bug and keeps its
# traceback, a ValueError included.
USER_ERRORS = (UserError, FileNotFoundError)


def user_errors_exit(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except USER_ERRORS as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
    return wrapper


def training_stage(function):
    """A stage's `main` that trains networks: run here, or with `compute.processes` > 1 in that many data-parallel
    workers, launched with the same arguments (they join their group in `load_stage_inputs`; inside a launched
    group nothing is launched again). Put it under `user_errors_exit`."""
    @functools.wraps(function)
    def wrapper(**arguments):
        config = load_config(arguments.get("params", "params.yaml"))
        distributed.adopt_slurm_step()  # started by `srun` (ours or the user's): a worker of that step
        workers = distributed.processes_to_launch(config.compute.processes)
        if not workers:
            return function(**arguments)
        distributed.require_equal_shards(config.train.batch_size, workers)
        module = function.__module__
        if module == "__main__":  # `python -m stages.<name>`: the workers import it by its real name
            module = sys.modules["__main__"].__spec__.name
        how = "the Slurm allocation's tasks, with srun" if distributed.slurm_tasks() > 1 else "compute.processes"
        print(f"{module.rsplit('.', 1)[-1]}: {workers} processes share every training batch ({how})", flush=True)
        distributed.launch(workers, _stage_worker, module, function.__name__, arguments)
    return wrapper


def _stage_worker(module: str, name: str, arguments: dict) -> None:
    getattr(importlib.import_module(module), name)(**arguments)


def select_device(device: str, threads: int) -> torch.device:
    """Resolve `compute.device` ("auto": CUDA when available, a GPU of its own on a machine with several) and
    apply `compute.threads`."""
    if threads:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cpu"
        if torch.cuda.is_available():  # worker k of a data-parallel group takes GPU k of its node
            local = os.environ.get("LOCAL_RANK")
            device = f"cuda:{local if local is not None else claim_gpu(torch.cuda.device_count())}"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"compute.device is {device!r} but no CUDA device is available (use auto or cpu)")
    return torch.device(device)


_claimed = []  # lock files held for the life of the process


def claim_gpu(count: int, lock_dir: str | Path | None = None) -> int:
    """The GPU that the fewest other lthlib processes on this machine hold, held until this process ends:
    parallel workers (`dvc queue start -j N`, several Slurm tasks on one node) spread over the GPUs without
    editing any experiment: one each while GPUs are free, then two each, and so on (a small network leaves
    most of a GPU idle, so a grid may run more workers than GPUs). GPU 0 when one is visible (Slurm's
    --gpus-per-task sets CUDA_VISIBLE_DEVICES)."""
    if count <= 1:
        return 0
    folder = Path(lock_dir or os.environ.get("LTHLIB_GPU_LOCKS", Path(tempfile.gettempdir()) / "lthlib-gpus"))
    folder.mkdir(parents=True, exist_ok=True)
    for slot in itertools.count():  # slot k of every GPU before slot k + 1 of any
        for index in range(count):
            handle = open(folder / f"gpu{index}-{slot}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            _claimed.append(handle)
            return index


def load_stage_inputs(params: str, dataset: str) -> tuple[Config, torch.device, Dataset]:
    """A computing stage's start: the validated params, the device they name, the dataset on that device."""
    config = load_config(params)
    device = select_device(config.compute.device, config.compute.threads)
    distributed.join(device)  # a launched data-parallel worker (`training_stage`) joins its group
    data = load_dataset(dataset, device)
    if config.train.batch_size > len(data.train_y):
        raise ConfigError(f"train.batch_size must be at most the {len(data.train_y)} training examples, "
                          f"got {config.train.batch_size}")
    return config, device, data
