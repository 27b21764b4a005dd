import pytest
import torch
from conftest import EQUAL_PATHS, random_states, tiny_dataset
from torch import nn

from lthlib.core import interpolate
from lthlib.core.config import InterpolationConfig
from lthlib.core.interpolate import (
    barycentric,
    closest_in_triangle,
    combine,
    error_barrier,
    evaluate_combinations,
    flat_input_layer,
    path_betas,
    path_coefficients,
    plane_coordinates,
    plane_grid,
    reestimate_batchnorm,
)
from lthlib.core.models import build_model, prunable_names
from lthlib.core.train import Replicas, evaluate

TRIANGLE = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]], dtype=torch.float64)


def test_path_end_points_reproduce_the_networks_errors_exactly(float64):
    dataset = tiny_dataset()
    model, (a, b) = random_states(dataset, 2)
    config = InterpolationConfig(metric="test_loss", eval_examples=0, batch_size=16, points_per_pass=11)
    losses = evaluate_combinations(model, [a, b], path_coefficients(path_betas(11)), prunable_names(model), dataset,
                                   config)
    for state, loss in ((a, losses[0]), (b, losses[-1])):
        alone, _ = evaluate(Replicas.from_state_dicts(model, [state], "cpu"), dataset, "test", 16)
        torch.testing.assert_close(loss, alone[0], **EQUAL_PATHS)
    errors = evaluate_combinations(model, [a, b], path_coefficients(path_betas(11)), prunable_names(model), dataset,
                                   InterpolationConfig(eval_examples=0, batch_size=16))
    for state, error in ((a, errors[0]), (b, errors[-1])):
        _, accuracy = evaluate(Replicas.from_state_dicts(model, [state], "cpu"), dataset, "test", 16)
        assert error == 1 - accuracy[0]
    points = combine([a, b], path_coefficients(torch.tensor([0.0, 1.0], dtype=torch.float64)), prunable_names(model))
    assert all(torch.equal(points[n][0], a[n]) and torch.equal(points[n][1], b[n]) for n in a)


def test_barrier_of_a_convex_path_is_zero():
    betas = path_betas(21)
    assert error_barrier(betas ** 2 - 0.3 * betas + 0.5, betas) == 0  # convex: under its chord


def test_barrier_of_a_tilted_double_well_is_its_height_above_the_chord():
    betas = path_betas(21)
    x = 2 * betas - 1  # from the well at x = -1 to the well at x = 1
    errors = (x ** 2 - 1) ** 2 + 0.25 * x  # the chord is 0.25 x, the bump above it has height 1 at x = 0
    assert torch.isclose(error_barrier(errors, betas), torch.tensor(1.0, dtype=torch.float64))
    stacked = torch.stack([errors, 2 * errors])  # batched over leading dimensions
    assert torch.allclose(error_barrier(stacked, betas), torch.tensor([1.0, 2.0], dtype=torch.float64))


def test_barrier_needs_both_end_points():
    with pytest.raises(ValueError, match="end points"):
        error_barrier(torch.zeros(3), torch.tensor([0.0, 0.5, 0.9]))
    with pytest.raises(ValueError, match="baseline must be one of"):
        error_barrier(torch.zeros(3), path_betas(3), "chord")


def test_the_two_barrier_definitions_on_a_path_whose_end_points_differ():
    """By hand: the line from 0.1 to 0.3 passes 0.15, 0.2, 0.25 at beta 0.25, 0.5, 0.75."""
    betas = path_betas(5)
    bump = torch.tensor([0.1, 0.2, 0.25, 0.5, 0.3], dtype=torch.float64)
    assert error_barrier(bump, betas, "line").item() == pytest.approx(0.5 - 0.25)  # Definition A.1
    assert error_barrier(bump, betas, "mean").item() == pytest.approx(0.5 - 0.2)  # Frankle et al. 2020
    straight = torch.tensor([0.1, 0.15, 0.2, 0.25, 0.3], dtype=torch.float64)  # no bump at all
    assert error_barrier(straight, betas, "line").item() == pytest.approx(0.0)
    assert error_barrier(straight, betas, "mean").item() == pytest.approx(0.3 - 0.2)  # half the ends' difference
    level = torch.tensor([0.2, 0.3, 0.6, 0.25, 0.2], dtype=torch.float64)  # equal ends: the definitions agree
    assert error_barrier(level, betas, "line").item() == pytest.approx(error_barrier(level, betas, "mean").item())


def test_plane_coordinates_put_the_three_networks_where_the_figure_does():
    origin = {"w": torch.tensor([1.0, 2.0, 3.0]), "b": torch.tensor([0.5])}
    projection = {"w": torch.tensor([0.0, 2.0, 3.0]), "b": torch.tensor([0.5])}  # weight 0 pruned
    solution = {"w": torch.tensor([0.0, 5.0, 7.0]), "b": torch.tensor([0.5])}  # retrained in the subspace
    triangle = plane_coordinates(origin, projection, solution, ["w", "b"])
    # |p - o| = 1; w(L+1) - w(L) = (-1, 3, 4): 1 along the first axis, 5 orthogonal to it
    assert torch.allclose(triangle, torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 5.0]], dtype=torch.float64))
    coefficients = barycentric(triangle, triangle)
    assert torch.allclose(coefficients, torch.eye(3, dtype=torch.float64), atol=1e-12)
    with pytest.raises(ValueError, match="collinear"):
        plane_coordinates(origin, projection, {"w": torch.tensor([-1.0, 2.0, 3.0]), "b": torch.tensor([0.5])},
                          ["w", "b"])


def test_plane_grid_covers_the_points_in_scaled_coordinates():
    triangle = torch.tensor([[0.0, 0.0], [4.0, 0.0], [4.0, 0.5]], dtype=torch.float64)
    xs, ys, points = plane_grid(triangle, 5, margin=0.25, orthogonal_scale=2.0)
    assert torch.allclose(xs, torch.linspace(-0.25, 1.25, 5, dtype=torch.float64))  # [0, 1] and a quarter each side
    assert torch.allclose(ys, torch.linspace(-1.0, 2.0, 5, dtype=torch.float64))  # [-m, 1 + m] stretched 2x
    assert torch.allclose(points[0], torch.tensor([-0.25 * 4.0, -1.0 * 0.5], dtype=torch.float64))


def test_closest_point_of_the_triangle_is_exact_by_hand():
    points = torch.tensor([[0.5, 0.5], [2.0, 2.0], [-1.0, -1.0], [3.0, -1.0], [1.0, -1.0], [-1.0, 1.0]],
                          dtype=torch.float64)
    expected = torch.tensor([[0.5, 0.25, 0.25],  # inside: its own barycentric coordinates
                             [0.0, 0.5, 0.5],  # (1, 1) on the hypotenuse
                             [1.0, 0.0, 0.0],  # the corner (0, 0)
                             [0.0, 1.0, 0.0],  # the corner (2, 0)
                             [0.5, 0.5, 0.0],  # (1, 0)
                             [0.5, 0.0, 0.5]], dtype=torch.float64)  # (0, 1)
    assert torch.allclose(closest_in_triangle(points, TRIANGLE), expected)


def test_outside_the_hull_only_prunable_tensors_extrapolate():
    states = [{"weight": torch.tensor([0.0]), "bias": torch.tensor([0.0])},
              {"weight": torch.tensor([2.0]), "bias": torch.tensor([2.0])},
              {"weight": torch.tensor([4.0]), "bias": torch.tensor([4.0])}]
    point = torch.tensor([[2.0, 2.0]], dtype=torch.float64)  # outside; closest hull point (1, 1)
    coefficients = barycentric(point, TRIANGLE)  # (-1, 1, 1)
    combined = combine(states, coefficients, ["weight"], closest_in_triangle(point, TRIANGLE))
    assert combined["weight"].item() == pytest.approx(-0.0 + 2.0 + 4.0)
    assert combined["bias"].item() == pytest.approx(0.5 * 2.0 + 0.5 * 4.0)


def test_vectorised_evaluation_equals_one_point_at_a_time(float64):
    dataset = tiny_dataset()
    model, states = random_states(dataset, 3)
    coefficients = barycentric(torch.randn(7, 2, dtype=torch.float64), TRIANGLE)
    config = InterpolationConfig(metric="test_loss", eval_examples=30, batch_size=16)
    together = evaluate_combinations(model, states, coefficients, prunable_names(model), dataset,
                                     InterpolationConfig(**{**config.__dict__, "points_per_pass": 7}))
    alone = evaluate_combinations(model, states, coefficients, prunable_names(model), dataset,
                                  InterpolationConfig(**{**config.__dict__, "points_per_pass": 1}))
    torch.testing.assert_close(together, alone, **EQUAL_PATHS)
    assert len(set(together.tolist())) == 7  # seven distinct points, not one repeated


class _Normed(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(36, 5)
        self.norm = nn.BatchNorm1d(5)

    def forward(self, x):
        return self.norm(self.fc(x.flatten(1)))


def test_batchnorm_reestimation_gives_the_exact_statistics_of_each_point():
    dataset = tiny_dataset()
    model = _Normed()
    states = [{n: t.clone() for n, t in model.state_dict().items()} for _ in range(2)]
    states[1]["fc.bias"] += 3.0
    points = combine(states, torch.eye(2, dtype=torch.float64), [])
    params = {n: points[n] for n in ("fc.weight", "fc.bias", "norm.weight", "norm.bias")}
    buffers = {n: t for n, t in points.items() if n not in params}
    estimated = reestimate_batchnorm(model, params, buffers, dataset, batches=2, batch_size=32)
    inputs = dataset.normalize(dataset.train_x[:64]).flatten(1)
    for point in range(2):
        features = inputs @ params["fc.weight"][point].T + params["fc.bias"][point]
        assert torch.allclose(estimated["norm.running_mean"][point], features.mean(0), atol=1e-5)
    assert torch.allclose(estimated["norm.running_mean"][1] - estimated["norm.running_mean"][0],
                          torch.full((5,), 3.0), atol=1e-5)


@pytest.mark.parametrize("model_name, batchnorm", [("lenet_300_100", "interpolate"), ("resnet20", "reestimate")])
def test_evaluation_never_reads_the_models_own_tensors(model_name, batchnorm):
    """A fake device split, as on CUDA with a model built on the CPU: the model lives on the meta device
    (no values at all), the networks and the data elsewhere. Every evaluation path, BatchNorm
    re-estimation included, must run where the data is and give the same numbers."""
    dataset = tiny_dataset()
    model, states = random_states(dataset, 2, model_name)
    config = InterpolationConfig(path_points=3, eval_examples=0, batch_size=20, points_per_pass=2,
                                 batchnorm=batchnorm, reestimate_batches=2)
    arguments = (states, path_coefficients(path_betas(3)), prunable_names(model), dataset, config)
    expected = evaluate_combinations(model, *arguments)
    assert torch.equal(evaluate_combinations(model.to("meta"), *arguments), expected)


def test_the_input_layer_shortcut_is_found_only_where_it_is_exact():
    shape = (1, 6, 6)
    assert flat_input_layer(build_model("lenet_300_100", shape, 4), shape) == "fc1"
    assert flat_input_layer(build_model("conv4", (1, 8, 8), 4), (1, 8, 8)) is None  # a conv reads the input
    assert flat_input_layer(build_model("resnet20", shape, 4), shape) is None


def test_the_input_layer_shortcut_gives_the_numbers_of_full_forward_passes(monkeypatch, float64):
    """Extrapolating points (hull rule on the biases) through the shortcut vs the plain forward pass."""
    dataset = tiny_dataset()
    model, states = random_states(dataset, 3)
    coefficients = torch.tensor([[1.0, 0, 0], [0.2, 0.3, 0.5], [1.6, -0.4, -0.2], [-0.5, 0.5, 1.0]],
                                dtype=torch.float64)
    hull = closest_in_triangle(coefficients[:, 1:].flip(1), TRIANGLE / 2)  # any valid hull weights will do
    config = InterpolationConfig(metric="test_loss", eval_examples=0, batch_size=16, points_per_pass=3)
    arguments = (model, states, coefficients, prunable_names(model), dataset, config, hull)
    shortcut = evaluate_combinations(*arguments)
    monkeypatch.setattr(interpolate, "flat_input_layer", lambda *a: None)
    torch.testing.assert_close(shortcut, evaluate_combinations(*arguments), **EQUAL_PATHS)
