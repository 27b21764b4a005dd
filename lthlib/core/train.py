"""The trainer: R replicates of one architecture trained at once on stacked parameters.

Replicates are independent networks whose tensors are stacked along a leading dimension.
The forward pass runs them together with `torch.func.vmap` (or one by one with
`vectorize=False`, which gives the same numbers; evaluation on a CPU loops where vmap would
be slower, `vmap_pays`); the summed loss has, for each replicate,
exactly that replicate's gradient, so one optimizer (`MaskedSGD`) steps all of them.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F
from tqdm.auto import tqdm

from lthlib.core import distributed, io
from lthlib.core.config import TrainConfig
from lthlib.core.curves import CurvePoint, TrainingCurves
from lthlib.core.data import BatchOrder, Dataset, augment, derive_seed, to_device
from lthlib.core.errors import UserError
from lthlib.core.images import EncodedStep, StepBatches, cores, decode_step
from lthlib.core.models import build_model
from lthlib.core.pruning import apply_mask

# Purposes of derived seeds: each source of randomness has its own stream, so that two
# copies can differ in data order alone (instability) while sharing their initialisation.
INIT, DATA_ORDER, AUGMENTATION = 1, 2, 3


@dataclass(frozen=True)
class ReplicateSeeds:
    """The seeds of one replicate; a training run `run` (0 = pretraining, L + 1 = level L) derives its own."""

    init: int
    data_order: int
    augmentation: int

    @classmethod
    def for_replicate(cls, seed: int, replicate: int) -> "ReplicateSeeds":
        return cls(*(derive_seed(seed, replicate, purpose) for purpose in (INIT, DATA_ORDER, AUGMENTATION)))

    def for_run(self, *run: int) -> "ReplicateSeeds":
        """The same initialisation with the data order and augmentation of run `run` (one or more integers:
        IMP's runs are one, other analyses tag theirs with a purpose first)."""
        return ReplicateSeeds(self.init, derive_seed(self.data_order, *run), derive_seed(self.augmentation, *run))


def replicate_seeds(seed: int, replicates: int) -> list[ReplicateSeeds]:
    """The seeds of replicates 0 .. replicates - 1 of a run with base seed `seed`."""
    return [ReplicateSeeds.for_replicate(seed, r) for r in range(replicates)]


class Replicas:
    """R networks of one architecture as stacked tensors: params[name] has shape [R, *shape]."""

    def __init__(self, model: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]):
        self.model, self.params, self.buffers = model, params, buffers

    @classmethod
    def from_state_dicts(cls, model: nn.Module, states: list[dict], device) -> "Replicas":
        param_names = {name for name, _ in model.named_parameters()}
        stacked = {name: torch.stack([s[name] for s in states]).to(device) for name in states[0]}
        # parameters in torch's default float dtype: float32 masters under bf16 autocast, float64 in the tests
        # that compare two computation paths (where float32 rounding would hide or fake a difference)
        params = {n: t.to(torch.get_default_dtype()).requires_grad_() for n, t in stacked.items() if n in param_names}
        buffers = {n: t for n, t in stacked.items() if n not in param_names}
        return cls(model, params, buffers)  # the module's own tensors are never used: functional_call gets these

    @property
    def count(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def state_dict(self, replicate: int) -> dict[str, torch.Tensor]:
        tensors = {**self.params, **self.buffers}
        return {name: tensors[name][replicate].detach().to("cpu", memory_format=torch.contiguous_format, copy=True)
                for name in self.model.state_dict()}

    def store_in_gradient_layout(self) -> None:
        """Store stacked linear weights [R, out, in] transposed in memory, as their vmap gradients arrive.

        Under vmap, a linear layer's weight gradient is the transpose of a batched matmul's output.
        A parameter in that layout spares a strided copy in every backward pass and keeps the SGD
        and masking updates contiguous (LeNet-300-100, 4 replicates: backward 1.4-1.9x faster on
        CPU). Values, `state_dict` and the looped path are unchanged.
        """
        if self.count == 1:  # a single network skips vmap
            return
        for name, param in self.params.items():
            if param.dim() == 3:
                self.params[name] = param.detach().transpose(1, 2).contiguous().transpose(1, 2).requires_grad_()

    def store_channels_last(self) -> None:
        """Store stacked conv weights [R, out, in, kh, kw] with the input channels innermost (`train.channels_last`):
        a single network's squeezed view and vmap's grouped convolution [R * out, in, kh, kw] are then channels-last
        views, so cuDNN runs NHWC kernels (tensor cores, no transposes) and the activations follow. Values unchanged."""
        for name, param in self.params.items():
            if param.dim() == 5:
                self.params[name] = (param.detach().permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
                                     .requires_grad_())

    def forward(self, x: torch.Tensor, shared: bool = False, vectorize: bool = True) -> torch.Tensor:
        """Logits [R, B, classes] for inputs [R, B, ...] (one batch per replicate) or, if `shared`, [B, ...]."""
        return self.apply(lambda params, buffers, inputs: functional_call(self.model, (params, buffers), (inputs,)),
                          x, shared, vectorize)

    def apply(self, function, x: torch.Tensor, shared: bool = False, vectorize: bool = True):
        """`function(params, buffers, inputs)` of every replicate, stacked along a leading [R] dimension (a tensor
        or a tuple of tensors); inputs as in `forward`."""
        if vectorize and self.count > 1 and vmap_pays(self):  # a single network runs faster without vmap's overhead
            return vmap(function, in_dims=(0, 0, None if shared else 0), randomness="different")(
                self.params, self.buffers, x)
        params, buffers = _unstacked(self.params, self.count), _unstacked(self.buffers, self.count)
        outputs = [function(params[r], buffers[r], x if shared else x[r]) for r in range(self.count)]
        if isinstance(outputs[0], tuple):
            return tuple(torch.stack(parts) for parts in zip(*outputs))
        return torch.stack(outputs)


def vmap_pays(replicas: Replicas) -> bool:
    """Whether R networks run faster stacked under vmap than one after another (the numbers agree up to rounding).
    They do while training, and on a GPU, where stacking saves kernel launches. Not where a CPU evaluates networks
    with convolutions: vmap makes R convolutions one grouped convolution and each BatchNorm a normalisation followed
    by a strided affine pass, which ran 1.4-3x slower than R plain passes (bench/bench_landscape.py)."""
    if torch.is_grad_enabled() or next(iter(replicas.params.values())).device.type != "cpu":
        return True
    return not any(isinstance(module, nn.Conv2d) for module in replicas.model.modules())


def _unstacked(tensors: dict[str, torch.Tensor], count: int) -> list[dict[str, torch.Tensor]]:
    """Every replicate's tensors as views; one `unbind` per tensor, whose backward stacks the gradients once
    (indexing each replicate would allocate and fill a full-size gradient per replicate). A single network's
    tensors are squeezed instead: a view whose gradient is a view too, with no copy at all."""
    if count == 1:
        return [{name: tensor.squeeze(0) for name, tensor in tensors.items()}]
    parts = {name: tensor.unbind(0) for name, tensor in tensors.items()}
    return [{name: views[r] for name, views in parts.items()} for r in range(count)]


def initial_states(model_name: str, input_shape, num_classes: int, init_seeds: list[int]) -> list[dict]:
    """One freshly initialised state_dict per seed (the global RNG is left untouched)."""
    states = []
    for seed in init_seeds:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            states.append(build_model(model_name, input_shape, num_classes).state_dict())
    return states


def learning_rate(step: int, config: TrainConfig) -> float:
    """The LR at iteration `step` of the schedule (a rewound run continues it at step t_r)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "step":
        return config.lr * config.gamma ** sum(step >= m for m in config.milestones)
    if config.schedule == "cosine":
        progress = (step - config.warmup_steps) / (config.steps - config.warmup_steps)
        return config.lr * 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr


class MaskedSGD:
    """SGD with momentum and L2 weight decay on stacked parameters whose pruned weights stay exactly zero.

    The arithmetic of `torch.optim.SGD(foreach=True)` (the same bits: tested), with the masks inside: pruned
    gradients are zeroed before weight decay and momentum (so a pruned weight's momentum stays zero) and pruned
    weights after the update (whatever weight decay did). Unlike torch's, weight decay is added to the gradients
    in place: torch allocates a parameter-sized tensor for it every step, and paging in fresh memory cost more
    than the addition itself (LeNet-300-100, 4 replicates, 2-core VM: 5 ms of a 13 ms step).
    """

    def __init__(self, params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], momentum: float,
                 weight_decay: float, decoupled: bool = False):
        self.named, self.params, self.masks = params, list(params.values()), masks
        self.decoupled = decoupled  # SGDW: weight decay shrinks the weights apart from the gradient and momentum
        self.masked = [params[name] for name in masks]
        self.mask_of_param = [masks.get(name) for name in params]  # None for tensors never pruned
        self.momentum, self.weight_decay = momentum, weight_decay
        self.momentum_buffers: list[torch.Tensor] | None = None  # fresh per optimizer: none carried across runs
        # `train.compile` reads the lr from a tensor (a float would recompile at every new value), filled in place
        # on the device: a fresh tensor from a float would be a blocking host-to-device copy every step on a GPU
        self.lr = torch.zeros((), device=self.params[0].device)

    @torch.no_grad()
    def step(self, lr: float) -> None:
        """One update from the parameters' gradients, which it then clears."""
        self._foreach_step(lr)
        for p in self.params:
            p.grad = None

    def compiled_step(self, replicas: "Replicas", inputs: torch.Tensor, labels: torch.Tensor, lr: float,
                      vectorize: bool, mixed_precision: bool,
                      label_smoothing: float) -> tuple[torch.Tensor, torch.Tensor]:
        """`train.compile`: gradients and update of one step as one compiled graph (`_fused_sgd_step`); returns
        the batch losses [R] and predictions [R, B]. Other bits than eager: results differ in the last digits."""
        if self.momentum_buffers is None:
            self.momentum_buffers = [torch.zeros_like(p) if self.momentum else None for p in self.params]
        self.lr.fill_(lr)
        return _compiled_step()(replicas.model, self.named, replicas.buffers, self.momentum_buffers,
                                self.mask_of_param, inputs, labels, self.lr, self.momentum, self.weight_decay,
                                vectorize, mixed_precision, label_smoothing)

    def _foreach_step(self, lr: float) -> None:
        if self.masks:
            torch._foreach_mul_([p.grad for p in self.masked], list(self.masks.values()))
        grads = [p.grad for p in self.params]
        if self.weight_decay and self.decoupled:
            torch._foreach_mul_(self.params, 1 - lr * self.weight_decay)
        elif self.weight_decay:
            torch._foreach_add_(grads, self.params, alpha=self.weight_decay)
        if self.momentum:
            if self.momentum_buffers is None:
                self.momentum_buffers = [g.clone() for g in grads]
            else:
                torch._foreach_mul_(self.momentum_buffers, self.momentum)
                torch._foreach_add_(self.momentum_buffers, grads)
            grads = self.momentum_buffers
        torch._foreach_add_(self.params, grads, alpha=-lr)
        apply_mask(self.named, self.masks)


def _masked_sgd_update(params, grads, buffers, masks, lr: torch.Tensor, momentum: float, weight_decay: float):
    """MaskedSGD's update written per tensor for torch.compile, which fuses it into one pass over each tensor
    (`lr` a 0-dim tensor; buffers and masks None where absent)."""
    for param, grad, buffer, mask in zip(params, grads, buffers, masks, strict=True):
        if mask is not None:
            grad = grad * mask
        grad = grad + weight_decay * param
        if buffer is not None:
            buffer.mul_(momentum).add_(grad)
            grad = buffer
        param.sub_(lr * grad)
        if mask is not None:
            param.mul_(mask)


class MaskedAdam:
    """`torch.optim.Adam` (L2 weight decay, betas 0.9 / 0.999, eps 1e-8: Kingma & Ba's defaults, which Frankle &
    Carbin's Conv-2/4/6 used) on stacked parameters with masks. Adam is elementwise, so replicates stacked along a
    leading dimension update as if apart. Pruned gradients are zeroed before each step: a pruned weight's moments
    stay zero, its update is 0 / (0 + eps) = 0, and weight decay of a zero weight adds nothing, so it stays zero."""

    def __init__(self, params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], weight_decay: float):
        self.params, self.masks = params, masks
        self.optimizer = torch.optim.Adam(params.values(), lr=0.0, weight_decay=weight_decay, foreach=True)

    @torch.no_grad()
    def step(self, lr: float) -> None:
        if self.masks:
            torch._foreach_mul_([self.params[name].grad for name in self.masks], list(self.masks.values()))
        self.optimizer.param_groups[0]["lr"] = lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def moments(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Each parameter's first and second moment estimates (what the masks must keep zero)."""
        return {name: (self.optimizer.state[p]["exp_avg"], self.optimizer.state[p]["exp_avg_sq"])
                for name, p in self.params.items() if p in self.optimizer.state}


def optimizer_for(config: TrainConfig, params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]):
    """A fresh optimizer of `train.optimizer` for one run (none carries state across runs)."""
    if config.optimizer == "adam":
        return MaskedAdam(params, masks, config.weight_decay)
    return MaskedSGD(params, masks, config.momentum, config.weight_decay, decoupled=config.optimizer == "sgdw")


@dataclass
class TrainLog:
    losses: torch.Tensor  # [steps run, R] training loss of every batch
    seconds: float
    curves: TrainingCurves | None  # accuracy curves and forgetting events (None when not recorded)
    snapshots: dict[int, list[dict]]  # step -> every replicate's state_dict at that step


def train(replicas: Replicas, dataset: Dataset, config: TrainConfig, seeds: list[ReplicateSeeds],
          start_step: int, end_step: int, masks: dict[str, torch.Tensor] | None = None,
          augmentation: bool = False, vectorize: bool = True, description: str = "train",
          curves: bool = True, snapshot_steps: tuple[int, ...] = ()) -> TrainLog:
    """Train every replicate in place from `start_step` to `end_step` of the schedule.

    Each call starts a fresh optimizer (the reference codebases' choice on rewinding). Batch
    order and augmentation of replicate r come from seeds[r], so a run is reproducible from
    its seeds alone. `masks` (stacked [R, ...]) keep pruned weights exactly zero. With `curves`,
    the run records its accuracy curves (every `config.curve_steps`, default an epoch) and
    forgetting events; the replicates' states at `snapshot_steps` (in [start_step, end_step]) are kept.
    """
    group = distributed.current()  # several processes share every batch (compute.processes)
    if group is not None and config.compile:
        raise UserError("train.compile is not supported with compute.processes > 1 (set one of them back)")
    if vectorize:
        replicas.store_in_gradient_layout()
    if config.channels_last:
        replicas.store_channels_last()
    masks = {name: torch.empty_like(replicas.params[name]).copy_(mask) for name, mask in (masks or {}).items()}
    optimizer = optimizer_for(config, replicas.params, masks)
    device = dataset.train_y.device
    orders = [BatchOrder(s.data_order, len(dataset.train_y), config.batch_size, device) for s in seeds]
    generators = [torch.Generator().manual_seed(s.augmentation) for s in seeds]
    streamed = _streamed(dataset, seeds, config.batch_size, start_step, end_step, augmentation, group)
    losses = torch.zeros(end_step - start_step, replicas.count, device=device)
    interval = config.curve_steps or orders[0].steps_per_epoch
    apply_mask(replicas.params, masks)
    # normalised once per run: per evaluation, normalising the test set cost as much as the forward passes (LeNet)
    curve_inputs = _curve_inputs(dataset) if curves else None
    log = TrainLog(losses, 0.0, None, {})
    if curves:
        log.curves = TrainingCurves.start(replicas.count, len(dataset.train_y), start_step,
                                          _curve_point(replicas, dataset, curve_inputs, config, vectorize), device)
    replicas.model.train()
    started = time.perf_counter()
    for step in tqdm(range(start_step, end_step), desc=description, unit="step", mininterval=2, leave=False,
                     disable=not io.writes_outputs()):
        if step in snapshot_steps:
            log.snapshots[step] = [replicas.state_dict(r) for r in range(replicas.count)]
        index = torch.stack([order.indices(step) for order in orders])
        if streamed is not None:  # the files of these examples, decoded ahead (this process's shard)
            images, labels = _step_images(next(streamed), dataset, device), _rows(dataset.train_y, index)
        else:
            images, labels = (_rows(tensor, index) for tensor in (dataset.train_x, dataset.train_y))
            if augmentation:
                images = torch.stack([augment(images[r], generators[r]) for r in range(replicas.count)])
        if group is None:
            losses[step - start_step], predictions = _training_step(
                replicas, optimizer, dataset.normalize(images), labels, learning_rate(step, config), vectorize,
                config.mixed_precision, config.compile, config.label_smoothing)
            correct = predictions == labels
        else:
            losses[step - start_step], correct = _shared_step(group, replicas, optimizer, dataset.normalize(images),
                                                              labels, learning_rate(step, config), vectorize,
                                                              config.mixed_precision, config.label_smoothing,
                                                              sharded=streamed is not None)
        if log.curves is not None:
            log.curves.record_batch(index, correct)
            if (step + 1) % orders[0].steps_per_epoch == 0:  # the next step starts a new permutation
                log.curves.flush()
            if (step + 1 - start_step) % interval == 0 or step + 1 == end_step:
                log.curves.record_point(step + 1, _curve_point(replicas, dataset, curve_inputs, config, vectorize))
    if end_step in snapshot_steps:
        log.snapshots[end_step] = [replicas.state_dict(r) for r in range(replicas.count)]
    log.losses, log.seconds = losses.cpu(), time.perf_counter() - started
    return log


def _streamed(dataset: Dataset, seeds: list[ReplicateSeeds], batch_size: int, start_step: int, end_step: int,
              augmentation: bool, group) -> Iterator[torch.Tensor | EncodedStep] | None:
    """A streamed dataset's training images [R, B, ...] of every step from `start_step`, decoded ahead of the
    trainer by DataLoader workers, or read by them for the device to decode (`images.StepBatches`; each
    data-parallel process reads its own shard)."""
    if not dataset.streams:
        return None
    orders = [BatchOrder(s.data_order, len(dataset.train_y), batch_size) for s in seeds]
    steps = StepBatches(dataset.train_x, orders, [s.augmentation for s in seeds] if augmentation else None,
                        start_step, end_step, shard=(group.rank, group.size) if group else (0, 1))
    workers = max(1, min(8, cores() // (group.size if group else 1)))
    return iter(torch.utils.data.DataLoader(steps, batch_size=None, num_workers=workers,
                                            pin_memory=dataset.train_y.device.type == "cuda"))


def _step_images(item: torch.Tensor | EncodedStep, dataset: Dataset, device: torch.device) -> torch.Tensor:
    """A streamed step's images on the device: decoded by the workers, or there (`data.decoder`)."""
    if isinstance(item, EncodedStep):
        return decode_step(item, dataset.train_x.size, dataset.train_x.resize, device)
    return to_device(item, device)


def _curve_inputs(dataset: Dataset) -> dict[str, torch.Tensor]:
    """The examples every point of the accuracy curves is measured on, normalised: the test set and as many
    training examples (the first ones; training batches are random permutations, so these are no special set)."""
    return {"test": dataset.normalize(dataset.test_x),
            "train": dataset.normalize(dataset.train_x[:len(dataset.test_y)])}


def _curve_point(replicas: Replicas, dataset: Dataset, inputs: dict[str, torch.Tensor], config: TrainConfig,
                 vectorize: bool) -> CurvePoint:
    """Train and test accuracy (and test loss) [R] on the device, in eval mode in the middle of training (the
    model is left in training mode)."""
    test_loss, test_accuracy = evaluate(replicas, dataset, "test", config.eval_batch_size, vectorize, on_device=True,
                                        normalized=inputs["test"])
    train_accuracy = evaluate(replicas, dataset, "train", config.eval_batch_size, vectorize, on_device=True,
                              limit=len(inputs["train"]), normalized=inputs["train"])[1]
    replicas.model.train()
    return CurvePoint(train_accuracy, test_accuracy, test_loss)


def train_replicates(model_name: str, dataset: Dataset, config: TrainConfig, states: list[dict],
                     seeds: list[ReplicateSeeds], start_step: int, end_step: int, masks: list[dict] | None = None,
                     augmentation: bool = False, vectorize: bool = True, device="cpu",
                     description: str = "train", curves: bool = True,
                     snapshot_steps: tuple[int, ...] = ()) -> tuple[Replicas, TrainLog]:
    """Train one network per start state (each with its seeds and, optionally, its mask) from
    `start_step` to `end_step` of the schedule, all together. Pretraining, IMP levels, EL2N's
    networks and the instability copies are all this call."""
    model = build_model(model_name, dataset.input_shape, dataset.num_classes)
    replicas = Replicas.from_state_dicts(model, states, device)
    stacked = None if masks is None else {name: torch.stack([m[name] for m in masks]).to(device) for name in masks[0]}
    log = train(replicas, dataset, config, seeds, start_step, end_step, stacked, augmentation, vectorize, description,
                curves, snapshot_steps)
    return replicas, log


def _rows(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """tensor[index] for an index [R, B] of rows: index_select gathers a batch of images 10x faster."""
    return tensor.index_select(0, index.flatten()).view(*index.shape, *tensor.shape[1:])


def _training_step(replicas, optimizer, inputs, labels, lr, vectorize, mixed_precision, compiled=False,
                   label_smoothing=0.0):
    """One optimizer step of every replicate; returns the batch losses [R] and the predictions [R, B] it made."""
    if compiled:
        return optimizer.compiled_step(replicas, inputs, labels, lr, vectorize, mixed_precision, label_smoothing)
    losses, predictions = _losses_and_predictions(replicas.model, replicas.params, replicas.buffers, inputs, labels,
                                                  vectorize, mixed_precision, label_smoothing)
    losses.sum().backward()
    optimizer.step(lr)
    return losses.detach(), predictions


def _shared_step(group, replicas, optimizer, inputs, labels, lr, vectorize, mixed_precision, label_smoothing,
                 sharded=False):
    """One step of a global batch shared by the processes of `group`: each computes the gradient of its shard's
    mean loss, their average (the global batch's) feeds every process's identical masked step. Returns the global
    batch's losses [R] and which of its examples each replicate predicted correctly [R, B]. `sharded`: the inputs
    are already this process's shard (streamed)."""
    inputs, shard_labels = inputs if sharded else group.shard(inputs), group.shard(labels)
    losses, predictions = _losses_and_predictions(replicas.model, replicas.params, replicas.buffers, inputs,
                                                  shard_labels, vectorize, mixed_precision, label_smoothing)
    losses.sum().backward()
    group.average_([p.grad for p in replicas.params.values()])
    optimizer.step(lr)
    losses = losses.detach()
    group.average_([losses, *(b for b in replicas.buffers.values() if b.is_floating_point())])
    return losses, group.gather(predictions == shard_labels)


def _losses_and_predictions(model, params, buffers, inputs, labels, vectorize, mixed_precision, label_smoothing=0.0):
    """The batch losses [R] of every replicate and its predictions [R, B] (a function of tensors, to compile)."""
    with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=mixed_precision):
        logits = Replicas(model, params, buffers).forward(inputs, vectorize=vectorize)
    logits = logits.to(torch.get_default_dtype())  # bf16 under autocast
    losses = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="none",
                             label_smoothing=label_smoothing).view(labels.shape).mean(1)
    return losses, logits.detach().argmax(-1)


def _fused_sgd_step(model, params, buffers, momentum_buffers, masks, inputs, labels, lr, momentum, weight_decay,
                    vectorize, mixed_precision, label_smoothing):
    """One whole step as a function of tensors, for torch.compile: the gradients come from `torch.func.grad`
    inside the graph and feed MaskedSGD's update there, so they never leave it (a compiled forward followed by
    autograd and a compiled update measured 1.14x the DataLoader loop, this 1.61-1.93x: bench/bench_train.py).
    The buffers are an argument, not captured: batch norm updates its running statistics in place."""
    def summed_loss(params, buffers):
        losses, predictions = _losses_and_predictions(model, params, buffers, inputs, labels, vectorize,
                                                      mixed_precision, label_smoothing)
        return losses.sum(), (losses.detach(), predictions)

    gradients, (losses, predictions) = torch.func.grad(summed_loss, has_aux=True)(params, buffers)
    with torch.no_grad():
        _masked_sgd_update(list(params.values()), list(gradients.values()), momentum_buffers, masks, lr, momentum,
                           weight_decay)
    return losses, predictions


@functools.cache
def _compiled_step():
    """`_fused_sgd_step` under torch.compile, made at first use: importing the compiler would cost every stage
    process about 3 s at its start (`import stages.imp`: 4.4 s with it, 1.5 s without, on a 2-core AMD EPYC)."""
    return torch.compile(_fused_sgd_step)


@torch.no_grad()
def evaluate(replicas: Replicas, dataset: Dataset, split: str, batch_size: int,
             vectorize: bool = True, limit: int | None = None, on_device: bool = False,
             normalized: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy [R] of every replicate on a split (its first `limit` examples)."""
    replicas.model.eval()
    return evaluate_logits(lambda x: replicas.forward(x, shared=True, vectorize=vectorize), dataset, split,
                           batch_size, limit, on_device, normalized)


@torch.no_grad()
def evaluate_logits(forward, dataset: Dataset, split: str, batch_size: int, limit: int | None = None,
                    on_device: bool = False,
                    normalized: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy [R] of R networks whose logits [R, B, classes] `forward` gives
    for a normalised batch [B, ...] of the split (its first `limit` examples); on the CPU unless
    `on_device` (which spares a GPU a synchronisation). `normalized`: the split's images already
    normalised (`dataset.normalize`), for callers that evaluate often."""
    images, labels = dataset.split(split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    loss_sum = correct = 0
    for start in range(0, len(labels), batch_size):
        x = (dataset.normalize(images[start:start + batch_size]) if normalized is None
             else normalized[start:start + batch_size])
        y = labels[start:start + batch_size]
        logits = forward(x)
        count = logits.shape[0]
        loss_sum = loss_sum + F.cross_entropy(logits.flatten(0, 1), y.repeat(count), reduction="none").view(
            count, -1).sum(1)
        correct = correct + (logits.argmax(-1) == y).sum(1)
    results = loss_sum / len(labels), correct / len(labels)
    return results if on_device else tuple(r.cpu() for r in results)
