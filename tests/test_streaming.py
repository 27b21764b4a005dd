"""The streaming path (`data.storage: stream`): a dataset kept as image files, decoded as training reads it, against
the same dataset held in memory, on a miniature ImageNet layout written here."""

import dataclasses

import pytest
import torch
from conftest import EQUAL_PATHS, run_stages, smoke_project
from PIL import Image
from test_readers import write_class_folders
from test_train import CONFIG

from lthlib.core import io
from lthlib.core.data import BatchOrder, derive_seed, load_dataset, stored
from lthlib.core.errors import UserError
from lthlib.core.images import EncodedStep, ImageFiles, StepBatches, decode_step, resolved_decoder
from lthlib.core.readers import ReadOptions, read_raw
from lthlib.core.train import ReplicateSeeds, initial_states, train_replicates

SIZE = 8


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    """An ImageNet-layout folder of 3 classes: 45 training and 8 validation PNGs (lossless) each, 10 x 12 pixels."""
    root = tmp_path_factory.mktemp("raw")
    write_class_folders(root / "imagenet" / "train", ["n01", "n02", "n03"], 45, ".png", size=(10, 12))
    write_class_folders(root / "imagenet" / "val", ["n01", "n02", "n03"], 8, ".png", seed=500, size=(12, 10))
    return root


def saved(raw: dict, path):
    io.save_tensors(stored(raw), path)
    return path


def test_a_streamed_dataset_is_a_manifest_of_files_with_the_memory_paths_labels_and_statistics(imagenet, tmp_path):
    memory = read_raw("imagenet", imagenet, ReadOptions(image_size=SIZE, storage="memory"))
    streamed = read_raw("imagenet", imagenet, ReadOptions(image_size=SIZE, storage="stream"))
    manifest = io.load_tensors(saved(streamed, tmp_path / "dataset.pt"))
    assert "train_x" not in manifest and len(manifest["train_files"]) == 135 and manifest["image_size"] == SIZE
    assert manifest["train_bytes"].tolist() == [len(open(f, "rb").read()) for f in manifest["train_files"]]
    for key in ("train_y", "test_y", "mean", "std"):
        assert torch.equal(streamed[key], memory[key]), key
    loaded = load_dataset(tmp_path / "dataset.pt", "cpu")
    assert loaded.streams and loaded.input_shape == (3, SIZE, SIZE)
    assert torch.equal(loaded.test_x, memory["test_x"])  # decoded once, at the evaluation transform
    assert torch.equal(loaded.train_x[:], memory["train_x"]) and torch.equal(loaded.train_x[5], memory["train_x"][5])
    index = torch.tensor([[3, 1], [0, 35]])
    assert torch.equal(loaded.train_x[index], memory["train_x"][index])


def test_storage_auto_keeps_a_small_dataset_in_memory_and_stream_settings_are_checked(imagenet):
    assert isinstance(read_raw("imagenet", imagenet, ReadOptions(image_size=SIZE))["train_x"], torch.Tensor)
    with pytest.raises(UserError, match="data.storage stream: streamed images are decoded at one size"):
        read_raw("imagenet", imagenet, ReadOptions(storage="stream"))
    with pytest.raises(UserError, match="data.storage stream: MNIST is one array file"):
        read_raw("mnist", imagenet, ReadOptions(image_size=SIZE, storage="stream"))


@pytest.mark.parametrize("decoder", ["workers", "device"])
def test_training_visits_the_same_examples_in_the_same_order_streamed_or_in_memory(imagenet, tmp_path, decoder,
                                                                                   float64):
    memory = load_dataset(saved(read_raw("imagenet", imagenet, ReadOptions(SIZE, storage="memory")), tmp_path / "m"),
                          "cpu")
    streamed = load_dataset(saved(read_raw("imagenet", imagenet, ReadOptions(SIZE, storage="stream", decoder=decoder)),
                                  tmp_path / "s"), "cpu")
    assert streamed.train_x.decoder == decoder
    config = dataclasses.replace(CONFIG, steps=9, batch_size=8, milestones=())  # 2 epochs and a step
    seeds = [ReplicateSeeds.for_replicate(0, r) for r in range(2)]
    states = initial_states("lenet_300_100", memory.input_shape, memory.num_classes, [s.init for s in seeds])
    runs = [train_replicates("lenet_300_100", dataset, config, states, seeds, 0, 9)
            for dataset in (memory, streamed)]
    (in_memory, memory_log), (from_files, streamed_log) = runs
    torch.testing.assert_close(streamed_log.losses, memory_log.losses, **EQUAL_PATHS)
    for name, tensor in in_memory.params.items():
        torch.testing.assert_close(from_files.params[name], tensor, **EQUAL_PATHS)
    assert streamed_log.curves.steps == memory_log.curves.steps  # curves (and forgetting) on the streamed split too


def test_augmented_steps_come_from_the_seeds_and_the_step_alone(imagenet):
    files = read_raw("imagenet", imagenet, ReadOptions(SIZE, storage="stream"))["train_x"]
    orders = [BatchOrder(derive_seed(0, r), len(files), 8) for r in range(2)]
    steps = StepBatches(files, orders, [11, 12], 0, 10)
    loaded = list(torch.utils.data.DataLoader(steps, batch_size=None, num_workers=2))
    assert loaded[0].shape == (2, 8, 3, SIZE, SIZE) and loaded[0].dtype == torch.uint8
    assert torch.equal(loaded[7], steps[7])  # workers or not
    resumed = StepBatches(files, orders, [11, 12], 7, 10)  # a run resumed at step 7
    assert torch.equal(resumed[0], loaded[7])
    assert not torch.equal(loaded[4][0], loaded[4][1])  # replicates draw apart
    assert not torch.equal(StepBatches(files, orders, [11, 99], 4, 5)[0][1], loaded[4][1])  # the seed draws the crops
    shards = [StepBatches(files, orders, [11, 12], 3, 4, shard=(rank, 2))[0] for rank in range(2)]
    assert torch.equal(torch.cat(shards, dim=1), loaded[3])  # each process decodes its part of the global batch


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """An ImageNet-layout folder of JPEGs, 2 classes of 12, with ImageNet's odd files: a greyscale and a CMYK JPEG,
    and a PNG named .JPEG."""
    root = tmp_path_factory.mktemp("jpegs")
    files = write_class_folders(root / "imagenet" / "train", ["n01", "n02"], 12, ".JPEG", size=(30, 41))
    write_class_folders(root / "imagenet" / "val", ["n01", "n02"], 2, ".JPEG", seed=500, size=(30, 41))
    odd = list(files)[:3]
    for file, mode, kind in zip(odd, ("L", "CMYK", "RGB"), ("JPEG", "JPEG", "PNG")):
        Image.open(file).convert(mode).save(file, format=kind)
    return read_raw("imagenet", root, ReadOptions(SIZE, storage="stream"))["train_x"]


@pytest.mark.parametrize("augmentation", [True, False])
def test_the_device_decoder_gives_the_workers_pixels(jpegs, augmentation):
    """`data.decoder: device`: workers hand over bytes and crops, the training device decodes and cuts them; on the
    CPU torchvision's decoder gives PIL's pixels, crops and the odd files included (which it takes one by one)."""
    on_device = ImageFiles(jpegs.files, jpegs.size, "cpu", jpegs.resize, decoder="device")
    orders = [BatchOrder(derive_seed(0, r), len(jpegs), 8) for r in range(2)]
    seeds = [11, 12] if augmentation else None
    for step in range(3):  # 3 steps of 16 images: every file once, the odd ones included
        encoded = StepBatches(on_device, orders, seeds, 0, 3)[step]
        assert isinstance(encoded, EncodedStep) and len(encoded.sizes) == 16 and encoded.shape == (2, 8)
        decoded = decode_step(encoded, SIZE, jpegs.resize, torch.device("cpu"))
        assert torch.equal(decoded, StepBatches(jpegs, orders, seeds, 0, 3)[step])


def test_the_decoder_decodes_jpegs_on_a_gpu_by_default(jpegs, imagenet):
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolved_decoder("auto", jpegs.files, cuda) == "device"
    assert resolved_decoder("auto", jpegs.files, cpu) == "workers"
    pngs = read_raw("imagenet", imagenet, ReadOptions(SIZE, storage="stream"))["train_x"]
    assert resolved_decoder("auto", pngs.files, cuda) == "workers"  # the GPU decoder takes JPEGs alone
    assert resolved_decoder("device", pngs.files, cpu) == "device"


def test_every_stage_runs_on_a_streamed_dataset(imagenet, tmp_path):
    repo = smoke_project(tmp_path / "repo", data={"name": "imagenet", "root": str(imagenet), "image_size": SIZE,
                                                  "storage": "stream", "augment": True})
    run_stages(repo)
    manifest = io.load_tensors(repo / "data/dataset.pt")
    assert "train_files" in manifest and "train_x" not in manifest
    assert (repo / "reports/report.md").exists()
