import math

import pytest
import torch

from lthlib.analyses.el2n import (
    compute_el2n,
    el2n_scores,
    error_norms,
    network_seeds,
    score_examples,
    scores_needed,
    scores_table,
)
from lthlib.core.config import TrainConfig
from lthlib.core.data import Dataset
from lthlib.core.models import build_model
from lthlib.core.train import Replicas, initial_states, train

torch.set_num_threads(1)


def tiny_dataset(n=24, classes=3, seed=0) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    return Dataset(name="tiny", classes=[str(c) for c in range(classes)],
                   train_x=torch.randint(0, 256, (n, 1, 4, 4), generator=generator, dtype=torch.uint8),
                   train_y=torch.randint(0, classes, (n,), generator=generator),
                   test_x=torch.zeros(4, 1, 4, 4, dtype=torch.uint8), test_y=torch.zeros(4, dtype=torch.int64),
                   mean=torch.tensor([0.5]), std=torch.tensor([0.25]))


def test_el2n_of_a_hand_made_example_equals_the_formula():
    # network 0: softmax(log 3, 0) = (3/4, 1/4); network 1: softmax(0, 0) = (1/2, 1/2)
    logits = torch.tensor([[[math.log(3), 0.0], [math.log(3), 0.0]],
                           [[0.0, 0.0], [0.0, 0.0]]])
    labels = torch.tensor([0, 1])
    norms = error_norms(logits, labels)
    r2 = math.sqrt(2)
    expected = torch.tensor([[0.25 * r2, 0.75 * r2], [0.5 * r2, 0.5 * r2]])
    torch.testing.assert_close(norms, expected)
    score, spread = el2n_scores(norms)
    torch.testing.assert_close(score, torch.tensor([0.375 * r2, 0.625 * r2]))
    torch.testing.assert_close(spread, torch.tensor([0.25 * r2, 0.25 * r2]) / math.sqrt(2))  # sample std of 2
    table = scores_table(norms, labels)
    assert list(table.columns) == ["index", "label", "score", "score_std", "network_0", "network_1"]
    assert table["score"].tolist() == pytest.approx([0.375 * r2, 0.625 * r2])
    assert table["score_std"].tolist() == pytest.approx([0.25, 0.25])
    assert table["network_1"].tolist() == pytest.approx([0.5 * r2, 0.5 * r2])


def test_only_the_kinds_that_rank_by_el2n_need_scores():
    assert [kind for kind in ("all", "random", "easy", "hard") if scores_needed(kind)] == ["easy", "hard"]


def test_without_norms_the_table_has_every_example_and_no_score():
    table = scores_table(None, torch.tensor([2, 0, 1]))
    assert list(table.columns) == ["index", "label", "score", "score_std"]
    assert table["index"].tolist() == [0, 1, 2] and table["label"].tolist() == [2, 0, 1]
    assert table["score"].isna().all() and table["score_std"].isna().all()


def test_scoring_all_networks_in_chunks_equals_each_network_example_by_example():
    data = tiny_dataset()
    seeds = network_seeds(0, 3)
    states = initial_states("lenet_300_100", data.input_shape, 3, [s.init for s in seeds])
    replicas = Replicas.from_state_dicts(build_model("lenet_300_100", data.input_shape, 3), states, "cpu")
    norms = score_examples(replicas, data, batch_size=7)  # 24 examples: chunks of 7, 7, 7, 3
    for k, state in enumerate(states):
        model = build_model("lenet_300_100", data.input_shape, 3)
        model.load_state_dict(state)
        with torch.no_grad():
            for i in range(len(data.train_y)):
                p = model(data.normalize(data.train_x[i:i + 1])).softmax(-1)[0]
                y = torch.zeros(3)
                y[data.train_y[i]] = 1
                assert norms[k, i].item() == pytest.approx((p - y).norm().item(), abs=1e-5)


def test_networks_trained_together_score_like_networks_trained_alone():
    data, config = tiny_dataset(), TrainConfig(steps=10, batch_size=8, lr=0.1, milestones=())
    together = compute_el2n(data, "lenet_300_100", config, networks=2, steps=4, seed=5, device="cpu")
    for k, seed in enumerate(network_seeds(5, 2)):
        alone = Replicas.from_state_dicts(build_model("lenet_300_100", data.input_shape, 3),
                                          initial_states("lenet_300_100", data.input_shape, 3, [seed.init]), "cpu")
        train(alone, data, config, [seed], 0, 4)
        torch.testing.assert_close(together[k], score_examples(alone, data, 100)[0], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(together[0], together[1])  # independent initialisations


def test_training_lowers_the_mean_el2n_score():
    data, config = tiny_dataset(), TrainConfig(steps=60, batch_size=8, lr=0.1, milestones=())
    before = compute_el2n(data, "lenet_300_100", config, networks=2, steps=0, seed=1, device="cpu").mean()
    after = compute_el2n(data, "lenet_300_100", config, networks=2, steps=60, seed=1, device="cpu").mean()
    assert after < before - 0.1
