"""Masks and magnitude pruning (global, as the papers; or layer-wise).

A mask is a dict {parameter name: bool tensor} over every prunable tensor (conv and linear
weights). Ignored tensors keep an all-True mask: they are never pruned but are counted in
the denominator of the fraction of weights remaining (docs/conventions.md states this convention).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

# A pruning rule: (weights, mask, ratio) -> the next mask (`magnitude_prune` with its scope fixed).
Prune = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], float], dict[str, torch.Tensor]]


def dense_mask(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: torch.ones_like(w, dtype=torch.bool) for name, w in weights.items()}


def magnitude_prune(weights: dict[str, torch.Tensor], mask: dict[str, torch.Tensor], ratio: float,
                    ignored: tuple[str, ...] = (), layerwise: bool = False,
                    own_ratios: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
    """Prune ceil(ratio x remaining) of the smallest-magnitude surviving weights, globally or per tensor.

    Algorithm 1 (IMP-WR), step 5: the new mask keeps m[i] unless weight i is among the smallest-magnitude
    surviving weights of its group: every non-ignored tensor together (global, the papers' choice), or each
    tensor alone (`layerwise`: every layer at the same ratio). A tensor in `own_ratios` is always a group of
    its own at its own ratio (Frankle & Carbin prune the output layer at half the others' rate). Masks are
    nested by construction; ties are broken by position (deterministic).
    """
    own_ratios = own_ratios or {}
    if not all(0 < r < 1 for r in (ratio, *own_ratios.values())):
        raise ValueError(f"pruning ratios must be in (0, 1), got {ratio} and {own_ratios}")
    names = [name for name in mask if name not in ignored and name not in own_ratios]
    groups = [([name], ratio) for name in names] if layerwise else [(names, ratio)] if names else []
    groups += [([name], own) for name, own in own_ratios.items()]
    new_mask = dict(mask)
    for group, group_ratio in groups:
        new_mask.update(_prune_group(weights, mask, group, group_ratio))
    return new_mask


def _prune_group(weights, mask, names: list[str], ratio: float) -> dict[str, torch.Tensor]:
    """The masks of `names` after removing the ceil(ratio x remaining) smallest surviving weights among them."""
    scores = torch.cat([torch.where(mask[n], weights[n].detach().abs(), torch.inf).flatten() for n in names])
    count = math.ceil(ratio * int(sum(int(mask[n].sum()) for n in names)))
    pruned = torch.zeros_like(scores, dtype=torch.bool)
    pruned[torch.topk(scores, count, largest=False, sorted=False).indices] = True
    new_mask, offset = {}, 0
    for name in names:
        size = mask[name].numel()
        new_mask[name] = mask[name] & ~pruned[offset:offset + size].view_as(mask[name])
        offset += size
    return new_mask


def fraction_remaining(mask: dict[str, torch.Tensor]) -> float:
    """Surviving prunable weights over all prunable weights (ignored tensors count as surviving)."""
    kept = sum(int(m.sum()) for m in mask.values())
    return kept / sum(m.numel() for m in mask.values())


@torch.no_grad()
def apply_mask(params: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> None:
    """Zero pruned weights in place (the mask may carry a leading replicate dimension)."""
    if mask:
        torch._foreach_mul_([params[name] for name in mask], list(mask.values()))


def projection(state: dict[str, torch.Tensor], mask: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """m * w: a state dict with the mask's pruned weights set to zero (the level-L projection
    m(L+1) * w(L) of Fig. 1); tensors without a mask are kept."""
    return {name: tensor * mask[name] if name in mask else tensor for name, tensor in state.items()}


def permuted_mask(mask: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Each tensor's mask with its entries randomly permuted: the same per-layer sparsity, random positions.

    Random pruning (Frankle & Carbin's baseline) when applied to the rewind weights, and the permuted-mask
    baseline of the linear probes (third paper, Sec. 5.1); dense tensors stay dense.
    """
    return {name: m.flatten()[torch.randperm(m.numel(), generator=generator)].view_as(m) for name, m in mask.items()}
