"""Raw datasets, read with torchvision into uint8 NCHW tensors and int64 labels (the `data` stage's one job).

Only the `data` stage imports this module, so that editing a reader re-runs nothing downstream of an unchanged
dataset. Tensor datasets (MNIST, CIFAR) come from
torchvision's own classes; image-folder datasets (ImageNet, TinyImageNet, CINIC-10, EuroSAT) are listed by
torchvision's `ImageFolder` / `ImageNet` / `EuroSAT` (so class indices are torchvision's) and decoded once by PIL
(torchvision's image loader), in parallel, at one size: `data.image_size` pixels (shorter side resized, centre
crop, the usual evaluation transform), or as stored when every image has one size. Nothing is downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lthlib.core.data import with_statistics
from lthlib.core.errors import UserError
from lthlib.core.images import ImageFiles, decode_images

@dataclass(frozen=True)
class ReadOptions:
    image_size: int = 0  # 0: as stored (every image must then have one size)
    split_seed: int = 0  # datasets without an official test split: the seeded stratified split
    test_fraction: float = 0.2
    storage: str = "memory"  # image-folder datasets: memory (decoded once), stream (kept as files) or auto
    decoder: str = "auto"  # where streamed training decodes (`data.decoder`), recorded in the manifest


Samples = list[tuple[str, int]]  # (image file, class index), torchvision's `ImageFolder.samples`


def _tensor_dataset(class_name: str, folder: str) -> Callable[[Path, ReadOptions], dict]:
    """A dataset torchvision holds in memory (`.data`, `.targets`) with train=True/False splits."""
    def read(root: Path, options: ReadOptions) -> dict:
        import torchvision

        if options.storage == "stream":
            raise UserError(f"data.storage stream: {class_name} is one array file, read into memory (stream "
                            f"reads image folders: imagenet, tiny_imagenet, cinic10, eurosat); set it to auto")
        loader = getattr(torchvision.datasets, class_name)
        try:
            splits = {train: loader(str(root), train=train, download=False) for train in (True, False)}
        except RuntimeError as error:  # torchvision: "Dataset not found or corrupted."
            raise FileNotFoundError(f"no readable files under {root / folder} ({error}); see docs/format.md "
                                    f"(Data)") from None
        arrays = {}
        for train, split in splits.items():
            images = torch.as_tensor(np.asarray(split.data))
            images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)  # NHWC -> NCHW
            prefix = "train" if train else "test"
            arrays[f"{prefix}_x"] = images.contiguous().to(torch.uint8)
            arrays[f"{prefix}_y"] = torch.as_tensor(np.asarray(split.targets), dtype=torch.int64)
        return {"classes": list(splits[True].classes), **arrays}
    return read


def _image_folder(path: Path):
    """torchvision's ImageFolder listing of `path` (no image decoded), its errors as one line naming the folder."""
    import torchvision

    if not path.is_dir():
        raise FileNotFoundError(f"no folder {path}; see docs/format.md (Data)")
    try:
        return torchvision.datasets.ImageFolder(str(path))
    except FileNotFoundError as error:  # no class folder, or a class folder without images
        raise FileNotFoundError(f"{path}: {error}") from None


def _same_classes(train: list, other: list, where: Path) -> None:
    if train != other:
        missing = sorted(set(train) ^ set(other))
        raise UserError(f"{where}: its classes differ from the training split's ({len(other)} vs {len(train)}; "
                        f"e.g. {missing[0]!r} is in only one)")


def _imagenet(root: Path, options: ReadOptions) -> dict:
    """ImageNet: `imagenet/train/<wnid>/*.JPEG` + `imagenet/val/<wnid>/*.JPEG` (class folders), or torchvision's
    archive layout (`ILSVRC2012_devkit_t12.tar.gz` and the image archives, or what torchvision parsed from them:
    `meta.bin` next to `train/` and `val/`), which names the classes."""
    import torchvision

    folder = root / "imagenet"
    archive = (folder / "meta.bin").exists() or (folder / "ILSVRC2012_devkit_t12.tar.gz").exists()
    if archive:
        try:
            splits = [torchvision.datasets.ImageNet(str(folder), split=split) for split in ("train", "val")]
        except RuntimeError as error:  # an archive or the devkit missing
            raise FileNotFoundError(f"{folder}: {error}") from None
        classes = [names[0] for names in splits[0].classes]
    else:
        if not (folder / "train").is_dir() and any(folder.glob("ILSVRC2012_img_*.tar")):
            raise FileNotFoundError(f"{folder}: image archives without ILSVRC2012_devkit_t12.tar.gz (torchvision's "
                                    f"ImageNet needs the devkit to label them)")
        splits = [_image_folder(folder / split) for split in ("train", "val")]
        _same_classes(splits[0].classes, splits[1].classes, folder / "val")
        classes = splits[0].classes
    # ImageNet's evaluation transform: the shorter side to 256 / 224 of the size, then the centre crop
    return _decoded(classes, splits[0].samples, splits[1].samples, options, resize=round(options.image_size / 0.875))


def _tiny_imagenet(root: Path, options: ReadOptions) -> dict:
    """TinyImageNet-200: `tiny-imagenet-200/train/<wnid>/images/*.JPEG`; the labelled evaluation split is
    `val/images/*` with `val/val_annotations.txt` (file, wnid, box), as the official archive unpacks."""
    folder = root / "tiny-imagenet-200"
    train = _image_folder(folder / "train")
    annotations = folder / "val" / "val_annotations.txt"
    if not annotations.exists():
        raise FileNotFoundError(f"no {annotations}; see docs/format.md (Data)")
    test = []
    for number, line in enumerate(annotations.read_text().splitlines(), 1):
        if not line.strip():
            continue
        name, wnid = line.split("\t")[:2]
        if wnid not in train.class_to_idx:
            raise UserError(f"{annotations}, line {number}: class {wnid!r} has no folder under {folder / 'train'}")
        test.append((str(folder / "val" / "images" / name), train.class_to_idx[wnid]))
    return _decoded(train.classes, train.samples, test, options)


def _cinic10(root: Path, options: ReadOptions) -> dict:
    """CINIC-10: `cinic-10/{train,valid,test}/<class>/*.png`; train and valid merged into one training set of
    180,000 images, as the data-diet paper's Appendix A trains on them."""
    folder = root / "cinic-10"
    train, valid, test = (_image_folder(folder / split) for split in ("train", "valid", "test"))
    for split, name in ((valid, "valid"), (test, "test")):
        _same_classes(train.classes, split.classes, folder / name)
    return _decoded(train.classes, train.samples + valid.samples, test.samples, options)


def stratified_split(labels: torch.Tensor, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted (train, test) indices: round(test_fraction * n_c) examples of each class c to the test split,
    drawn from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    test = []
    for c in range(int(labels.max()) + 1):
        members = torch.nonzero(labels == c).flatten()
        test.append(members[torch.randperm(len(members), generator=generator)[:round(test_fraction * len(members))]])
    chosen = torch.zeros(len(labels), dtype=torch.bool)
    chosen[torch.cat(test)] = True
    return torch.nonzero(~chosen).flatten(), torch.nonzero(chosen).flatten()


def _eurosat(root: Path, options: ReadOptions) -> dict:
    """EuroSAT (RGB): `eurosat/2750/<class>/*.jpg`, read by torchvision's `EuroSAT`. It has no official split:
    `data.test_fraction` of every class goes to the test split, drawn from `data.split_seed`."""
    import torchvision

    if not (root / "eurosat" / "2750").is_dir():
        raise FileNotFoundError(f"no folder {root / 'eurosat' / '2750'}; see docs/format.md (Data)")
    try:
        listing = torchvision.datasets.EuroSAT(str(root), download=False)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{root / 'eurosat' / '2750'}: {error}") from None
    labels = torch.tensor([label for _, label in listing.samples])
    train, test = stratified_split(labels, options.test_fraction, options.split_seed)
    return _decoded(listing.classes, [listing.samples[i] for i in train], [listing.samples[i] for i in test], options)


def _decoded(classes: list, train: Samples, test: Samples, options: ReadOptions, resize: int = 0) -> dict:
    """The splits decoded into uint8 tensors at `data.image_size` (the shorter side resized to `resize`, if given,
    before the centre crop), or kept as files (`data.storage`)."""
    splits = {"train": train, "test": test}
    raw = {"classes": list(classes), **{f"{split}_y": torch.tensor([label for _, label in samples], dtype=torch.int64)
                                        for split, samples in splits.items()}}
    read = partial(ImageFiles, decoder=options.decoder) if _streams(len(train) + len(test), options) else decode_images
    raw |= {f"{split}_x": read([path for path, _ in samples], options.image_size, resize=resize)
            for split, samples in splits.items()}
    if raw["train_x"].shape[1:] != raw["test_x"].shape[1:]:
        raise UserError(f"data.image_size: training images are {tuple(raw['train_x'].shape[2:])} pixels, test "
                        f"images {tuple(raw['test_x'].shape[2:])}; set data.image_size to read both at one size")
    return raw


def _streams(images: int, options: ReadOptions) -> bool:
    """Whether a dataset of `images` files is streamed (`data.storage`): `auto` streams what would take more than
    half of this machine's memory as uint8 tensors (ImageNet at 224 px is about 190 GB) and says so; `memory`
    refuses it before decoding anything."""
    if options.storage == "stream":
        if not options.image_size:
            raise UserError("data.storage stream: streamed images are decoded at one size; set data.image_size "
                            "(e.g. 224 for ImageNet)")
        return True
    if not options.image_size:  # as stored: sizes are known only when decoded
        return False
    needed = images * 3 * options.image_size ** 2
    available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed <= available / 2:
        return False
    if options.storage == "auto":
        print(f"data: {images:,} images need {needed / 2 ** 30:.1f} GiB as uint8 tensors, more than half of this "
              f"machine's {available / 2 ** 30:.0f} GiB: streamed from their files (data.storage auto)")
        return True
    raise UserError(f"data.storage memory: {images:,} images at data.image_size {options.image_size} need "
                    f"{needed / 2 ** 30:.1f} GiB as uint8 tensors, more than half of this machine's "
                    f"{available / 2 ** 30:.0f} GiB: set data.storage to stream (or auto), or lower data.image_size")


# `data.name` -> reader(root, options); each reader documents the layout it expects under `data.root`. Its keys
# are data.DATASET_NAMES (a test checks it).
READERS: dict[str, Callable[[Path, ReadOptions], dict]] = {
    "mnist": _tensor_dataset("MNIST", "MNIST/raw"),
    "fashion_mnist": _tensor_dataset("FashionMNIST", "FashionMNIST/raw"),
    "cifar10": _tensor_dataset("CIFAR10", "cifar-10-batches-py"),
    "cifar100": _tensor_dataset("CIFAR100", "cifar-100-python"),
    "imagenet": _imagenet,
    "tiny_imagenet": _tiny_imagenet,
    "cinic10": _cinic10,
    "eurosat": _eurosat,
}


def read_raw(name: str, root: str | Path, options: ReadOptions = ReadOptions()) -> dict:
    """Read a dataset into uint8 NCHW tensors, plus per-channel statistics of its training split."""
    try:
        raw = READERS[name](Path(root), options)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{name}: {error}") from None
    return with_statistics({"name": name, **raw})
