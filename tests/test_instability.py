import numpy as np
import pandas as pd
import pytest
import torch
from conftest import EQUAL_PATHS, random_states, tiny_dataset

from lthlib.analyses.instability import (
    DenseRun,
    copy_barrier,
    measure_instability,
    noise_seeds,
)
from lthlib.core import io
from lthlib.core.config import InterpolationConfig, parse_config
from lthlib.core.imp import pretrain, run_imp
from lthlib.core.interpolate import (
    error_barrier,
    evaluate_combinations,
    path_betas,
    path_coefficients,
)
from lthlib.core.models import prunable_names
from lthlib.core.train import ReplicateSeeds, replicate_seeds, train_replicates

EVALUATION = InterpolationConfig(path_points=5, eval_examples=0, batch_size=40)
# A data diet's rewind point: pretraining on 48 easy-to-get examples with noisy labels and its own lr.
PARAMS = {
    "replicates": 2,
    "model": {"name": "lenet_300_100"},
    "train": {"steps": 12, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "milestones": [8], "eval_batch_size": 64},
    "pretrain": {"steps": 4, "lr": 0.2},
    "pruning": {"ratio": 0.5, "levels": 1},
    "el2n": {"steps": 4},
    "instability": {"rewind_steps": [0]},
    "compute": {"device": "cpu"},
}


@pytest.fixture
def imp_run(tmp_path):
    """Real IMP outputs whose pretraining saw a relabelled subset with pretrain.lr != train.lr."""
    config, data = parse_config(PARAMS), tiny_dataset()
    labels = (data.train_y + 1) % data.num_classes
    subset = data.training_subset(torch.arange(48), labels)
    pretrain(config, subset, tmp_path / "pretrain", "cpu")
    run_imp(config, data, tmp_path / "pretrain", tmp_path / "imp", "cpu")
    states = {name: [io.load_tensors(io.replicate_dir(tmp_path / "pretrain", r) / name) for r in range(2)]
              for name in ("init.pt", "rewind.pt")}
    run = DenseRun("lenet_300_100", states["init.pt"], states["rewind.pt"], 4, replicate_seeds(0, 2),
                   config.pretraining_schedule(), subset, config.train, data)
    return run, tmp_path


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def test_the_start_at_the_rewind_step_is_the_imp_rewind_point(imp_run):
    run, root = imp_run
    rewind = [io.load_tensors(io.replicate_dir(root / "pretrain", r) / "rewind.pt") for r in range(2)]
    assert all(same(a, b) for a, b in zip(run.states_at([4])[4], rewind))
    # replaying phase 1 reproduces it exactly (on the subset, relabelled, with pretrain.lr): starts before
    # t_r lie on the real pretraining trajectory ...
    assert all(same(a, b) for a, b in zip(replay_pretraining(run, 4), rewind))
    # ... which the old replay (full clean data, train.lr) does not
    clean = DenseRun(run.model_name, run.init, run.rewind, 4, run.seeds, run.training, run.data, run.training,
                     run.data)
    assert not same(replay_pretraining(clean, 4)[0], rewind[0])
    # one replay serves several starts before t_r: the state at 2 is the one a replay to 2 ends at
    starts = run.states_at([2, 3, 4, 8])
    assert all(same(a, b) for a, b in zip(starts[2], replay_pretraining(run, 2)))
    assert all(same(a, b) for a, b in zip(starts[4], rewind))


def replay_pretraining(run: DenseRun, step: int) -> list[dict]:
    """Phase 1 replayed on its own, from initialisation to `step`."""
    return run.snapshots(run.pretraining_data, run.pretraining, run.init, 0, 0, (step,), "replay")[step]


def test_the_dense_run_after_the_rewind_step_continues_as_imp_level_zero(imp_run):
    run, root = imp_run
    level_zero = [io.load_tensors(io.level_dir(root / "imp", r, 0) / "final.pt") for r in range(2)]
    assert all(same(a, b) for a, b in zip(run.states_at([12])[12], level_zero))


def test_copies_differ_only_in_sgd_noise_and_keep_their_masks(imp_run):
    run, root = imp_run
    masks = [io.load_tensors(io.level_dir(root / "imp", r, 1) / "mask.pt") for r in range(2)]
    (first, second), stability = run.copies(run.states_at([4])[4], 4, masks)
    assert stability["test_auc"].shape == (4,)  # two copies of two replicates
    for r in range(2):
        for name, mask in masks[r].items():
            assert (first[r][name][~mask] == 0).all() and (second[r][name][~mask] == 0).all()
        assert all((~masks[r][name]).any() for name in ("fc1.weight", "fc2.weight"))  # the mask prunes something
        assert not torch.equal(first[r]["fc1.weight"], second[r]["fc1.weight"])


def test_copies_with_the_same_noise_seed_have_barrier_zero():
    dataset = tiny_dataset()
    _, (start,) = random_states(dataset, 1)
    seeds = ReplicateSeeds(1, 2, 3)
    run = DenseRun("lenet_300_100", [start], [start], 0, [seeds], None, dataset, parse_config(PARAMS).train, dataset,
                   augmentation=True)
    replicas, _ = train_replicates("lenet_300_100", dataset, run.training, [start, start], [seeds, seeds], 0, 6,
                                   augmentation=True)
    twins = [replicas.state_dict(r) for r in range(2)]
    assert same(twins[0], twins[1])
    barrier, errors = copy_barrier("lenet_300_100", dataset, twins[0], twins[1], EVALUATION)
    assert barrier == 0 and torch.equal(errors, errors[:1].expand(5))


def test_noise_seeds_keep_the_initialisation_and_change_the_noise():
    seeds = ReplicateSeeds(10, 20, 30)
    copies = [noise_seeds(seeds, copy) for copy in (0, 1)]
    assert all(c.init == 10 for c in copies)
    assert len({seeds.data_order, *(c.data_order for c in copies)}) == 3
    assert len({seeds.augmentation, *(c.augmentation for c in copies)}) == 3


def recorded(imp_run, monkeypatch):
    """(the dense run, the masks of levels 0 and 1, a list that receives what every `DenseRun.copies` call returns)."""
    run, root = imp_run
    masks = {level: [io.load_tensors(io.level_dir(root / "imp", r, level) / "mask.pt") for r in range(2)]
             for level in (0, 1)}
    trained = []
    original = DenseRun.copies
    monkeypatch.setattr(DenseRun, "copies", lambda self, *a: trained.append(original(self, *a)) or trained[-1])
    return run, masks, trained


def test_measure_instability_reports_the_barrier_of_the_copies_it_trained(imp_run, monkeypatch):
    run, masks, trained = recorded(imp_run, monkeypatch)
    frame, paths = measure_instability(run, masks, (0, 4), EVALUATION)
    assert [(row.rewind_step, row.level, row.replicate) for row in frame.itertuples()] == [
        (step, level, r) for step in (0, 4) for level in (0, 1) for r in range(2)]
    assert len(trained) == 2  # one run per step: both levels' copies together
    model_names = prunable_names(random_states(run.data, 1)[0])
    betas = path_betas(5)
    for row, ((first, second), _) in zip(frame.itertuples(), [pair for pair in trained for _ in range(4)]):
        a, b = first[row.level * 2 + row.replicate], second[row.level * 2 + row.replicate]
        errors = evaluate_combinations(random_states(run.data, 1)[0], [a, b], path_coefficients(betas), model_names,
                                       run.data, EVALUATION)  # evaluated independently of the stage's code path
        assert row.barrier == row.barrier_mean == pytest.approx(float(error_barrier(errors, betas, "mean")))
        assert row.barrier_line == pytest.approx(float(error_barrier(errors, betas, "line")))
        assert row.barrier_definition == "mean"  # Frankle et al. 2020, the default
        assert (row.error_a, row.error_b) == pytest.approx((float(errors[0]), float(errors[-1])))
        assert row.examples == len(run.data.test_y)
        path = paths[(paths.rewind_step == row.rewind_step) & (paths.level == row.level)
                     & (paths.replicate == row.replicate)]
        assert path["beta"].tolist() == pytest.approx(betas.tolist())
        assert path["error"].tolist() == pytest.approx(errors.tolist())
    by_line, _ = measure_instability(run, masks, (4,), EVALUATION, baseline="line")
    assert (by_line["barrier"] == by_line["barrier_line"]).all() and (by_line["barrier_definition"] == "line").all()


def test_levels_trained_together_match_each_level_trained_alone(imp_run, monkeypatch, float64):
    """The copies of all levels from one step in one run, against one run per level: the same networks, each
    with its own level's mask, and the same barriers."""
    run, masks, trained = recorded(imp_run, monkeypatch)
    together, _ = measure_instability(run, masks, (4,), EVALUATION)
    apart = [measure_instability(run, {level: masks[level]}, (4,), EVALUATION)[0] for level in (0, 1)]
    (both, _), alone = trained[0], [copies for copies, _ in trained[1:]]
    for level in (0, 1):
        for copy in (0, 1):
            for r in range(2):
                for name, tensor in alone[level][copy][r].items():
                    torch.testing.assert_close(both[copy][level * 2 + r][name], tensor, **EQUAL_PATHS)
    np.testing.assert_allclose(together["barrier"], pd.concat(apart)["barrier"], **EQUAL_PATHS)
