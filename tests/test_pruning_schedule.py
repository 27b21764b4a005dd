import functools
import math

import pytest
import torch
from conftest import random_states, tiny_dataset

from lthlib.core import imp, io, pruning_schedule
from lthlib.core.config import AdaptiveConfig, PruningConfig, TrainConfig, parse_config
from lthlib.core.imp import pretrain, run_imp
from lthlib.core.pruning import dense_mask, magnitude_prune
from lthlib.core.pruning_schedule import (
    AdaptiveRatio,
    FixedRatio,
    largest_inside_ratio,
    ratio_rule,
)
from lthlib.core.train import Replicas, ReplicateSeeds, evaluate, train

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def test_the_sweep_takes_the_largest_ratio_inside_the_set_even_past_one_that_left_it():
    """Section 2.2 step 2 asks for the maximum ratio whose path stays in the set, not the last before a failure."""
    maxima = torch.tensor([0.10, 0.11, 0.12, 0.30, 0.12, 0.25])
    assert largest_inside_ratio((0.1, 0.2, 0.3, 0.4, 0.5, 0.6), maxima, threshold=0.2) == 0.5
    assert largest_inside_ratio((0.1, 0.2), torch.tensor([0.25, 0.5]), threshold=0.25) == 0.1  # at the threshold: in
    assert largest_inside_ratio((0.1, 0.2), torch.tensor([0.5, 0.6]), threshold=0.2) == 0.0


def solution_with_negligible_weights(dataset, negligible: float):
    """A trained LeNet whose smallest `negligible` fraction of hidden weights is scaled to ~0: pruning
    them leaves the loss unchanged, pruning more removes weights that matter. The answer is known."""
    model, states = random_states(dataset, 1)
    replicas = Replicas.from_state_dicts(model, states, "cpu")
    config = TrainConfig(steps=40, batch_size=16, lr=0.05, milestones=())
    train(replicas, dataset, config, [ReplicateSeeds.for_replicate(0, 0)], 0, 40)
    state = replicas.state_dict(0)
    hidden = ("fc1.weight", "fc2.weight")
    magnitudes = torch.cat([state[n].abs().flatten() for n in hidden])
    cut = magnitudes.kthvalue(round(negligible * len(magnitudes))).values
    for name in hidden:
        small = state[name].abs() <= cut
        state[name] = torch.where(small, state[name] * 1e-6, state[name])
    return model, state


@pytest.mark.parametrize("floor, expected", [(0.2, 0.7), (0.8, 0.8)])
def test_the_sweep_picks_the_known_ratio_and_the_floor_applies(floor, expected):
    dataset = tiny_dataset(train=200)
    model, state = solution_with_negligible_weights(dataset, negligible=0.7)
    rule = AdaptiveRatio(AdaptiveConfig(ratios=RATIOS, floor=floor, path_points=5, train_examples=0), model,
                         functools.partial(magnitude_prune, ignored=("output.weight",)), dataset, seed=0,
                         batch_size=100)
    replicas = Replicas.from_state_dicts(model, [state], "cpu")
    mask = dense_mask({n: state[n] for n in ("fc1.weight", "fc2.weight", "output.weight")})
    assert rule(0, replicas, [mask], [{"replicate": 0, "last_epoch_loss_std": 1e-4}]) == [expected]
    sweep = rule.sweep
    assert sweep[sweep.inside].ratio.max() == pytest.approx(0.7)  # 70% of the hidden weights were negligible
    assert not sweep[sweep.ratio == 0.8].inside.item()
    assert (sweep.chosen_ratio == expected).all()


def adaptive_imp(steps: int, levels: int):
    """Two replicates of adaptive IMP on the tiny dataset: `steps` per run (milestone at 2/3), `levels` levels."""
    return parse_config({
        "replicates": 2, "model": {"name": "lenet_300_100"},
        "train": {"steps": steps, "batch_size": 16, "lr": 0.05, "milestones": [2 * steps // 3], "eval_batch_size": 64},
        "pretrain": {"steps": 3}, "pruning": {"levels": levels, "adaptive": True},
        "adaptive": {"floor": 0.2, "train_examples": 50}, "el2n": {"steps": 4}, "instability": {"rewind_steps": [0]},
        "compute": {"device": "cpu"}})


def test_adaptive_levels_compound_to_the_exact_sparsity(tmp_path, dataset):
    config = adaptive_imp(steps=12, levels=3)
    pretrain(config, dataset, tmp_path / "pretrain", "cpu")
    table, sweep = run_imp(config, dataset, tmp_path / "pretrain", tmp_path / "imp", "cpu")
    assert len(sweep) == 2 * 3 * len(RATIOS)  # replicates x pruned levels x ratios
    hidden = 36 * 300 + 300 * 100  # the tiny dataset's 6x6 inputs
    ignored = 100 * 4
    for r in range(2):
        rows = table[table.replicate == r].sort_values("level")
        remaining = hidden
        for row in rows.itertuples():
            if row.level > 0:
                chosen = sweep[(sweep.replicate == r) & (sweep.level == row.level - 1)].chosen_ratio.iloc[0]
                assert row.pruning_ratio == chosen >= 0.2
                remaining -= math.ceil(chosen * remaining)
            assert row.fraction_remaining == pytest.approx((remaining + ignored) / (hidden + ignored))


def test_epsilon_and_the_threshold_come_from_the_dense_level_and_hold_at_every_level(tmp_path, dataset, monkeypatch):
    """Step 1: epsilon = std of the dense level's batch losses over its last epoch; threshold = the dense
    training loss (the sweep's path start at level 0) + epsilon, used unchanged at every later level."""
    config = adaptive_imp(steps=18, levels=2)
    rules = []
    monkeypatch.setattr(imp, "ratio_rule", lambda *a: rules.append(pruning_schedule.ratio_rule(*a)) or rules[-1])
    pretrain(config, dataset, tmp_path / "pretrain", "cpu")
    table, sweep = run_imp(config, dataset, tmp_path / "pretrain", tmp_path / "imp", "cpu")
    (rule,) = rules
    assert isinstance(rule, AdaptiveRatio)
    epoch = len(dataset.train_y) // 16  # 6 batches per epoch
    for r in range(2):
        losses = io.load_tensors(io.level_dir(tmp_path / "imp", r, 0) / "train_losses.pt")
        epsilon = float(losses[-epoch:].std())
        assert table[(table.replicate == r) & (table.level == 0)].last_epoch_loss_std.item() == pytest.approx(epsilon)
        # the dense training loss, evaluated here directly (eval mode) on the sweep's training subsample
        solution = io.load_tensors(io.level_dir(tmp_path / "imp", r, 0) / "final.pt")
        dense_loss, _ = evaluate(Replicas.from_state_dicts(rule.model, [solution], "cpu"), rule.subsample, "train", 64)
        assert len(rule.subsample.train_y) == 50
        assert rule.thresholds[r] == pytest.approx(float(dense_loss[0]) + epsilon, rel=1e-5)
        rows = sweep[sweep.replicate == r]
        assert sorted(set(rows.level)) == [0, 1] and (rows.threshold == rule.thresholds[r]).all()
        assert (rows.inside == (rows.max_path_loss <= rule.thresholds[r])).all()
        # level 1's own last-epoch spread differs: the threshold is not re-estimated there
        level_1 = table[(table.replicate == r) & (table.level == 1)].last_epoch_loss_std.item()
        assert level_1 != pytest.approx(epsilon)


class PlantedSweep:
    """Stands in for `path_losses`: the losses [ratios, path points] of each level's paths, for replicate 0."""

    def __init__(self, losses: dict):
        self.losses, self.levels = losses, iter(sorted(losses))

    def __call__(self, *args):
        return self.losses[next(self.levels)]


def test_the_rule_takes_the_largest_inside_ratio_against_the_dense_threshold_at_every_level(monkeypatch, dataset):
    """Known answers on planted path losses (ratios 0.3, 0.5, 0.7; floor 0.4). Level 0: solution loss 1.0,
    epsilon 0.05, so the threshold is 1.05; 0.5's path leaves the set, 0.7's touches it: 0.7. Level 1: a lower
    solution loss and spread (which must not move the threshold): only 0.3 and 0.5 are inside: 0.5. Level 2:
    only 0.3 is inside, below the floor: 0.4."""
    monkeypatch.setattr(pruning_schedule, "path_losses", PlantedSweep({
        0: torch.tensor([[1.0, 1.04, 1.0], [1.0, 1.2, 0.9], [1.0, 1.05, 1.03]]),
        1: torch.tensor([[0.2, 0.6, 0.9], [0.2, 1.0, 1.04], [0.2, 0.3, 1.3]]),
        2: torch.tensor([[0.3, 1.0, 0.5], [0.3, 2.0, 2.0], [0.3, 3.0, 3.0]])}))
    model, states = random_states(dataset, 1)
    rule = AdaptiveRatio(AdaptiveConfig(ratios=(0.3, 0.5, 0.7), floor=0.4, path_points=3, train_examples=0), model,
                         functools.partial(magnitude_prune, ignored=("output.weight",)), dataset, seed=0,
                         batch_size=64)
    replicas = Replicas.from_state_dicts(model, states, "cpu")
    chosen = [rule(level, replicas, [{}], [{"replicate": 0, "last_epoch_loss_std": std}])
              for level, std in ((0, 0.05), (1, 0.01), (2, 0.01))]
    assert chosen == [[0.7], [0.5], [0.4]] and rule.thresholds == {0: pytest.approx(1.05)}
    assert rule.sweep.inside.tolist() == [True, False, True, True, True, False, True, False, False]
    assert rule.sweep.max_path_loss.tolist() == pytest.approx([1.04, 1.2, 1.05, 0.9, 1.04, 1.3, 1.0, 2.0, 3.0])
    assert rule.sweep.chosen_ratio.tolist() == [0.7] * 3 + [0.5] * 3 + [0.4] * 3


def test_fixed_ratio_imp_has_no_sweep(tmp_path, dataset):
    config = parse_config({
        "replicates": 1, "train": {"steps": 8, "batch_size": 16, "milestones": [], "eval_batch_size": 64},
        "pretrain": {"steps": 2}, "pruning": {"levels": 2, "ratio": 0.4}, "el2n": {"steps": 4},
        "instability": {"rewind_steps": [0]}, "landscape": {"replicate": 0}, "compute": {"device": "cpu"}})
    pretrain(config, dataset, tmp_path / "pretrain", "cpu")
    table, sweep = run_imp(config, dataset, tmp_path / "pretrain", tmp_path / "imp", "cpu")
    assert sweep.empty
    assert table.pruning_ratio.tolist()[1:] == [0.4, 0.4]
    hidden, output = 36 * 300 + 300 * 100, 100 * 4
    after_two = hidden - math.ceil(0.4 * hidden)
    after_two -= math.ceil(0.4 * after_two)
    assert table.fraction_remaining.iloc[2] == pytest.approx((after_two + output) / (hidden + output))


def test_the_pruning_section_picks_the_rule(dataset):
    model, _ = random_states(dataset, 1)
    fixed = ratio_rule(PruningConfig(ratio=0.35), AdaptiveConfig(), model, magnitude_prune, dataset, 0, 64)
    assert isinstance(fixed, FixedRatio) and fixed(0, None, [{}] * 3, [{}] * 3) == [0.35] * 3
    adaptive = ratio_rule(PruningConfig(adaptive=True), AdaptiveConfig(train_examples=30), model, magnitude_prune,
                          dataset, 0, 64)
    assert isinstance(adaptive, AdaptiveRatio) and len(adaptive.subsample.train_y) == 30
