"""Small inputs shared by the interpolation, LMC, landscape and instability tests."""

from __future__ import annotations

import torch

from lthlib.data import Dataset
from lthlib.models import build_model


def small_dataset(train: int = 96, test: int = 40, classes: int = 4, shape=(1, 6, 6), seed: int = 0) -> Dataset:
    """Class-dependent images, so that a few SGD steps really learn something."""
    generator = torch.Generator().manual_seed(seed)

    def split(n):
        labels = torch.arange(n) % classes
        prototypes = torch.linspace(40, 215, classes)[labels].view(n, 1, 1, 1)
        noise = torch.randint(-30, 31, (n, *shape), generator=generator)
        return (prototypes + noise).clamp(0, 255).to(torch.uint8), labels

    train_x, train_y = split(train)
    test_x, test_y = split(test)
    scaled = train_x.double() / 255
    return Dataset("tiny", [str(c) for c in range(classes)], train_x, train_y, test_x, test_y,
                   scaled.mean(dim=(0, 2, 3)).float(), scaled.std(dim=(0, 2, 3)).float())


def random_states(dataset: Dataset, count: int, model_name: str = "lenet_300_100") -> tuple:
    """(model, `count` independently initialised state dicts)."""
    states = []
    for seed in range(count):
        torch.manual_seed(seed)
        states.append(build_model(model_name, dataset.input_shape, dataset.num_classes).state_dict())
    return build_model(model_name, dataset.input_shape, dataset.num_classes), states
