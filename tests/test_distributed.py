"""Data-parallel training (compute.processes): two gloo processes on the CPU against one, on one global batch."""

import os

import pytest
import torch
from conftest import EQUAL_PATHS, tiny_dataset
from test_readers import write_class_folders

from lthlib.core import distributed, io
from lthlib.core.config import TrainConfig
from lthlib.core.data import load_dataset, stored
from lthlib.core.models import build_model, prunable_names
from lthlib.core.pruning import dense_mask, magnitude_prune
from lthlib.core.readers import ReadOptions, read_raw
from lthlib.core.train import Replicas, ReplicateSeeds, initial_states, train

CONFIG = TrainConfig(steps=12, batch_size=16, lr=0.05, momentum=0.9, weight_decay=5e-3, schedule="step",
                     milestones=(8,), gamma=0.1, eval_batch_size=64, curve_steps=4)


def trained(name: str, augmentation: bool, streamed: str = "") -> tuple[Replicas, dict, object]:
    """Two masked replicates trained for CONFIG.steps in float64, in whatever process group this process is in;
    on the dataset file `streamed` (a streamed one) if given."""
    torch.set_default_dtype(torch.float64)
    dataset = load_dataset(streamed, "cpu") if streamed else tiny_dataset(train=64, test=16, shape=(3, 8, 8))
    seeds = [ReplicateSeeds.for_replicate(0, r) for r in range(2)]
    model = build_model(name, dataset.input_shape, dataset.num_classes)
    replicas = Replicas.from_state_dicts(model, initial_states(name, dataset.input_shape, dataset.num_classes,
                                                               [s.init for s in seeds]), "cpu")
    names = prunable_names(model)
    masks = [magnitude_prune(replicas.state_dict(r), dense_mask({n: replicas.params[n][r] for n in names}), 0.5)
             for r in range(2)]
    stacked = {n: torch.stack([m[n] for m in masks]) for n in names}
    log = train(replicas, dataset, CONFIG, seeds, 0, CONFIG.steps, stacked, augmentation)
    return replicas, stacked, log


def worker(name: str, augmentation: bool, streamed: str, out: str) -> None:
    distributed.join(torch.device("cpu"))
    replicas, masks, log = trained(name, augmentation, streamed)
    io.save_tensors({"states": [replicas.state_dict(r) for r in range(2)], "masks": masks, "losses": log.losses,
                     "forgetting": log.curves.forgetting.per_example(0), "rank": int(os.environ["RANK"]),
                     "group": distributed.current().size}, out)


@pytest.mark.parametrize("name, augmentation, streamed", [("lenet_300_100", False, False),
                                                          ("lenet_300_100", True, False),
                                                          ("lenet_300_100", True, True)])
def test_two_processes_train_like_one_on_the_same_global_batch(tmp_path, name, augmentation, streamed):
    out, files = tmp_path / "two.pt", ""
    if streamed:  # image files, each process decoding its half of every batch (random resized crops)
        write_class_folders(tmp_path / "imagenet" / "train", ["a", "b", "c", "d"], 16, ".png")
        write_class_folders(tmp_path / "imagenet" / "val", ["a", "b", "c", "d"], 4, ".png", seed=70)
        files = str(tmp_path / "dataset.pt")
        io.save_tensors(stored(read_raw("imagenet", tmp_path, ReadOptions(image_size=8, storage="stream"))), files)
    distributed.launch(2, worker, name, augmentation, files, str(out))
    two = io.load_tensors(out)
    assert two["rank"] == 0 and two["group"] == 2  # trained as a group of two; rank 0 alone wrote
    try:
        alone, masks, log = trained(name, augmentation, files)
    finally:
        torch.set_default_dtype(torch.float32)
    for r in range(2):
        for key, value in alone.state_dict(r).items():
            torch.testing.assert_close(two["states"][r][key], value, **EQUAL_PATHS)
        for key, mask in masks.items():
            assert torch.equal(two["masks"][key], mask)
            assert (two["states"][r][key][~mask[r]] == 0).all()  # pruned weights stay exactly zero
    torch.testing.assert_close(two["losses"], log.losses, **EQUAL_PATHS)
    for key, counts in log.curves.forgetting.per_example(0).items():  # from every example's predictions
        assert torch.equal(two["forgetting"][key], counts)


def test_a_batch_the_processes_cannot_share_equally_is_an_error():
    group = distributed.Group(rank=0, size=3)
    with pytest.raises(ValueError, match="train.batch_size 16 is not divisible by compute.processes 3"):
        group.shard(torch.zeros(2, 16))
    assert torch.equal(distributed.Group(1, 2).shard(torch.arange(8).view(1, 8)), torch.tensor([[4, 5, 6, 7]]))


def test_launching_is_decided_by_compute_processes_and_the_environment(monkeypatch):
    for name in ("WORLD_SIZE", "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.processes_to_launch(1) == 0 and distributed.processes_to_launch(2) == 2
    monkeypatch.setenv("SLURM_JOB_ID", "7")  # a Slurm batch script: `auto` is the allocation's tasks
    monkeypatch.setenv("SLURM_NTASKS", "4")
    assert distributed.slurm_tasks() == 4 and distributed.processes_to_launch("auto") == 4
    with pytest.raises(ValueError, match="compute.processes is 8, but this Slurm allocation has 4 tasks"):
        distributed.processes_to_launch(8)
    monkeypatch.setenv("SLURM_STEP_ID", "0")  # inside `srun`: a task of a step, never a launcher
    assert distributed.slurm_tasks() == 0
    monkeypatch.setenv("WORLD_SIZE", "2")  # started by torchrun or srun: join that group, launch nothing
    assert distributed.processes_to_launch(2) == 0


def test_a_task_of_an_srun_step_takes_torchruns_variables_from_slurms(monkeypatch):
    monkeypatch.setattr(os, "environ", {"SLURM_JOB_ID": "1234", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "4",
                                        "SLURM_PROCID": "3", "SLURM_LOCALID": "1", "MASTER_ADDR": "node7"})
    distributed.adopt_slurm_step()
    assert {name: os.environ[name] for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")} == {
        "RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4", "MASTER_ADDR": "node7", "MASTER_PORT": "21234"}
    assert not io.writes_outputs()  # rank 3 computes, rank 0 writes
