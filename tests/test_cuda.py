"""The GPU path against the CPU one: training (eager, bf16, compiled, vmap and loop), batched evaluation of
interpolated networks, augmentation and the dataset on the device, and every stage of the pipeline. Skipped where
no CUDA device is present; `scripts/gpu_check.sh` runs them on a GPU machine. Two computation paths are compared in
float64 (conftest's `float64`: no TF32, other kernels' rounding far below the tolerance); only bf16 and the
end-to-end stage run, in float32, allow for other arithmetic."""

import dataclasses
import warnings

import pandas as pd
import pytest
import torch
from conftest import EQUAL_PATHS, run_stages, smoke_project, tiny_dataset
from test_streaming import jpegs  # noqa: F401 (a fixture)
from test_train import CONFIG, make_replicas, pruned_masks

from lthlib.cli import select_device
from lthlib.core import io
from lthlib.core.config import InterpolationConfig
from lthlib.core.data import BatchOrder, augment, derive_seed, load_dataset
from lthlib.core.images import ImageFiles, StepBatches, decode_step
from lthlib.core.interpolate import evaluate_combinations, path_betas, path_coefficients
from lthlib.core.models import prunable_names
from lthlib.core.train import Replicas, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="no CUDA device here: these run where one is (scripts/gpu_check.sh)")
CUDA = torch.device("cuda")
STEPS = dataclasses.replace(CONFIG, steps=8, milestones=(4,))


def on(dataset, device):
    return dataclasses.replace(dataset, **{f.name: getattr(dataset, f.name).to(device)
                                           for f in dataclasses.fields(dataset) if f.name not in ("name", "classes")})


def prepared(dataset, device, name="lenet_300_100", count=2, ratio=0.5):
    """`count` replicates with `ratio` of their weights pruned, on `device`: (replicas, seeds, masks)."""
    replicas, seeds = make_replicas(dataset, name, count)
    masks = pruned_masks(replicas, ratio)
    states = [replicas.state_dict(r) for r in range(count)]
    return (Replicas.from_state_dicts(replicas.model, states, device), seeds,
            {n: m.to(device) for n, m in masks.items()})


def trained(dataset, device, name="lenet_300_100", count=2, augmentation=False, ratio=0.5, **options):
    """Those replicates trained STEPS steps on `device`: (replicas, masks, log)."""
    replicas, seeds, masks = prepared(dataset, device, name, count, ratio)
    vectorize = options.pop("vectorize", True)
    log = train(replicas, on(dataset, device), dataclasses.replace(STEPS, **options), seeds, 0, STEPS.steps, masks,
                augmentation, vectorize)
    return replicas, masks, log


def assert_pruned_weights_are_zero(replicas, masks):
    assert all((replicas.params[n][~m] == 0).all() for n, m in masks.items())


def test_the_dataset_stays_uint8_on_the_gpu(tmp_path):
    dataset = tiny_dataset()
    io.save_tensors(dataclasses.asdict(dataset), tmp_path / "dataset.pt")
    loaded = load_dataset(tmp_path / "dataset.pt", select_device("auto", 0))
    assert loaded.train_x.device.type == "cuda" and loaded.train_x.dtype == torch.uint8
    assert torch.equal(loaded.train_x.cpu(), dataset.train_x)


def test_augmentation_on_the_gpu_is_the_cpus():
    images = torch.randint(0, 256, (2, 5, 3, 8, 8), dtype=torch.uint8)
    on_cpu = augment(images, torch.Generator().manual_seed(3))
    on_gpu = augment(images.to(CUDA), torch.Generator().manual_seed(3))
    assert on_gpu.device.type == "cuda" and torch.equal(on_gpu.cpu(), on_cpu)


def test_training_steps_never_wait_for_the_gpu():
    """No step blocks the host, so it can queue work ahead of the GPU: torch's sync debug mode reports every
    synchronising operation of a run of 8 steps (two epochs' permutations, augmentation, curves); the one
    allowed is the losses' copy to the CPU at its end."""
    replicas, seeds, masks = prepared(tiny_dataset(), CUDA)  # 96 examples: 6 steps of 16 an epoch
    dataset = on(tiny_dataset(), CUDA)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train(replicas, dataset, STEPS, seeds, 0, STEPS.steps, masks, augmentation=True)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    synchronising = [str(w.message) for w in caught if "called a synchronizing" in str(w.message)]
    assert len(synchronising) <= 1, synchronising


def test_training_on_the_gpu_matches_the_cpu(float64):
    dataset = tiny_dataset()
    (cpu, masks, cpu_log), (gpu, _, gpu_log) = trained(dataset, "cpu"), trained(dataset, CUDA)
    assert all(p.device.type == "cuda" for p in gpu.params.values())
    torch.testing.assert_close(gpu_log.losses, cpu_log.losses, **EQUAL_PATHS)
    for name, tensor in cpu.params.items():
        torch.testing.assert_close(gpu.params[name].cpu(), tensor, **EQUAL_PATHS)
    assert_pruned_weights_are_zero(gpu, masks)
    assert gpu_log.curves.steps == cpu_log.curves.steps
    torch.testing.assert_close(torch.stack(gpu_log.curves.test_loss).cpu(), torch.stack(cpu_log.curves.test_loss),
                               **EQUAL_PATHS)


def test_a_resnet_trains_alike_under_vmap_and_in_a_loop_on_the_gpu(float64):
    dataset = tiny_dataset(train=64, test=16, shape=(3, 8, 8))
    runs = [trained(dataset, CUDA, "resnet20", 2, True, 0.2, vectorize=vectorize, milestones=())
            for vectorize in (True, False)]
    (vectorised, masks, log), (looped, _, looped_log) = runs
    torch.testing.assert_close(log.losses, looped_log.losses, **EQUAL_PATHS)
    for name, tensor in looped.buffers.items():  # batch-norm statistics too
        torch.testing.assert_close(vectorised.buffers[name], tensor, **EQUAL_PATHS)
    assert_pruned_weights_are_zero(vectorised, masks)


@pytest.mark.parametrize("count", [1, 2])
def test_a_channels_last_resnet_on_the_gpu_trains_like_the_cpus(count, float64):
    dataset = tiny_dataset(train=64, test=16, shape=(3, 8, 8))
    (cpu, masks, cpu_log), (gpu, _, gpu_log) = (trained(dataset, device, "resnet20", count, True, 0.2, milestones=(),
                                                        channels_last=device == CUDA) for device in ("cpu", CUDA))
    assert gpu.params["conv.weight"][0].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(gpu_log.losses, cpu_log.losses, **EQUAL_PATHS)
    for name, tensor in cpu.params.items():
        torch.testing.assert_close(gpu.params[name].cpu(), tensor, **EQUAL_PATHS)
    assert_pruned_weights_are_zero(gpu, masks)


@pytest.mark.parametrize("name", ["lenet_300_100", "resnet20"])  # vmapped batch norm under bf16: pytorch#184890
def test_bf16_training_keeps_fp32_weights_and_follows_fp32(name):
    dataset = tiny_dataset()
    (full, _, full_log), (mixed, masks, mixed_log) = (trained(dataset, CUDA, name, mixed_precision=bf16)
                                                      for bf16 in (False, True))
    assert all(p.dtype == torch.float32 for p in mixed.params.values())
    assert_pruned_weights_are_zero(mixed, masks)
    torch.testing.assert_close(mixed_log.losses, full_log.losses, rtol=0.05, atol=0.02)  # bf16: 8 bits of mantissa


@pytest.mark.parametrize("count", [1, 4])
def test_a_compiled_step_on_the_gpu_trains_like_an_eager_one(count, float64):
    dataset = tiny_dataset()
    (eager, _, eager_log), (compiled, masks, compiled_log) = (trained(dataset, CUDA, count=count, compile=c)
                                                              for c in (False, True))
    torch.testing.assert_close(compiled_log.losses, eager_log.losses, **EQUAL_PATHS)
    for name, tensor in eager.params.items():
        torch.testing.assert_close(compiled.params[name], tensor, **EQUAL_PATHS)
    assert_pruned_weights_are_zero(compiled, masks)


@pytest.mark.parametrize("model_name, batchnorm", [("lenet_300_100", "interpolate"), ("resnet20", "reestimate")])
def test_batched_evaluation_on_the_gpu_matches_the_cpu(model_name, batchnorm, float64):
    dataset = tiny_dataset()
    replicas, _ = make_replicas(dataset, model_name, 2)
    states = [replicas.state_dict(r) for r in range(2)]
    config = InterpolationConfig(eval_examples=0, batch_size=16, points_per_pass=4, batchnorm=batchnorm,
                                 reestimate_batches=2)
    coefficients = path_coefficients(path_betas(7))
    errors = {device: evaluate_combinations(replicas.model, states, coefficients, prunable_names(replicas.model),
                                            on(dataset, device), config).cpu() for device in ("cpu", CUDA)}
    torch.testing.assert_close(errors[CUDA], errors["cpu"], **EQUAL_PATHS)


def test_jpegs_decoded_on_the_gpu_are_the_workers_pixels_to_the_decoders_rounding(jpegs):  # noqa: F811
    """`data.decoder: device` on CUDA: nvJPEG's IDCT and the GPU's resampling round otherwise than libjpeg and the
    CPU's, by a level or two; the crops and the odd files (greyscale, CMYK, a PNG named .JPEG) are the same."""
    on_gpu = ImageFiles(jpegs.files, jpegs.size, CUDA, jpegs.resize, decoder="device")
    orders = [BatchOrder(derive_seed(0, r), len(jpegs), 8) for r in range(2)]
    for step in range(3):
        decoded = decode_step(StepBatches(on_gpu, orders, [11, 12], 0, 3)[step], jpegs.size, jpegs.resize, CUDA)
        expected = StepBatches(jpegs, orders, [11, 12], 0, 3)[step].to(CUDA)
        difference = (decoded.int() - expected.int()).abs()
        assert decoded.is_cuda and difference.float().mean() < 1.5 and difference.max() <= 24, difference.max()


# a LeNet, and a ResNet with BatchNorm re-estimated on the path points and augmentation drawn for the device
@pytest.mark.parametrize("sections", [{}, {"model": {"name": "resnet20"}, "data": {"augment": True},
                                           "interpolation": {"batchnorm": "reestimate"}}],
                         ids=["lenet_300_100", "resnet20"])
def test_every_stage_runs_on_the_gpu_and_agrees_with_the_cpu(tmp_path, sections):
    """The smoke pipeline stage by stage (no DVC needed) once on each device, TF32 off (NVIDIA_TF32_OVERRIDE holds
    cuBLAS and cuDNN to fp32): the same tables, and accuracies within a few test examples of each other."""
    tables = []
    for device in ("cpu", CUDA.type):
        repo = smoke_project(tmp_path / f"run{len(tables)}", **sections, compute={"device": device, "threads": 0})
        run_stages(repo, NVIDIA_TF32_OVERRIDE="0")
        tables.append({str(p.relative_to(repo)): pd.read_csv(p) for p in sorted(repo.glob("reports/**/*.csv"))})
    cpu, gpu = tables
    assert gpu.keys() == cpu.keys() and "reports/imp.csv" in cpu and "reports/transfer.csv" in cpu
    for name, table in cpu.items():
        assert list(gpu[name].columns) == list(table.columns), name
        if name != "reports/first_stable_probes.csv":  # a verdict at the threshold may take the search elsewhere
            assert len(gpu[name]) == len(table), name
            for column in [c for c in table.columns if "accuracy" in c]:
                assert (gpu[name][column] - table[column]).abs().max() <= 0.1, (name, column)  # 6 of 64 examples
