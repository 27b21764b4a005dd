"""Model registry. Every model takes the dataset's input shape and class count.

Prunable parameters are the weights of convolutional and linear layers (Frankle & Carbin);
biases and BatchNorm parameters are never pruned. `DEFAULT_IGNORED` is the reference
codebases' convention for which prunable tensors pruning leaves dense: the output layer of
LeNet/VGG-style nets, nothing for ResNets.
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F

from lthlib.core.errors import UserError


class LeNet300100(nn.Module):
    def __init__(self, input_shape, num_classes):
        super().__init__()
        inputs = int(torch.tensor(input_shape).prod())
        self.fc1 = nn.Linear(inputs, 300)
        self.act1 = nn.ReLU()  # activations are modules so that linear probes can read them (`probe_points`)
        self.fc2 = nn.Linear(300, 100)
        self.act2 = nn.ReLU()
        self.output = nn.Linear(100, num_classes)

    def forward(self, x):
        x = x.flatten(1)
        return self.output(self.act2(self.fc2(self.act1(self.fc1(x)))))


class Conv4(nn.Module):
    """Conv-4 of Frankle & Carbin: 64-64-pool-128-128-pool, then 256-256 dense."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        channels, height, width = input_shape
        self.convs = nn.ModuleList([nn.Conv2d(i, o, 3, padding=1) for i, o in
                                    ((channels, 64), (64, 64), (64, 128), (128, 128))])
        self.conv_acts = nn.ModuleList([nn.ReLU() for _ in self.convs])
        self.fc1 = nn.Linear(128 * (height // 4) * (width // 4), 256)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(256, 256)
        self.act2 = nn.ReLU()
        self.output = nn.Linear(256, num_classes)

    def forward(self, x):
        for index, (conv, act) in enumerate(zip(self.convs, self.conv_acts)):
            x = act(conv(x))
            if index % 2 == 1:
                x = F.max_pool2d(x, 2)
        x = x.flatten(1)
        return self.output(self.act2(self.fc2(self.act1(self.fc1(x)))))


class BatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d that, inside vmap, takes a bf16 or fp16 input (autocast's convolution output on CUDA) in
    float32: vmap's batch-norm backward fails on a reduced-precision input with float32 statistics
    (pytorch/pytorch#184890), and R replicates train under vmap. A single network keeps cuDNN's mixed kernel."""

    def forward(self, x):
        if x.dtype in (torch.bfloat16, torch.float16) and torch._C._functorch.is_batchedtensor(x):
            x = x.float()
        return super().forward(x)


def _norm(channels: int, batchnorm: bool) -> nn.Module:
    return BatchNorm2d(channels) if batchnorm else nn.Identity()


class BasicBlock(nn.Module):
    def __init__(self, inputs, outputs, stride, batchnorm=True):
        super().__init__()
        # without BatchNorm, whose shift a convolution's bias would duplicate, the convolutions keep their biases
        self.conv1 = nn.Conv2d(inputs, outputs, 3, stride, 1, bias=not batchnorm)
        self.bn1 = _norm(outputs, batchnorm)
        self.conv2 = nn.Conv2d(outputs, outputs, 3, 1, 1, bias=not batchnorm)
        self.bn2 = _norm(outputs, batchnorm)
        self.shortcut = nn.Sequential()
        if stride != 1 or inputs != outputs:  # projection shortcut, as in OpenLTH's CIFAR ResNets
            self.shortcut = nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=not batchnorm),
                                          _norm(outputs, batchnorm))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """Residual network of BasicBlocks with a 3x3 stem (no max-pool) and global average pooling.

    `widths` and `blocks` give the stages: the CIFAR ResNet-20/32/56 of He et al. (2016) have
    widths (16, 32, 64) and (depth - 2) / 6 blocks per stage; ResNet-18 has (64, 128, 256, 512)
    and 2 blocks per stage. `batchnorm=False` leaves BatchNorm out (the same network otherwise).
    """

    def __init__(self, input_shape, num_classes, widths, blocks, batchnorm=True):
        super().__init__()
        self.conv = nn.Conv2d(input_shape[0], widths[0], 3, 1, 1, bias=not batchnorm)
        self.bn = _norm(widths[0], batchnorm)
        layers, inputs = [], widths[0]
        for stage, width in enumerate(widths):
            for block in range(blocks):
                layers.append(BasicBlock(inputs, width, 2 if stage > 0 and block == 0 else 1, batchnorm))
                inputs = width
        self.blocks = nn.Sequential(*layers)
        self.output = nn.Linear(inputs, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.output(F.adaptive_avg_pool2d(x, 1).flatten(1))


def _cifar_resnet(depth: int, width: int = 16, batchnorm: bool = True):
    """He et al.'s CIFAR ResNet-`depth` whose stages are `width`, 2 x and 4 x wide (OpenLTH's cifar_resnet_D_W)."""
    return lambda shape, classes: ResNet(shape, classes, (width, 2 * width, 4 * width), (depth - 2) // 6, batchnorm)


class TorchvisionResNet(nn.Module):
    """torchvision's ImageNet ResNet (He et al. 2016; used as torchvision builds it, not rewritten), its last
    layer named `output` like every model's. `small_stem`: a 3x3 stride-1 first convolution and no max-pool,
    the CIFAR stem, for images of 32-64 pixels (TinyImageNet), where the ImageNet stem's 4x downsampling would
    leave layer4 a 2x2 map."""

    def __init__(self, architecture: str, input_shape, num_classes: int, small_stem: bool = False):
        import torchvision

        super().__init__()
        body = getattr(torchvision.models, architecture)(weights=None, num_classes=num_classes, norm_layer=BatchNorm2d)
        if small_stem or input_shape[0] != 3:
            kernel, stride, padding = (3, 1, 1) if small_stem else (7, 2, 3)
            body.conv1 = nn.Conv2d(input_shape[0], 64, kernel, stride, padding, bias=False)
            nn.init.kaiming_normal_(body.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision's
        if small_stem:
            body.maxpool = nn.Identity()
        output, body.fc = body.fc, nn.Identity()
        self.body, self.output = body, output  # in this order: the output layer is the last module, as in every model

    def forward(self, x):
        return self.output(self.body(x))


def _torchvision_resnet(architecture: str, small_stem: bool = False):
    return lambda shape, classes: TorchvisionResNet(architecture, shape, classes, small_stem)


MODELS = {
    "lenet_300_100": LeNet300100,
    "conv4": Conv4,
    "resnet20": _cifar_resnet(20),
    "resnet32": _cifar_resnet(32),
    "resnet56": _cifar_resnet(56),
    "resnet18": lambda shape, classes: ResNet(shape, classes, (64, 128, 256, 512), 2),
    # torchvision's ImageNet ResNets (ImageNet stem: 7x7 stride 2 and max-pool), and with the CIFAR stem
    **{f"imagenet_resnet{depth}{suffix}": _torchvision_resnet(f"resnet{depth}", small)
       for depth in (18, 34, 50) for suffix, small in (("", False), ("_cifar_stem", True))},
}
# Any other CIFAR ResNet, named as OpenLTH names them: resnet<depth>_<width of the first stage>, e.g. resnet14_8;
# `_nobn` after the name leaves BatchNorm out (resnet20_8_nobn: how stable a ResNet is without it, docs/regime.md).
CIFAR_RESNET = re.compile(r"resnet(\d+)_(\d+)(_nobn)?")

OUTPUT_WEIGHT = "output.weight"  # every model's output layer is `output`
DEFAULT_IGNORED = {"lenet_300_100": (OUTPUT_WEIGHT,), "conv4": (OUTPUT_WEIGHT,)}


KNOWN_MODELS = (f"{', '.join(MODELS)} or resnet<depth>_<width> (a CIFAR ResNet, depth 6n + 2, e.g. resnet14_8; "
                "resnet14_8_nobn without BatchNorm)")


def _constructor(name: str):
    if name in MODELS:
        return MODELS[name]
    match = CIFAR_RESNET.fullmatch(name)
    if match and int(match[1]) >= 8 and (int(match[1]) - 2) % 6 == 0 and int(match[2]) >= 1:
        return _cifar_resnet(int(match[1]), int(match[2]), batchnorm=not match[3])
    return None


def is_model(name: str) -> bool:
    return _constructor(name) is not None


def build_model(name: str, input_shape, num_classes: int) -> nn.Module:
    constructor = _constructor(name)
    if constructor is None:
        raise UserError(f"model.name must be one of {KNOWN_MODELS}, got {name!r}")
    return constructor(tuple(input_shape), num_classes)


def prunable_names(model: nn.Module) -> list[str]:
    """Names of the weights of every conv and linear layer, in module order."""
    return [f"{name}.weight" if name else "weight" for name, module in model.named_modules()
            if isinstance(module, (nn.Conv2d, nn.Linear))]


def probe_points(model: nn.Module) -> list[str]:
    """Modules whose outputs linear probes read, in order ("block 1", "block 2", ...; third paper, Sec. 5.1):
    every residual block of a ResNet, every hidden activation of the plain nets. The last feeds the
    output layer (after a ResNet's global average pooling): a new head there is a transfer (Sec. 5.3)."""
    blocks = [name for name, module in model.named_modules()  # ours, and torchvision's two kinds
              if isinstance(module, BasicBlock) or type(module).__name__ in ("BasicBlock", "Bottleneck")]
    return blocks or [name for name, module in model.named_modules() if isinstance(module, nn.ReLU)]


def ignored_names(model_name: str, model: nn.Module, ignore) -> tuple[str, ...]:
    """Resolve `pruning.ignore` ("default" or explicit names) against the model's prunable tensors."""
    names = DEFAULT_IGNORED.get(model_name, ()) if ignore == "default" else tuple(ignore)
    unknown = sorted(set(names) - set(prunable_names(model)))
    if unknown:
        raise UserError(f"pruning.ignore names {unknown[0]!r}, which is not a prunable tensor of {model_name} "
                         f"(prunable: {', '.join(prunable_names(model))})")
    return names
