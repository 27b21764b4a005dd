"""ImageNet-style JPEG input throughput against what training consumes, measured side by side in one run.

    python bench/bench_loader.py [--images 4096] [--workers 1,2,4,8,16] [--consumes IMAGES_PER_S]

Writes `--images` JPEGs of ImageNet's typical size (500 x 375, quality 90: smooth colour fields with noise, about
as compressible as photographs) into a temporary class-folder layout, then reads them back as a streaming input
pipeline would, with torchvision's `ImageFolder` and a DataLoader of N workers applying the ImageNet training
transform (RandomResizedCrop 224, horizontal flip, uint8 tensor; normalisation belongs on the device), into pinned
memory where CUDA is present. With CUDA, also the GPU decoder: workers read the files' bytes, torchvision's
`decode_jpeg` decodes each batch on the GPU and the crops run there. Prints images/s per case and, with
`--consumes` (training images/s, e.g. bench_resnet.py's ImageNet-shaped run), the ratio: below 1 the GPU starves.
lthlib's trainer reads device-resident datasets only; this measures the pipeline a streaming path would use.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import typer
from PIL import Image

SIZE, CROP, BATCH = (500, 375), 224, 64


def write_jpeg(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    field = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize(SIZE, Image.BILINEAR)
    noisy = np.asarray(field, dtype=np.int16) + rng.integers(-12, 13, (SIZE[1], SIZE[0], 3))
    Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(path, quality=90)


def write_folder(root: Path, images: int, classes: int = 8) -> None:
    paths = [root / f"class_{i % classes}" / f"{i:06d}.JPEG" for i in range(images)]
    for folder in {p.parent for p in paths}:
        folder.mkdir(parents=True)
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write_jpeg, paths, range(images), chunksize=64))


def rate(batches, images: int, device) -> float:
    """Images/s over `batches` after the first batch (worker start-up is not the steady state)."""
    iterator = iter(batches)
    next(iterator)
    started, seen = time.perf_counter(), 0
    for batch in iterator:
        seen += len(batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seen / (time.perf_counter() - started)


def cpu_decoded(root: Path, workers: int, pin: bool):
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.RandomResizedCrop(CROP), transforms.RandomHorizontalFlip(),
                                    transforms.PILToTensor()])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(str(root), transform=transform), batch_size=BATCH,
                                         shuffle=True, num_workers=workers, pin_memory=pin, drop_last=True)
    return (images for images, _ in loader)


def gpu_decoded(root: Path, workers: int, device):
    from torchvision import datasets, io, transforms

    files = datasets.ImageFolder(str(root), loader=io.read_file)
    loader = torch.utils.data.DataLoader(files, batch_size=BATCH, shuffle=True, num_workers=workers, drop_last=True,
                                         collate_fn=_concatenated)
    crop = transforms.Compose([transforms.RandomResizedCrop(CROP, antialias=True), transforms.RandomHorizontalFlip()])
    for encoded, sizes in loader:
        yield torch.stack([crop(image) for image in io.decode_jpeg(list(encoded.split(sizes)), device=device)])


def _concatenated(samples):
    """A batch's files as one byte tensor and their sizes: a worker hands each tensor over through a file
    descriptor of its own, and 64 per batch ran out of them (EBADF) on a sandboxed GPU machine."""
    return torch.cat([data for data, _ in samples]), [len(data) for data, _ in samples]


def main(images: int = 4096, workers: str = "1,2,4,8,16", consumes: float = 0.0):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    counts = [int(w) for w in workers.split(",") if int(w) <= (os.cpu_count() or 1)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        write_folder(root, images)
        size = sum(f.stat().st_size for f in root.rglob("*.JPEG")) / images / 1e3
        print(f"{images} JPEGs of {SIZE[0]} x {SIZE[1]} ({size:.0f} kB each) written in "
              f"{time.perf_counter() - started:.0f} s; {os.cpu_count()} CPU cores, batches of {BATCH}")
        cases = [(f"PIL decode, {w} worker(s)", lambda w=w: cpu_decoded(root, w, device.type == "cuda"))
                 for w in counts]
        if device.type == "cuda":
            cases += [(f"GPU decode, {w} reader(s)", lambda w=w: gpu_decoded(root, w, device)) for w in counts[-2:]]
        for label, batches in cases:
            measured = rate(batches(), images, device)
            ratio = f"   {measured / consumes:.2f}x what training consumes" if consumes else ""
            print(f"{label:28s} {measured:8,.0f} images/s{ratio}", flush=True)


if __name__ == "__main__":
    typer.run(main)
