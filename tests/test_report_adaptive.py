import filecmp
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import imp_table

from lthlib.report.adaptive import (
    compare_at_target,
    load_schedules,
    sweep_metrics,
    weights_remaining,
    write_schedule_comparison,
)
from lthlib.report.common import level_summary

ROOT = Path(__file__).resolve().parents[1]


def write_run(root, name, adaptive, table, seconds=None, sweep=0.0):
    """An exported run; with `seconds`, its imp_timing.json: every level trains that long, every sweep `sweep`."""
    folder = root / name
    folder.mkdir()
    (folder / "params.yaml").write_text(yaml.safe_dump({"pruning": {"adaptive": adaptive, "ratio": 0.2}}))
    level_summary(table).to_csv(folder / "imp_summary.csv", index=False)
    if seconds is not None:
        last = int(table["level"].max())
        levels = {str(level): {"train_seconds": seconds, **({"sweep_seconds": sweep} if level < last else {})}
                  for level in range(last + 1)}
        (folder / "imp_timing.json").write_text(json.dumps({"fingerprint": "f", "levels": levels}))


def test_compute_is_compared_at_the_first_level_past_the_target(tmp_path):
    write_run(tmp_path, "fixed", False, imp_table([0.2] * 6, [0.90, 0.91, 0.91, 0.90, 0.90, 0.89, 0.88]), 10.0)
    write_run(tmp_path, "adaptive", True, imp_table([0.5, 0.4, 0.2, 0.2], [0.90, 0.91, 0.90, 0.895, 0.89]), 10.0, 1.0)
    runs = load_schedules(tmp_path)
    assert set(runs.schedule) == {"fixed 20%", "adaptive"}
    # target 0.28: fixed reaches 0.8^6 = 0.262 at level 6 (7 trainings); adaptive 0.5 * 0.6 * 0.8 = 0.24 at level 3 (4)
    sentence, _, verdict = compare_at_target(runs, 0.28)
    assert ("adaptive needed 4 trainings (3 retrains after the dense one, as Sec. 2.2 counts them) and fixed "
            "(fixed 20%) 7 (6): 3 retrains saved") in sentence
    # wall time: adaptive 4 levels x 10 s + 3 sweeps x 1 s = 43 s vs fixed 7 x 10 s = 70 s
    assert f"{100 * (1 - 43 / 70):.0f}% less wall time" in sentence
    assert "a difference of +1.50 points" in sentence  # 89.5% vs 88.0%
    assert sentence.endswith(": reproduced (accuracy within the spread, 2.00 points, or above).")  # 1.41 twice
    assert verdict.endswith(": reproduced.")
    path = write_schedule_comparison(runs, 0.28, tmp_path / "out")
    assert "3 retrains saved" in path.read_text() and (tmp_path / "out" / "adaptive_vs_fixed.png").exists()
    write_run(tmp_path, "slow", True, imp_table([0.5, 0.4, 0.2, 0.2], [0.90, 0.91, 0.90, 0.895, 0.89]), 10.0, 15.0)
    slow = [line for line in compare_at_target(load_schedules(tmp_path), 0.28) if "slow needed" in line][0]
    assert f"{100 * (40 + 45) / 70 - 100:.0f}% more wall time" in slow  # 4 levels x 10 s + 3 sweeps x 15 s


def test_fig4_is_not_reproduced_when_adaptive_loses_accuracy_beyond_the_spread_or_saves_no_retrain(tmp_path):
    write_run(tmp_path, "fixed", False, imp_table([0.2] * 6, [0.90, 0.91, 0.91, 0.90, 0.90, 0.89, 0.88]))
    write_run(tmp_path, "adaptive", True, imp_table([0.5, 0.4, 0.2, 0.2], [0.90, 0.91, 0.90, 0.85, 0.85]))
    sentence, _, verdict = compare_at_target(load_schedules(tmp_path), 0.28)
    assert sentence.endswith("not reproduced (less accurate by more than the spread, 2.00 points).")  # 85 vs 88 %
    assert verdict.endswith(": not reproduced.")
    (tmp_path / "adaptive").rename(tmp_path / "slow")
    write_run(tmp_path, "adaptive", True, imp_table([0.2] * 7, [0.90, 0.91, 0.91, 0.90, 0.90, 0.89, 0.88, 0.88]))
    verdicts = [line for line in compare_at_target(load_schedules(tmp_path), 0.28) if line.startswith("- ")]
    assert sum(line.endswith("not reproduced (no retrain saved).") for line in verdicts) == 1
    assert compare_at_target(load_schedules(tmp_path), 0.28)[-1].endswith(": not reproduced.")


def test_weights_remaining_at_the_target_carry_their_spread_where_replicates_pruned_differently():
    # adaptive replicates choose their own ratios: the mean at a level can be past the target while one is not
    assert weights_remaining(pd.Series({"fraction_remaining": 0.1035, "fraction_remaining_std": 0.0161})) == \
        "10.35% ± 1.61% remaining"
    assert weights_remaining(pd.Series({"fraction_remaining": 0.1073, "fraction_remaining_std": 0.0})) == \
        "10.73% remaining"
    assert weights_remaining(pd.Series({"fraction_remaining": 0.5})) == "50.00% remaining"  # older exports


def test_without_exported_timings_the_comparison_says_so(tmp_path):
    write_run(tmp_path, "fixed", False, imp_table([0.2] * 6, [0.90, 0.91, 0.91, 0.90, 0.90, 0.89, 0.88]))
    write_run(tmp_path, "adaptive", True, imp_table([0.5, 0.4, 0.2, 0.2], [0.90, 0.91, 0.90, 0.895, 0.89]), 10.0)
    sentence = compare_at_target(load_schedules(tmp_path), 0.28)[0]
    assert "3 retrains saved, wall times were not exported." in sentence


def test_a_run_that_never_reaches_the_target_is_named():
    runs = pd.DataFrame({"run": ["a"], "schedule": ["adaptive"], "level": [0], "fraction_remaining": [1.0],
                         "trainings": [1], "retrains": [0], "cumulative_seconds": [1.0], "test_accuracy": [0.9],
                         "test_accuracy_std": [0.0]})
    assert compare_at_target(runs, 0.5)[0] == "- a (adaptive) did not reach 50% weights remaining."
    assert compare_at_target(runs, 0.5)[-1].endswith("inconclusive: no adaptive and fixed-ratio pair reached the "
                                                     "target.")


def test_sweep_metrics_report_epsilon_threshold_and_ratios():
    imp = pd.DataFrame({"level": [0, 0, 1, 1], "last_epoch_loss_std": [0.02, 0.04, 0.1, 0.1]})
    sweep = pd.DataFrame({"replicate": [0, 0, 1, 1], "level": [0, 0, 0, 0], "ratio": [0.1, 0.2, 0.1, 0.2],
                          "threshold": [0.5, 0.5, 0.7, 0.7], "chosen_ratio": [0.2, 0.2, 0.4, 0.4]})
    assert sweep_metrics(sweep, imp) == {"adaptive": {"epsilon": pytest.approx(0.03), "threshold": pytest.approx(0.6),
                                                      "ratio": {"level_01": pytest.approx(0.3)}}}


@pytest.mark.parametrize("study, target", [("reports/adaptive", 0.05), ("reports/regime/adaptive", 0.11),
                                           ("reports/regime/adaptive/lr0.4", 0.11),
                                           ("reports/regime/adaptive/lr0.4/seed1", 0.11)])
def test_the_committed_comparison_regenerates_byte_for_byte_from_its_exported_runs(tmp_path, monkeypatch, study,
                                                                                   target):
    monkeypatch.chdir(ROOT)  # the report names its runs' folder as given
    write_schedule_comparison(load_schedules(f"{study}/runs"), target, tmp_path)
    assert filecmp.cmp(tmp_path / "adaptive.md", ROOT / study / "adaptive.md", shallow=False)
