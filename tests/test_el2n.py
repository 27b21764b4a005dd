import math

import pytest
import torch
from conftest import EQUAL_PATHS
from test_stages import run_stage, with_

import lthlib.core.train
from lthlib.analyses.el2n import (
    ExampleScores,
    compute_scores,
    el2n_scores,
    error_norms,
    forgetting_scores,
    network_seeds,
    require_forgetting_epochs,
    score_examples,
    scores_needed,
    scores_table,
)
from lthlib.analyses.subsets import randomize_labels
from lthlib.core import io
from lthlib.core.config import TrainConfig
from lthlib.core.data import BatchOrder, Dataset
from lthlib.core.models import build_model
from lthlib.core.train import Replicas, initial_states, train



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
    events, learned = torch.tensor([[1, 0], [3, 0]]), torch.tensor([[True, False], [True, True]])
    table = scores_table(ExampleScores(norms, events, learned), labels)
    assert list(table.columns) == ["index", "label", "score", "score_std", "network_0", "network_1", "forgetting",
                                   "forgetting_0", "forgetting_1"]
    assert table["score"].tolist() == pytest.approx([0.375 * r2, 0.625 * r2])
    assert table["score_std"].tolist() == pytest.approx([0.25, 0.25])
    assert table["network_1"].tolist() == pytest.approx([0.5 * r2, 0.5 * r2])
    assert table["forgetting"].tolist() == [2.0, math.inf]
    assert table["forgetting_0"].tolist() == [1.0, math.inf] and table["forgetting_1"].tolist() == [3.0, 0.0]


def test_forgetting_score_is_the_mean_of_the_events_and_infinite_when_a_network_never_learned():
    # 4 examples, 3 networks: example 2 is learned by every network and never forgotten (unforgettable); network 1
    # never learned example 3, so its events there (0) do not count: the example is the most forgettable
    events = torch.tensor([[2, 0, 0, 1], [1, 0, 0, 0], [0, 3, 0, 2]], dtype=torch.int32)
    learned = torch.tensor([[True, True, True, True], [True, False, True, False], [True, True, True, True]])
    score, per_network = forgetting_scores(events, learned)
    assert score.tolist() == [1.0, math.inf, 0.0, math.inf]
    assert per_network.tolist() == [[2, 0, 0, 1], [1, math.inf, 0, math.inf], [0, 3, 0, 2]]
    score, _ = forgetting_scores(events[[0, 2]], learned[[0, 2]])
    assert score.tolist() == [1.0, 1.5, 0.0, 1.5]


def test_only_the_kinds_that_rank_examples_need_scores():
    kinds = ("all", "random", "easy", "hard", "forgetting_easy", "forgetting_hard")
    assert [kind for kind in kinds if scores_needed(kind)] == ["easy", "hard", "forgetting_easy", "forgetting_hard"]


def test_without_scores_the_table_has_every_example_and_no_score():
    table = scores_table(None, torch.tensor([2, 0, 1]))
    assert list(table.columns) == ["index", "label", "score", "score_std", "forgetting"]
    assert table["index"].tolist() == [0, 1, 2] and table["label"].tolist() == [2, 0, 1]
    assert table[["score", "score_std", "forgetting"]].isna().all().all()


def test_forgetting_kinds_need_el2n_steps_to_cover_two_epochs():
    # 60000 examples in batches of 128: floor(60000 / 128) = 468 steps per epoch, the last 96 examples dropped
    with pytest.raises(ValueError, match=r"^el2n.steps must cover at least 2 epochs \(936 steps\) for "
                                         r"subset.kind=forgetting_hard, got 468$"):
        require_forgetting_epochs("forgetting_hard", 468, 60000, 128)
    with pytest.raises(ValueError, match="el2n.steps"):
        require_forgetting_epochs("forgetting_easy", 935, 60000, 128)
    require_forgetting_epochs("forgetting_easy", 936, 60000, 128)
    for kind in ("all", "random", "easy", "hard"):  # EL2N is read after t steps, however few
        require_forgetting_epochs(kind, 0, 60000, 128)


def test_the_el2n_stage_refuses_too_few_steps_before_training_or_writing(tmp_path):
    labels = torch.arange(96) % 4  # the stage harness's dataset: 96 examples, 4 classes
    io.save_tensors(randomize_labels(labels, 4, 0.0, seed=0).as_tensors(), tmp_path / "noise.pt")
    message = run_stage(tmp_path, "el2n", with_("subset", kind="forgetting_hard"), "--noise", "noise.pt", "--out",
                        "el2n")  # el2n.steps 2 < 2 epochs of 96 // 16 = 6 steps
    assert "el2n.steps must cover at least 2 epochs (12 steps) for subset.kind=forgetting_hard, got 2" in message


def test_scoring_all_networks_in_chunks_equals_each_network_example_by_example(float64):
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
                torch.testing.assert_close(norms[k, i], (p - y).norm(), **EQUAL_PATHS)


def test_networks_trained_together_score_like_networks_trained_alone(float64):
    data, config = tiny_dataset(), TrainConfig(steps=10, batch_size=8, lr=0.1, milestones=())
    together = compute_scores(data, "lenet_300_100", config, networks=2, steps=4, seed=5, device="cpu").norms
    for k, seed in enumerate(network_seeds(5, 2)):
        alone = Replicas.from_state_dicts(build_model("lenet_300_100", data.input_shape, 3),
                                          initial_states("lenet_300_100", data.input_shape, 3, [seed.init]), "cpu")
        train(alone, data, config, [seed], 0, 4)
        torch.testing.assert_close(together[k], score_examples(alone, data, 100)[0], **EQUAL_PATHS)
    assert not torch.allclose(together[0], together[1])  # independent initialisations


def test_training_lowers_the_mean_el2n_score():
    data, config = tiny_dataset(), TrainConfig(steps=60, batch_size=8, lr=0.1, milestones=())
    before = compute_scores(data, "lenet_300_100", config, networks=2, steps=0, seed=1, device="cpu").norms.mean()
    after = compute_scores(data, "lenet_300_100", config, networks=2, steps=60, seed=1, device="cpu").norms.mean()
    assert after < before - 0.1


def test_forgetting_columns_equal_a_count_by_hand_of_the_training_steps_predictions(monkeypatch):
    """Toneva et al. (2019), presentation by presentation: forgotten = correct at the previous presentation of the
    example, wrong now; counted here in plain Python from what every SGD step predicted."""
    data, networks, steps, seed = tiny_dataset(n=48, classes=6), 3, 18, 2
    config = TrainConfig(steps=steps, batch_size=8, lr=0.1, milestones=())
    predictions = []
    real_step = lthlib.core.train._training_step

    def recording_step(replicas, optimizer, inputs, labels, *args):
        losses, predicted = real_step(replicas, optimizer, inputs, labels, *args)
        predictions.append((predicted == labels).clone())
        return losses, predicted

    monkeypatch.setattr(lthlib.core.train, "_training_step", recording_step)
    table = scores_table(compute_scores(data, "lenet_300_100", config, networks, steps, seed, "cpu"), data.train_y)
    orders = [BatchOrder(s.data_order, len(data.train_y), config.batch_size) for s in network_seeds(seed, networks)]
    n = len(data.train_y)
    last, learned, events = [[False] * n for _ in orders], [[False] * n for _ in orders], [[0] * n for _ in orders]
    for step, correct in enumerate(predictions):  # 18 steps of 6 per epoch: each example seen 3 times
        for k, order in enumerate(orders):
            for i, now in zip(order.indices(step).tolist(), correct[k].tolist()):
                events[k][i] += last[k][i] and not now
                learned[k][i] |= now
                last[k][i] = now
    expected = [[e if ever else math.inf for e, ever in zip(events[k], learned[k])] for k in range(networks)]
    for k in range(networks):
        assert table[f"forgetting_{k}"].tolist() == expected[k]
    assert table["forgetting"].tolist() == pytest.approx([sum(column) / networks for column in zip(*expected)])
    finite = table["forgetting"][table["forgetting"] != math.inf]
    assert (finite > 0).any() and (finite == 0).any() and len(finite) < n  # forgotten, unforgettable, never learned
