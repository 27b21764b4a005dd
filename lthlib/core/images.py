"""Image files as uint8 tensors: decoding for the `data` stage, and the streaming path (`data.storage: stream`).

Files are decoded by PIL (torchvision's image loader) to RGB. The evaluation transform resizes the shorter side to
`resize` (`size` unless a dataset says otherwise: ImageNet's 256 for 224) and crops the centre `size` square; it
makes every image of a dataset held in memory, and every image a streamed dataset shows outside training
(`ImageFiles`). A streamed training run reads its batches through `StepBatches`: DataLoader workers decode each
step's batch ahead of the trainer with ImageNet's augmentation (a random resized crop to `size` and a horizontal
flip, Appendix C), drawn from the run's seeds and the step, so a step sees the same pixels however many workers run
and a killed run resumes mid-epoch. With `data.decoder: device` (`auto` on CUDA, for JPEG files) the workers read
the files' bytes and draw the crops, and torchvision's decoder (nvJPEG on a GPU) decodes each step's batch on the
training device, where the crops are cut: a GPU trains a ResNet-50 as fast as 16 CPU cores decode
(docs/benchmarks.md).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import torch

from lthlib.core.errors import UserError


def read(file: str, size: int, shorter: int = 0) -> torch.Tensor:
    """`decode`, a file that does not decode being a one-line error naming it."""
    image = decode(file, size, shorter)
    if image is None:
        raise UserError(f"{file}: not a readable image (corrupt or truncated)")
    return image


def _pixels(file: str) -> torch.Tensor | None:
    """[3, H, W] uint8 RGB of `file` as stored; None if it does not decode."""
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor

    try:
        with Image.open(file) as opened:
            return pil_to_tensor(opened.convert("RGB"))
    except OSError:  # PIL's UnidentifiedImageError and truncated files included
        return None


def decode(file: str, size: int, shorter: int = 0) -> torch.Tensor | None:
    """[3, H, W] uint8 RGB of `file` at the evaluation transform (shorter side to `shorter` or `size`, centre crop
    of `size`; 0: as stored); None if it does not decode."""
    image = _pixels(file)
    return image if image is None else _evaluation_transform(image, size, shorter)


def _evaluation_transform(image: torch.Tensor, size: int, shorter: int = 0) -> torch.Tensor:
    from torchvision.transforms.v2.functional import center_crop, resize

    if not size:
        return image
    return center_crop(resize(image, shorter or size, antialias=True), [size, size])


def crop_box(height: int, width: int, seed: int) -> tuple[int, int, int, int, bool]:
    """ImageNet's random resized crop (scale 0.08-1, aspect 3/4-4/3) of a height x width image and its horizontal
    flip: (top, left, crop height, crop width, flip), drawn from `seed` alone."""
    from torchvision.transforms import v2

    # torchvision draws the crop from the global generator, in the default dtype: both fixed here, so that a
    # DataLoader worker draws the same crop whether it was forked (inheriting the trainer's dtype) or spawned
    previous = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(torch.float32)
        try:
            box = v2.RandomResizedCrop.get_params(torch.empty(3, height, width, device="meta"), scale=[0.08, 1.0],
                                                  ratio=[3 / 4, 4 / 3])
            return (*box, bool(torch.rand(()) < 0.5))
        finally:
            torch.set_default_dtype(previous)


def _cropped(image: torch.Tensor, box: tuple[int, int, int, int, bool], size: int) -> torch.Tensor:
    from torchvision.transforms.v2.functional import horizontal_flip, resized_crop

    image = resized_crop(image, *box[:4], [size, size], antialias=True)
    return horizontal_flip(image) if box[4] else image


def decode_augmented(file: str, size: int, seed: int) -> torch.Tensor:
    """[3, size, size] uint8 RGB of `file` with a random resized crop and flip drawn from `seed` alone."""
    image = _pixels(file)
    if image is None:
        raise UserError(f"{file}: not a readable image (corrupt or truncated)")
    return _cropped(image, crop_box(*image.shape[1:], seed), size)


class EncodedStep(NamedTuple):
    """A training step's files as bytes (`data.decoder: device`), for `decode_step` on the training device."""

    data: torch.Tensor  # uint8: the files' bytes one after another (one tensor: a worker hands each over by a file
    sizes: list[int]    # descriptor of its own, and 64 a batch ran out of them on a sandboxed GPU machine)
    files: list[str]
    boxes: list[tuple] | None  # each image's `crop_box`; None: the evaluation transform
    shape: tuple[int, int]     # (R, B)


def decode_step(step: EncodedStep, size: int, resize: int, device: torch.device) -> torch.Tensor:
    """The uint8 images [R, B, 3, size, size] of an `EncodedStep`, decoded and cropped on `device`."""
    images = _decoded_on(list(step.data.split(step.sizes)), step.files, device)
    images = [_cropped(image, box, size) for image, box in zip(images, step.boxes)] if step.boxes else \
        [_evaluation_transform(image, size, resize) for image in images]
    return torch.stack(images).view(*step.shape, 3, size, size)


def _decoded_on(encoded: list[torch.Tensor], files: list[str], device: torch.device) -> list[torch.Tensor]:
    """torchvision's batched JPEG decoder on `device`; a batch it refuses (ImageNet holds a few CMYK JPEGs and a PNG
    named .JPEG) is decoded file by file, those it refuses on the CPU by PIL."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        return [_decoded_one(data, file, device) for data, file in zip(encoded, files)]


def _decoded_one(data: torch.Tensor, file: str, device: torch.device) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        return read(file, 0).to(device)


def resolved_decoder(decoder: str, files: list[str], device: torch.device) -> str:
    """`data.decoder` for a training split of `files` on `device`: `auto` decodes on a GPU when it can (JPEGs)."""
    if decoder != "auto":
        return decoder
    jpegs = all(file.lower().endswith((".jpg", ".jpeg")) for file in files)
    return "device" if device.type == "cuda" and jpegs else "workers"


def cores() -> int:
    """The CPU cores this process may run on (a Slurm job's, not the node's)."""
    return len(os.sched_getaffinity(0))


class _Decoder(torch.utils.data.Dataset):
    """`decode` of each file, for DataLoader workers (a file that does not decode comes back as None, so that the
    error names it, not a worker's traceback)."""

    def __init__(self, files: list[str], size: int, resize: int):
        self.files, self.size, self.resize = files, size, resize

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        return decode(self.files[index], self.size, self.resize)


def decode_images(files: list[str], size: int, workers: int | None = None, resize: int = 0) -> torch.Tensor:
    """[N, 3, H, W] uint8 images of `files` at the evaluation transform, decoded by DataLoader workers (one per
    core, up to 8, for 2,000 files or more). A file that does not decode is a one-line error naming it."""
    if not files:
        return torch.zeros(0, 3, size, size, dtype=torch.uint8)
    workers = min(8, cores()) if workers is None and len(files) >= 2000 else (workers or 0)
    loader = torch.utils.data.DataLoader(_Decoder(files, size, resize), batch_size=None, num_workers=workers)
    images, shape = None, None
    for index, image in enumerate(loader):
        if image is None:
            raise UserError(f"{files[index]}: not a readable image (corrupt or truncated)")
        if images is None:
            shape = image.shape
            images = torch.empty(len(files), *shape, dtype=torch.uint8)
        if image.shape != shape:
            raise UserError(f"data.image_size is 0 (as stored), but {files[index]} is {tuple(image.shape[1:])} "
                            f"pixels and {files[0]} {tuple(shape[1:])}: set data.image_size")
        images[index] = image
    return images


class ImageFiles:
    """The images of a streamed split, as files: indexing decodes (evaluation transform) onto `device`, so the
    analyses that read a split in slices or by index (EL2N, probes, BatchNorm re-estimation) read it like a
    tensor; `subset` selects without decoding. `decoder`: where training decodes them (`workers` or `device`,
    `data.decoder` resolved)."""

    def __init__(self, files: list[str], size: int, device: torch.device | str = "cpu", resize: int = 0,
                 decoder: str = "workers"):
        self.files, self.size, self.device, self.resize = list(files), size, torch.device(device), resize
        self.decoder = decoder

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), 3, self.size, self.size)

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, indices: torch.Tensor) -> "ImageFiles":
        return ImageFiles([self.files[i] for i in indices.tolist()], self.size, self.device, self.resize,
                          self.decoder)

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, int):
            return self[[key]][0]
        files = self.files[key] if isinstance(key, slice) else self.subset(torch.as_tensor(key).reshape(-1)).files
        with ThreadPoolExecutor(min(8, cores())) as pool:  # PIL decodes outside the GIL
            images = list(pool.map(read, files, [self.size] * len(files), [self.resize] * len(files)))
        stacked = torch.stack(images) if images else torch.zeros(0, 3, self.size, self.size, dtype=torch.uint8)
        if isinstance(key, torch.Tensor) and key.dim() > 1:
            stacked = stacked.view(*key.shape, *stacked.shape[1:])
        return stacked.to(self.device)


class StepBatches(torch.utils.data.Dataset):
    """Item i: the uint8 images [R, B, 3, size, size] of training step `start + i` for every replicate, each
    replicate's examples in its `BatchOrder` (on the CPU), augmented from its augmentation seed (or at the evaluation
    transform without `augmentation`); with `shard` (rank, processes), only that process's part of each batch.
    With `files.decoder == "device"`, the step's `EncodedStep` instead (its files' bytes and crops), for
    `decode_step`. Read it with `DataLoader(batch_size=None)`: items come in step order."""

    def __init__(self, files: ImageFiles, orders: list, augmentation_seeds: list[int] | None, start: int, end: int,
                 shard: tuple[int, int] = (0, 1)):
        self.files, self.orders, self.seeds, self.start, self.end = files, orders, augmentation_seeds, start, end
        self.rank, self.processes = shard

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, item: int) -> torch.Tensor | EncodedStep:
        from lthlib.core.data import derive_seed

        step = self.start + item
        examples = []  # (replicate, position in the global batch, file)
        for r, order in enumerate(self.orders):
            indices = order.indices(step).tolist()
            part = len(indices) // self.processes  # this process's contiguous shard, as `distributed.Group.shard`
            examples += [(r, n, self.files.files[indices[n]]) for n in range(self.rank * part, (self.rank + 1) * part)]
        shape = (len(self.orders), len(examples) // len(self.orders))
        seeds = None if self.seeds is None else [derive_seed(self.seeds[r], step, n) for r, n, _ in examples]
        files = [file for _, _, file in examples]
        if self.files.decoder == "device":
            return _encoded(files, seeds, shape)
        size, resize = self.files.size, self.files.resize
        if seeds is None:
            images = [read(file, size, resize) for file in files]
        else:
            images = [decode_augmented(file, size, seed) for file, seed in zip(files, seeds)]
        return torch.stack(images).view(*shape, 3, size, size)


def _encoded(files: list[str], seeds: list[int] | None, shape: tuple[int, int]) -> EncodedStep:
    """The files' bytes and, with `seeds`, their crops (drawn from the image size in the header of the bytes read,
    so each file is read once)."""
    from io import BytesIO

    from PIL import Image

    raw = [Path(file).read_bytes() for file in files]
    data = [torch.frombuffer(bytearray(content), dtype=torch.uint8) for content in raw]
    boxes = None
    if seeds is not None:
        boxes = []
        for file, content, seed in zip(files, raw, seeds):
            try:
                with Image.open(BytesIO(content)) as image:
                    width, height = image.size
            except OSError:
                raise UserError(f"{file}: not a readable image (corrupt or truncated)") from None
            boxes.append(crop_box(height, width, seed))
    return EncodedStep(torch.cat(data), [len(d) for d in data], files, boxes, shape)
