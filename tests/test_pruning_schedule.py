import math

import pytest
import torch

from conftest import random_states, tiny_dataset
from lthlib.core.pruning_schedule import AdaptiveRatio, largest_inside_ratio
from lthlib.core.config import AdaptiveConfig, TrainConfig, parse_config
from lthlib.core.imp import pretrain, run_imp
from lthlib.core.pruning import dense_mask
from lthlib.core.train import Replicas, ReplicateSeeds, train

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def test_the_sweep_stops_at_the_first_ratio_that_leaves_the_set():
    maxima = torch.tensor([0.10, 0.11, 0.12, 0.30, 0.12])
    assert largest_inside_ratio((0.1, 0.2, 0.3, 0.4, 0.5), maxima, threshold=0.2) == 0.3
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
                         ("output.weight",), dataset, seed=0, batch_size=100)
    replicas = Replicas.from_state_dicts(model, [state], "cpu")
    mask = dense_mask({n: state[n] for n in ("fc1.weight", "fc2.weight", "output.weight")})
    assert rule(0, replicas, [mask], [{"last_epoch_loss_std": 1e-4}]) == [expected]
    sweep = rule.sweep
    assert sweep[sweep.inside].ratio.max() == pytest.approx(0.7)  # 70% of the hidden weights were negligible
    assert not sweep[sweep.ratio == 0.8].inside.item()
    assert (sweep.chosen_ratio == expected).all()


def test_adaptive_levels_compound_to_the_exact_sparsity(tmp_path, dataset):
    config = parse_config({
        "replicates": 2, "model": {"name": "lenet_300_100"},
        "train": {"steps": 12, "batch_size": 16, "lr": 0.05, "milestones": [8], "eval_batch_size": 64},
        "pretrain": {"steps": 3}, "pruning": {"levels": 3, "adaptive": True},
        "adaptive": {"floor": 0.2, "train_examples": 50}, "el2n": {"steps": 4}, "instability": {"rewind_steps": [0]},
        "compute": {"device": "cpu"}})
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
    assert (table[table.level < 3].sweep_seconds > 0).all() and (table[table.level == 3].sweep_seconds == 0).all()


def test_fixed_ratio_imp_has_no_sweep(tmp_path, dataset):
    config = parse_config({
        "replicates": 1, "train": {"steps": 8, "batch_size": 16, "milestones": [], "eval_batch_size": 64},
        "pretrain": {"steps": 2}, "pruning": {"levels": 2, "ratio": 0.4}, "el2n": {"steps": 4},
        "instability": {"rewind_steps": [0]}, "landscape": {"replicate": 0}, "compute": {"device": "cpu"}})
    pretrain(config, dataset, tmp_path / "pretrain", "cpu")
    table, sweep = run_imp(config, dataset, tmp_path / "pretrain", tmp_path / "imp", "cpu")
    assert sweep.empty and (table.sweep_seconds == 0).all()
    assert table.pruning_ratio.tolist()[1:] == [0.4, 0.4]
