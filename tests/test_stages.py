"""Bad input to a stage: exit status 2, one line on stderr that names the key or the missing file, nothing written."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import tiny_dataset
from lthlib.core import io

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"replicates": 1, "train": {"steps": 8, "batch_size": 16, "milestones": [], "eval_batch_size": 64},
          "pretrain": {"steps": 2}, "pruning": {"levels": 1}, "el2n": {"steps": 2},
          "instability": {"rewind_steps": [0]}, "compute": {"device": "cpu", "threads": 1}}


def run_stage(tmp_path, stage: str, params: dict, *options: str):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    io.save_tensors(dataclasses.asdict(tiny_dataset()), tmp_path / "dataset.pt")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = subprocess.run([sys.executable, "-m", f"stages.{stage}", "--params", str(tmp_path / "params.yaml"),
                             "--dataset", str(tmp_path / "dataset.pt"), *options], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written
    return result.stderr


def with_(section: str, **values) -> dict:
    return {**PARAMS, section: {**PARAMS.get(section, {}), **values}}


def test_a_batch_larger_than_the_training_set_names_the_key(tmp_path):
    message = run_stage(tmp_path, "pretrain", with_("train", batch_size=500), "--out", str(tmp_path / "pretrain"))
    assert "train.batch_size must be at most the 96 training examples, got 500" in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_gpu_names_the_key(tmp_path):
    message = run_stage(tmp_path, "imp", with_("compute", device="cuda"), "--out", str(tmp_path / "imp"))
    assert "compute.device is 'cuda' but no CUDA device is available" in message


@pytest.mark.parametrize("stage, options, missing", [
    ("imp", ("--pretrained", "nowhere/pretrain", "--out", "{tmp}/imp", "--table", "{tmp}/imp.csv",
             "--sweep", "{tmp}/sweep.csv", "--timing", "{tmp}/timing.json"), "nowhere/pretrain/rep_0/rewind.pt"),
    ("lmc", ("--imp", "nowhere/imp", "--paths", "{tmp}/paths.csv", "--pairs", "{tmp}/pairs.csv"),
     "nowhere/imp/rep_0/level_00/final.pt"),
    ("instability", ("--noise", "{tmp}/noise.pt", "--subset", "{tmp}/subset.csv", "--pretrained", "nowhere/pretrain",
                     "--imp", "nowhere/imp", "--table", "{tmp}/instability.csv"), "nowhere/pretrain/rep_0/init.pt"),
])
def test_missing_inputs_name_the_file_and_the_stage_to_run(tmp_path, stage, options, missing):
    message = run_stage(tmp_path, stage, PARAMS, *(o.format(tmp=tmp_path) for o in options))
    assert f"missing artifact {missing}: run the stage that produces it" in message
