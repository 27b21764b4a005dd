"""The image-folder datasets, on miniature copies of their layouts written here (nothing is downloaded)."""

import os
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image

from lthlib.core.data import DATASET_NAMES
from lthlib.core.errors import UserError
from lthlib.core.images import ImageFiles, decode_images
from lthlib.core.readers import READERS, ReadOptions, read_raw, stratified_split


def write_image(path: Path, seed: int, size=(8, 8)) -> torch.Tensor:
    """A random RGB image: PNG (lossless, so the test can compare pixels) or JPEG, by the suffix."""
    image = torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path, format="PNG" if path.suffix == ".png" else "JPEG",
                                                           quality=95)
    return image


def write_class_folders(root: Path, classes, per_class: int, suffix: str, seed: int = 0, size=(8, 8)) -> dict:
    """root/<class>/<n><suffix>; returns {path: image}."""
    images = {}
    for c, name in enumerate(classes):
        for n in range(per_class):
            path = root / name / f"{n}{suffix}"
            images[str(path)] = write_image(path, seed + 100 * c + n, size)
    return images


def test_every_dataset_name_has_a_reader():
    assert set(READERS) == set(DATASET_NAMES)


def test_imagenet_class_folders_read_with_torchvision_indices_at_one_size(tmp_path):
    wnids = ["n02", "n01", "n03"]  # not sorted: indices must be torchvision's (sorted folder names)
    write_class_folders(tmp_path / "imagenet" / "train", wnids, 3, ".JPEG")
    write_class_folders(tmp_path / "imagenet" / "val", wnids, 2, ".JPEG", seed=50, size=(12, 10))
    raw = read_raw("imagenet", tmp_path, ReadOptions(image_size=6))
    expected = torchvision.datasets.ImageFolder(str(tmp_path / "imagenet" / "train"))
    assert raw["classes"] == ["n01", "n02", "n03"] == expected.classes
    assert raw["train_y"].tolist() == expected.targets
    assert raw["train_x"].shape == (9, 3, 6, 6) and raw["test_x"].shape == (6, 3, 6, 6)
    assert raw["train_x"].dtype == torch.uint8 and raw["mean"].shape == (3,)


def test_images_of_several_sizes_need_an_image_size_naming_a_file(tmp_path):
    write_class_folders(tmp_path / "imagenet" / "train", ["a", "b"], 2, ".JPEG")
    write_image(tmp_path / "imagenet" / "train" / "b" / "big.JPEG", 9, size=(16, 16))
    write_class_folders(tmp_path / "imagenet" / "val", ["a", "b"], 1, ".JPEG")
    with pytest.raises(UserError, match=r"data.image_size is 0 \(as stored\), but .*big.JPEG is \(16, 16\)"):
        read_raw("imagenet", tmp_path)


def test_a_corrupt_jpeg_is_named(tmp_path):
    write_class_folders(tmp_path / "imagenet" / "train", ["a", "b"], 2, ".JPEG")
    write_class_folders(tmp_path / "imagenet" / "val", ["a", "b"], 1, ".JPEG")
    broken = tmp_path / "imagenet" / "train" / "a" / "1.JPEG"
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(UserError, match=f"{broken}: not a readable image"):
        read_raw("imagenet", tmp_path)


def test_missing_or_empty_class_folders_and_different_classes_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="imagenet: no folder .*imagenet/train"):
        read_raw("imagenet", tmp_path)
    write_class_folders(tmp_path / "imagenet" / "train", ["a", "b"], 1, ".JPEG")
    (tmp_path / "imagenet" / "train" / "c").mkdir()
    write_class_folders(tmp_path / "imagenet" / "val", ["a", "b"], 1, ".JPEG")
    with pytest.raises(FileNotFoundError, match="Found no valid file for the classes c"):
        read_raw("imagenet", tmp_path)
    (tmp_path / "imagenet" / "train" / "c").rmdir()
    write_class_folders(tmp_path / "imagenet" / "val", ["d"], 1, ".JPEG")
    with pytest.raises(UserError, match="imagenet/val: its classes differ from the training split's .*'d'"):
        read_raw("imagenet", tmp_path)


def test_imagenet_archives_without_the_devkit_are_named(tmp_path):
    (tmp_path / "imagenet").mkdir()
    (tmp_path / "imagenet" / "ILSVRC2012_img_val.tar").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="without ILSVRC2012_devkit_t12.tar.gz"):
        read_raw("imagenet", tmp_path)


def test_imagenet_archive_layout_names_the_classes_as_torchvision(tmp_path):
    folder = tmp_path / "imagenet"
    write_class_folders(folder / "train", ["n01", "n02"], 2, ".JPEG")
    write_class_folders(folder / "val", ["n01", "n02"], 1, ".JPEG")
    torch.save(({"n01": ("tench", "fish"), "n02": ("goldfish",)}, ["n01", "n02"]), folder / "meta.bin")
    raw = read_raw("imagenet", tmp_path)
    assert raw["classes"] == ["tench", "goldfish"] and raw["test_y"].tolist() == [0, 1]


def test_tiny_imagenet_labels_its_evaluation_split_from_the_annotations(tmp_path):
    folder = tmp_path / "tiny-imagenet-200"
    for c, wnid in enumerate(["n01", "n02"]):
        for n in range(2):
            write_image(folder / "train" / wnid / "images" / f"{wnid}_{n}.JPEG", 10 * c + n)
    images = {f"val_{n}.JPEG": write_image(folder / "val" / "images" / f"val_{n}.JPEG", 50 + n) for n in range(3)}
    (folder / "val" / "val_annotations.txt").write_text(
        "val_0.JPEG\tn02\t0\t0\t8\t8\nval_1.JPEG\tn01\t0\t0\t8\t8\nval_2.JPEG\tn02\t1\t1\t7\t7\n")
    raw = read_raw("tiny_imagenet", tmp_path)
    assert raw["classes"] == ["n01", "n02"] and raw["train_y"].tolist() == [0, 0, 1, 1]
    assert raw["test_y"].tolist() == [1, 0, 1] and raw["test_x"].shape == (len(images), 3, 8, 8)
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn09\t0\t0\t8\t8\n")
    with pytest.raises(UserError, match="line 1: class 'n09' has no folder"):
        read_raw("tiny_imagenet", tmp_path)


def test_cinic10_merges_train_and_valid_and_keeps_the_pixels(tmp_path):
    folder = tmp_path / "cinic-10"
    classes = ["airplane", "cat"]
    train = write_class_folders(folder / "train", classes, 2, ".png")
    valid = write_class_folders(folder / "valid", classes, 1, ".png", seed=30)
    write_class_folders(folder / "test", classes, 1, ".png", seed=60)
    raw = read_raw("cinic10", tmp_path)
    assert raw["train_x"].shape == (6, 3, 8, 8) and raw["test_x"].shape == (2, 3, 8, 8)
    assert raw["train_y"].tolist() == [0, 0, 1, 1, 0, 1]  # train's examples, then valid's
    expected = [*train.values(), *valid.values()]
    assert torch.equal(raw["train_x"][:4], torch.stack(expected[:4]))  # PNG: lossless
    assert torch.equal(raw["train_x"][4:], torch.stack(expected[4:]))


def test_eurosat_is_split_by_class_from_its_seed(tmp_path):
    classes = ["AnnualCrop", "Forest", "River"]
    write_class_folders(tmp_path / "eurosat" / "2750", classes, 10, ".jpg")
    first = read_raw("eurosat", tmp_path, ReadOptions(split_seed=0, test_fraction=0.2))
    assert first["classes"] == classes
    assert torch.bincount(first["test_y"]).tolist() == [2, 2, 2] and len(first["train_y"]) == 24
    again = read_raw("eurosat", tmp_path, ReadOptions(split_seed=0, test_fraction=0.2))
    other = read_raw("eurosat", tmp_path, ReadOptions(split_seed=1, test_fraction=0.2))
    assert torch.equal(first["test_x"], again["test_x"]) and not torch.equal(first["test_x"], other["test_x"])


def test_stratified_split_takes_each_class_fraction_and_covers_every_example():
    labels = torch.tensor([0] * 10 + [1] * 5 + [2] * 20)
    train, test = stratified_split(labels, 0.2, seed=3)
    assert torch.bincount(labels[test]).tolist() == [2, 1, 4]
    assert sorted(torch.cat([train, test]).tolist()) == list(range(len(labels)))


def test_parallel_decoding_keeps_the_order_and_names_a_corrupt_file(tmp_path):
    images = write_class_folders(tmp_path, ["a", "b"], 4, ".png")
    files = list(images)
    decoded = decode_images(files, 0, workers=2)
    assert torch.equal(decoded, torch.stack(list(images.values())))
    Path(files[5]).write_bytes(b"not an image")
    with pytest.raises(UserError, match=f"{files[5]}: not a readable image"):
        decode_images(files, 0, workers=2)


def test_a_dataset_too_large_for_memory_is_streamed_by_auto_and_refused_by_memory(tmp_path, monkeypatch, capsys):
    write_class_folders(tmp_path / "imagenet" / "train", ["a", "b"], 1, ".JPEG")
    write_class_folders(tmp_path / "imagenet" / "val", ["a", "b"], 1, ".JPEG")
    monkeypatch.setattr(os, "sysconf", {"SC_PAGE_SIZE": 256, "SC_PHYS_PAGES": 1}.get)  # a machine of 256 bytes
    streamed = read_raw("imagenet", tmp_path, ReadOptions(image_size=8, storage="auto"))
    assert isinstance(streamed["train_x"], ImageFiles) and "streamed from their files (data.storage auto)" in \
        capsys.readouterr().out
    with pytest.raises(UserError, match=r"data.storage memory: 4 images at data.image_size 8 need .* set "
                                        r"data.storage to stream \(or auto\), or lower data.image_size"):
        read_raw("imagenet", tmp_path, ReadOptions(image_size=8, storage="memory"))
