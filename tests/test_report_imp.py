import json

import pandas as pd
from conftest import imp_table

from lthlib.core import io
from lthlib.core.config import parse_config
from lthlib.report.common import level_summary
from lthlib.report.imp import imp_metrics, left_dense, load_level_curves, write_imp_report


def test_metrics_count_trainings_and_retrains_to_the_target():
    summary = level_summary(imp_table([0.5, 0.5, 0.5], [0.90, 0.91, 0.90, 0.80]))
    metrics = imp_metrics(summary, 0.3)  # 25% remaining at level 2
    assert (metrics["trainings_to_target"], metrics["retrains_to_target"]) == (3, 2)
    assert metrics["train_steps_to_target"] == 300 and metrics["sparsest_matching_level"] == 2
    assert not any("seconds" in key for key in metrics)


def test_the_report_flags_a_matching_verdict_that_rests_on_two_replicates(tmp_path):
    config = parse_config({"replicates": 2, "pruning": {"levels": 3}})
    write_imp_report(config, imp_table([0.5, 0.5, 0.5], [0.90, 0.91, 0.90, 0.80]), tmp_path)
    report = (tmp_path / "report.md").read_text()
    assert "The sparsest matching level is level 2 with 25.00% of weights remaining" in report
    assert "(90.00% ± 1.41%) (caution: the threshold rests on 2 replicates)." in report
    assert "| 2 | 0.50 | 3 | 2 | 300 |" in report  # level, ratio, trainings, retrains, cumulative steps
    assert json.loads((tmp_path / "metrics.json").read_text())["replicates"] == 2


def test_the_levels_learning_curves_are_loaded_and_drawn(tmp_path):
    frame = imp_table([0.5], [0.90, 0.91]).assign(train_auc=0.8, test_auc=0.7, forgetting_events=1.0,
                                                  forgetting_events_std=0.5, unforgettable=0.6, never_learned=0.0)
    for r, level in zip(frame["replicate"], frame["level"]):
        io.save_csv(pd.DataFrame({"step": [2, 8, 12], "train_accuracy": [0.1, 0.5, 0.8],
                                  "test_accuracy": [0.1, 0.6 + 0.1 * r, 0.9], "test_loss": [2.3, 1.0, 0.4]}),
                    io.level_dir(tmp_path / "imp", r, level) / "curves.csv")
    curves = load_level_curves(tmp_path / "imp", frame)
    assert len(curves) == 4 * 3 and set(curves["level"]) == {0, 1}
    assert curves[(curves.replicate == 1) & (curves.step == 8)]["test_accuracy"].tolist() == [0.7, 0.7]
    write_imp_report(parse_config({"replicates": 2, "pruning": {"levels": 1}}), frame, tmp_path / "out",
                     curves=curves)
    assert "## Training stability of every level" in (tmp_path / "out" / "report.md").read_text()
    assert (tmp_path / "out" / "figures" / "imp_curves.png").stat().st_size > 10_000


def test_the_report_names_the_tensors_left_dense():
    assert left_dense(parse_config({})) == "output.weight (the model's default)"
    assert left_dense(parse_config({"model": {"name": "resnet20"}})) == "nothing (the model's default)"
    assert left_dense(parse_config({"pruning": {"ignore": ["fc1.weight"]}})) == "fc1.weight"
