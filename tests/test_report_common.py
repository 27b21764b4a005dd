import pandas as pd
import pytest
from conftest import imp_table

from lthlib.report import common
from lthlib.report.common import exported_runs, level_summary, threshold_caveat


def test_a_threshold_on_few_replicates_or_below_the_resolution_is_flagged():
    assert threshold_caveat(4, 0.002, 10000) == ""  # 0.2% over 4 replicates on 10,000 examples: fine
    assert threshold_caveat(2, 0.002, 10000) == " (caution: the threshold rests on 2 replicates)"
    assert threshold_caveat(4, 0.00005, 10000) == (" (caution: the threshold (0.005%) is below the resolution of "
                                                   "10000 examples (0.01%))")
    assert threshold_caveat(1, 0.0, 64).count(";") == 1  # both reasons


def test_level_summary_counts_trainings_and_retrains_as_the_paper():
    summary = level_summary(imp_table([0.5, 0.5], [0.90, 0.91, 0.85]))
    assert summary["trainings"].tolist() == [1, 2, 3] and summary["retrains"].tolist() == [0, 1, 2]
    assert summary["cumulative_train_steps"].tolist() == [100, 200, 300]
    # dense 0.89 and 0.91: threshold 0.90 - 0.01414; level 2 (0.84, 0.86) is below it
    assert summary["matching"].tolist() == [True, True, False]
    assert not any("seconds" in column for column in summary.columns)


def test_replicates_with_different_sparsities_are_averaged_by_level_with_their_spread():
    table = imp_table([0.5], [0.9, 0.9])
    table.loc[(table.level == 1) & (table.replicate == 1), "fraction_remaining"] = 0.3
    summary = level_summary(table).set_index("level")
    assert summary.loc[1, "fraction_remaining"] == pytest.approx(0.4)
    assert summary.loc[1, "fraction_remaining_std"] == pytest.approx(pd.Series([0.5, 0.3]).std())


def test_exported_runs_need_params_and_every_required_file(tmp_path):
    for name, files in (("a", ("params.yaml", "x.csv")), ("b", ("params.yaml",)), ("c", ("x.csv",))):
        (tmp_path / name).mkdir()
        for file in files:
            (tmp_path / name / file).write_text("seed: 3\n" if file == "params.yaml" else "")
    runs = exported_runs(tmp_path, ("x.csv",))
    assert [folder.name for folder, _ in runs] == ["a"] and runs[0][1].seed == 3
    with pytest.raises(FileNotFoundError, match="no runs"):
        exported_runs(tmp_path, ("missing.csv",))


@pytest.mark.parametrize("matching_from, lines", [
    ({"a": 0.88, "b": 0.88}, [("black", 88.0)]),  # one threshold for every curve: one line
    ({"a": 0.88, "b": 0.86}, [("a", 88.0), ("b", 86.0)]),  # each in its curve's colour
])
def test_the_accuracy_figure_draws_each_matching_threshold(tmp_path, monkeypatch, matching_from, lines):
    drawn = {}
    monkeypatch.setattr(common, "save_accuracy_figure", lambda figure, axes, title, path: drawn.update(axes=axes))
    runs = pd.concat([level_summary(imp_table([0.5], [0.90, 0.89])).assign(label=label) for label in ("a", "b")])
    common.plot_accuracy_by_run(runs, tmp_path / "accuracy.png", "IMP", matching_from=matching_from)
    curves = {line.get_label(): line.get_color() for line in drawn["axes"].lines if line.get_linestyle() == "-"}
    dashed = [(line.get_color(), line.get_ydata()[0]) for line in drawn["axes"].lines if line.get_linestyle() == "--"]
    expected = [(colour if colour == "black" else curves[colour], y) for colour, y in lines]
    assert [(colour, pytest.approx(y)) for colour, y in dashed] == expected
