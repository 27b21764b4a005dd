"""What stage scripts share: one-line errors with a non-zero exit instead of tracebacks, and their start."""

from __future__ import annotations

import functools
import sys

import torch

from lthlib.config import Config, ConfigError, load_config
from lthlib.data import Dataset, load_dataset
from lthlib.train import select_device

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


def load_stage_inputs(params: str, dataset: str) -> tuple[Config, torch.device, Dataset]:
    """A computing stage's start: the validated params, the device they name, the dataset on that device."""
    config = load_config(params)
    device = select_device(config.compute.device, config.compute.threads)
    return config, device, load_dataset(dataset, device)
