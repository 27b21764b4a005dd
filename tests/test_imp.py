import math
import shutil

import pandas as pd
import pytest
import torch

import lthlib.core.imp
import lthlib.core.train
from lthlib.core import io
from lthlib.core.config import parse_config
from lthlib.core.imp import pretrain, run_imp
from lthlib.core.models import build_model, ignored_names
from lthlib.core.pruning import dense_mask, fraction_remaining, magnitude_prune
from lthlib.core.train import Replicas, replicate_seeds, train_replicates

PARAMS = {
    "replicates": 2,
    "model": {"name": "lenet_300_100"},
    "train": {"steps": 12, "batch_size": 16, "lr": 0.05, "milestones": [8], "eval_batch_size": 64},
    "pretrain": {"steps": 3},
    "pruning": {"ratio": 0.3, "levels": 3},
    "el2n": {"steps": 4},
    "instability": {"rewind_steps": [0]},
    "compute": {"device": "cpu"},
}


def config_with(**sections):
    return parse_config({**PARAMS, **{k: {**PARAMS.get(k, {}), **v} for k, v in sections.items()}})


@pytest.fixture
def pipeline(tmp_path, dataset):
    config = config_with()
    pretrain(config, dataset, tmp_path / "pretrain", "cpu")
    return config, tmp_path


def count_training_runs(monkeypatch):
    calls = []
    original = lthlib.core.imp.train_replicates
    monkeypatch.setattr(lthlib.core.imp, "train_replicates", lambda *a, **k: calls.append(a[5]) or original(*a, **k))
    return calls


def test_imp_writes_nested_masks_rewound_solutions_and_a_consistent_table(pipeline, dataset):
    config, root = pipeline
    table = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")[0]
    assert len(table) == 2 * 4 and set(table["level"]) == {0, 1, 2, 3}
    for r in range(2):
        init = io.load_tensors(io.replicate_dir(root / "pretrain", r) / "init.pt")
        rewind = io.load_tensors(io.replicate_dir(root / "pretrain", r) / "rewind.pt")
        assert not torch.equal(init["fc1.weight"], rewind["fc1.weight"])  # t_r = 3 steps of this replicate
        previous = None
        for level in range(4):
            folder = io.level_dir(root / "imp", r, level)
            mask, final = io.load_tensors(folder / "mask.pt"), io.load_tensors(folder / "final.pt")
            assert mask["output.weight"].all()  # LeNet's output layer is ignored by default
            for name, m in mask.items():
                assert (final[name][~m] == 0).all()
                assert previous is None or not (m & ~previous[name]).any()
            row = table[(table.replicate == r) & (table.level == level)].iloc[0]
            assert row.fraction_remaining == pytest.approx(fraction_remaining(mask))
            previous = mask
    dense = io.load_tensors(io.level_dir(root / "imp", 0, 0) / "mask.pt")
    prunable = dense["fc1.weight"].numel() + dense["fc2.weight"].numel()
    remaining, ignored = prunable, dense["output.weight"].numel()
    for level in range(1, 4):
        remaining -= math.ceil(0.3 * remaining)
        expected = (remaining + ignored) / (prunable + ignored)
        assert table[table.level == level].fraction_remaining.tolist() == pytest.approx([expected] * 2)
    assert (table.train_steps == 9).all() and table.test_accuracy.between(0, 1).all()


def test_raising_the_level_count_reuses_finished_levels(pipeline, dataset, monkeypatch):
    config, root = pipeline
    first = run_imp(config_with(pruning={"levels": 1}), dataset, root / "pretrain", root / "imp", "cpu")[0]
    calls = count_training_runs(monkeypatch)
    second = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")[0]
    assert len(calls) == 2  # only levels 2 and 3 trained
    pd.testing.assert_frame_equal(second[second.level <= 1].reset_index(drop=True), first)


def test_a_killed_run_resumes_at_its_first_unfinished_level(pipeline, dataset, monkeypatch):
    config, root = pipeline
    full = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")[0]
    shutil.rmtree(io.level_dir(root / "imp", 1, 2))  # as if killed while writing level 2
    calls = count_training_runs(monkeypatch)
    resumed = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")[0]
    assert len(calls) == 2  # levels 2 and 3
    pd.testing.assert_frame_equal(resumed, full)


def test_changed_settings_retrain_every_level_and_leave_no_stale_level(pipeline, dataset, monkeypatch):
    config, root = pipeline
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    calls = count_training_runs(monkeypatch)
    run_imp(config_with(train={"lr": 0.02}, pruning={"levels": 1}), dataset, root / "pretrain", root / "imp", "cpu")
    assert len(calls) == 2
    assert sorted(p.name for p in (root / "imp" / "rep_0").iterdir()) == ["level_00", "level_01"]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def retrain(config, dataset, start: list[dict], masks: list[dict], run: int) -> list[dict]:
    """An independent training of m * start from t_r to the end, with a fresh optimizer and run `run`'s seeds."""
    seeds = [s.for_run(run) for s in replicate_seeds(config.seed, config.replicates)]
    replicas, _ = train_replicates(config.model.name, dataset, config.train, start, seeds, config.pretrain.steps,
                                   config.train.steps, masks)
    return [replicas.state_dict(r) for r in range(config.replicates)]


def test_each_level_rewinds_to_the_rewind_point_with_a_fresh_optimizer_and_prunes_its_own_solution(pipeline,
                                                                                                 dataset):
    """Algorithm 1: level L trains m(L) * w_{t_r} from t_r (not the previous level's weights, no momentum carried
    over); m(L+1) prunes w(L)'s final magnitudes."""
    config, root = pipeline
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    rewind = [io.load_tensors(io.replicate_dir(root / "pretrain", r) / "rewind.pt") for r in range(2)]
    ignored = ignored_names("lenet_300_100", build_model("lenet_300_100", dataset.input_shape, 4), "default")
    for level in (1, 2):
        load = lambda name, lv=level: [io.load_tensors(io.level_dir(root / "imp", r, lv) / name) for r in range(2)]
        masks, finals, previous = load("mask.pt"), load("final.pt"), load("final.pt", level - 1)
        assert all(same(a, b) for a, b in zip(retrain(config, dataset, rewind, masks, level + 1), finals))
        # the alternatives give other weights, so the equality above could fail
        assert not same(retrain(config, dataset, previous, masks, level + 1)[0], finals[0])
        previous_masks = load("mask.pt", level - 1)
        for r in range(2):
            assert same(masks[r], magnitude_prune(previous[r], previous_masks[r], 0.3, ignored))
            assert not same(masks[r], magnitude_prune(rewind[r], previous_masks[r], 0.3, ignored))


def test_a_carried_optimizer_would_change_the_level(pipeline, dataset):
    """The fresh optimizer of each level is observable: SGD that keeps the momentum of a previous run ends elsewhere."""
    config, root = pipeline
    rewind = [io.load_tensors(io.replicate_dir(root / "pretrain", r) / "rewind.pt") for r in range(2)]
    masks = [dense_mask({n: w for n, w in state.items() if n.endswith("weight")}) for state in rewind]
    fresh = retrain(config, dataset, rewind, masks, 1)
    replicas = Replicas.from_state_dicts(build_model("lenet_300_100", dataset.input_shape, 4), rewind, "cpu")
    optimizer = torch.optim.SGD(list(replicas.params.values()), lr=0.05, momentum=0.9)
    for param in replicas.params.values():  # momentum left over from an earlier run
        param.grad = torch.ones_like(param)
    optimizer.step()
    assert not same(fresh[0], replicas.state_dict(0))


def test_pruned_weights_are_zero_after_every_optimizer_step(pipeline, dataset, monkeypatch):
    config, root = pipeline
    checked = []
    original = lthlib.core.train._sgd_step

    def step_then_check(replicas, optimizer, inputs, labels, masks, *rest):
        loss = original(replicas, optimizer, inputs, labels, masks, *rest)
        for name, mask in masks.items():
            assert (replicas.params[name][~mask.bool()] == 0).all(), f"{name} revived after a step"
        checked.append(bool(masks) and any((~m.bool()).any() for m in masks.values()))
        return loss

    monkeypatch.setattr(lthlib.core.train, "_sgd_step", step_then_check)
    run_imp(config_with(train={"weight_decay": 0.01, "momentum": 0.9}), dataset, root / "pretrain", root / "imp", "cpu")
    assert sum(checked) == 3 * 9  # levels 1-3 prune something: every one of their 9 steps was checked


def test_lowering_replicates_removes_the_folders_of_the_replicates_gone(pipeline, dataset):
    config, root = pipeline
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    fewer = parse_config({**PARAMS, "replicates": 1, "pruning": {**PARAMS["pruning"], "levels": 1}})
    run_imp(fewer, dataset, root / "pretrain", root / "imp", "cpu")
    assert sorted(p.name for p in (root / "imp").iterdir()) == ["rep_0"]


def test_wall_times_stay_out_of_the_levels_and_survive_a_resumed_run(pipeline, dataset):
    config, root = pipeline
    timing = root / "imp_timing.json"
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu", timing)
    first = io.load_json(timing)
    assert sorted(first["levels"]) == ["0", "1", "2", "3"]
    assert all(first["levels"][str(level)]["train_seconds"] > 0 for level in range(4))
    assert "sweep_seconds" not in first["levels"]["3"]  # the last level is not pruned
    assert first["seconds_per_replicate"] == pytest.approx(sum(sum(v.values()) for v in first["levels"].values()))
    shutil.rmtree(io.level_dir(root / "imp", 0, 3))
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu", timing)
    second = io.load_json(timing)
    for level in range(3):  # reused: their training seconds are the first run's
        assert second["levels"][str(level)]["train_seconds"] == first["levels"][str(level)]["train_seconds"]
    record = io.load_json(io.level_dir(root / "imp", 0, 1) / "level.json")
    assert not any("seconds" in key for key in record)
