import dataclasses
import math
import shutil

import pandas as pd
import pytest
import torch

import lthlib.core.imp
import lthlib.core.pruning_schedule
import lthlib.core.train
from lthlib.core import io
from lthlib.core.config import parse_config
from lthlib.core.curves import convergence_auc
from lthlib.core.errors import UserError
from lthlib.core.imp import COLUMNS, pretrain, run_imp
from lthlib.core.models import build_model, ignored_names
from lthlib.core.pruning import fraction_remaining, magnitude_prune
from lthlib.core.train import (
    Replicas,
    evaluate,
    initial_states,
    replicate_seeds,
    train_replicates,
)

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
    """The start step of every level `run_imp` trains (train_replicates' 6th positional argument)."""
    calls = []
    original = lthlib.core.imp.train_replicates
    monkeypatch.setattr(lthlib.core.imp, "train_replicates", lambda *a, **k: calls.append(a[5]) or original(*a, **k))
    return calls


def count_sweeps(monkeypatch):
    """The level after which the adaptive rule sweeps, one entry per call (all replicates of the run together)."""
    calls = []
    original = lthlib.core.pruning_schedule.AdaptiveRatio.__call__
    monkeypatch.setattr(lthlib.core.pruning_schedule.AdaptiveRatio, "__call__",
                        lambda self, level, *a: calls.append(level) or original(self, level, *a))
    return calls


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def load(root, name: str, level: int, replicates: int = 2) -> list[dict]:
    return [io.load_tensors(io.level_dir(root / "imp", r, level) / name) for r in range(replicates)]


def test_pretraining_saves_each_replicates_init_and_its_state_after_t_r_steps(pipeline, dataset):
    """Phase 1, recomputed independently: init from the replicate's init seed, rewind point = t_r = 3 steps of run 0."""
    config, root = pipeline
    seeds = replicate_seeds(config.seed, 2)
    inits = initial_states("lenet_300_100", dataset.input_shape, 4, [s.init for s in seeds])
    replicas, _ = train_replicates("lenet_300_100", dataset, config.train, inits, [s.for_run(0) for s in seeds], 0, 3)
    for r in range(2):
        folder = io.replicate_dir(root / "pretrain", r)
        init, rewind = io.load_tensors(folder / "init.pt"), io.load_tensors(folder / "rewind.pt")
        assert same(init, inits[r]) and same(rewind, replicas.state_dict(r))
        assert not torch.equal(init["fc1.weight"], rewind["fc1.weight"])  # the same replicate, 3 steps apart
        assert io.load_json(folder / "run.json")["rewind_step"] == 3
    assert not torch.equal(inits[0]["fc1.weight"], inits[1]["fc1.weight"])  # independent initialisations


def test_imp_writes_nested_masks_rewound_solutions_and_a_consistent_table(pipeline, dataset):
    config, root = pipeline
    table = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")[0]
    assert list(table.columns) == COLUMNS and len(table) == 2 * 4 and set(table["level"]) == {0, 1, 2, 3}
    model = build_model("lenet_300_100", dataset.input_shape, 4)
    for r in range(2):
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
            # the table's accuracies are those of the saved solution, evaluated here independently
            test_loss, test_accuracy = evaluate(Replicas.from_state_dicts(model, [final], "cpu"), dataset, "test", 7)
            assert row.test_accuracy == pytest.approx(float(test_accuracy[0]))
            assert row.test_loss == pytest.approx(float(test_loss[0]), rel=1e-5)
            previous = mask
    dense = io.load_tensors(io.level_dir(root / "imp", 0, 0) / "mask.pt")
    prunable = dense["fc1.weight"].numel() + dense["fc2.weight"].numel()
    remaining, ignored = prunable, dense["output.weight"].numel()
    for level in range(1, 4):
        remaining -= math.ceil(0.3 * remaining)
        expected = (remaining + ignored) / (prunable + ignored)
        assert table[table.level == level].fraction_remaining.tolist() == pytest.approx([expected] * 2)
    assert (table.train_steps == 9).all() and (table.test_examples == 40).all()
    assert table[table.level == 0].pruning_ratio.isna().all() and (table[table.level > 0].pruning_ratio == 0.3).all()


def test_raising_the_level_count_reuses_finished_levels(pipeline, dataset, monkeypatch):
    config, root = pipeline
    first = run_imp(config_with(pruning={"levels": 1}), dataset, root / "pretrain", root / "imp", "cpu")[0]
    calls = count_training_runs(monkeypatch)
    second = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")[0]
    assert calls == [3, 3]  # only levels 2 and 3 trained, each from the rewind step t_r = 3
    pd.testing.assert_frame_equal(second[second.level <= 1].reset_index(drop=True), first)


def test_a_killed_run_resumes_at_its_first_unfinished_level(pipeline, dataset, monkeypatch):
    config, root = pipeline
    full = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")[0]
    shutil.rmtree(io.level_dir(root / "imp", 1, 2))  # as if killed while writing level 2
    calls = count_training_runs(monkeypatch)
    resumed = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")[0]
    assert calls == [3, 3]  # levels 2 and 3
    pd.testing.assert_frame_equal(resumed, full)


def test_a_resumed_adaptive_run_sweeps_only_before_the_levels_it_trains(pipeline, dataset, monkeypatch):
    """The sweep that chose a level's ratio is kept in that level's folder, with the train LCS-set's threshold:
    a resumed run takes both back instead of sweeping every reused level again."""
    config, root = pipeline
    config = config_with(pruning={"adaptive": True})
    table, sweep = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    assert sorted(sweep.level.unique()) == [0, 1, 2]
    shutil.rmtree(io.level_dir(root / "imp", 1, 3))  # killed while writing level 3
    calls, sweeps = count_training_runs(monkeypatch), count_sweeps(monkeypatch)
    resumed, resumed_sweep = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    assert calls == [3] and sweeps == [2]  # level 3, chosen by a new sweep of level 2 (thresholds from level 0)
    pd.testing.assert_frame_equal(resumed, table)
    pd.testing.assert_frame_equal(resumed_sweep, sweep)


def test_a_run_whose_output_folder_was_reset_resumes_from_the_resume_folder(pipeline, dataset, monkeypatch):
    """What `dvc exp run` does to a killed experiment's data/imp: it is gone (or another run's) at the restart."""
    config, root = pipeline
    full = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu", resume_dir=root / "resume")[0]
    shutil.rmtree(root / "imp")
    shutil.rmtree(io.level_dir(root / "resume", 0, 3))  # killed while level 3 was being written
    calls = count_training_runs(monkeypatch)
    resumed = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu", resume_dir=root / "resume")[0]
    assert calls == [3]  # level 3 only
    pd.testing.assert_frame_equal(resumed, full)
    calls.clear()
    run_imp(config_with(train={"lr": 0.02}), dataset, root / "pretrain", root / "imp", "cpu",
            resume_dir=root / "resume")
    assert calls == [3, 3, 3, 3]  # other settings: nothing in the resume folder fits



def test_replicates_trained_as_separate_jobs_meet_in_one_run_that_trains_nothing(tmp_path, dataset, monkeypatch):
    """A run too large for one job: each replicate pretrains and runs IMP alone, into the same folders; the run of
    all replicates then reuses every level and gives the joint run's table (one network trains without vmap, so
    to float rounding), its masks, and the adaptive rule's sweeps of every replicate."""
    config = config_with(pruning={"adaptive": True})
    joint, apart = tmp_path / "joint", tmp_path / "apart"
    pretrain(config, dataset, joint / "pretrain", "cpu")
    table, sweep = run_imp(config, dataset, joint / "pretrain", joint / "imp", "cpu")
    for r in (1, 0):
        pretrain(config, dataset, apart / "pretrain", "cpu", replicate=r)
        alone, _ = run_imp(config, dataset, apart / "pretrain", apart / "imp", "cpu", replicate=r)
        assert set(alone.replicate) == {r}
    calls, sweeps = count_training_runs(monkeypatch), count_sweeps(monkeypatch)
    gathered, gathered_sweep = run_imp(config, dataset, apart / "pretrain", apart / "imp", "cpu")
    assert calls == [] and sweeps == []  # each job's sweeps were kept with the levels they chose
    pd.testing.assert_frame_equal(gathered, table, rtol=1e-4)
    pd.testing.assert_frame_equal(gathered_sweep, sweep, rtol=1e-4)
    for level in range(4):
        assert all(same(a, b) for a, b in zip(load(joint, "mask.pt", level), load(apart, "mask.pt", level)))


def test_a_replicates_job_leaves_the_other_replicates_folders_alone(pipeline, dataset, monkeypatch):
    config, root = pipeline
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    others = load(root, "final.pt", 3)
    calls = count_training_runs(monkeypatch)
    run_imp(config_with(pruning={"levels": 1}, train={"lr": 0.02}), dataset, root / "pretrain", root / "imp", "cpu",
            replicate=0)  # other settings: replicate 0 retrains and drops its stale levels 2 and 3
    assert calls == [3, 3]
    assert sorted(p.name for p in (root / "imp" / "rep_0").iterdir()) == ["level_00", "level_01"]
    assert same(io.load_tensors(io.level_dir(root / "imp", 1, 3) / "final.pt"), others[1])
    with pytest.raises(UserError, match=r"--replicate 2: the run has replicates 0 to 1"):
        run_imp(config, dataset, root / "pretrain", root / "imp", "cpu", replicate=2)

def test_changed_settings_retrain_every_level_and_leave_no_stale_level(pipeline, dataset, monkeypatch):
    config, root = pipeline
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    calls = count_training_runs(monkeypatch)
    run_imp(config_with(train={"lr": 0.02}, pruning={"levels": 1}), dataset, root / "pretrain", root / "imp", "cpu")
    assert calls == [3, 3]  # levels 0 and 1 again
    assert sorted(p.name for p in (root / "imp" / "rep_0").iterdir()) == ["level_00", "level_01"]


def test_a_new_pruning_rule_reuses_the_dense_level_and_matches_a_run_from_scratch(pipeline, dataset, monkeypatch):
    """The dense level does not depend on how later levels are pruned: an experiment that changes only the rule
    retrains levels 1.. and gets what a run in an empty folder gets; adaptive settings count only when adaptive."""
    config, root = pipeline
    timing = root / "imp_timing.json"
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu", timing)
    dense_seconds = io.load_json(timing)["levels"]["0"]["train_seconds"]
    calls = count_training_runs(monkeypatch)
    run_imp(config_with(adaptive={"floor": 0.5}), dataset, root / "pretrain", root / "imp", "cpu", timing)
    assert calls == []  # adaptive pruning is off: its settings determine no level
    other_rule = config_with(pruning={"ratio": 0.5})
    reused = run_imp(other_rule, dataset, root / "pretrain", root / "imp", "cpu", timing)[0]
    assert calls == [3, 3, 3]  # levels 1 to 3
    assert io.load_json(timing)["levels"]["0"]["train_seconds"] == dense_seconds
    calls.clear()
    scratch = run_imp(other_rule, dataset, root / "pretrain", root / "scratch", "cpu")[0]
    assert calls == [3, 3, 3, 3]
    pd.testing.assert_frame_equal(reused, scratch)
    assert all(same(a, b) for a, b in zip(load(root, "final.pt", 3), [io.load_tensors(
        io.level_dir(root / "scratch", r, 3) / "final.pt") for r in range(2)]))


def test_a_code_change_retrains_only_the_levels_that_run_that_code(pipeline, dataset, monkeypatch):
    """The fingerprints hash the library's bytes: the trainer's code determines every level, the rules'
    module the pruned levels, and the path evaluation (interpolate.py) only adaptive ones."""
    config, root = pipeline
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    code = root / "code"
    shutil.copytree(lthlib.core.imp.ROOT / "lthlib", code / "lthlib")
    monkeypatch.setattr(lthlib.core.imp, "ROOT", code)  # the fingerprints read this copy's bytes
    calls = count_training_runs(monkeypatch)
    for module, retrained in (("interpolate", []), ("pruning_schedule", [3, 3, 3]), ("train", [3, 3, 3, 3])):
        with open(code / "lthlib" / "core" / f"{module}.py", "a") as source:
            source.write("# edited\n")
        calls.clear()
        run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
        assert calls == retrained, module
    adaptive = config_with(pruning={"adaptive": True})
    run_imp(adaptive, dataset, root / "pretrain", root / "imp", "cpu")
    with open(code / "lthlib" / "core" / "interpolate.py", "a") as source:
        source.write("# edited again\n")
    calls.clear()
    run_imp(adaptive, dataset, root / "pretrain", root / "imp", "cpu")
    assert calls == [3, 3, 3]  # the adaptive rule evaluates paths: its levels retrain, the dense one does not


def retrain(config, dataset, start: list[dict], masks: list[dict], run: int, schedule=None) -> list[dict]:
    """An independent training of m * start from t_r to the end, with a fresh optimizer and run `run`'s seeds."""
    seeds = [s.for_run(run) for s in replicate_seeds(config.seed, config.replicates)]
    replicas, _ = train_replicates(config.model.name, dataset, schedule or config.train, start, seeds,
                                   config.pretrain.steps, config.train.steps, masks)
    return [replicas.state_dict(r) for r in range(config.replicates)]


@pytest.mark.parametrize("retraining", ["rewind_lr", "finetune"])
def test_lr_rewinding_and_fine_tuning_retrain_the_previous_solution(pipeline, dataset, retraining):
    """Renda et al. (2020): level L >= 1 trains m(L) * w(L - 1), the previous level's solution, on the schedule from
    t_r (learning-rate rewinding) or for as many steps at the schedule's last rate (fine-tuning); level 0 is the
    same dense run as with weight rewinding."""
    _, root = pipeline
    config = config_with(pruning={"retrain": retraining})
    table, _ = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    rewinding = config_with()
    run_imp(rewinding, dataset, root / "pretrain", root / "rewound", "cpu")
    dense = [io.load_tensors(io.level_dir(root / "rewound", r, 0) / "final.pt") for r in range(2)]
    assert all(same(a, b) for a, b in zip(load(root, "final.pt", 0), dense))
    # milestone 8 of 12 steps, gamma 0.1: the last rate is 0.005, held for all 9 steps from t_r = 3
    schedule = dataclasses.replace(config.train, schedule="constant", lr=0.05 * 0.1) \
        if retraining == "finetune" else config.train
    for level in (1, 2, 3):
        masks, finals, previous = load(root, "mask.pt", level), load(root, "final.pt", level), \
            load(root, "final.pt", level - 1)
        assert all(same(a, b) for a, b in zip(retrain(config, dataset, previous, masks, level + 1, schedule), finals))
        assert all((final[n][~m] == 0).all() for final, mask in zip(finals, masks) for n, m in mask.items())
    assert (table.train_steps == 9).all()


def test_each_level_trains_its_mask_on_the_rewind_point_and_prunes_its_own_solution(pipeline, dataset):
    """Algorithm 1: level L trains m(L) * w_{t_r} from step t_r to the end (not the previous level's weights);
    m(L + 1) prunes the magnitudes of w(L), the level's final weights, not those of the rewind point."""
    config, root = pipeline
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    rewind = [io.load_tensors(io.replicate_dir(root / "pretrain", r) / "rewind.pt") for r in range(2)]
    ignored = ignored_names("lenet_300_100", build_model("lenet_300_100", dataset.input_shape, 4), "default")
    for level in (1, 2, 3):
        masks, finals, previous = load(root, "mask.pt", level), load(root, "final.pt", level), \
            load(root, "final.pt", level - 1)
        assert all(same(a, b) for a, b in zip(retrain(config, dataset, rewind, masks, level + 1), finals))
        # the alternative (continuing from the previous level's weights) ends elsewhere: the equality could fail
        assert not same(retrain(config, dataset, previous, masks, level + 1)[0], finals[0])
        previous_masks = load(root, "mask.pt", level - 1)
        for r in range(2):
            assert same(masks[r], magnitude_prune(previous[r], previous_masks[r], 0.3, ignored))
            assert not same(masks[r], magnitude_prune(rewind[r], previous_masks[r], 0.3, ignored))


def test_no_momentum_is_carried_from_one_level_to_the_next(pipeline, dataset, monkeypatch):
    """Each level's SGD starts with empty momentum: a level retrained with the momentum buffers the previous
    level's optimizer ended with gives other weights, while a fresh optimizer reproduces the level exactly."""
    config, root = pipeline
    optimizers = []

    class RecordedSGD(lthlib.core.train.MaskedSGD):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            optimizers.append(self)

    monkeypatch.setattr(lthlib.core.train, "MaskedSGD", RecordedSGD)
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    assert len(optimizers) == 4  # one per level
    rewind = [io.load_tensors(io.replicate_dir(root / "pretrain", r) / "rewind.pt") for r in range(2)]
    for level in (1, 2):
        leftover = optimizers[level - 1].momentum_buffers
        assert all(buffer.abs().sum() > 0 for buffer in leftover)

        class CarriedSGD(RecordedSGD):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.momentum_buffers = [buffer.clone() for buffer in leftover]

        masks, finals = load(root, "mask.pt", level), load(root, "final.pt", level)
        monkeypatch.setattr(lthlib.core.train, "MaskedSGD", CarriedSGD)
        carried = retrain(config, dataset, rewind, masks, level + 1)
        monkeypatch.setattr(lthlib.core.train, "MaskedSGD", RecordedSGD)
        fresh = retrain(config, dataset, rewind, masks, level + 1)
        assert all(same(a, b) for a, b in zip(fresh, finals))
        assert not any(same(a, b) for a, b in zip(carried, finals))


def test_pruned_weights_are_zero_after_every_optimizer_step(pipeline, dataset, monkeypatch):
    config, root = pipeline
    checked = []
    original = lthlib.core.train._training_step

    def step_then_check(replicas, optimizer, *rest):
        loss = original(replicas, optimizer, *rest)
        masks = optimizer.masks
        for name, mask in masks.items():
            assert (replicas.params[name][~mask.bool()] == 0).all(), f"{name} revived after a step"
        checked.append(bool(masks) and any((~m.bool()).any() for m in masks.values()))
        return loss

    monkeypatch.setattr(lthlib.core.train, "_training_step", step_then_check)
    # weight decay and momentum both act on every weight: either could revive a pruned one
    run_imp(config_with(train={"weight_decay": 0.01, "momentum": 0.9}), dataset, root / "pretrain", root / "imp", "cpu")
    assert checked == [False] * 9 + [True] * 3 * 9  # level 0 is dense; every step of levels 1-3 was checked


def test_lowering_replicates_removes_the_folders_of_the_replicates_gone(pipeline, dataset):
    config, root = pipeline
    run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    assert sorted(p.name for p in (root / "imp").iterdir()) == ["rep_0", "rep_1"]
    fewer = parse_config({**PARAMS, "replicates": 1, "pruning": {**PARAMS["pruning"], "levels": 1}})
    table = run_imp(fewer, dataset, root / "pretrain", root / "imp", "cpu")[0]
    assert sorted(p.name for p in (root / "imp").iterdir()) == ["rep_0"]
    assert table.replicate.tolist() == [0, 0]


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
    assert second["levels"]["3"]["train_seconds"] > 0  # retrained: measured again
    for r in range(2):
        for level in range(4):
            record = io.load_json(io.level_dir(root / "imp", r, level) / "level.json")
            assert sorted(record) == sorted([*COLUMNS, "fingerprint"])  # no seconds among them


def test_equal_results_are_equal_bytes(pipeline, dataset):
    """DVC hashes the level folders: two runs of the same settings, timed or not, write identical files (on one
    machine with one thread count, as promised: across CPUs only verdicts and tolerances are)."""
    config, root = pipeline
    run_imp(config, dataset, root / "pretrain", root / "a", "cpu", root / "timing_a.json")
    run_imp(config, dataset, root / "pretrain", root / "b", "cpu")
    files = sorted(p.relative_to(root / "a") for p in (root / "a").rglob("*") if p.is_file())
    # replicates x levels x (mask, final, train_losses, level.json, curves.csv, forgetting.pt)
    assert len(files) == 2 * 4 * 6
    assert sorted(p.relative_to(root / "b") for p in (root / "b").rglob("*") if p.is_file()) == files
    assert all((root / "a" / f).read_bytes() == (root / "b" / f).read_bytes() for f in files)


def test_every_level_records_its_curves_and_forgetting(pipeline, dataset):
    """Curves run from t_r to the end of training (a point per epoch: 96 / 16 = 6 steps), imp.csv holds the
    convergence AUC and forgetting of each level's run, and forgetting.pt counts every training example."""
    config, root = pipeline
    frame, _ = run_imp(config, dataset, root / "pretrain", root / "imp", "cpu")
    for r in range(config.replicates):
        for level in range(config.pruning.levels + 1):
            folder = io.level_dir(root / "imp", r, level)
            curves = io.load_csv(folder / "curves.csv")
            assert curves["step"].tolist() == [3, 9, 12]  # t_r, one epoch later, the end
            row = frame[(frame.replicate == r) & (frame.level == level)].iloc[0]
            assert row.test_accuracy == pytest.approx(curves["test_accuracy"].iloc[-1])
            counts = io.load_tensors(folder / "forgetting.pt")
            assert counts["events"].shape == (len(dataset.train_y),)
            assert row.forgetting_events == pytest.approx(counts["events"].double().mean().item())
            assert row.never_learned == pytest.approx((~counts["learned"]).double().mean().item())
            # Eq. 3 divides by the accuracy gained: undefined (NaN) for a run that gained none
            for curve in ("train", "test"):
                accuracy = torch.tensor(curves[f"{curve}_accuracy"].to_numpy(), dtype=torch.float64)
                flat = accuracy[-1] == accuracy[0]
                assert pd.isna(row[f"{curve}_auc"]) == flat
                if not flat:  # the AUC of the saved curve (Eq. 3)
                    assert row[f"{curve}_auc"] == pytest.approx(float(convergence_auc(accuracy)), abs=1e-6)
    assert frame["unforgettable"].notna().all()


def test_an_output_ratio_for_an_ignored_output_layer_is_a_clear_error(pipeline, dataset):
    config, root = pipeline
    with pytest.raises(ValueError, match=r"pruning.output_ratio=0.1 prunes output.weight, which pruning.ignore"):
        run_imp(config_with(pruning={"output_ratio": 0.1}), dataset, root / "pretrain", root / "imp", "cpu")
    table, _ = run_imp(config_with(pruning={"output_ratio": 0.1, "ignore": [], "scope": "layerwise"}), dataset,
                       root / "pretrain", root / "imp", "cpu")
    output = load(root, "mask.pt", 1)[0]["output.weight"]
    assert int(output.sum()) == output.numel() - math.ceil(0.1 * output.numel())
