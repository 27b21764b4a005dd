import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvc.utils.hydra import apply_overrides

from lthlib.analyses.stability import exact_probes, first_stable_step
from lthlib.analyses.stability_grid import Configuration, experiment_config, experiment_overrides
from lthlib.core.config import ConfigError, parse_config
from lthlib.experiments import params_for_each_run

ROOT = Path(__file__).resolve().parents[1]

BASE = parse_config({"train": {"steps": 2808, "batch_size": 128, "milestones": [1966, 2527], "warmup_steps": 0,
                                "curve_steps": 936}})


def test_configuration_names_round_trip():
    configuration = Configuration.parse("mu0.9-bs256", 60000)
    assert (configuration.momentum, configuration.batch_size) == (0.9, 256)
    assert configuration.name == "mu0.9-bs256" and Configuration.parse("mu0-bs32", 60000).name == "mu0-bs32"


@pytest.mark.parametrize("name, message", [
    ("sgd-fast", "unknown configuration 'sgd-fast' (expected mu<momentum>-bs<batch size>"),
    ("mu1.5-bs128", "momentum of 'mu1.5-bs128' must be in [0, 1)"),
    ("mu0-bs70000", "batch size of 'mu0-bs70000' must be in [1, 60000] (the training examples)"),
    ("mu0-bs0", "batch size of 'mu0-bs0' must be in [1, 60000]"),
])
def test_bad_configurations_are_one_line_naming_the_key(name, message):
    with pytest.raises(ConfigError, match="^configurations: ") as error:
        Configuration.parse(name, 60000)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_overrides_keep_the_epochs_and_the_schedules_shape_at_every_batch_size():
    """3 epochs at batch 512 of 60000 examples: 117 steps an epoch, 351 steps; milestones at 70% and 90% as in
    the base; rewinding to half an epoch; candidates every half epoch (0, 58, ..., 348, 351: 8 of them)."""
    overrides = experiment_overrides(BASE, Configuration(0.0, 512), 60000, epochs=3, rewind_epochs=0.5)
    assert overrides["train.steps"] == 351 and overrides["train.batch_size"] == 512
    assert overrides["train.curve_steps"] == 0  # every epoch, whatever the base's spacing (Eq. 3)
    assert overrides["train.momentum"] == 0.0
    assert overrides["train.milestones"] == [round(1966 * 351 / 2808), round(2527 * 351 / 2808)]
    assert overrides["pretrain.steps"] == 58 and overrides["instability.rewind_steps"] == [0, 58]
    assert overrides["instability.search_every"] == 58 and overrides["instability.search_probes"] == 4
    assert experiment_overrides(BASE, Configuration(0.9, 128), 60000, 3, 0)["instability.rewind_steps"] == [0]
    config = experiment_config(BASE, overrides)  # every key exists, and the run's params are valid
    assert (config.train.batch_size, config.el2n.steps, config.instability.search_probes) == (512, 58, 4)
    with pytest.raises(ConfigError, match="rewind epochs"):
        experiment_overrides(BASE, Configuration(0.9, 128), 60000, epochs=1, rewind_epochs=1)


@pytest.mark.parametrize("candidates, probes", [(201, 9), (13, 5), (9, 5), (8, 4), (7, 4), (2, 2), (1, 1)])
def test_exact_probes_find_every_planted_threshold_and_one_fewer_does_not(candidates, probes):
    """Appendix B's count (9 for 201 epochs), checked against the bisection itself: with exact_probes every
    first stable step (or none) is found; with one probe fewer some is not."""
    assert exact_probes(candidates) == probes
    steps = range(candidates)
    for count, all_exact in ((probes, True), (probes - 1, False)):
        if count == 0:
            continue
        found = [first_stable_step(lambda step: step >= threshold, steps, count)[0] == (
            threshold if threshold < candidates else None) for threshold in range(candidates + 1)]
        assert all(found) == all_exact


def test_a_run_whose_params_would_fail_is_refused_before_the_grid_starts():
    overrides = experiment_overrides(BASE, Configuration(0.9, 512), 60000, epochs=3, rewind_epochs=0.5)
    with pytest.raises(ConfigError, match="replicates must be >= 1"):
        experiment_config(BASE, {**overrides, "replicates": 0})


def test_each_run_of_a_grid_starts_from_the_users_params(tmp_path):
    """What `dvc exp run -S` does to params.yaml (DVC's own function): a run's list override leaves the list in
    block style, which a later run's `[]` would corrupt; reset before each run keeps every run's params the user's
    plus its own overrides, and the user's file comes back at the end."""
    params = tmp_path / "params.yaml"
    original = "tickets:\n  levels: [3]      # the tickets studied\n  replicates: 0\nprobes:\n  epochs: 2\n"
    params.write_text(original)
    with params_for_each_run(params) as reset:
        for run, overrides in enumerate((["tickets.levels=[2,4]"], ["tickets.levels=[]"], ["probes.epochs=3"])):
            reset()
            apply_overrides(str(params), overrides)
            expected = {"tickets": {"levels": [[2, 4], [], [3]][run], "replicates": 0},
                        "probes": {"epochs": 3 if run == 2 else 2}}
            assert yaml.safe_load(params.read_text()) == expected
    assert params.read_text() == original


def test_stability_without_dense_only_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "scripts/stability_grid.py"), "run", "--stability"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip() == (
        "error: --stability goes with --dense-only (the whole grid measures stability anyway)")
