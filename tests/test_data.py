import numpy as np
import pytest
import torch
import torchvision
from conftest import write_cifar, write_idx_mnist

from lthlib.core import io
from lthlib.core.readers import read_raw
from lthlib.core.data import (
    BatchOrder,
    augment,
    conform_input_shape,
    load_dataset,
    reduce_training_set,
    select_classes,
)


def test_fashion_mnist_reads_through_torchvision(tmp_path):
    arrays = write_idx_mnist(tmp_path / "FashionMNIST" / "raw")
    raw = read_raw("fashion_mnist", tmp_path)
    assert raw["train_x"].shape == (64, 1, 28, 28) and raw["train_x"].dtype == torch.uint8
    np.testing.assert_array_equal(raw["train_x"][:, 0].numpy(), arrays["train"][0])
    np.testing.assert_array_equal(raw["test_y"].numpy(), arrays["t10k"][1])
    images = arrays["train"][0] / 255.0
    assert raw["mean"].item() == pytest.approx(images.mean(), rel=1e-5)
    assert raw["std"].item() == pytest.approx(images.std(ddof=1), rel=1e-4)
    assert len(raw["classes"]) == 10


@pytest.mark.parametrize("name, classes, train_files", [("cifar10", 10, 5), ("cifar100", 100, 1)])
def test_cifar_reads_through_torchvision(tmp_path, monkeypatch, name, classes, train_files):
    data = write_cifar(tmp_path, classes)
    # our miniature files cannot match the official md5 sums; everything else is torchvision's real loader
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)
    raw = read_raw(name, tmp_path)
    assert raw["train_x"].shape == (20 * train_files, 3, 32, 32)  # each file holds 20 images
    assert raw["test_x"].shape == (20, 3, 32, 32)
    np.testing.assert_array_equal(raw["test_x"].numpy(), data.reshape(20, 3, 32, 32))
    channel_means = (data.reshape(20, 3, -1) / 255.0).mean(axis=(0, 2))
    np.testing.assert_allclose(raw["mean"].numpy(), channel_means, rtol=1e-5)
    assert len(raw["classes"]) == classes


def test_missing_files_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="FashionMNIST/raw"):
        read_raw("fashion_mnist", tmp_path)


def test_saved_dataset_loads_onto_a_device(tmp_path):
    write_idx_mnist(tmp_path / "FashionMNIST" / "raw")
    io.save_tensors(read_raw("fashion_mnist", tmp_path), tmp_path / "dataset.pt")
    dataset = load_dataset(tmp_path / "dataset.pt", "cpu")
    assert dataset.num_classes == 10 and dataset.input_shape == (1, 28, 28)
    normalized = dataset.normalize(dataset.train_x)
    assert normalized.mean().item() == pytest.approx(0, abs=1e-4)
    assert normalized.std().item() == pytest.approx(1, abs=1e-3)


def test_batch_order_visits_each_example_once_per_epoch_and_drops_the_remainder():
    order = BatchOrder(seed=3, num_examples=50, batch_size=8)
    assert order.steps_per_epoch == 6
    for epoch in range(2):
        seen = torch.cat([order.indices(epoch * 6 + s) for s in range(6)])
        assert len(seen) == 48 and len(set(seen.tolist())) == 48
    again = BatchOrder(seed=3, num_examples=50, batch_size=8)
    assert torch.equal(again.indices(13), order.indices(13))  # any step is reachable directly
    assert not torch.equal(BatchOrder(seed=4, num_examples=50, batch_size=8).indices(0), order.indices(0))


def test_augment_equals_a_per_sample_crop_and_flip():
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    out = augment(images, torch.Generator().manual_seed(7), padding=2)
    replay = torch.Generator().manual_seed(7)  # same draws, in the same order, applied one by one
    offsets = torch.randint(0, 5, (6, 2), generator=replay)
    flips = torch.rand(6, generator=replay) < 0.5
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(6):
        top, left = offsets[i].tolist()
        expected = padded[i, :, top:top + 8, left:left + 8]
        expected = expected.flip(-1) if flips[i] else expected
        assert torch.equal(out[i], expected)
    assert flips.any() and not flips.all()


def test_a_class_split_keeps_and_relabels_only_its_classes(tmp_path):
    write_idx_mnist(tmp_path / "FashionMNIST" / "raw")
    raw = read_raw("fashion_mnist", tmp_path)
    split = select_classes(raw, (7, 2, 5), "transfer.classes")
    assert split["classes"] == [raw["classes"][c] for c in (7, 2, 5)]
    for prefix in ("train", "test"):
        original = raw[f"{prefix}_y"]
        kept = (original == 7) | (original == 2) | (original == 5)
        assert torch.equal(split[f"{prefix}_x"], raw[f"{prefix}_x"][kept])
        assert torch.equal(split[f"{prefix}_y"], torch.tensor([0, 0, 1, 0, 0, 2, 0, 0])[original[kept]])
    assert split["mean"].item() == pytest.approx(split["train_x"].double().div(255).mean().item(), rel=1e-5)
    assert select_classes(raw, (), "data.classes") is raw
    with pytest.raises(ValueError, match=r"transfer.classes names class 10, but fashion_mnist has 10 \(0..9\)"):
        select_classes(raw, (3, 10), "transfer.classes")


def test_a_transfer_target_gets_the_sources_input_shape(tmp_path, monkeypatch):
    write_idx_mnist(tmp_path / "MNIST" / "raw")
    grey = read_raw("mnist", tmp_path)
    colour = conform_input_shape(grey, (3, 32, 32))
    assert colour["train_x"].shape == (64, 3, 32, 32) and colour["train_x"].dtype == torch.uint8
    assert torch.equal(colour["train_x"][:, 0], colour["train_x"][:, 2])  # grey repeated to every channel
    assert colour["mean"].shape == (3,) and torch.equal(colour["test_y"], grey["test_y"])
    write_cifar(tmp_path, 10)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)
    cifar = read_raw("cifar10", tmp_path)
    small = conform_input_shape(cifar, (1, 28, 28))
    assert small["test_x"].shape == (20, 1, 28, 28)
    brightness = cifar["test_x"].double().mean((1, 2, 3))  # resizing and averaging keep each image's brightness
    assert torch.allclose(small["test_x"].double().mean((1, 2, 3)), brightness, atol=3)
    assert torch.equal(conform_input_shape(grey, (1, 28, 28))["train_x"], grey["train_x"])  # same shape: unchanged


def test_a_reduced_training_set_is_class_balanced_seeded_and_resized(tmp_path):
    write_idx_mnist(tmp_path / "FashionMNIST" / "raw")
    raw = read_raw("fashion_mnist", tmp_path)
    reduced = reduce_training_set(raw, 20, 14, seed=3)
    assert reduced["train_x"].shape == (20, 1, 14, 14) and reduced["test_x"].shape == (len(raw["test_y"]), 1, 14, 14)
    counts = torch.bincount(reduced["train_y"], minlength=10)
    assert counts.max() - counts.min() <= 1 and torch.equal(reduced["test_y"], raw["test_y"])
    kept = reduce_training_set(raw, 20, 0, seed=3)
    rows = {tuple(x.flatten().tolist()): y for x, y in zip(raw["train_x"], raw["train_y"].tolist())}
    assert all(rows[tuple(x.flatten().tolist())] == y for x, y in zip(kept["train_x"], kept["train_y"].tolist()))
    assert torch.equal(kept["train_x"], reduce_training_set(raw, 20, 0, seed=3)["train_x"])
    assert not torch.equal(kept["train_x"], reduce_training_set(raw, 20, 0, seed=4)["train_x"])
    assert kept["mean"].item() == pytest.approx(kept["train_x"].double().div(255).mean().item(), rel=1e-5)
    assert torch.equal(reduce_training_set(raw, 0, 0, seed=3)["train_x"], raw["train_x"])
    with pytest.raises(ValueError, match="data.train_examples=65, but fashion_mnist has 64"):
        reduce_training_set(raw, 65, 0, seed=3)
