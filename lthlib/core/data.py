"""Datasets as tensors on the compute device, seeded batch order, on-device augmentation.

Raw datasets are read once by `readers` (torchvision's loaders; nothing is fetched at run time) and stored
as uint8 images + int64 labels. Training batches are gathered by index from the resident tensors;
augmentation runs on the whole batch at once. A dataset too large for memory (`data.storage`) keeps its
training split as files (`images.ImageFiles`), which training streams (`images.StepBatches`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lthlib.core import io
from lthlib.core.errors import UserError
from lthlib.core.images import ImageFiles, resolved_decoder

# `data.name` is validated against these; `readers.READERS` reads each (layouts: docs/format.md)
DATASET_NAMES = ("mnist", "fashion_mnist", "cifar10", "cifar100", "imagenet", "tiny_imagenet", "cinic10", "eurosat")
SPLIT_TENSORS = ("train_x", "train_y", "test_x", "test_y")


STATISTICS_SAMPLE = 5000  # a streamed training split's statistics come from this many of its images, drawn once


def with_statistics(raw: dict) -> dict:
    """`raw` with the per-channel mean and std of its training images (what `Dataset.normalize` uses); of a
    streamed split (`ImageFiles`), of STATISTICS_SAMPLE of its images drawn from seed 0."""
    images = raw["train_x"]
    if isinstance(images, ImageFiles) and len(images) > STATISTICS_SAMPLE:
        images = images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:STATISTICS_SAMPLE]]
    scaled = images[:].double() / 255
    return {"name": raw["name"], "classes": raw["classes"], "mean": scaled.mean(dim=(0, 2, 3)).float(),
            "std": scaled.std(dim=(0, 2, 3)).float(), **{key: raw[key] for key in SPLIT_TENSORS}}


def take(images: torch.Tensor | ImageFiles, indices: torch.Tensor) -> torch.Tensor | ImageFiles:
    """The images at `indices` (a bool mask or positions): a tensor's rows, or a streamed split's files."""
    if isinstance(images, ImageFiles):
        return images.subset(torch.nonzero(indices).flatten() if indices.dtype == torch.bool else indices)
    return images[indices]


def select_classes(raw: dict, classes: tuple[int, ...], key: str) -> dict:
    """Only the examples of `classes`, relabelled 0..k-1 in that order (a class split: a source task and a
    transfer target from one dataset); () keeps every class. `key` names the setting in errors."""
    if not classes:
        return raw
    unknown = [c for c in classes if c >= len(raw["classes"])]
    if unknown:
        raise UserError(f"{key} names class {unknown[0]}, but {raw['name']} has {len(raw['classes'])} "
                         f"(0..{len(raw['classes']) - 1})")
    relabel = torch.full((len(raw["classes"]),), -1, dtype=torch.int64)
    relabel[list(classes)] = torch.arange(len(classes))
    selected = {"name": raw["name"], "classes": [raw["classes"][c] for c in classes]}
    for split in ("train", "test"):
        keep = relabel[raw[f"{split}_y"]] >= 0
        selected[f"{split}_x"] = take(raw[f"{split}_x"], keep)
        selected[f"{split}_y"] = relabel[raw[f"{split}_y"][keep]]
    return with_statistics(selected)


def conform_input_shape(raw: dict, shape: tuple[int, int, int]) -> dict:
    """`raw` with images of input shape `shape` (channels, height, width), so that a network of another
    dataset reads them (transfer): grey images are repeated to colour, colour averaged to grey, sizes resized
    bilinearly."""
    channels, height, width = shape
    converted = dict(raw)
    for split in ("train", "test"):
        images = raw[f"{split}_x"].float()
        if images.shape[1] != channels:
            images = images.mean(1, keepdim=True).expand(-1, channels, -1, -1)
        if images.shape[2:] != (height, width):
            images = torch.nn.functional.interpolate(images, size=(height, width), mode="bilinear",
                                                     align_corners=False, antialias=True)
        converted[f"{split}_x"] = images.round().clamp(0, 255).to(torch.uint8).contiguous()
    return with_statistics(converted)


def class_balanced(labels: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Sorted indices of `count` examples drawn at random, equally many per class as `balanced_quotas` allows."""
    classes = int(labels.max()) + 1
    available = torch.bincount(labels, minlength=classes)
    quotas = balanced_quotas(available, count, generator)
    chosen = []
    for c in range(classes):
        members = torch.nonzero(labels == c).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:quotas[c]]])
    return torch.cat(chosen).sort().values


def balanced_quotas(available: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Per-class counts summing to `count`, as equal as `available` allows (water-filling).

    Every class gets min(available, level) for the largest level that fits; the few examples
    left over go, one each, to classes with room, chosen at random.
    """
    low, high = 0, int(available.max())
    while low < high:  # the largest level with sum(min(available, level)) <= count
        middle = (low + high + 1) // 2
        low, high = (middle, high) if int(available.clamp(max=middle).sum()) <= count else (low, middle - 1)
    quotas = available.clamp(max=low)
    leftover = count - int(quotas.sum())
    with_room = torch.nonzero(available > low).flatten()
    quotas[with_room[torch.randperm(len(with_room), generator=generator)[:leftover]]] += 1
    return quotas


def reduce_training_set(raw: dict, examples: int, image_size: int, seed: int) -> dict:
    """`raw` with `examples` class-balanced training examples drawn from `seed` (0: all) and images resized to
    `image_size` pixels square (0: as they are): a smaller problem of the same kind, for CPU-sized studies."""
    reduced = dict(raw)
    if examples:
        if examples > len(raw["train_y"]):
            raise UserError(f"data.train_examples={examples}, but {raw['name']} has {len(raw['train_y'])}")
        chosen = class_balanced(raw["train_y"], examples, torch.Generator().manual_seed(seed))
        reduced.update(train_x=take(raw["train_x"], chosen), train_y=raw["train_y"][chosen])
    if image_size and not isinstance(raw["train_x"], ImageFiles):  # files are decoded at that size
        reduced = conform_input_shape(reduced, (raw["train_x"].shape[1], image_size, image_size))
    return with_statistics(reduced)


@dataclass
class Dataset:
    """A dataset resident on one device. Images stay uint8; `normalize` makes model inputs."""

    name: str
    classes: list
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    @property
    def streams(self) -> bool:
        """Whether the training split is files decoded as training reads them (`data.storage`)."""
        return isinstance(self.train_x, ImageFiles)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {name!r}")
        return (self.train_x, self.train_y) if name == "train" else (self.test_x, self.test_y)

    def training_subset(self, indices: torch.Tensor, labels: torch.Tensor | None = None) -> "Dataset":
        """The training split restricted to `indices`, optionally relabelled by `labels` [N] (e.g. randomized).

        Training on it for more steps than M / batch size makes repeated passes over the M
        examples, each in a fresh order (`BatchOrder`). The test split is unchanged.
        """
        indices = indices.to(self.train_y.device)
        labels = self.train_y if labels is None else labels.to(self.train_y.device)
        return dataclasses.replace(self, train_x=take(self.train_x, indices.cpu() if self.streams else indices),
                                   train_y=labels[indices])

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Model inputs in torch's default float dtype (float32; the equivalence tests set float64)."""
        shape = (-1, 1, 1)  # in place on one float copy: each fresh batch-sized tensor costs its page faults
        images = images.to(torch.get_default_dtype(), copy=True)
        return images.div_(255).sub_(self.mean.view(shape)).div_(self.std.view(shape))


def stored(raw: dict) -> dict:
    """What the `data` stage writes: the tensors, and a streamed split as its manifest (files, their sizes in
    bytes, so that DVC's hash of the file changes with them; the evaluation transform's sizes)."""
    stored = {}
    for key, value in raw.items():
        if isinstance(value, ImageFiles):
            split = key.removesuffix("_x")
            stored |= {f"{split}_files": value.files, "image_size": value.size, "image_resize": value.resize,
                       "image_decoder": value.decoder,
                       f"{split}_bytes": torch.tensor([os.path.getsize(f) for f in value.files], dtype=torch.int64)}
        else:
            stored[key] = value
    return stored


def load_dataset(path: str | Path, device: torch.device | str) -> Dataset:
    """The `data` stage's dataset on `device`; a streamed one's test split decoded there once (every analysis
    evaluates on it), its training split left as files, decoded where `data.decoder` resolves to on `device`."""
    raw = io.load_tensors(path, device)
    if "train_files" in raw:
        size, resize = raw.pop("image_size"), raw.pop("image_resize")
        files = raw.pop("train_files")
        raw["train_x"] = ImageFiles(files, size, device, resize, resolved_decoder(raw.pop("image_decoder"), files,
                                                                                  torch.device(device)))
        raw["test_x"] = ImageFiles(raw.pop("test_files"), size, device, resize)[:]
        raw.pop("train_bytes"), raw.pop("test_bytes")
    return Dataset(**raw)


class BatchOrder:
    """The seeded order in which one training run visits examples.

    Epoch e is a permutation drawn from (seed, e), so any step can be reached without replaying
    earlier ones: step s reads batch s mod steps_per_epoch of epoch s // steps_per_epoch.
    The last partial batch of an epoch is dropped (steps_per_epoch = floor(N / batch_size)).
    Permutations are drawn on the CPU (the same on every device) and kept on `device`, once per epoch.
    """

    def __init__(self, seed: int, num_examples: int, batch_size: int, device: torch.device | str = "cpu"):
        if batch_size > num_examples:
            raise UserError(f"train.batch_size={batch_size} exceeds the {num_examples} training examples "
                             f"this run sees (a data-diet subset must hold at least one batch)")
        self.seed, self.num_examples, self.batch_size = seed, num_examples, batch_size
        self.device = torch.device(device)
        self.steps_per_epoch = num_examples // batch_size
        self._epoch, self._permutation = -1, None

    def indices(self, step: int) -> torch.Tensor:
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
            self._epoch = epoch
            self._permutation = to_device(torch.randperm(self.num_examples, generator=generator), self.device)
        return self._permutation[position * self.batch_size:(position + 1) * self.batch_size]


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor on `device` without waiting for it: a plain copy to a GPU blocks the host until the GPU has
    finished all its queued work, so the training loop could not run ahead of it (pinned memory copies
    asynchronously)."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def augment(images: torch.Tensor, generator: torch.Generator, padding: int = 4) -> torch.Tensor:
    """Standard CIFAR augmentation on a uint8 batch [..., C, H, W]: zero-pad, random crop, random flip.

    Offsets and flips are drawn on the CPU from `generator` (same numbers on every device),
    then one gather crops the whole batch.
    """
    lead, (c, h, w) = images.shape[:-3], images.shape[-3:]
    flat = images.reshape(-1, c, h, w)
    n, device = flat.shape[0], flat.device
    padded = torch.nn.functional.pad(flat, (padding,) * 4)
    offsets = to_device(torch.randint(0, 2 * padding + 1, (n, 2), generator=generator), device)
    flips = to_device(torch.rand(n, generator=generator) < 0.5, device)
    rows = (offsets[:, :1] + torch.arange(h, device=device))[:, None, :, None]
    cols = offsets[:, 1:] + torch.arange(w, device=device)
    cols = torch.where(flips[:, None], cols.flip(-1), cols)[:, None, None, :]
    cropped = padded[torch.arange(n, device=device)[:, None, None, None],
                     torch.arange(c, device=device)[None, :, None, None], rows, cols]
    return cropped.reshape(*lead, c, h, w)


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (base seed, replicate, purpose, level, ...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint64)[0] >> np.uint64(1))
