"""The on-disk artifact format, read and written in one place.

Every write is atomic: the file is written beside its target under a temporary name and
renamed over it, so a killed run never leaves a half-written artifact behind.
Layout (documented in docs/format.md):

    data/dataset.pt                               the dataset as uint8/int64 tensors
    data/pretrain/rep_<r>/init.pt, rewind.pt      state_dicts at step 0 and step t_r
    data/imp/rep_<r>/level_<LL>/mask.pt           {parameter name: bool tensor}
    data/imp/rep_<r>/level_<LL>/final.pt          trained state_dict (pruned weights exactly 0)
    data/selected/<analyses>/rep_<r>/level_<LL>/  copies of the IMP files those analyses read
    reports/imp.csv, reports/metrics.json         tables read by later stages and by dvc
    data/landscape/level_<LL>.npz                 raw 2D error grids (numpy arrays, np.load)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def writes_outputs() -> bool:
    """Whether this process writes: the only one, or rank 0 of a data-parallel group (`core.distributed`); the
    other workers compute the same results and their writes go nowhere."""
    return int(os.environ.get("RANK", "0")) == 0


@contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path next to `target`; on success it is renamed over `target` (by the writing process)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if writes_outputs():
            os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_tensors(obj, path: str | Path) -> None:
    """torch.save, byte-identical for equal tensors, so DVC skips stages downstream of an unchanged result."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # given a name, torch.save would embed the temporary one
        torch.save(obj, handle)


def load_tensors(path: str | Path, device: str | torch.device = "cpu"):
    return torch.load(existing(path), map_location=device, weights_only=True)


def save_json(obj, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def load_json(path: str | Path):
    return json.loads(Path(path).read_text())


def save_csv(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def load_csv(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(existing(path, "table"))


def save_npz(arrays: dict, path: str | Path) -> None:
    """Numpy arrays (tensors are converted) in one uncompressed .npz, readable with np.load.

    Each member is written whole with a fixed zip header, so equal arrays give equal bytes under every
    Python: np.savez streams its members, whose headers differ between Python releases (3.11.2 and 3.11.7
    wrote different bytes for the same arrays, so a different Python re-ran everything after `landscape`).
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name, value in arrays.items():
            member = BytesIO()
            np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(existing(path)) as arrays:
        return dict(arrays)


def existing(path: str | Path, kind: str = "artifact") -> Path:
    """`path`, or an error that names it and what to run."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"missing {kind} {path}: run the stage that produces it (dvc repro)")
    return path


@contextmanager
def atomic_dir(target: str | Path):
    """Yield a fresh temporary folder; on success it replaces `target` as a whole (in the writing process)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if not writes_outputs():
            return
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def replicate_dir(root: str | Path, replicate: int) -> Path:
    return Path(root) / f"rep_{replicate}"


def level_dir(root: str | Path, replicate: int, level: int) -> Path:
    return replicate_dir(root, replicate) / f"level_{level:02d}"


def copy_level_files(imp_dir: str | Path, out_dir: str | Path, files: list[tuple[int, str]], replicates: int) -> None:
    """The (level, file name) `files` of replicates 0..`replicates` - 1, copied byte for byte from `imp_dir` into
    the same layout under `out_dir`, which is replaced as a whole, beside selection.json naming them (so the
    folder exists when nothing is selected). A stage reading them from there depends on them alone, not on every
    IMP level: unchanged files are unchanged bytes, and DVC skips the stage."""
    with atomic_dir(out_dir) as folder:
        for level, name in files:
            for r in range(replicates):
                source, target = existing(level_dir(imp_dir, r, level) / name), level_dir(folder, r, level)
                target.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target / name)
        save_json({"files": [list(file) for file in files], "replicates": replicates}, folder / "selection.json")
