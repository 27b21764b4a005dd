"""The momentum x batch-size grid of "Training stability and the lottery ticket hypothesis" (Tables 1, 2, 6,
Fig. 1) as params overrides, one DVC experiment per configuration and rewinding setting.

Every run keeps the base params' number of epochs (`epochs`) and the shape of its lr schedule: steps and
milestones are rescaled to the configuration's batch size. The learning rate is the same for every
configuration, as in the paper (no scaling with batch size or momentum).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lthlib.analyses.stability import candidate_steps, exact_probes
from lthlib.core.config import Config, ConfigError, parse_config, to_dict

NAME = re.compile(r"mu(?P<momentum>\d+(?:\.\d+)?)-bs(?P<batch_size>\d+)")


@dataclass(frozen=True)
class Configuration:
    momentum: float
    batch_size: int

    @classmethod
    def parse(cls, name: str, training_examples: int) -> "Configuration":
        """`mu<momentum>-bs<batch size>`, e.g. mu0.9-bs128; a one-line error naming what is wrong."""
        match = NAME.fullmatch(name)
        if match is None:
            raise ConfigError(f"configurations: unknown configuration {name!r} (expected mu<momentum>-bs<batch size>, "
                              f"e.g. mu0.9-bs128)")
        configuration = cls(float(match["momentum"]), int(match["batch_size"]))
        if not 0 <= configuration.momentum < 1:
            raise ConfigError(f"configurations: momentum of {name!r} must be in [0, 1)")
        if not 1 <= configuration.batch_size <= training_examples:
            raise ConfigError(f"configurations: batch size of {name!r} must be in [1, {training_examples}] "
                              f"(the training examples)")
        return configuration

    @property
    def name(self) -> str:
        return f"mu{self.momentum:g}-bs{self.batch_size}"


def experiment_overrides(base: Config, configuration: Configuration, training_examples: int, epochs: float,
                         rewind_epochs: float) -> dict[str, object]:
    """params overrides of one run: the configuration trained `epochs` epochs, IMP rewinding to
    `rewind_epochs` (0: to initialisation), instability from initialisation and from t_r, the
    first-stable search over every half epoch, and the accuracy curves every epoch (Table 1's AUC, Eq. 3,
    and forgetting are per epoch: a base's `train.curve_steps` would leave a large batch's run a curve of
    its start and end, whose AUC is 1 by construction)."""
    epoch = training_examples // configuration.batch_size
    steps = max(round(epochs * epoch), 1)
    rewind = round(rewind_epochs * epoch)
    if rewind >= steps:
        raise ConfigError(f"rewind epochs ({rewind_epochs}) must be fewer than epochs ({epochs})")
    every = max(epoch // 2, 1)
    scale = steps / base.train.steps
    milestones = sorted({m for m in (round(m * scale) for m in base.train.milestones) if 0 < m < steps})
    return {"train.momentum": configuration.momentum, "train.batch_size": configuration.batch_size,
            "train.steps": steps, "train.milestones": milestones,
            "train.warmup_steps": round(base.train.warmup_steps * scale), "train.curve_steps": 0,
            "el2n.steps": min(max(round(base.el2n.steps * scale), 1), steps),
            "pretrain.steps": rewind, "instability.rewind_steps": sorted({0, rewind}),
            "instability.search_every": every,
            "instability.search_probes": exact_probes(len(candidate_steps(steps, every)))}


def experiment_config(base: Config, overrides: dict[str, object]) -> Config:
    """The params of one run, validated: a grid whose run would fail says so before anything runs."""
    raw = to_dict(base)
    for key, value in overrides.items():
        *sections, name = key.split(".")
        target = raw
        for section in sections:
            target = target[section]
        target[name] = value
    return parse_config(raw)
