import dataclasses
import math

import pytest
import torch
from conftest import random_states, tiny_dataset

from lthlib.analyses.el2n import forgetting_scores
from lthlib.analyses.forgetting_removal import forgetting_removal, kept_examples, train_copies
from lthlib.analyses.instability import DenseRun
from lthlib.core.config import Config, InterpolationConfig, TrainConfig
from lthlib.core.train import replicate_seeds
from lthlib.report.stability import forgetting_removal_section

SCHEDULE = TrainConfig(steps=18, batch_size=16, lr=0.05, momentum=0.9, eval_batch_size=64)
EVALUATION = InterpolationConfig(path_points=3, eval_examples=0, batch_size=64)


def dense_run(dataset, replicates=2) -> DenseRun:
    _, states = random_states(dataset, replicates)
    return DenseRun("lenet_300_100", states, states, 0, replicate_seeds(0, replicates), SCHEDULE, dataset, SCHEDULE,
                    dataset)


def test_removal_drops_the_fewest_or_most_forgotten_and_never_learned_count_as_hardest():
    scores = torch.tensor([3.0, 0.0, math.inf, 1.0, 0.0, 2.0, 5.0, 0.0, 4.0, 1.0])
    easiest = kept_examples(scores, "easiest", 0.3, seed=0)
    assert sorted(set(range(10)) - set(easiest.tolist())) == [1, 4, 7]  # the three scores of 0
    hardest = kept_examples(scores, "hardest", 0.2, seed=0)
    assert sorted(set(range(10)) - set(hardest.tolist())) == [2, 6]  # inf (never learned) and 5
    ties = {tuple(kept_examples(scores, "easiest", 0.1, seed=s).tolist()) for s in range(10)}
    assert len(ties) > 1  # which of the three 0s goes first is drawn from the seed


def test_table_7_rows_come_from_copies_trained_on_what_is_left(float64):
    dataset = tiny_dataset(train=160)
    run = dense_run(dataset)
    table, ranking = forgetting_removal(run, (0.25,), EVALUATION, "mean", seed=0)
    assert table[["removed", "fraction", "examples"]].drop_duplicates().values.tolist() == [
        ["none", 0.0, 160], ["easiest", 0.25, 120], ["hardest", 0.25, 120]]
    assert len(table) == 3 * 2 and (table.barrier_definition == "mean").all()
    copies, accuracy, events, learned = train_copies(run)
    assert torch.equal(torch.tensor(ranking.forgetting.to_numpy()), forgetting_scores(events, learned)[0])
    assert table.query("removed == 'none'").test_accuracy.tolist() == pytest.approx(
        accuracy.view(2, -1).mean(0).tolist())
    kept = dataset.training_subset(kept_examples(forgetting_scores(events, learned)[0], "hardest", 0.25, 0))
    accuracy = train_copies(dataclasses.replace(run, data=kept))[1]
    assert table.query("removed == 'hardest'").test_accuracy.tolist() == pytest.approx(
        accuracy.view(2, -1).mean(0).tolist())
    section = forgetting_removal_section(Config(), table)
    assert "| hardest 25 % | 120 |" in section and "| nothing | 160 |" in section
    assert forgetting_removal_section(Config(), table.iloc[:0]) == ""
