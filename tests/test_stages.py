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
from conftest import tiny_dataset, write_idx_mnist

from lthlib.core import io
from lthlib.core.models import build_model, prunable_names
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


def save_one_ticket(folder: Path) -> None:
    """pretrain/rep_0/rewind.pt and imp/rep_0/level_01/mask.pt of a LeNet on the tiny dataset."""
    (state,) = initial_states("lenet_300_100", (1, 6, 6), 4, [replicate_seeds(0, 1)[0].init])
    io.save_tensors(state, io.replicate_dir(folder / "pretrain", 0) / "rewind.pt")
    io.save_tensors({name: torch.ones_like(state[name], dtype=torch.bool) for name in prunable_names(
        build_model("lenet_300_100", (1, 6, 6), 4))}, io.level_dir(folder / "imp", 0, 1) / "mask.pt")


@pytest.mark.parametrize("stage, section, values, message", [
    ("probes", "probes", {"blocks": [1, 5]}, "probes.blocks names block 5, but lenet_300_100 has 2 probe points"),
    ("few_shot", "few_shot", {"fractions": [0.5, 0.05]},
     "few_shot.fractions: 0.05 gives 5 training examples, fewer than one batch (train.batch_size=16)"),
    ("few_shot", "few_shot", {"fractions": [0.0]}, "few_shot.fractions must be fractions in (0, 1], got [0.0]"),
], ids=["missing-block", "fraction-below-a-batch", "empty-fraction"])
def test_bad_ticket_study_settings_name_the_key(tmp_path, stage, section, values, message):
    save_one_ticket(tmp_path)
    params = {**with_(section, **values), "tickets": {"levels": [1]}}
    assert message in run_stage(tmp_path, stage, params, "--pretrained", "pretrain", "--imp", "imp")


def test_a_missing_transfer_dataset_names_the_key_and_the_folder(tmp_path):
    write_idx_mnist(tmp_path / "raw" / "FashionMNIST" / "raw")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"root": "raw"},
                                                         "transfer": {"name": "mnist", "root": "nowhere"}}))
    result = subprocess.run([sys.executable, "-m", "stages.data"], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: transfer.name: mnist: no readable files under nowhere/MNIST/raw")
    assert not (tmp_path / "data").exists()


def test_parallel_workers_spread_over_the_gpus_and_free_them_when_done(tmp_path):
    """claim_gpu's locks: each claimant gets a GPU of its own while one is free, then the least shared one; a
    freed GPU is reused first."""
    from lthlib import cli

    claims = [cli.claim_gpu(3, tmp_path) for _ in range(3)]
    assert claims == [0, 1, 2]
    assert [cli.claim_gpu(3, tmp_path) for _ in range(4)] == [0, 1, 2, 0]  # every GPU taken: two each, then three
    cli._claimed.pop(1).close()  # the first worker on GPU 1 ends
    assert cli.claim_gpu(3, tmp_path) == 1
    assert cli.claim_gpu(1, tmp_path) == 0  # one visible GPU (Slurm --gpus-per-task): no lock needed
    for handle in [h for h in cli._claimed if "gpu2-" in h.name]:  # the workers on GPU 2 end
        cli._claimed.remove(handle)
        handle.close()
    script = "from lthlib import cli; import sys; print(cli.claim_gpu(3, sys.argv[1]))"
    other = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert other.stdout.strip() == "2"  # another process: GPUs 0 and 1 are held here
    while cli._claimed:
        cli._claimed.pop().close()
