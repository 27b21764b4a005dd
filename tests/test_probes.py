"""Linear probes on frozen networks and transfer heads (lthlib/analyses/probes.py)."""

import dataclasses

import pytest
import torch
from conftest import EQUAL_PATHS, tiny_dataset

import lthlib.analyses.probes
from test_tickets import SCHEDULE, tickets_of

from lthlib.analyses.probes import block_features, frozen, probe_blocks, probe_tickets, train_probes, transfer_tickets
from lthlib.core.config import ProbesConfig
from lthlib.core.data import Dataset
from lthlib.core.models import build_model
from lthlib.core.train import initial_states

PROBES = ProbesConfig(epochs=3, batch_size=32, lr=0.05)


def one_hot_pixels(n: int, classes: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """1x6x6 images whose class c lights pixel c (plus noise elsewhere): linearly separable pixels."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = torch.randint(0, 60, (n, 1, 6, 6), generator=generator)
    images.view(n, -1)[torch.arange(n), labels] = 255
    return images.to(torch.uint8), labels


def planted_dataset() -> Dataset:
    train_x, train_y = one_hot_pixels(300)
    test_x, test_y = one_hot_pixels(120, seed=1)
    return Dataset("planted", [str(c) for c in range(6)], train_x, train_y, test_x, test_y,
                   torch.tensor([0.5]), torch.tensor([0.25]))


def test_a_probe_on_planted_linearly_separable_features_is_near_perfect():
    data = planted_dataset()
    state = initial_states("lenet_300_100", data.input_shape, data.num_classes, [0])[0]
    state["fc1.weight"] = torch.zeros(300, 36)
    state["fc1.weight"][:36] = torch.eye(36)  # block 1 (act1) reads the pixels themselves
    state["fc1.bias"] = torch.zeros(300)
    scrambled = dict(state, **{"fc1.weight": torch.zeros(300, 36)})  # block 1 is all zeros: nothing to read
    accuracy = train_probes(frozen("lenet_300_100", data, [state, scrambled], "cpu"), ["act1"], data, PROBES)
    assert accuracy[0, 0] >= 0.99
    assert accuracy[1, 0] <= 0.3  # chance is 1/6


def test_probes_trained_together_equal_probes_trained_alone(float64):
    data = tiny_dataset()
    states = initial_states("lenet_300_100", data.input_shape, data.num_classes, [0, 1, 2])
    together = train_probes(frozen("lenet_300_100", data, states, "cpu"), ["act1", "act2"], data, PROBES)
    for r, state in enumerate(states):
        alone = train_probes(frozen("lenet_300_100", data, [state], "cpu"), ["act2"], data, PROBES)
        torch.testing.assert_close(together[r, 1], alone[0, 0], **EQUAL_PATHS)


def test_block_features_are_each_networks_own_and_pooled_per_channel(float64):
    data = tiny_dataset(shape=(3, 8, 8))
    states = initial_states("resnet20", data.input_shape, data.num_classes, [0, 1])
    replicas = frozen("resnet20", data, states, "cpu")
    replicas.model.eval()
    x = data.normalize(data.test_x[:5])
    together = block_features(replicas, ["blocks.2", "blocks.8"], x)
    assert [f.shape for f in together] == [(2, 5, 16), (2, 5, 64)]
    model = build_model("resnet20", data.input_shape, data.num_classes).eval()
    model.load_state_dict(states[1])
    with torch.no_grad():
        expected = model.blocks[:3](torch.relu(model.bn(model.conv(x)))).mean((2, 3))
    torch.testing.assert_close(together[0][1], expected, **EQUAL_PATHS)


def test_probe_blocks_that_do_not_exist_name_the_key():
    model = build_model("lenet_300_100", (1, 6, 6), 4)
    assert probe_blocks("lenet_300_100", model, ()) == ["act1", "act2"]
    assert probe_blocks("lenet_300_100", model, (2,)) == ["act2"]
    with pytest.raises(ValueError, match=r"probes.blocks names block 3, but lenet_300_100 has 2 probe points"):
        probe_blocks("lenet_300_100", model, (1, 3))


def test_probe_tickets_covers_dense_tickets_and_permuted_baselines():
    data = tiny_dataset()
    tickets = tickets_of(data)
    table = probe_tickets(tickets, data, dataclasses.replace(PROBES, epochs=1))
    counts = table.groupby(["level", "network"]).size().to_dict()
    assert counts == {(0, "ticket"): 4, (1, "permuted"): 4, (1, "ticket"): 4, (2, "permuted"): 4, (2, "ticket"): 4}
    assert sorted(set(table.block)) == [1, 2] and table.probe_accuracy.between(0, 1).all()


def test_transfer_gives_tickets_finetuned_and_retrained_dense_networks_on_the_target():
    source = tiny_dataset(classes=4)
    target = tiny_dataset(classes=3, seed=5)
    tickets = tickets_of(source, levels=(2,))
    solutions = [dict(s) for s in tickets.rewind]
    table = transfer_tickets(tickets, solutions, source, target, dataclasses.replace(PROBES, epochs=1), SCHEDULE)
    assert table.groupby("network").size().to_dict() == {"dense_finetuned": 2, "dense_retrained": 2, "ticket": 2}
    assert table.test_accuracy.between(0, 1).all() and (table.test_examples == 40).all()


def test_without_a_studied_level_nothing_is_probed():
    data = tiny_dataset()
    assert probe_tickets(tickets_of(data, levels=()), data, PROBES).empty


@pytest.mark.parametrize("batchnorm", ["batch", "reestimate", "frozen"])
def test_batchnorm_of_frozen_networks_follows_the_setting(float64, monkeypatch, batchnorm):
    """A network whose stored statistics (mean 3, variance 4) are not its data's: `frozen` keeps them, `reestimate`
    replaces them by the exact statistics of the first training examples before anything is probed, `batch`
    normalises each training batch by itself (train mode) and tests with the running statistics left behind."""
    data = tiny_dataset(shape=(3, 8, 8))  # 96 training examples: 3 batches of 32
    state = initial_states("resnet8_4", data.input_shape, data.num_classes, [0])[0]
    state.update({"bn.running_mean": torch.full((4,), 3.0), "bn.running_var": torch.full((4,), 4.0)})
    replicas = frozen("resnet8_4", data, [state], "cpu")
    seen = []
    real = lthlib.analyses.probes.block_features
    monkeypatch.setattr(lthlib.analyses.probes, "block_features", lambda replicas, *rest: seen.append(
        (replicas.model.training, replicas.buffers["bn.running_mean"][0].clone())) or real(replicas, *rest))
    train_probes(replicas, ["blocks.0"], data, dataclasses.replace(PROBES, epochs=1, batchnorm=batchnorm))
    statistics, training, testing = seen[:3], seen[3:6], seen[6:]  # 3 batches each; 40 test examples: 2
    assert len(training) == 3 and len(testing) == 2
    model = build_model("resnet8_4", data.input_shape, data.num_classes)
    model.load_state_dict(state)
    with torch.no_grad():
        data_mean = model.conv(data.normalize(data.train_x)).mean((0, 2, 3))
    if batchnorm == "frozen":
        assert all(not mode and torch.equal(mean, torch.full((4,), 3.0)) for mode, mean in seen)
    elif batchnorm == "reestimate":
        assert all(not mode for mode, _ in seen)
        for _, mean in seen:
            torch.testing.assert_close(mean, data_mean, **EQUAL_PATHS)
    else:
        assert all(mode for mode, _ in statistics + training) and not any(mode for mode, _ in testing)
        assert not torch.allclose(testing[0][1], torch.full((4,), 3.0))  # the batches moved the running mean
        assert torch.equal(testing[0][1], testing[1][1])  # and testing does not
