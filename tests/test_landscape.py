import pytest
import torch
from conftest import random_states, tiny_dataset

from lthlib.analyses.landscape import level_slice, slice_summary
from lthlib.core.config import InterpolationConfig, LandscapeConfig
from lthlib.core.pruning import dense_mask, magnitude_prune, projection
from lthlib.core.train import Replicas, evaluate



def test_level_slice_places_the_three_networks_and_evaluates_them():
    dataset = tiny_dataset()
    model, (solution, other) = random_states(dataset, 2)
    prunable = ["fc1.weight", "fc2.weight", "output.weight"]
    mask = magnitude_prune(solution, dense_mask({n: solution[n] for n in prunable}), 0.5)
    next_solution = projection(other, mask)  # a network in the next axial subspace
    grid = level_slice(model, solution, next_solution, mask, dataset, LandscapeConfig(grid_size=4),
                       InterpolationConfig(eval_examples=0, batch_size=40, points_per_pass=8))
    assert grid["error"].shape == (4, 4) and grid["inside"].shape == (4, 4)
    # w(L+1) has zeros where the projection does, so it lies straight above the projection
    assert torch.allclose(grid["points"], torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64))
    errors = []
    for index, network in enumerate((solution, projection(solution, mask), next_solution)):
        _, accuracy = evaluate(Replicas.from_state_dicts(model, [network], "cpu"), dataset, "test", 40)
        errors.append(float(1 - accuracy[0]))
        assert grid["point_error"][index] == 1 - accuracy[0]
    row = slice_summary(3, grid)
    assert row["level"] == 3 and row["next_x"] == pytest.approx(1.0)
    assert [row["error_solution"], row["error_projection"], row["error_next"]] == pytest.approx(errors, abs=1e-7)
    # scaled units: the projection is ||w - m * w|| away from the solution
    pruned = torch.cat([solution[n][~mask[n]] for n in prunable])
    assert row["projection_distance"] == pytest.approx(float(pruned.norm()), rel=1e-5)


def test_projection_zeroes_exactly_the_pruned_weights():
    solution = {"w": torch.tensor([1.0, -2.0, 3.0]), "b": torch.tensor([4.0])}
    projected = projection(solution, {"w": torch.tensor([True, False, True])})
    assert torch.equal(projected["w"], torch.tensor([1.0, 0.0, 3.0])) and torch.equal(projected["b"], solution["b"])
