import math
import shutil

import pandas as pd
import pytest
import torch

import lthlib.core.imp
from lthlib.core import io
from lthlib.core.config import parse_config
from lthlib.core.imp import pretrain, run_imp
from lthlib.core.pruning import fraction_remaining

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
    original = lthlib.core.imp.train
    monkeypatch.setattr(lthlib.core.imp, "train", lambda *a, **k: calls.append(a[5]) or original(*a, **k))
    return calls


def test_imp_writes_nested_masks_rewound_solutions_and_a_consistent_table(pipeline, dataset):
    config, root = pipeline
    table = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")[0]
    assert len(table) == 2 * 4 and set(table["level"]) == {0, 1, 2, 3}
    for r in range(2):
        init = io.load_tensors(root / "pretrain" / "rep_0" / "init.pt")
        rewind = io.load_tensors(io.replicate_dir(root / "pretrain", r) / "rewind.pt")
        assert not torch.equal(init["fc1.weight"], rewind["fc1.weight"])  # t_r = 3 steps of pretraining
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
    pd.testing.assert_frame_equal(resumed.drop(columns="wall_seconds"), full.drop(columns="wall_seconds"))


def test_changed_settings_retrain_every_level_and_leave_no_stale_level(pipeline, dataset, monkeypatch):
    config, root = pipeline
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    calls = count_training_runs(monkeypatch)
    run_imp(config_with(train={"lr": 0.02}, pruning={"levels": 1}), dataset, root / "pretrain", root / "imp", "cpu")
    assert len(calls) == 2
    assert sorted(p.name for p in (root / "imp" / "rep_0").iterdir()) == ["level_00", "level_01"]
