"""Baselines of a ticket and few-shot training (lthlib/analyses/tickets.py), on a tiny real dataset."""

import pytest
import torch
from conftest import random_states, tiny_dataset

from lthlib.analyses.tickets import (
    FEW_SHOT,
    REINIT,
    Tickets,
    few_shot_schedule,
    few_shot_subset,
    train_baselines,
    train_few_shot,
)
from lthlib.core.config import FewShotConfig, TrainConfig
from lthlib.core.models import prunable_names
from lthlib.core.pruning import dense_mask, magnitude_prune, permuted_mask
from lthlib.core.data import derive_seed
from lthlib.core.train import evaluate, initial_states, replicate_seeds, train_replicates

SCHEDULE = TrainConfig(steps=12, batch_size=16, lr=0.05, momentum=0.9, eval_batch_size=64)


def tickets_of(dataset, levels=(1, 2), replicates=2) -> Tickets:
    model, states = random_states(dataset, replicates)
    names = prunable_names(model)
    masks, mask = {}, [dense_mask({n: s[n] for n in names}) for s in states]
    for level in range(1, max(levels, default=0) + 1):
        mask = [magnitude_prune(s, m, 0.5, ("output.weight",)) for s, m in zip(states, mask)]
        if level in levels:
            masks[level] = mask
    return Tickets("lenet_300_100", 0, 2, states, replicate_seeds(0, replicates), masks)


def test_permuted_masks_keep_per_layer_counts_and_move_the_weights():
    generator = torch.Generator().manual_seed(0)
    mask = {"a": torch.rand(30, 20, generator=generator) < 0.3, "b": torch.ones(5, 4, dtype=torch.bool)}
    permuted = permuted_mask(mask, torch.Generator().manual_seed(1))
    assert int(permuted["a"].sum()) == int(mask["a"].sum()) and permuted["a"].shape == mask["a"].shape
    assert not torch.equal(permuted["a"], mask["a"])
    assert permuted["b"].all()  # a dense (ignored) tensor stays dense


def test_random_pruning_masks_have_the_level_sparsity_per_layer():
    tickets = tickets_of(tiny_dataset())
    for level in tickets.masks:
        for r in range(tickets.replicates):
            mask, random = tickets.masks[level][r], tickets.random_pruning_mask(level, r)
            assert {n: int(m.sum()) for n, m in random.items()} == {n: int(m.sum()) for n, m in mask.items()}
            assert any(not torch.equal(random[n], mask[n]) for n in mask)
            pruned = tickets.randomly_pruned(level, r)
            assert all(bool((pruned[n][~random[n]] == 0).all()) for n in random)
    # seeded: the same baseline every time, different per replicate
    assert torch.equal(tickets.random_pruning_mask(1, 0)["fc1.weight"], tickets.random_pruning_mask(1, 0)["fc1.weight"])
    assert not torch.equal(tickets.random_pruning_mask(1, 0)["fc1.weight"],
                           tickets.random_pruning_mask(1, 1)["fc1.weight"])


def test_baselines_train_each_level_masked_like_the_level():
    dataset = tiny_dataset()
    tickets = tickets_of(dataset)
    table = train_baselines(tickets, dataset, SCHEDULE)
    assert len(table) == 2 * 2 * 2  # levels x baselines x replicates
    for row in table.itertuples():
        expected = sum(int(m.sum()) for m in tickets.masks[row.level][row.replicate].values())
        total = sum(m.numel() for m in tickets.masks[row.level][row.replicate].values())
        assert row.fraction_remaining == pytest.approx(expected / total)
    assert table.test_accuracy.between(0, 1).all() and table.test_loss.gt(0).all()
    assert table.equals(train_baselines(tickets, dataset, SCHEDULE))  # seeded: two runs, the same numbers


def test_each_baseline_trained_alone_reproduces_its_row():
    """All baselines of all levels train in one run; retraining one alone (level L's run seeds from t_r, the
    fresh init or w_t_r, the level's or the permuted mask) gives its row's accuracy exactly."""
    dataset = tiny_dataset()
    tickets = tickets_of(dataset)
    table = train_baselines(tickets, dataset, SCHEDULE, vectorize=False)
    fresh = initial_states("lenet_300_100", dataset.input_shape, dataset.num_classes,
                           [derive_seed(s.init, REINIT) for s in tickets.seeds])
    for level, baseline, start, mask in ((2, "random_reinit", fresh[1], tickets.masks[2][1]),
                                         (1, "random_pruning", tickets.rewind[1], tickets.random_pruning_mask(1, 1))):
        alone, _ = train_replicates("lenet_300_100", dataset, SCHEDULE, [start], [tickets.seeds[1].for_run(level + 1)],
                                    2, SCHEDULE.steps, [mask], vectorize=False, curves=False)
        accuracy = float(evaluate(alone, dataset, "test", 64, vectorize=False)[1][0])
        row = table.query(f"level == {level} and baseline == '{baseline}' and replicate == 1")
        assert row.test_accuracy.item() == accuracy


def test_without_a_studied_level_no_baseline_trains():
    dataset = tiny_dataset()
    assert train_baselines(tickets_of(dataset, levels=()), dataset, SCHEDULE).empty


def test_few_shot_subsets_are_class_balanced_and_seeded_per_replicate():
    labels = torch.arange(1000) % 10
    subset = few_shot_subset(labels, 0.05, seed=3)
    assert len(subset) == 50 and torch.bincount(labels[subset], minlength=10).tolist() == [5] * 10
    assert torch.equal(subset, few_shot_subset(labels, 0.05, seed=3))
    assert not torch.equal(subset, few_shot_subset(labels, 0.05, seed=4))
    assert not torch.equal(subset, few_shot_subset(labels, 0.05, seed=3, replicate=1))


@pytest.mark.parametrize("budget, expected", [
    # a level trains 90 - 10 = 80 steps = 8 epochs of the 1000 examples (10 batches of 100 an epoch); a 10 %
    # subset (one batch an epoch) gets as many epochs: 8 steps; milestones 50 and 70 (40 and 60 after t_r) scaled
    # by 8 / 80
    (FewShotConfig(), (8, (4, 6), 0)),
    (FewShotConfig(epochs=30), (30, (15, 22), 0)),  # 30 epochs of one batch; milestones at 40/80 and 60/80 of them
    (FewShotConfig(budget="steps"), (90, (50, 70), 10)),  # the level's own: steps 10 to 90
])
def test_the_few_shot_budget_in_steps_for_a_fraction(budget, expected):
    schedule = TrainConfig(steps=90, batch_size=100, milestones=(50, 70))
    subset_schedule, start = few_shot_schedule(schedule, 10, 100, budget, epoch_steps=1000 // 100)
    assert (subset_schedule.steps, subset_schedule.milestones, start) == expected


def test_few_shot_trains_ticket_and_dense_on_the_same_subset():
    dataset = tiny_dataset(train=200)
    tickets = tickets_of(dataset, levels=(2,))
    table = train_few_shot(tickets, dataset, SCHEDULE, FewShotConfig(fractions=(0.2, 0.5)))
    assert sorted(set(table.level)) == [0, 2] and sorted(set(table.fraction)) == [0.2, 0.5]
    assert (table.groupby("fraction").examples.first() == [40, 100]).all()
    # a level: 12 - 2 = 10 steps = 10 / 12 epochs of 200 examples; 40 examples (2 batches an epoch):
    # round(2 * 10 / 12) = 2 steps; 100 examples (6 batches): 5 steps
    assert (table.groupby("fraction").train_steps.first() == [2, 5]).all()
    assert (table[table.level == 0].fraction_remaining == 1).all()
    assert (table[table.level == 2].fraction_remaining < 0.3).all()
    with pytest.raises(ValueError, match="few_shot.fractions: 0.05 gives 10 training examples"):
        train_few_shot(tickets, dataset, SCHEDULE, FewShotConfig(fractions=(0.05,)))


@pytest.mark.parametrize("budget", ["epochs", "steps"])
def test_few_shot_ticket_and_dense_each_saw_exactly_their_replicates_subset(budget):
    """Retraining one network alone on its replicate's subset reproduces its row: ticket and dense saw that subset."""
    dataset = tiny_dataset(train=200)
    tickets = tickets_of(dataset, levels=(2,))
    config = FewShotConfig(fractions=(0.5,), budget=budget, epochs=3)
    table = train_few_shot(tickets, dataset, SCHEDULE, config, vectorize=False)
    subset = dataset.training_subset(few_shot_subset(dataset.train_y, 0.5, 0, replicate=1))
    schedule, start = few_shot_schedule(SCHEDULE, 2, 100, config, 200 // 16)
    assert (table.train_steps == (18 if budget == "epochs" else 10)).all()  # 3 epochs of 6 batches; 12 - 2
    names = list(tickets.masks[2][0])
    for level, mask in ((0, dense_mask({n: tickets.rewind[1][n] for n in names})), (2, tickets.masks[2][1])):
        alone, _ = train_replicates("lenet_300_100", subset, schedule, [tickets.rewind[1]],
                                    [tickets.seeds[1].for_run(FEW_SHOT, 100)], start, schedule.steps, [mask],
                                    vectorize=False, curves=False)
        accuracy = float(evaluate(alone, dataset, "test", 64, vectorize=False)[1][0])
        assert table.query(f"level == {level} and replicate == 1").test_accuracy.item() == accuracy


def test_without_a_studied_level_few_shot_trains_nothing():
    dataset = tiny_dataset()
    assert train_few_shot(tickets_of(dataset, levels=()), dataset, SCHEDULE, FewShotConfig(fractions=(0.5,))).empty
