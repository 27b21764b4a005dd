"""Small, real inputs the tests build themselves: a tiny dataset and torchvision-format files."""

from __future__ import annotations

import os
import pickle
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from lthlib.core.data import Dataset
from lthlib.core.models import build_model
from lthlib.core.train import initial_states

ROOT = Path(__file__).resolve().parents[1]
# what a repository of the project needs to run its pipeline (data/raw is written by the tests)
PROJECT_FILES = ["dvc.yaml", ".dvcignore", "lthlib", "stages", "scripts"]


@pytest.fixture(autouse=True)
def _threads():
    """One thread (polite on a shared machine), or OMP_NUM_THREADS where set: the suite must pass under every
    thread count (docs/testing.md), and a thread count changes how the CPU kernels split their sums."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 1)))


@pytest.fixture
def float64():
    """Tests that compare two computation paths (vmap vs loop, batched vs one by one, compiled vs eager) run in
    float64, where they prove the equivalence itself: in float32, each CPU's kernels (AVX-512, AVX2, scalar)
    round differently, and a few SGD steps can amplify that rounding past any fixed tolerance. Unit roundoff
    is 1.1e-16 in float64 against 6e-8 in float32, so the same amplification leaves 5e8 times less."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


# The tolerance of those comparisons. The bound: float32 rounding (6e-8) grows to at most 4e-2 over the ResNet
# steps these tests take (measured: a factor under 1e6), so float64's 1.1e-16 grows to under 1e-10 (measured:
# 1e-14 after 6 steps, 5e-13 after 30, on AVX-512, AVX2 and scalar kernels); any real difference between two
# paths (another batch, mask, seed or update) is 1e-6 or more.
EQUAL_PATHS = {"rtol": 1e-9, "atol": 1e-9}


def tiny_dataset(train: int = 96, test: int = 40, classes: int = 4, shape=(1, 6, 6), seed: int = 0) -> Dataset:
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


@pytest.fixture
def dataset() -> Dataset:
    return tiny_dataset()


def write_idx_mnist(raw: Path, train: int = 64, test: int = 32, seed: int = 0) -> dict:
    """Write gunzipped idx files in torchvision's (Fashion-)MNIST layout; return the arrays.

    Each class is a fixed random pattern plus noise, so a LeNet learns it in a few steps (end-to-end
    accuracies mean something)."""
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, (10, 28, 28))
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", train), ("t10k", test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        noise = rng.integers(-80, 81, (n, 28, 28))
        images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
        arrays[prefix] = (images, labels)
    return arrays


def write_cifar(root: Path, classes: int, n: int = 20, seed: int = 0) -> np.ndarray:
    """Write a miniature CIFAR-10 (classes=10) or CIFAR-100 (classes=100) in the python-pickle layout."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(i % classes) for i in range(n)]
    if classes == 10:
        folder, label_key = root / "cifar-10-batches-py", "labels"
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        meta_file, meta = "batches.meta", {"label_names": [f"class{i}" for i in range(10)]}
    else:
        folder, label_key = root / "cifar-100-python", "fine_labels"
        files, meta_file, meta = ["train", "test"], "meta", {"fine_label_names": [f"class{i}" for i in range(100)]}
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, label_key: labels}, f)
    with open(folder / meta_file, "wb") as f:
        pickle.dump(meta, f)
    return data


def random_states(dataset: Dataset, count: int, model_name: str = "lenet_300_100") -> tuple:
    """(model, `count` independently initialised state dicts)."""
    states = initial_states(model_name, dataset.input_shape, dataset.num_classes, list(range(count)))
    return build_model(model_name, dataset.input_shape, dataset.num_classes), states


def imp_table(ratios, accuracies, test_examples=10000):
    """Two replicates (accuracy ± 0.01) of an IMP run whose level L + 1 pruned ratios[L] of the weights."""
    remaining, rows = 1.0, []
    for level, accuracy in enumerate(accuracies):
        if level:
            remaining *= 1 - ratios[level - 1]
        rows += [{"replicate": r, "level": level, "fraction_remaining": remaining,
                  "pruning_ratio": ratios[level - 1] if level else None,
                  "test_accuracy": accuracy + (0.01 if r else -0.01),
                  "test_loss": 0.3, "train_loss": 0.1, "train_steps": 100, "test_examples": test_examples}
                 for r in range(2)]
    return pd.DataFrame(rows)


def run(args, cwd, **env_vars):
    """Run a command in `cwd`; a failure shows its output."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", **env_vars}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({result.returncode}):\n{result.stdout}\n"
                             f"{result.stderr}")
    return result


def smoke_project(repo: Path, profile: str = "smoke.yaml", **sections: dict) -> Path:
    """The project's pipeline at `repo` with a profile (the smoke one unless named) as params.yaml (each keyword
    replaces keys of that section) and tiny raw Fashion-MNIST, and MNIST, which the smoke runs take as their
    transfer target; nothing run."""
    repo.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, repo / name)
    shutil.copy(ROOT / "profiles" / profile, repo / "params.yaml")
    if profile == "smoke.yaml":  # the tiny MNIST written below is the smoke runs' transfer target
        sections = {"transfer": {"name": "mnist"}, **sections}
    if sections:
        params = yaml.safe_load((repo / "params.yaml").read_text())
        (repo / "params.yaml").write_text(yaml.safe_dump(
            {**params, **{section: {**params[section], **values} for section, values in sections.items()}},
            sort_keys=False))
    write_idx_mnist(repo / "data" / "raw" / "FashionMNIST" / "raw", train=256, test=64)
    write_idx_mnist(repo / "data" / "raw" / "MNIST" / "raw", train=128, test=64, seed=1)  # the transfer target
    return repo


def smoke_repo(repo: Path, profile: str = "smoke.yaml", **sections: dict) -> Path:
    """`smoke_project` as a git + DVC repository, committed; nothing run yet."""
    smoke_project(repo, profile, **sections)
    (repo / ".gitignore").write_text("__pycache__/\n")
    for command in (["git", "init", "-q"], ["git", "config", "user.email", "t@t"], ["git", "config", "user.name", "t"],
                    ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"]):
        run(command, repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "smoke"], repo)
    return repo


def run_stages(repo: Path, **env_vars) -> None:
    """Every stage of dvc.yaml, in the file's (dependency) order, without DVC: where DVC is not installed."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    for stage in stages.values():
        program, *arguments = stage["cmd"].split()
        assert program == "python", stage["cmd"]
        run([sys.executable, *arguments], repo, PYTHONPATH=str(repo), **env_vars)
