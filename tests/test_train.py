import dataclasses
import shutil

import pytest
import torch
from torch.nn import functional as F
from conftest import EQUAL_PATHS, tiny_dataset

import lthlib.core.train
from lthlib.core.config import TrainConfig
from lthlib.core.models import BatchNorm2d, build_model, prunable_names
from lthlib.core.pruning import dense_mask, magnitude_prune
from lthlib.core.train import (
    MaskedAdam,
    MaskedSGD,
    Replicas,
    ReplicateSeeds,
    evaluate,
    initial_states,
    learning_rate,
    replicate_seeds,
    train,
    train_replicates,
)

CONFIG = TrainConfig(steps=30, batch_size=16, lr=0.05, momentum=0.9, weight_decay=5e-3, schedule="step",
                     milestones=(20,), gamma=0.1, eval_batch_size=64)


def make_replicas(dataset, name="lenet_300_100", count=2, seed=0):
    seeds = [ReplicateSeeds.for_replicate(seed, r) for r in range(count)]
    states = initial_states(name, dataset.input_shape, dataset.num_classes, [s.init for s in seeds])
    model = build_model(name, dataset.input_shape, dataset.num_classes)
    return Replicas.from_state_dicts(model, states, "cpu"), seeds


def pruned_masks(replicas, ratio=0.5):
    names = prunable_names(replicas.model)
    masks = [magnitude_prune(replicas.state_dict(r), dense_mask({n: replicas.params[n][r] for n in names}), ratio)
             for r in range(replicas.count)]
    return {n: torch.stack([m[n] for m in masks]) for n in names}


@pytest.mark.parametrize("momentum, weight_decay", [(0.9, 5e-3), (0.0, 5e-3), (0.9, 0.0)])
def test_masked_sgd_gives_the_bits_of_torch_sgd_then_masking(momentum, weight_decay):
    """The reference: torch's SGD on masked gradients, then pruned weights zeroed (what the trainer did before)."""
    generator = torch.Generator().manual_seed(0)
    start = {"w": torch.randn(3, 20, 30, generator=generator), "b": torch.randn(3, 20, generator=generator)}
    masks = {"w": (torch.rand(3, 20, 30, generator=generator) > 0.5).float()}
    ours = {name: t.clone().requires_grad_() for name, t in start.items()}
    reference = {name: t.clone().requires_grad_() for name, t in start.items()}
    optimizer = MaskedSGD(ours, masks, momentum, weight_decay)
    torch_sgd = torch.optim.SGD(list(reference.values()), lr=1.0, momentum=momentum, weight_decay=weight_decay,
                                foreach=True)
    for step, lr in enumerate((0.1, 0.1, 0.05, 0.01)):
        grads = {name: torch.randn(t.shape, generator=generator) for name, t in start.items()}
        for name, grad in grads.items():
            ours[name].grad = grad.clone()
            reference[name].grad = grad * masks[name] if name in masks else grad.clone()
        optimizer.step(lr)
        torch_sgd.param_groups[0]["lr"] = lr
        torch_sgd.step()
        with torch.no_grad():
            reference["w"].mul_(masks["w"])
        assert all(torch.equal(ours[name], reference[name]) for name in start), f"step {step}"
        assert all(p.grad is None for p in ours.values())
    assert (ours["w"][masks["w"] == 0] == 0).all()


def test_sgdw_decays_the_weights_apart_from_the_gradient_and_momentum(float64):
    """Loshchilov & Hutter's SGDW: v = momentum * v + g (masked); w = w - lr * (v + weight_decay * w)."""
    generator = torch.Generator().manual_seed(0)
    w = torch.randn(2, 5, 4, generator=generator)
    mask = (torch.rand(2, 5, 4, generator=generator) > 0.5).double()
    w = w * mask
    ours = {"w": w.clone().requires_grad_()}
    optimizer = MaskedSGD(ours, {"w": mask}, momentum=0.9, weight_decay=0.1, decoupled=True)
    expected, velocity = w.clone(), torch.zeros_like(w)
    for lr in (0.5, 0.2, 0.1):
        grad = torch.randn(w.shape, generator=generator, dtype=w.dtype)
        ours["w"].grad = grad.clone()
        optimizer.step(lr)
        velocity = 0.9 * velocity + grad * mask
        expected = expected - lr * (velocity + 0.1 * expected)
        torch.testing.assert_close(ours["w"].detach(), expected, **EQUAL_PATHS)
    assert (ours["w"][mask == 0] == 0).all()


def test_label_smoothing_smooths_the_training_loss(dataset):
    replicas, seeds = make_replicas(dataset, count=1)
    images, labels = dataset.train_x[:16], dataset.train_y[:16]
    with torch.no_grad():
        logits = replicas.forward(dataset.normalize(images).unsqueeze(0))[0]
    for smoothing in (0.0, 0.1):
        losses, _ = lthlib.core.train._losses_and_predictions(
            replicas.model, replicas.params, replicas.buffers, dataset.normalize(images).unsqueeze(0),
            labels.unsqueeze(0), True, False, smoothing)
        expected = F.cross_entropy(logits, labels, label_smoothing=smoothing)
        torch.testing.assert_close(losses[0].detach(), expected)
    config = dataclasses.replace(CONFIG, label_smoothing=0.1, optimizer="sgdw")
    log = train(replicas, dataset, config, seeds, 0, 4)
    assert torch.isfinite(log.losses).all()


def test_masked_adam_keeps_pruned_weights_and_their_moments_zero_and_replicates_apart():
    """Stacked replicates under MaskedAdam against torch's Adam on each replicate alone (gradients masked by hand)."""
    generator = torch.Generator().manual_seed(0)
    start = {"w": torch.randn(3, 20, 30, generator=generator), "b": torch.randn(3, 20, generator=generator)}
    masks = {"w": (torch.rand(3, 20, 30, generator=generator) > 0.5).float()}
    ours = {name: t.clone().requires_grad_() for name, t in start.items()}
    apart = [{name: t[r].clone().requires_grad_() for name, t in start.items()} for r in range(3)]
    with torch.no_grad():
        ours["w"].mul_(masks["w"])
        for r in range(3):
            apart[r]["w"].mul_(masks["w"][r])
    optimizer = MaskedAdam(ours, masks, weight_decay=1e-2)
    references = [torch.optim.Adam(list(a.values()), lr=1.0, weight_decay=1e-2) for a in apart]
    for step, lr in enumerate((0.1, 0.1, 0.05, 0.01)):
        grads = {name: torch.randn(t.shape, generator=generator) for name, t in start.items()}
        for name, grad in grads.items():
            ours[name].grad = grad.clone()
            for r in range(3):
                apart[r][name].grad = grad[r] * masks[name][r] if name in masks else grad[r].clone()
        optimizer.step(lr)
        for reference in references:
            reference.param_groups[0]["lr"] = lr
            reference.step()
        pruned = masks["w"] == 0
        first, second = optimizer.moments()["w"]
        assert (ours["w"][pruned] == 0).all() and (first[pruned] == 0).all() and (second[pruned] == 0).all()
        assert (first[~pruned] != 0).all(), f"step {step}: the survivors move"
        for r in range(3):
            for name in start:
                torch.testing.assert_close(ours[name][r], apart[r][name], rtol=1e-6, atol=1e-7)
        assert all(p.grad is None for p in ours.values())


def test_adam_trains_a_pruned_network_through_the_trainer():
    dataset = tiny_dataset()
    states = initial_states("lenet_300_100", dataset.input_shape, dataset.num_classes, [1, 2])
    masks = [{n: torch.rand(states[r][n].shape, generator=torch.Generator().manual_seed(r)) > 0.7
              for n in ("fc1.weight", "fc2.weight")} for r in range(2)]
    config = TrainConfig(steps=20, batch_size=16, lr=1e-3, optimizer="adam", milestones=())
    seeds = replicate_seeds(0, 2)
    replicas, log = train_replicates("lenet_300_100", dataset, config, states, seeds, 0, 20, masks)
    for r in range(2):
        final = replicas.state_dict(r)
        for name, mask in masks[r].items():
            assert (final[name][~mask] == 0).all() and (final[name][mask] != states[r][name][mask]).all()
    assert log.losses[-5:].mean() < log.losses[:5].mean()


def test_the_compiled_update_computes_what_masked_sgd_does(float64):
    """`train.compile`'s update, run eagerly here, against MaskedSGD: equal up to rounding, masks kept."""
    generator = torch.Generator().manual_seed(1)
    start = [torch.randn(3, 20, 30, generator=generator), torch.randn(3, 20, generator=generator)]
    masks = [(torch.rand(3, 20, 30, generator=generator) > 0.5).float(), None]
    ours = {str(i): t.clone().requires_grad_() for i, t in enumerate(start)}
    optimizer = MaskedSGD(ours, {"0": masks[0]}, 0.9, 5e-3)
    fused, buffers = [t.clone() for t in start], [torch.zeros_like(t) for t in start]
    for lr in (0.1, 0.1, 0.05):
        grads = [torch.randn(t.shape, generator=generator) for t in start]
        for param, grad in zip(ours.values(), grads):
            param.grad = grad.clone()
        optimizer.step(lr)
        lthlib.core.train._masked_sgd_update(fused, grads, buffers, masks, torch.tensor(lr), 0.9, 5e-3)
        for a, b in zip(ours.values(), fused):
            torch.testing.assert_close(a.detach(), b, **EQUAL_PATHS)
    assert (fused[0][masks[0] == 0] == 0).all()


@pytest.mark.parametrize("count", [1, 2])
def test_the_fused_step_computes_what_autograd_and_masked_sgd_do(count, monkeypatch, float64):
    """`train.compile`'s whole step, run eagerly here (gradients from torch.func.grad inside it), against
    autograd and MaskedSGD on a ResNet: the same losses, predictions, weights and batch-norm statistics."""
    monkeypatch.setattr(lthlib.core.train, "_compiled_step", lambda: lthlib.core.train._fused_sgd_step)
    dataset = tiny_dataset(shape=(3, 8, 8))
    runs = []
    for fused in (False, True):
        replicas, _ = make_replicas(dataset, "resnet20", count)
        optimizer = MaskedSGD(replicas.params, pruned_masks(replicas), 0.9, 5e-3)
        replicas.model.train()
        outputs = []
        for step, lr in enumerate((0.1, 0.1, 0.05)):
            inputs = dataset.normalize(dataset.train_x[step * 8:(step + 1) * 8]).expand(count, -1, -1, -1, -1)
            labels = dataset.train_y[step * 8:(step + 1) * 8].expand(count, -1)
            outputs.append(lthlib.core.train._training_step(replicas, optimizer, inputs.contiguous(),
                                                            labels.contiguous(), lr, True, False, compiled=fused))
        runs.append((replicas, outputs))
    (eager, eager_outputs), (fused, fused_outputs) = runs
    for (losses, predictions), (fused_losses, fused_predictions) in zip(eager_outputs, fused_outputs):
        torch.testing.assert_close(fused_losses, losses, **EQUAL_PATHS)
        assert torch.equal(fused_predictions, predictions)
    for name, tensor in {**eager.params, **eager.buffers}.items():
        torch.testing.assert_close({**fused.params, **fused.buffers}[name], tensor, **EQUAL_PATHS)
    assert any(not torch.equal(fused.buffers[n], b) for n, b in make_replicas(dataset, "resnet20", count)[0]
               .buffers.items()), "the running statistics were not updated"


@pytest.mark.skipif(shutil.which("g++") is None, reason="torch.compile on the CPU needs a C++ compiler")
@pytest.mark.parametrize("count", [1, 2])
def test_a_compiled_run_trains_like_an_eager_one_and_keeps_pruned_weights_at_zero(dataset, count, float64):
    config = dataclasses.replace(CONFIG, steps=8, milestones=(4,))
    runs = {}
    for compiled in (False, True):
        replicas, seeds = make_replicas(dataset, count=count)
        masks = pruned_masks(replicas)
        log = train(replicas, dataset, dataclasses.replace(config, compile=compiled), seeds, 0, 8, masks)
        runs[compiled] = replicas, log
        assert all((replicas.params[n][~m] == 0).all() for n, m in masks.items())
    (eager, eager_log), (compiled, compiled_log) = runs[False], runs[True]
    torch.testing.assert_close(compiled_log.losses, eager_log.losses, **EQUAL_PATHS)
    for name, tensor in eager.params.items():
        torch.testing.assert_close(compiled.params[name], tensor, **EQUAL_PATHS)


def test_training_learns(dataset):
    replicas, seeds = make_replicas(dataset)
    before, _ = evaluate(replicas, dataset, "train", 64)
    log = train(replicas, dataset, CONFIG, seeds, 0, CONFIG.steps)
    after, accuracy = evaluate(replicas, dataset, "train", 64)
    assert (after < before).all() and (accuracy > 0.5).all()
    assert log.losses.shape == (30, 2)


def test_pruned_weights_stay_exactly_zero_under_momentum_and_weight_decay(dataset):
    replicas, seeds = make_replicas(dataset)
    masks = pruned_masks(replicas)
    train(replicas, dataset, CONFIG, seeds, 0, CONFIG.steps, masks)
    for name, mask in masks.items():
        assert (replicas.params[name][~mask] == 0).all()
        assert (replicas.params[name][mask] != 0).all()
        saved = torch.stack([replicas.state_dict(r)[name] for r in range(2)])
        assert (saved[~mask] == 0).all()


def test_rewinding_restores_exactly_the_rewind_weights_under_the_mask(dataset):
    replicas, seeds = make_replicas(dataset)
    rewind = [replicas.state_dict(r) for r in range(2)]
    masks = pruned_masks(replicas)
    rewound = Replicas.from_state_dicts(replicas.model, rewind, "cpu")
    train(rewound, dataset, CONFIG, seeds, 10, 10, masks)  # zero steps: only the mask is applied
    for name in rewound.params:
        expected = torch.stack([s[name] for s in rewind])
        expected = expected * masks[name] if name in masks else expected
        assert torch.equal(rewound.params[name].detach(), expected)


def test_schedule_values():
    config = dataclasses.replace(CONFIG, milestones=(10, 20), warmup_steps=5)
    assert learning_rate(0, config) == pytest.approx(0.01)
    assert learning_rate(4, config) == pytest.approx(0.05)
    assert learning_rate(9, config) == pytest.approx(0.05)
    assert learning_rate(10, config) == pytest.approx(0.005)
    assert learning_rate(25, config) == pytest.approx(0.0005)
    cosine = dataclasses.replace(CONFIG, schedule="cosine", steps=100)
    assert learning_rate(0, cosine) == pytest.approx(0.05)
    assert learning_rate(50, cosine) == pytest.approx(0.025)


def test_a_rewound_run_resumes_the_schedule_at_the_rewind_step(dataset, monkeypatch):
    replicas, seeds = make_replicas(dataset)
    used = []
    monkeypatch.setattr(lthlib.core.train, "learning_rate", lambda step, config: used.append(step) or 0.01)
    train(replicas, dataset, CONFIG, seeds, 12, CONFIG.steps)
    assert used == list(range(12, 30))


def test_same_seed_same_numbers(dataset):
    """Bit-equal on one machine and thread count; another CPU's kernels may round otherwise."""
    results = []
    for _ in range(2):
        replicas, seeds = make_replicas(tiny_dataset(), seed=5)
        log = train(replicas, dataset, CONFIG, seeds, 0, CONFIG.steps, augmentation=True)
        results.append((log.losses, replicas.state_dict(1)))
    assert torch.equal(results[0][0], results[1][0])
    assert all(torch.equal(results[0][1][n], results[1][1][n]) for n in results[0][1])


def test_data_order_seed_alone_changes_the_run(dataset):
    replicas, seeds = make_replicas(dataset, count=1)
    twin = Replicas.from_state_dicts(replicas.model, [replicas.state_dict(0)], "cpu")
    other = [dataclasses.replace(seeds[0], data_order=seeds[0].data_order + 1)]
    train(replicas, dataset, CONFIG, seeds, 0, 5)
    train(twin, dataset, CONFIG, other, 0, 5)
    assert not torch.equal(replicas.params["fc1.weight"], twin.params["fc1.weight"])


@pytest.mark.parametrize("name", ["lenet_300_100", "resnet20", "imagenet_resnet18_cifar_stem"])
def test_vectorised_replicates_match_training_them_one_by_one(name, float64, monkeypatch):
    monkeypatch.setattr(lthlib.core.train, "vmap_pays", lambda replicas: True)  # evaluation under vmap too
    dataset = tiny_dataset(train=64, test=16, shape=(3, 8, 8))
    config = dataclasses.replace(CONFIG, steps=6, milestones=())
    together, seeds = make_replicas(dataset, name, count=3)
    alone = [Replicas.from_state_dicts(together.model, [together.state_dict(r)], "cpu") for r in range(3)]
    masks = pruned_masks(together, ratio=0.2)
    train(together, dataset, config, seeds, 0, 6, masks, augmentation=True, vectorize=True)
    for r in range(3):
        train(alone[r], dataset, config, seeds[r:r + 1], 0, 6, {n: m[r:r + 1] for n, m in masks.items()},
              augmentation=True, vectorize=False)
        for key, value in alone[r].state_dict(0).items():  # parameters and BatchNorm statistics
            torch.testing.assert_close(together.state_dict(r)[key], value, **EQUAL_PATHS)
    vectorised = evaluate(together, dataset, "test", 8, vectorize=True)
    looped = evaluate(together, dataset, "test", 8, vectorize=False)
    torch.testing.assert_close(vectorised, looped, **EQUAL_PATHS)


def test_a_cpu_evaluates_convolutional_networks_one_by_one_and_trains_them_stacked(monkeypatch):
    dataset = tiny_dataset(train=64, test=16, shape=(3, 8, 8))
    resnets, _ = make_replicas(dataset, "resnet20", count=3)
    lenets, _ = make_replicas(dataset, count=3)
    assert lthlib.core.train.vmap_pays(resnets) and lthlib.core.train.vmap_pays(lenets)  # with gradients
    with torch.no_grad():
        assert not lthlib.core.train.vmap_pays(resnets) and lthlib.core.train.vmap_pays(lenets)
    stacked_calls = []
    real_vmap = lthlib.core.train.vmap
    monkeypatch.setattr(lthlib.core.train, "vmap", lambda *args, **kwargs: stacked_calls.append(1) or real_vmap(
        *args, **kwargs))
    looped = evaluate(resnets, dataset, "test", 8)
    assert not stacked_calls
    monkeypatch.setattr(lthlib.core.train, "vmap_pays", lambda replicas: True)
    torch.testing.assert_close(evaluate(resnets, dataset, "test", 8), looped)
    assert stacked_calls


@pytest.mark.parametrize("count, vectorize", [(1, True), (3, True), (3, False)])
def test_channels_last_stores_conv_weights_nhwc_and_trains_the_same_network(count, vectorize, float64):
    dataset = tiny_dataset(train=64, test=16, shape=(3, 8, 8))
    config = dataclasses.replace(CONFIG, steps=6, milestones=())
    plain, seeds = make_replicas(dataset, "resnet20", count)
    nhwc = Replicas.from_state_dicts(plain.model, [plain.state_dict(r) for r in range(count)], "cpu")
    masks = pruned_masks(plain, ratio=0.2)
    for replicas, channels_last in ((plain, False), (nhwc, True)):
        train(replicas, dataset, dataclasses.replace(config, channels_last=channels_last), seeds, 0, 6, masks,
              augmentation=True, vectorize=vectorize)
    conv = nhwc.params["conv.weight"]
    assert conv.dim() == 5 and conv[0].is_contiguous(memory_format=torch.channels_last)
    assert conv.flatten(0, 1).is_contiguous(memory_format=torch.channels_last)  # vmap's grouped convolution
    assert all((nhwc.params[n][~m] == 0).all() for n, m in masks.items())
    for r in range(count):
        for key, value in plain.state_dict(r).items():
            torch.testing.assert_close(nhwc.state_dict(r)[key], value, **EQUAL_PATHS)
            assert nhwc.state_dict(r)[key].is_contiguous()


@pytest.mark.parametrize("name", ["lenet_300_100", "conv4"])
def test_stacked_parameters_have_the_layout_of_their_vmap_gradients(name):
    dataset = tiny_dataset(train=32, test=8, shape=(3, 8, 8))
    replicas, _ = make_replicas(dataset, name, count=3)
    before = replicas.state_dict(1)
    replicas.store_in_gradient_layout()
    arriving = {}
    for key, param in replicas.params.items():
        param.register_hook(lambda gradient, key=key: arriving.__setitem__(key, gradient.stride()))
    replicas.forward(dataset.normalize(dataset.train_x[:24].view(3, 8, 3, 8, 8))).sum().backward()
    assert {key: param.stride() for key, param in replicas.params.items()} == arriving
    after = replicas.state_dict(1)
    assert all(torch.equal(before[key], after[key]) and after[key].is_contiguous() for key in before)


def test_mixed_precision_trains_in_bf16_and_keeps_fp32_weights(dataset):
    results = {}
    for mixed in (False, True):
        replicas, seeds = make_replicas(dataset)
        log = train(replicas, dataset, dataclasses.replace(CONFIG, mixed_precision=mixed), seeds, 0, CONFIG.steps)
        results[mixed] = (log.losses, replicas)
    losses, replicas = results[True]
    assert all(p.dtype == torch.float32 for p in replicas.params.values())
    assert losses[-5:].mean() < losses[:5].mean()  # it learns
    assert not torch.equal(losses, results[False][0])  # and bf16 really changed the arithmetic


class ToBf16(torch.nn.Module):
    def forward(self, x):  # what autocast's convolution returns on CUDA, also under vmap (on the CPU vmap's is fp32)
        return x.to(torch.bfloat16)


def test_vmapped_batch_norm_trains_on_a_bf16_input_like_a_loop():
    """vmap's batch-norm backward fails on a bf16 input with float32 statistics (pytorch/pytorch#184890: "expected
    scalar type BFloat16 but found Float", what R ResNets trained in bf16 on CUDA met); lthlib's BatchNorm2d takes
    that input in float32, so the vmapped replicates get the gradients a loop over them gets, to bf16's rounding."""
    def network(seed):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), ToBf16(), BatchNorm2d(4),
                                   torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10))

    states = [network(seed).state_dict() for seed in range(3)]
    inputs = torch.randn(3, 8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    gradients = []
    for vectorize in (True, False):
        replicas = Replicas.from_state_dicts(network(0), states, "cpu")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = replicas.forward(inputs, vectorize=vectorize)
        logits.float().square().sum().backward()
        gradients.append({name: param.grad for name, param in replicas.params.items()})
    for name, gradient in gradients[0].items():  # bf16's 8-bit mantissa: elements differ, the gradient does not
        assert (gradient - gradients[1][name]).norm() < 0.02 * gradient.norm(), name


def test_replicate_seeds_are_each_replicates_own_and_every_run_draws_new_noise():
    seeds = replicate_seeds(7, 3)
    assert seeds == [ReplicateSeeds.for_replicate(7, r) for r in range(3)]
    assert replicate_seeds(7, 2) == seeds[:2]  # adding replicates keeps the first ones
    assert len({s.init for s in seeds}) == 3 and len({s.data_order for s in seeds}) == 3
    pretraining, level_0 = seeds[0].for_run(0), seeds[0].for_run(1)
    assert pretraining.init == level_0.init == seeds[0].init  # a run keeps the initialisation seed
    assert pretraining.data_order != level_0.data_order and pretraining.augmentation != level_0.augmentation


def test_train_replicates_gives_each_replicate_its_own_mask_and_equals_training_it_alone(dataset, float64):
    """Replicate r trains under masks[r] only: its pruned weights are zero, weights pruned only in the other
    replicate's mask train, and it ends exactly where it ends when trained by itself."""
    seeds = replicate_seeds(3, 2)
    states = initial_states("lenet_300_100", dataset.input_shape, 4, [s.init for s in seeds])
    names = ("fc1.weight", "fc2.weight")
    masks = [magnitude_prune(state, dense_mask({n: state[n] for n in names}), ratio)
             for state, ratio in zip(states, (0.3, 0.6))]
    assert not torch.equal(masks[0]["fc1.weight"], masks[1]["fc1.weight"])
    together, log = train_replicates("lenet_300_100", dataset, CONFIG, states, seeds, 4, 10, masks)
    assert log.losses.shape == (6, 2)
    for r in range(2):
        alone, _ = train_replicates("lenet_300_100", dataset, CONFIG, [states[r]], [seeds[r]], 4, 10, [masks[r]],
                                    vectorize=False)
        for name, tensor in alone.state_dict(0).items():
            torch.testing.assert_close(together.state_dict(r)[name], tensor, **EQUAL_PATHS)
        for name in names:
            weights, other = together.state_dict(r)[name], masks[1 - r][name]
            assert (weights[~masks[r][name]] == 0).all() and (weights[masks[r][name]] != 0).all()
            assert (weights[masks[r][name] & ~other] != states[r][name][masks[r][name] & ~other]).all()
