import math

import numpy as np
import pytest
import torch

from lthlib.core.pruning import (
    apply_mask,
    dense_mask,
    fraction_remaining,
    magnitude_prune,
)


def random_weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"a.weight": torch.randn(20, 30, generator=g), "b.weight": torch.randn(8, 4, 3, 3, generator=g),
            "out.weight": torch.randn(5, 20, generator=g)}


def test_global_mask_equals_independent_top_k():
    weights = random_weights()
    mask = magnitude_prune(weights, dense_mask(weights), 0.3, ignored=("out.weight",))
    # independent computation: numpy sort over the concatenated magnitudes of the prunable tensors
    magnitudes = np.concatenate([weights[n].abs().numpy().ravel() for n in ("a.weight", "b.weight")])
    count = math.ceil(0.3 * magnitudes.size)
    threshold = np.sort(magnitudes)[count - 1]
    for name in ("a.weight", "b.weight"):
        np.testing.assert_array_equal(mask[name].numpy(), weights[name].abs().numpy() > threshold)
    assert mask["out.weight"].all()


def test_masks_are_nested_and_hit_the_expected_sparsity():
    weights = random_weights(1)
    prunable = sum(weights[n].numel() for n in ("a.weight", "b.weight"))
    ignored = weights["out.weight"].numel()
    mask, remaining = dense_mask(weights), prunable
    for level in range(1, 8):
        new = magnitude_prune(random_weights(level + 10), mask, 0.2, ignored=("out.weight",))
        for name in mask:
            assert not (new[name] & ~mask[name]).any(), "a pruned weight came back"
        remaining -= math.ceil(0.2 * remaining)
        assert sum(int(new[n].sum()) for n in ("a.weight", "b.weight")) == remaining
        # ignored tensors count in the denominator and as surviving
        assert fraction_remaining(new) == pytest.approx((remaining + ignored) / (prunable + ignored))
        mask = new


def test_only_surviving_weights_are_candidates():
    weights = {"w": torch.tensor([0.0, 0.1, 5.0, 0.2, 3.0])}
    mask = {"w": torch.tensor([False, False, True, True, True])}
    new = magnitude_prune(weights, mask, 0.5)  # ceil(0.5 * 3) = 2 of the survivors: 0.2 and 3.0
    assert new["w"].tolist() == [False, False, True, False, False]


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1])
def test_ratio_outside_open_interval_is_rejected(ratio):
    weights = random_weights()
    with pytest.raises(ValueError, match="pruning ratio"):
        magnitude_prune(weights, dense_mask(weights), ratio)


def test_apply_mask_zeroes_stacked_replicates():
    params = {"w": torch.ones(3, 2, 2)}
    mask = {"w": torch.tensor([[[True, False], [False, True]]] * 3)}
    apply_mask(params, mask)
    assert params["w"].sum() == 6 and (params["w"][:, 0, 1] == 0).all()


def test_layerwise_pruning_removes_the_ratio_of_every_layer_and_the_output_layer_its_own():
    generator = torch.Generator().manual_seed(0)
    weights = {"a": torch.randn(40, 50, generator=generator), "b": 5 + torch.rand(30, 20, generator=generator),
               "output.weight": torch.randn(10, 20, generator=generator)}
    mask = dense_mask(weights)
    mask["a"][:5] = False  # 1750 of 2000 survive
    layerwise = magnitude_prune(weights, mask, 0.3, layerwise=True, own_ratios={"output.weight": 0.15})
    for name, ratio in (("a", 0.3), ("b", 0.3), ("output.weight", 0.15)):
        before = int(mask[name].sum())
        assert int(layerwise[name].sum()) == before - math.ceil(ratio * before)
        kept = weights[name].abs()[layerwise[name]]
        dropped = weights[name].abs()[mask[name] & ~layerwise[name]]
        assert kept.min() >= dropped.max()  # within each layer, the smallest go
        assert not (layerwise[name] & ~mask[name]).any()  # nested
    # globally, the large weights of `b` survive and `a` loses more than its share
    global_mask = magnitude_prune(weights, mask, 0.3, own_ratios={"output.weight": 0.15})
    assert int(global_mask["b"].sum()) == 600 and int(global_mask["output.weight"].sum()) == 200 - 30
    assert int(mask["a"].sum() + 600) - int(global_mask["a"].sum() + global_mask["b"].sum()) == \
        math.ceil(0.3 * (1750 + 600))
    ignored = magnitude_prune(weights, mask, 0.3, ignored=("b",), layerwise=True)
    assert torch.equal(ignored["b"], mask["b"])
