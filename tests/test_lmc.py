import pytest
import torch
from conftest import random_states, tiny_dataset

from lthlib.analyses.lmc import connectivity_tables, pair_paths
from lthlib.core.config import InterpolationConfig
from lthlib.core.interpolate import (
    error_barrier,
    evaluate_combinations,
    path_betas,
    path_coefficients,
)
from lthlib.core.models import prunable_names
from lthlib.core.train import Replicas, evaluate

CONFIG = InterpolationConfig(path_points=5, eval_examples=0, batch_size=40, points_per_pass=8)


def test_all_pair_paths_equal_each_path_evaluated_alone():
    dataset = tiny_dataset()
    model, solutions = random_states(dataset, 3)
    paths = pair_paths(model, solutions, dataset, CONFIG)
    assert paths.shape == (3, 3, 5)
    assert torch.isnan(paths[1, 0]).all() and torch.isnan(paths[1, 1]).all()  # only i < j
    alone = evaluate_combinations(model, [solutions[0], solutions[2]], path_coefficients(path_betas(5)),
                                  prunable_names(model), dataset, CONFIG)
    assert torch.equal(paths[0, 2], alone)


def test_tables_share_end_points_and_aggregate_over_replicates():
    dataset = tiny_dataset()
    model, states = random_states(dataset, 4)
    replicates = [states[:3], [states[3], states[1], states[2]]]
    paths, pairs = connectivity_tables(model, replicates, dataset, CONFIG, rewind_step=7)
    assert (paths["rewind_step"] == 7).all() and len(pairs) == 3 and len(paths) == 2 * 5
    # w(1) ends the first path and starts the second: its test error, evaluated here directly, in both places
    _, accuracy = evaluate(Replicas.from_state_dicts(model, [s[1] for s in replicates], "cpu"), dataset, "test", 40)
    for level, beta in ((0, 1), (1, 0)):
        row = paths[(paths["level"] == level) & (paths["beta"] == beta)].iloc[0]
        assert row["error_mean"] == pytest.approx(float((1 - accuracy).mean()), abs=1e-7)
        assert row["error_std"] == pytest.approx(float((1 - accuracy).std()), abs=1e-7)
    assert (paths["examples"] == 40).all()
    raw = torch.stack([pair_paths(model, solutions, dataset, CONFIG)[0, 1] for solutions in replicates])
    first = pairs[(pairs["level_a"] == 0) & (pairs["level_b"] == 1)].iloc[0]
    assert abs(first["barrier_mean"] - float(error_barrier(raw, path_betas(5)).mean())) < 1e-7
    assert abs(first["max_error_std"] - float(raw.amax(-1).std())) < 1e-7
