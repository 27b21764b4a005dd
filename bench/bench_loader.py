"""ImageNet-style JPEG input throughput against what training consumes, measured side by side in one run.

    python bench/bench_loader.py [--images 4096] [--workers 1,2,4,8,16] [--consumes IMAGES_PER_S]

Writes `--images` JPEGs of ImageNet's typical size (500 x 375, quality 90: smooth colour fields with noise, about
as compressible as photographs) into a temporary class-folder layout, then reads them back with the ImageNet
training transform (RandomResizedCrop 224, horizontal flip, uint8 tensors; normalisation belongs on the device),
into pinned memory where CUDA is present, three ways: torchvision's `ImageFolder` in a DataLoader of N workers
(the field's reference pipeline), lthlib's streaming path with the workers decoding (`data.decoder: workers`) and
with the training device decoding (`data.decoder: device`: the workers read bytes and draw crops; nvJPEG on a
GPU, torchvision's CPU decoder in the main process on a CPU). Prints images/s per case and, with `--consumes`
(training images/s, e.g. bench_resnet.py's ImageNet-shaped run), the ratio: below 1 the GPU starves.
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


def rate(batches, device) -> float:
    """Images/s over `batches` after the first batch (worker start-up is not the steady state)."""
    iterator = iter(batches)
    next(iterator)
    started, seen = time.perf_counter(), 0
    for batch in iterator:
        seen += batch.numel() // (3 * CROP * CROP)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seen / (time.perf_counter() - started)


def torchvision_pipeline(root: Path, workers: int, pin: bool):
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.RandomResizedCrop(CROP), transforms.RandomHorizontalFlip(),
                                    transforms.PILToTensor()])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(str(root), transform=transform), batch_size=BATCH,
                                         shuffle=True, num_workers=workers, pin_memory=pin, drop_last=True)
    return (images for images, _ in loader)


def lthlib_stream(root: Path, workers: int, decoder: str, device: torch.device):
    """What a streamed training run reads (`lthlib.core.train._streamed`): one replicate's steps of one epoch."""
    from lthlib.core.data import BatchOrder, to_device
    from lthlib.core.images import EncodedStep, ImageFiles, StepBatches, decode_step

    files = ImageFiles(sorted(str(f) for f in root.rglob("*.JPEG")), CROP, device, decoder=decoder)
    steps = StepBatches(files, [BatchOrder(0, len(files), BATCH)], [0], 0, len(files) // BATCH)
    loader = torch.utils.data.DataLoader(steps, batch_size=None, num_workers=workers,
                                         pin_memory=device.type == "cuda")
    for item in loader:
        yield decode_step(item, CROP, 0, device) if isinstance(item, EncodedStep) else to_device(item, device)


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
        pin = device.type == "cuda"
        cases = [(f"torchvision, {w} worker(s)", lambda w=w: torchvision_pipeline(root, w, pin)) for w in counts]
        cases += [(f"lthlib, workers decode, {w}", lambda w=w: lthlib_stream(root, w, "workers", device))
                  for w in counts]
        cases += [(f"lthlib, {device.type} decodes, {w} readers", lambda w=w: lthlib_stream(root, w, "device", device))
                  for w in counts[-2:]]
        for label, batches in cases:
            measured = rate(batches(), device)
            ratio = f"   {measured / consumes:.2f}x what training consumes" if consumes else ""
            print(f"{label:32s} {measured:8,.0f} images/s{ratio}", flush=True)


if __name__ == "__main__":
    typer.run(main)
