"""params.yaml, parsed and validated in one place into typed dataclasses.

Every other module takes plain typed arguments. A bad value raises `ConfigError`
whose message names the key, e.g. ``pruning.ratio must be in (0, 1), got 1.5``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from lthlib.core.data import DATASET_NAMES
from lthlib.core.errors import UserError
from lthlib.core.models import KNOWN_MODELS, is_model


class ConfigError(UserError):
    """A params.yaml value is missing, unknown or out of range; the message names the key."""




@dataclass(frozen=True)
class DataConfig:
    # fashion_mnist, mnist, cifar10, cifar100, imagenet, tiny_imagenet, cinic10 (train + valid merged), eurosat:
    # read by torchvision's own loaders (layouts: docs/format.md)
    name: str = "fashion_mnist"
    root: str = "data/raw"  # folder holding torchvision's layout (FashionMNIST/raw, cifar-10-batches-py, ...)
    augment: bool = False  # pad 4 + random crop + horizontal flip, on the device, per batch
    # Data diet, Appendix A: this fraction of training examples gets a label redrawn uniformly from
    # the classes (so about label_noise * (1 - 1/C) are really wrong); pretraining and EL2N only.
    label_noise: float = 0.0
    label_noise_seed: int = 0  # the corruption is drawn once from this seed and reused by every stage
    classes: tuple[int, ...] = ()  # keep only these classes (relabelled 0..k-1 in this order); [] = all
    # a smaller problem of the same kind for every stage (CPU-sized studies): this many training examples,
    # class-balanced (0 = all)
    train_examples: int = 0
    train_examples_seed: int = 0  # draws those examples, once
    image_size: int = 0  # images resized (antialiased bilinear) to this many pixels square; 0 = as stored
    # datasets without an official test split (eurosat): this fraction of every class is the test split
    test_fraction: float = 0.2
    split_seed: int = 0  # draws that split, once
    # image-folder datasets: memory (decoded once into uint8 tensors), stream (training reads the files through
    # DataLoader workers, with ImageNet's random resized crop and flip when data.augment; needs data.image_size)
    # or auto (streams what would not fit in half this machine's memory, and says so)
    storage: Literal["auto", "memory", "stream"] = "auto"
    # where streamed training decodes its JPEGs: workers (PIL in DataLoader workers), device (torchvision's decoder
    # on the training device, nvJPEG on a GPU, the workers reading the bytes) or auto (device on CUDA when every
    # training file is a JPEG, else workers). A dataset held in memory is decoded once by PIL either way.
    decoder: Literal["auto", "workers", "device"] = "auto"

    def validate(self) -> None:
        _require(self.name in DATASET_NAMES, "data.name", f"must be one of {', '.join(DATASET_NAMES)}", self.name)
        _require(self.train_examples >= 0, "data.train_examples", "must be >= 0 (0 = all)", self.train_examples)
        _require(self.image_size >= 0, "data.image_size", "must be >= 0 (0 = as stored)", self.image_size)
        _require(0 <= self.label_noise <= 1, "data.label_noise", "must be in [0, 1]", self.label_noise)
        _require(0 < self.test_fraction < 1, "data.test_fraction", "must be in (0, 1)", self.test_fraction)
        _require(self.storage in ("auto", "memory", "stream"), "data.storage", "must be auto, memory or stream",
                 self.storage)
        _require_classes(self.classes, "data.classes")


@dataclass(frozen=True)
class ModelConfig:
    # lenet_300_100, conv4, resnet20, resnet32, resnet56, resnet18, or any CIFAR ResNet as resnet<depth>_<width>
    # (OpenLTH's naming: depth 6n + 2, the first stage `width` channels wide; resnet20_16 is resnet20;
    # resnet20_8_nobn the same without BatchNorm); torchvision's imagenet_resnet18/34/50, with the CIFAR stem as
    # imagenet_resnet<depth>_cifar_stem
    name: str = "lenet_300_100"

    def validate(self) -> None:
        _require(is_model(self.name), "model.name", f"must be one of {KNOWN_MODELS}", self.name)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 4680  # total iterations of one training run, counted from step 0
    batch_size: int = 128  # examples per step; an epoch is floor(N / batch_size) steps (the last partial batch dropped)
    lr: float = 0.1  # the peak learning rate
    momentum: float = 0.9  # SGD's (heavy ball, as torch.optim.SGD)
    weight_decay: float = 1e-4  # L2, added to the gradients
    schedule: Literal["constant", "step", "cosine"] = "step"  # the learning rate over the steps of a run
    milestones: tuple[int, ...] = ()  # steps at which `step` multiplies the lr by gamma
    gamma: float = 0.1  # the factor of `step` at each milestone
    warmup_steps: int = 0  # linear warm-up from 0 to lr
    eval_batch_size: int = 2000  # examples per forward pass when evaluating
    mixed_precision: bool = False  # bf16 autocast of training forward passes (meant for CUDA; evaluation stays fp32)
    channels_last: bool = False  # conv weights stored NHWC while training: cuDNN's fast layout on CUDA (same values)
    curve_steps: int = 0  # a point of every run's accuracy curves every this many steps; 0 = every epoch
    compile: bool = False  # torch.compile the training step (faster after a compile; other bits than eager)
    # sgd (momentum, L2 weight decay), sgdw (momentum, decoupled weight decay: w -= lr * (v + weight_decay * w),
    # Loshchilov & Hutter; the unmasking paper's ImageNet recipe, Appendix C) or adam (torch's Adam: betas
    # 0.9 / 0.999, eps 1e-8, L2 weight decay; momentum unused); pruned weights (and moments) stay zero; compile: sgd
    optimizer: Literal["sgd", "sgdw", "adam"] = "sgd"
    label_smoothing: float = 0.0  # of the training loss's targets (ImageNet recipe: 0.1); evaluation stays plain

    def validate(self) -> None:
        _require(self.steps >= 1, "train.steps", "must be >= 1", self.steps)
        _require(not (self.compile and self.optimizer != "sgd"), "train.compile",
                 f"compiles the SGD step only: set it false with train.optimizer {self.optimizer}", self.compile)
        _require(0 <= self.label_smoothing < 1, "train.label_smoothing", "must be in [0, 1)", self.label_smoothing)
        _require(self.batch_size >= 1, "train.batch_size", "must be >= 1", self.batch_size)
        _require(self.lr > 0, "train.lr", "must be > 0", self.lr)
        _require(0 <= self.momentum < 1, "train.momentum", "must be in [0, 1)", self.momentum)
        _require(self.weight_decay >= 0, "train.weight_decay", "must be >= 0", self.weight_decay)
        _require(list(self.milestones) == sorted(self.milestones) and all(0 < m < self.steps for m in self.milestones),
                 "train.milestones", f"must be increasing steps inside (0, train.steps={self.steps})",
                 list(self.milestones))
        _require(0 < self.gamma <= 1, "train.gamma", "must be in (0, 1]", self.gamma)
        _require(0 <= self.warmup_steps < self.steps, "train.warmup_steps", "must be in [0, train.steps)",
                 self.warmup_steps)
        _require(self.eval_batch_size >= 1, "train.eval_batch_size", "must be >= 1", self.eval_batch_size)
        _require(self.curve_steps >= 0, "train.curve_steps", "must be >= 0 (0 = every epoch)", self.curve_steps)


@dataclass(frozen=True)
class PretrainConfig:
    steps: int = 0  # t_r, the rewind step: the dense net trains this long before IMP starts
    lr: float | None = None  # pretraining's own peak learning rate (data diet, Table 1: 0.4); null: train.lr

    def validate(self) -> None:
        _require(self.steps >= 0, "pretrain.steps", "must be >= 0", self.steps)
        _require(self.lr is None or self.lr > 0, "pretrain.lr", "must be > 0 or null", self.lr)


@dataclass(frozen=True)
class El2nConfig:
    """EL2N scores (data diet, Appendix A): K networks trained from independent inits for t steps."""

    networks: int = 4  # K
    steps: int = 468  # t, iterations of the train schedule (lr, batch size, augmentation as in training)

    def validate(self) -> None:
        _require(self.networks >= 1, "el2n.networks", "must be >= 1", self.networks)
        _require(self.steps >= 0, "el2n.steps", "must be >= 0", self.steps)


@dataclass(frozen=True)
class SubsetConfig:
    """The examples pretraining sees (data diet, Section 3)."""

    # all | random (equal count per class) | easy / hard (lowest / highest EL2N) | forgetting_easy / forgetting_hard
    # (fewest / most forgetting events: third paper, Appendix D)
    kind: Literal["all", "random", "easy", "hard", "forgetting_easy", "forgetting_hard"] = "all"
    size: int | float = 1.0  # M: an int is a number of examples, a float a fraction; ignored by `all`
    seed: int = 0  # draws the random subset

    def validate(self) -> None:
        _require(self.size >= 1 if isinstance(self.size, int) else 0 < self.size <= 1, "subset.size",
                 "must be a number of examples >= 1 or a fraction in (0, 1]", self.size)


@dataclass(frozen=True)
class PruningConfig:
    ratio: float = 0.2  # fraction of the remaining prunable weights removed per level
    levels: int = 11  # levels 0 (dense) .. levels are trained
    adaptive: bool = False  # choose each level's ratio from the train LCS-set (Section 2.2; see `adaptive`)
    ignore: tuple[str, ...] | str = "default"  # "default" (the model's convention) or parameter names
    # global: one magnitude ranking over every prunable layer (the papers); layerwise: each layer at the same ratio
    scope: Literal["global", "layerwise"] = "global"
    output_ratio: float | None = None  # the output layer's own ratio (Frankle & Carbin: half the rest's); null: none
    # What each level trains (Renda et al. 2020): rewind_weights, m * w_{t_r} from step t_r (the papers' IMP);
    # rewind_lr, m * (the previous level's solution) on the schedule from t_r; finetune, m * (that solution) for as
    # many steps at the schedule's last learning rate
    retrain: Literal["rewind_weights", "rewind_lr", "finetune"] = "rewind_weights"

    def validate(self) -> None:
        _require(0 < self.ratio < 1, "pruning.ratio", "must be in (0, 1)", self.ratio)
        _require(self.output_ratio is None or 0 < self.output_ratio < 1, "pruning.output_ratio",
                 "must be in (0, 1) or null", self.output_ratio)
        _require(self.levels >= 0, "pruning.levels", "must be >= 0", self.levels)
        _require(self.ignore == "default" or isinstance(self.ignore, tuple), "pruning.ignore",
                 "must be 'default' or a list of parameter names", self.ignore)


@dataclass(frozen=True)
class AdaptiveConfig:
    """The adaptive pruning heuristic of Paul, Chen, Larsen et al. (2022), Section 2.2."""

    ratios: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the sweep of step 2
    floor: float = 0.2  # step 3: prune max(p, floor)
    path_points: int = 5  # beta = 0, 1/(n-1), ..., 1 on the path from a solution to its pruned version
    train_examples: int = 5000  # random training subsample the path loss is measured on; 0 = all
    seed: int = 0  # draws that subsample

    def validate(self) -> None:
        _require(len(self.ratios) > 0 and all(0 < r < 1 for r in self.ratios)
                 and list(self.ratios) == sorted(set(self.ratios)), "adaptive.ratios",
                 "must be increasing ratios in (0, 1)", list(self.ratios))
        _require(0 < self.floor < 1, "adaptive.floor", "must be in (0, 1)", self.floor)
        _require(self.path_points >= 2, "adaptive.path_points", "must be >= 2", self.path_points)
        _require(self.train_examples >= 0, "adaptive.train_examples", "must be >= 0", self.train_examples)


@dataclass(frozen=True)
class ReportConfig:
    target_fraction_remaining: float = 0.05  # the sparsity at which schedules' compute is compared

    def validate(self) -> None:
        _require(0 < self.target_fraction_remaining < 1, "report.target_fraction_remaining", "must be in (0, 1)",
                 self.target_fraction_remaining)


@dataclass(frozen=True)
class ComputeConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads; 0 keeps torch's default. Set it when jobs run in parallel.
    vectorize: bool = True  # train replicates with torch.func.vmap; false loops over them (same numbers)
    # processes sharing every training batch (data parallel, in every stage that trains): 1, N, or auto (one per
    # visible GPU)
    processes: int | str = 1

    def validate(self) -> None:
        _require(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "compute.device",
                 "must be auto, cpu, cuda or cuda:N", self.device)
        _require(self.threads >= 0, "compute.threads", "must be >= 0", self.threads)
        _require(self.processes == "auto" or (isinstance(self.processes, int) and self.processes >= 1),
                 "compute.processes", "must be auto or >= 1", self.processes)


@dataclass(frozen=True)
class InterpolationConfig:
    """How points between and around trained networks are evaluated (shared by lmc, landscape, instability)."""

    # the error E of Definition A.1, measured at every point of a path
    metric: Literal["test_error", "train_error", "test_loss", "train_loss"] = "test_error"
    path_points: int = 11  # beta = 0, 1/(n-1), ..., 1 along every linear path (Appendix C: 0, 0.1, ..., 1)
    eval_examples: int = 1000  # evaluate on the first n examples of the split; 0 = the whole split
    batch_size: int = 1000  # examples per forward pass
    points_per_pass: int = 32  # weight vectors evaluated together in one vectorised forward pass
    # BatchNorm statistics at a point: interpolated like the weights (the papers) or re-estimated on training batches
    batchnorm: Literal["interpolate", "reestimate"] = "interpolate"
    reestimate_batches: int = 10  # training batches (of batch_size) that re-estimate BatchNorm statistics

    def validate(self) -> None:
        _require(self.path_points >= 2, "interpolation.path_points", "must be >= 2", self.path_points)
        _require(self.eval_examples >= 0, "interpolation.eval_examples", "must be >= 0", self.eval_examples)
        _require(self.batch_size >= 1, "interpolation.batch_size", "must be >= 1", self.batch_size)
        _require(self.points_per_pass >= 1, "interpolation.points_per_pass", "must be >= 1", self.points_per_pass)
        _require(self.reestimate_batches >= 1, "interpolation.reestimate_batches", "must be >= 1",
                 self.reestimate_batches)


@dataclass(frozen=True)
class LmcConfig:
    # Definition A.1: linearly mode connected when the error barrier is below the standard deviation of the
    # dense error over replicates ("dense_std"), or below a fixed number (Frankle et al. 2020 use 0.02)
    barrier_threshold: float | str = "dense_std"

    def validate(self) -> None:
        _require(self.barrier_threshold == "dense_std" or (isinstance(self.barrier_threshold, float)
                                                           and self.barrier_threshold >= 0),
                 "lmc.barrier_threshold", "must be 'dense_std' or a number >= 0", self.barrier_threshold)


@dataclass(frozen=True)
class LandscapeConfig:
    grid_size: int = 11  # N x N points per level (Appendix C: 51)
    margin: float = 0.25  # the grid extends this fraction of the three points' extent beyond them
    orthogonal_scale: float = 2.0  # Appendix C: the orthogonal direction is scaled by 2
    replicate: int = 0  # whose levels are sliced

    def validate(self) -> None:
        _require(self.grid_size >= 2, "landscape.grid_size", "must be >= 2", self.grid_size)
        _require(self.margin >= 0, "landscape.margin", "must be >= 0", self.margin)
        _require(self.orthogonal_scale > 0, "landscape.orthogonal_scale", "must be > 0", self.orthogonal_scale)
        _require(self.replicate >= 0, "landscape.replicate", "must be >= 0", self.replicate)


# The two error barriers of the papers, by what the path's errors are measured against:
BARRIERS = {
    # Definition A.1 of "Unmasking the LTH" (IMP's successive solutions: lmc, landscape)
    "line": "the height of the error above the straight line between the end points' errors (Definition A.1)",
    # Frankle et al. (2020), which "Training stability and the LTH" follows (instability, first stable step)
    "mean": "the maximum error along the path minus the mean of the end points' errors (Frankle et al. 2020)",
}


@dataclass(frozen=True)
class InstabilityConfig:
    rewind_steps: tuple[int, ...] = (0,)  # starting points: the dense run at these steps (0 = initialisation)
    levels: tuple[int, ...] = (0,)  # 0 = dense; L > 0 applies the IMP mask of level L to the starting point
    replicates: int = 0  # how many replicates to measure; 0 = all
    stable_threshold: float = 0.02  # Frankle et al. (2020): stable when the error barrier is below 2%
    # the barrier that decides stability (`BARRIERS`): mean, Frankle et al.'s (max error on the path minus the end
    # points' mean), whom the stability paper follows; line, Definition A.1's (height above the line between them)
    barrier: Literal["mean", "line"] = "mean"
    path_points: int = 30  # points on the copies' path, evenly spaced (Frankle et al. 2020: 30)
    # Appendix B of "Training stability and the LTH": the first stable rewind step, by binary search over
    # the candidate steps 0, search_every, 2 * search_every, ..., train.steps (0 = every epoch)
    search_every: int = 0
    search_probes: int = 9  # the paper: 9 for 201 candidate epochs (exact: 1 + ceil(log2 201))
    # noise copies per initialisation (the paper: 3 x 3); stable when their mean barrier is below stable_threshold;
    # with 2, the instability stage's copies are reused
    search_copies: int = 3

    def validate(self) -> None:
        _require(all(s >= 0 for s in self.rewind_steps), "instability.rewind_steps", "must be steps >= 0",
                 list(self.rewind_steps))
        _require(all(level >= 0 for level in self.levels), "instability.levels", "must be levels >= 0",
                 list(self.levels))
        _require(self.replicates >= 0, "instability.replicates", "must be >= 0", self.replicates)
        _require(self.stable_threshold >= 0, "instability.stable_threshold", "must be >= 0", self.stable_threshold)
        _require(self.path_points >= 2, "instability.path_points", "must be >= 2 (both end points)",
                 self.path_points)
        _require(self.search_every >= 0, "instability.search_every", "must be >= 0 (0 = every epoch)",
                 self.search_every)
        _require(self.search_probes >= 1, "instability.search_probes", "must be >= 1", self.search_probes)
        _require(self.search_copies >= 2, "instability.search_copies", "must be >= 2 (a barrier needs a pair)",
                 self.search_copies)


@dataclass(frozen=True)
class TicketsConfig:
    """Tickets m(L) * w_{t_r} the baselines, probes, few-shot and transfer stages study (third paper, Sec. 5)."""

    levels: tuple[int, ...] = ()  # IMP levels >= 1; [] = none of those stages train anything
    replicates: int = 0  # how many replicates; 0 = all

    def validate(self) -> None:
        _require(all(level >= 1 for level in self.levels) and len(set(self.levels)) == len(self.levels),
                 "tickets.levels", "must be distinct IMP levels >= 1", list(self.levels))
        _require(self.replicates >= 0, "tickets.replicates", "must be >= 0", self.replicates)


@dataclass(frozen=True)
class ProbesConfig:
    """Linear probes on frozen tickets (Sec. 5.1) and the new heads of transferred tickets (Sec. 5.3)."""

    blocks: tuple[int, ...] = ()  # probe points numbered from 1 (a ResNet's residual blocks, an MLP's layers); [] = all
    epochs: int = 2  # passes over the training set
    batch_size: int = 256  # examples per Adam step of the probes and transfer heads
    lr: float = 0.001  # Adam's step size; one setting for every probe, as in the paper
    seed: int = 0  # batch order of the probes and the permuted-mask baseline
    # BatchNorm of the frozen networks: batch (each training batch's statistics, train mode, as probing code runs),
    # reestimate (recomputed once on the first training examples) or frozen (the network's own statistics)
    batchnorm: Literal["batch", "reestimate", "frozen"] = "batch"

    def validate(self) -> None:
        _require(all(block >= 1 for block in self.blocks), "probes.blocks", "must be block numbers >= 1",
                 list(self.blocks))
        _require(self.epochs >= 1, "probes.epochs", "must be >= 1", self.epochs)
        _require(self.batch_size >= 1, "probes.batch_size", "must be >= 1", self.batch_size)
        _require(self.lr > 0, "probes.lr", "must be > 0", self.lr)


@dataclass(frozen=True)
class FewShotConfig:
    """Sec. 5.2: tickets and the dense network trained on the same class-balanced random subsets."""

    fractions: tuple[float, ...] = ()  # of the training set (the paper: 0.01, 0.02, 0.05, 0.1); [] = off
    seed: int = 0  # draws the subsets, one per replicate
    # epochs: `epochs` passes over the subset (0: as many as a level makes over the whole set, as coreset work
    # trains subsets), the level's schedule compressed onto them; steps: the level's T - t_r iterations
    budget: Literal["epochs", "steps"] = "epochs"
    epochs: int = 0  # passes over the subset under the `epochs` budget

    def validate(self) -> None:
        _require(all(0 < f <= 1 for f in self.fractions), "few_shot.fractions", "must be fractions in (0, 1]",
                 list(self.fractions))
        _require(self.epochs >= 0, "few_shot.epochs", "must be >= 0 (0 = as many as a level on the whole set)",
                 self.epochs)


@dataclass(frozen=True)
class ForgettingRemovalConfig:
    """Appendix D, Table 7: dense copies trained without the least / most forgotten examples."""

    fractions: tuple[float, ...] = ()  # removed, easiest and hardest (the paper: 0.2, 0.5); [] = off
    replicates: int = 0  # how many replicates; 0 = all
    seed: int = 0  # the order of examples with equal forgetting scores

    def validate(self) -> None:
        _require(all(0 < f < 1 for f in self.fractions), "forgetting_removal.fractions",
                 "must be fractions in (0, 1)", list(self.fractions))
        _require(self.replicates >= 0, "forgetting_removal.replicates", "must be >= 0", self.replicates)


@dataclass(frozen=True)
class TransferConfig:
    """Sec. 5.3: frozen tickets with a new linear head on a target dataset (resized to the source's input shape)."""

    name: str | None = None  # a data.name, or null: no transfer
    root: str = "data/raw"  # the target's raw-data folder
    classes: tuple[int, ...] = ()  # the target's classes; [] = all (e.g. Fashion-MNIST 5-9 for a source of 0-4)

    def validate(self) -> None:
        _require(self.name is None or self.name in DATASET_NAMES, "transfer.name",
                 f"must be null or one of {', '.join(DATASET_NAMES)}", self.name)
        _require_classes(self.classes, "transfer.classes")


@dataclass(frozen=True)
class Config:
    seed: int = 0  # the base seed: every replicate's initialisation, data order and augmentation derive from it
    replicates: int = 2  # independent replicates (each its own seeds); verdicts rest on their spread
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    adaptive: AdaptiveConfig = field(default_factory=AdaptiveConfig)
    el2n: El2nConfig = field(default_factory=El2nConfig)
    subset: SubsetConfig = field(default_factory=SubsetConfig)
    compute: ComputeConfig = field(default_factory=ComputeConfig)
    interpolation: InterpolationConfig = field(default_factory=InterpolationConfig)
    lmc: LmcConfig = field(default_factory=LmcConfig)
    landscape: LandscapeConfig = field(default_factory=LandscapeConfig)
    instability: InstabilityConfig = field(default_factory=InstabilityConfig)
    tickets: TicketsConfig = field(default_factory=TicketsConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)
    few_shot: FewShotConfig = field(default_factory=FewShotConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    forgetting_removal: ForgettingRemovalConfig = field(default_factory=ForgettingRemovalConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def pretraining_schedule(self) -> TrainConfig:
        """Phase 1's schedule: train.*, with pretraining's own learning rate when pretrain.lr is set
        (data diet, Table 1)."""
        return self.train if self.pretrain.lr is None else dataclasses.replace(self.train, lr=self.pretrain.lr)

    def instability_evaluation(self) -> InterpolationConfig:
        """How the instability and first-stable stages evaluate a path: `interpolation` on `instability.path_points`."""
        return dataclasses.replace(self.interpolation, path_points=self.instability.path_points)

    def studied_replicates(self, section: InstabilityConfig | TicketsConfig | ForgettingRemovalConfig) -> int:
        """How many replicates an analysis section studies: its `replicates`, 0 meaning all."""
        return section.replicates or self.replicates

    def validate(self) -> None:
        _require(self.replicates >= 1, "replicates", "must be >= 1", self.replicates)
        for section in (self.data, self.model, self.train, self.pretrain, self.pruning, self.el2n, self.subset,
                        self.adaptive, self.compute, self.interpolation, self.lmc, self.landscape, self.instability,
                        self.tickets, self.probes, self.few_shot, self.transfer, self.forgetting_removal,
                        self.report):
            section.validate()
        # checks across sections, once every section is valid on its own
        _require(self.pretrain.steps < self.train.steps, "pretrain.steps",
                 f"must be smaller than train.steps={self.train.steps}", self.pretrain.steps)
        _require(self.el2n.steps <= self.train.steps, "el2n.steps",
                 f"must be at most train.steps={self.train.steps}", self.el2n.steps)
        _require(self.landscape.replicate < self.replicates, "landscape.replicate",
                 f"must be smaller than replicates={self.replicates}", self.landscape.replicate)
        _require(all(s < self.train.steps for s in self.instability.rewind_steps), "instability.rewind_steps",
                 f"must be smaller than train.steps={self.train.steps}", list(self.instability.rewind_steps))
        _require(all(level <= self.pruning.levels for level in self.instability.levels), "instability.levels",
                 f"must be at most pruning.levels={self.pruning.levels}", list(self.instability.levels))
        _require(self.instability.replicates <= self.replicates, "instability.replicates",
                 f"must be at most replicates={self.replicates}", self.instability.replicates)
        _require(all(level <= self.pruning.levels for level in self.tickets.levels), "tickets.levels",
                 f"must be at most pruning.levels={self.pruning.levels}", list(self.tickets.levels))
        _require(self.tickets.replicates <= self.replicates, "tickets.replicates",
                 f"must be at most replicates={self.replicates}", self.tickets.replicates)
        _require(self.forgetting_removal.replicates <= self.replicates, "forgetting_removal.replicates",
                 f"must be at most replicates={self.replicates}", self.forgetting_removal.replicates)
        _require(self.transfer.name is None or (self.transfer.name, self.transfer.classes)
                 != (self.data.name, self.data.classes), "transfer.classes",
                 "must differ from data.classes when the target is the source dataset (a transfer needs a new task)",
                 list(self.transfer.classes))


def _require_classes(classes: tuple[int, ...], key: str) -> None:
    _require(len(set(classes)) == len(classes) and all(c >= 0 for c in classes) and len(classes) != 1, key,
             "must be distinct class indices >= 0, at least two (or empty: all)", list(classes))


def _require(ok: bool, key: str, rule: str, value) -> None:
    if not ok:
        raise ConfigError(f"{key} {rule}, got {value!r}")


def parse_config(raw: dict) -> Config:
    """Build a validated Config from a params dict; unknown keys are errors, missing ones take defaults."""
    config = _build(Config, raw or {}, prefix="")
    config.validate()
    return config


def load_config(path: str | Path = "params.yaml") -> Config:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"params file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, got {type(raw).__name__}")
    return parse_config(raw)


def to_dict(config) -> dict:
    """Plain-dict form (lists, not tuples) for writing next to results."""
    return _plain(dataclasses.asdict(config))


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _build(cls, raw, prefix: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'params'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f"did you mean {prefix}{close[0]}? " if close else ""
        raise ConfigError(f"unknown key {prefix}{unknown[0]} ({hint}known: {', '.join(sorted(names))})")
    values = {name: _coerce(hints[name], value, prefix + name) for name, value in raw.items()}
    return cls(**values)


def _coerce(hint, value, key: str):
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".")
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        converted = _convert(option, value)
        if converted is not _NO:
            return converted
    raise ConfigError(f"{key} must be {' or '.join(map(type_name, options))}, got {value!r}")


def type_name(hint) -> str:
    """How errors and the parameter reference name a type: int, float or null, one of a, b, ..."""
    if typing.get_origin(hint) is Literal:
        return f"one of {', '.join(typing.get_args(hint))}"
    if typing.get_origin(hint) is tuple:
        return f"list of {type_name(typing.get_args(hint)[0])}"
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


_NO = object()


def _convert(hint, value):
    origin = typing.get_origin(hint)
    if origin is tuple:
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if not isinstance(value, (list, tuple)):
            return _NO
        items = [_convert(item, v) for v in value]
        return _NO if any(i is _NO for i in items) else tuple(items)
    if hint is type(None):
        return None if value is None else _NO
    if hint is bool:
        return value if isinstance(value, bool) else _NO
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _NO
    if hint is float:
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else _NO
    if hint is str:
        return value if isinstance(value, str) else _NO
    if origin is Literal:
        return value if value in typing.get_args(hint) else _NO
    return _NO
