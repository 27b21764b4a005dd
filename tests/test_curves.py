import dataclasses

import pytest
import torch
from conftest import random_states, tiny_dataset

from lthlib.core.config import TrainConfig
from lthlib.core.curves import ForgettingCounter, convergence_auc
from lthlib.core.train import Replicas, evaluate, replicate_seeds, train_replicates

CONFIG = TrainConfig(steps=18, batch_size=16, lr=0.05, momentum=0.9, schedule="constant", eval_batch_size=40)


def test_convergence_auc_of_known_curves():
    curves = torch.tensor([[0.1, 0.9, 0.9, 0.9],   # done after one epoch
                           [0.1, 0.1, 0.1, 0.9],   # all at the end: 1/3
                           [0.1, 0.5, 0.7, 0.9]])  # (0.5 + 0.75 + 1) / 3
    torch.testing.assert_close(convergence_auc(curves), torch.tensor([1.0, 1 / 3, 0.75]))
    with pytest.raises(ValueError, match="at least one epoch"):
        convergence_auc(torch.tensor([0.5]))


def test_forgetting_events_of_a_hand_made_prediction_sequence():
    """Four examples, two networks, three epochs of batches of two (each example seen once per epoch).
    Network 0: ex 0 correct, wrong, correct (1 event); ex 1 always correct (unforgettable); ex 2 never
    correct (never learned); ex 3 wrong, correct, wrong (1 event). Network 1: everything always correct."""
    sequence = {0: [True, False, True], 1: [True, True, True], 2: [False, False, False], 3: [False, True, False]}
    counter = ForgettingCounter.start(replicates=2, examples=4)
    for epoch, order in enumerate(([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2])):
        for batch in (order[:2], order[2:]):
            correct = torch.tensor([[sequence[i][epoch] for i in batch], [True, True]])
            counter.update(torch.tensor([batch, batch]), correct)
    assert counter.events.tolist() == [[1, 0, 0, 1], [0, 0, 0, 0]]
    summary = counter.summary()
    torch.testing.assert_close(summary["forgetting_events"], torch.tensor([0.5, 0.0], dtype=torch.float64))
    torch.testing.assert_close(summary["unforgettable"], torch.tensor([0.25, 1.0], dtype=torch.float64))
    torch.testing.assert_close(summary["never_learned"], torch.tensor([0.25, 0.0], dtype=torch.float64))


def train_tiny(config: TrainConfig, **options):
    dataset = tiny_dataset()  # 96 examples: an epoch is 6 batches of 16
    model, states = random_states(dataset, 2)
    replicas, log = train_replicates("lenet_300_100", dataset, config, states, replicate_seeds(0, 2), 0, config.steps,
                                     **options)
    return dataset, model, replicas, log


def test_curves_agree_with_a_separate_evaluation_of_the_checkpoints(float64):
    config = dataclasses.replace(CONFIG, curve_steps=4)
    dataset, model, replicas, log = train_tiny(config, snapshot_steps=(0, 4, 8, 12, 16, 18))
    assert log.curves.steps == [0, 4, 8, 12, 16, 18]  # every 4 steps, and the end
    for point, step in enumerate(log.curves.steps):
        checkpoint = Replicas.from_state_dicts(model, log.snapshots[step], "cpu")
        accuracy = evaluate(checkpoint, dataset, "test", 7)[1]
        torch.testing.assert_close(log.curves.test_accuracy[point], accuracy)
        assert all(log.curves.table(r)["test_accuracy"][point] == pytest.approx(float(accuracy[r])) for r in range(2))
        # every point of the train curve, acc_0 included, is one instrument: eval mode on as many (the first)
        # training examples as the test set has (40)
        torch.testing.assert_close(log.curves.train_accuracy[point], evaluate(checkpoint, dataset, "train", 7,
                                                                              limit=40)[1])
    assert log.curves.test_accuracy[-1].tolist() != log.curves.test_accuracy[0].tolist()  # it learned something
    assert log.curves.train_accuracy[-1].tolist() != log.curves.train_accuracy[0].tolist()


def test_forgetting_comes_from_the_training_steps_own_predictions(float64):
    """With lr 0 the networks never change: no example of the training set (96 = 6 batches of 16) is ever
    forgotten, learned == correct, and the train curve is flat."""
    dataset, model, replicas, log = train_tiny(dataclasses.replace(CONFIG, lr=0.0))
    assert log.curves.steps == [0, 6, 12, 18]  # default: every epoch
    for point in log.curves.train_accuracy[1:]:
        torch.testing.assert_close(point, log.curves.train_accuracy[0])
    assert (log.curves.forgetting.events == 0).all()
    logits = replicas.forward(dataset.normalize(dataset.train_x), shared=True)
    assert torch.equal(log.curves.forgetting.learned, logits.argmax(-1) == dataset.train_y)
    summary = log.curves.summary()
    assert set(summary) >= {"train_auc", "test_auc", "forgetting_events", "unforgettable", "never_learned"}
    torch.testing.assert_close(summary["unforgettable"] + summary["never_learned"], torch.ones(2, dtype=torch.float64))


def test_recording_curves_changes_no_weight():
    _, _, with_curves, _ = train_tiny(CONFIG)
    _, _, without, log = train_tiny(CONFIG, curves=False)
    assert log.curves is None
    assert all(torch.equal(with_curves.state_dict(r)[n], without.state_dict(r)[n])
               for r in range(2) for n in with_curves.state_dict(r))
