"""Bad input to a stage: exit status 2, one line on stderr that names the key or the missing file, nothing written.

Each stage runs as DVC runs it, `python -m stages.<name>`, here from an empty working folder (so that a stray
write to a default output path would show up in it)."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_dataset

from lthlib.core import io
from lthlib.core.train import initial_states, replicate_seeds

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"replicates": 1, "train": {"steps": 8, "batch_size": 16, "milestones": [], "eval_batch_size": 64},
          "pretrain": {"steps": 2}, "pruning": {"levels": 1}, "el2n": {"steps": 2},
          "instability": {"rewind_steps": [0]}, "compute": {"device": "cpu", "threads": 1}}


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_stage(folder: Path, stage: str, params: dict, *options: str) -> str:
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    io.save_tensors(dataclasses.asdict(tiny_dataset()), folder / "dataset.pt")  # 96 training examples
    before = snapshot(folder)
    result = subprocess.run([sys.executable, "-m", f"stages.{stage}", "--params", "params.yaml",
                             "--dataset", "dataset.pt", *options], cwd=folder, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert snapshot(folder) == before  # nothing written, nothing changed
    return result.stderr


def with_(section: str, **values) -> dict:
    return {**PARAMS, section: {**PARAMS.get(section, {}), **values}}


def test_a_batch_larger_than_the_training_set_names_the_key(tmp_path):
    message = run_stage(tmp_path, "pretrain", with_("train", batch_size=500))
    assert "train.batch_size must be at most the 96 training examples, got 500" in message


def test_a_search_without_probes_names_the_key(tmp_path):
    message = run_stage(tmp_path, "first_stable", with_("instability", search_probes=0))
    assert "instability.search_probes must be >= 1, got 0" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_names_the_key(tmp_path):
    message = run_stage(tmp_path, "imp", with_("compute", device="cuda"))
    assert "compute.device is 'cuda' but no CUDA device is available" in message


@pytest.mark.parametrize("stage, options, missing", [
    ("imp", ("--pretrained", "nowhere/pretrain"), "nowhere/pretrain/rep_0/rewind.pt"),
    ("lmc", ("--imp", "nowhere/imp"), "nowhere/imp/rep_0/level_00/final.pt"),
], ids=["imp", "lmc"])
def test_missing_inputs_name_the_file_and_the_stage_to_run(tmp_path, stage, options, missing):
    message = run_stage(tmp_path, stage, PARAMS, *options)
    assert f"missing artifact {missing}: run the stage that produces it" in message


def test_instability_without_the_imp_masks_names_the_missing_mask(tmp_path):
    """The pretraining states are there; the IMP level whose mask instability.levels asks for is not."""
    seed = replicate_seeds(0, 1)[0]
    (init,) = initial_states("lenet_300_100", (1, 6, 6), 4, [seed.init])
    for name in ("init.pt", "rewind.pt"):
        io.save_tensors(init, io.replicate_dir(tmp_path / "pretrain", 0) / name)
    message = run_stage(tmp_path, "instability", with_("instability", levels=[1]), "--pretrained", "pretrain",
                        "--imp", "nowhere/imp")
    assert "missing artifact nowhere/imp/rep_0/level_01/mask.pt: run the stage that produces it" in message
