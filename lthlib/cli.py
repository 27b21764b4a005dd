"""What stage scripts share: their start (params, device, dataset on it) and one-line errors with a
non-zero exit instead of tracebacks."""

from __future__ import annotations

import functools
import sys

import torch

from lthlib.core.config import Config, ConfigError, load_config
from lthlib.core.data import Dataset, load_dataset

# Errors a user can cause and fix (bad params, missing files); anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, FileNotFoundError, ValueError)


def user_errors_exit(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except USER_ERRORS as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
    return wrapper


def select_device(device: str, threads: int) -> torch.device:
    """Resolve `compute.device` ("auto": CUDA when available) and apply `compute.threads`."""
    if threads:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"compute.device is {device!r} but no CUDA device is available (use auto or cpu)")
    return torch.device(device)


def load_stage_inputs(params: str, dataset: str) -> tuple[Config, torch.device, Dataset]:
    """A computing stage's start: the validated params, the device they name, the dataset on that device."""
    config = load_config(params)
    device = select_device(config.compute.device, config.compute.threads)
    data = load_dataset(dataset, device)
    if config.train.batch_size > len(data.train_y):
        raise ConfigError(f"train.batch_size must be at most the {len(data.train_y)} training examples, "
                          f"got {config.train.batch_size}")
    return config, device, data
