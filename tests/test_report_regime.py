import filecmp
from pathlib import Path

import pandas as pd
import pytest
import yaml

from lthlib.report import regime
from lthlib.report.common import plt
from lthlib.report.landscape import write_rewind_comparison
from lthlib.report.regime import search_table, write_search_report

ROOT = Path(__file__).resolve().parents[1]


def write_run(folder: Path, barriers: dict[int, list[float]], **train) -> None:
    folder.mkdir(parents=True)
    params = {"model": {"name": "resnet20_8"}, "data": {"train_examples": 5000, "image_size": 14},
              "train": {"steps": 390, "batch_size": 128, "milestones": [273, 351], **train},
              "el2n": {"steps": 39}, "pretrain": {"steps": 39}}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    rows = [{"rewind_step": step, "level": 0, "replicate": r, "barrier_mean": b, "error_a": 0.1, "error_b": 0.2}
            for step, values in barriers.items() for r, b in enumerate(values)]
    pd.DataFrame(rows).to_csv(folder / "instability.csv", index=False)
    (folder / "seconds.txt").write_text("300\n")


def test_the_search_table_has_a_row_per_run_and_names_the_unstable_ones(tmp_path):
    write_run(tmp_path / "runs" / "base", {0: [0.20, 0.30], 39: [0.01, 0.03]})
    write_run(tmp_path / "runs" / "momentum0", {0: [0.01, 0.02], 39: [0.0, 0.0]}, momentum=0.0)
    table, barriers, _ = search_table(tmp_path / "runs")
    assert table["run"].tolist() == ["base", "momentum0"]
    assert table.loc[0, "barrier from epoch 0 (%)"] == "25.00 ± 7.07"
    assert table.loc[1, "barrier from epoch 1 (%)"] == "0.00 ± 0.00"  # step 39: 5000 examples / batch 128
    assert table.loc[1, "momentum"] == "0" and table.loc[0, "epochs"] == "10"
    assert table.loc[0, "dense accuracy (%)"] == "85.00 ± 0.00" and table.loc[0, "minutes"] == "5.0"
    text = write_search_report(tmp_path / "runs", tmp_path / "out").read_text()
    assert "Unstable from initialisation (mean barrier at least 2 %): base." in text
    assert (tmp_path / "out" / "barriers.png").stat().st_size > 10_000
    assert "Spearman" not in text and not (tmp_path / "out" / "first_stable.png").exists()  # no first stable epoch
    assert "finer spacing" not in text


def write_imp_summary(path: Path, accuracies: list[float], dense_std: float = 0.002) -> None:
    """A level summary of 50 % levels: matching where the accuracy is within the dense std of the dense one."""
    pd.DataFrame({"level": range(len(accuracies)), "fraction_remaining": [0.5 ** k for k in range(len(accuracies))],
                  "test_accuracy": accuracies, "test_accuracy_std": dense_std, "replicates": 4,
                  "matching": [a >= accuracies[0] - dense_std for a in accuracies]}).to_csv(path, index=False)


def test_runs_with_imp_from_step_0_and_a_later_step_say_where_each_stops_matching(tmp_path):
    write_run(tmp_path / "runs" / "base", {0: [0.20, 0.30], 39: [0.01, 0.03]})
    write_imp_summary(tmp_path / "runs" / "base" / "imp_summary_rewind0.csv", [0.85, 0.851, 0.846, 0.84])
    write_imp_summary(tmp_path / "runs" / "base" / "imp_summary_rewind39.csv", [0.85, 0.852, 0.849, 0.84])
    pd.DataFrame({"init": [0, 1, 2], "first_stable_epoch": [1 / 3, 1.0, None]}).to_csv(
        tmp_path / "runs" / "base" / "first_stable.csv", index=False)
    write_run(tmp_path / "runs" / "deep", {0: [0.20, 0.30]})
    write_imp_summary(tmp_path / "runs" / "deep" / "imp_summary_rewind0.csv", [0.85, 0.84])
    write_imp_summary(tmp_path / "runs" / "deep" / "imp_summary_rewind117.csv", [0.85, 0.84])
    # the dense networks of both rewind steps as one sample: 85.5 ± 0.57 %, so 85 % from step 117 matches, though
    # it trails that step's own dense networks (86 ± 0.2 %)
    write_run(tmp_path / "runs" / "pooled", {0: [0.20, 0.30]})
    write_imp_summary(tmp_path / "runs" / "pooled" / "imp_summary_rewind0.csv", [0.85, 0.84])
    write_imp_summary(tmp_path / "runs" / "pooled" / "imp_summary_rewind117.csv", [0.86, 0.85])
    # step 0 matches 0.3 points above the threshold (84.8 %) at step 117's sparsest matching level, beyond its std
    write_run(tmp_path / "runs" / "opposite", {0: [0.20, 0.30]})
    write_imp_summary(tmp_path / "runs" / "opposite" / "imp_summary_rewind0.csv", [0.85, 0.851, 0.84])
    write_imp_summary(tmp_path / "runs" / "opposite" / "imp_summary_rewind117.csv", [0.85, 0.85, 0.84])
    write_run(tmp_path / "runs" / "lenet", {0: [0.0, 0.01]})
    table = search_table(tmp_path / "runs")[0].set_index("run")
    assert table.loc["base", "sparsest matching from step 0 (% of weights)"] == "50"
    assert table.loc["base", "sparsest matching from a later step (% of weights)"] == "25 (epoch 1)"
    assert table.loc["base", "claim 2"] == "as the paper" and table.loc["base", "IMP replicates"] == "4"
    assert table.loc["base", "first stable epoch"] == "0.67 ± 0.47 (1 of 3 never stable)"
    assert table.loc["deep", "sparsest matching from step 0 (% of weights)"] == "100"  # the dense level only
    # step 117 matches at the dense level only, where step 0 matches too, within its std
    assert table.loc["deep", "claim 2"] == "not resolved" and table.loc["lenet", "claim 2"] == "-"
    assert table.loc["pooled", "sparsest matching from a later step (% of weights)"] == "50 (epoch 3)"
    assert table.loc["pooled", "claim 2"] == "as the paper"
    assert table.loc["opposite", "claim 2"] == "the opposite of the paper"
    text = write_search_report(tmp_path / "runs", tmp_path / "out").read_text()
    assert ("as the paper in: base, pooled; the opposite of the paper in: opposite; not resolved in: deep."
            in text) and "in 4 runs" in text


def test_the_minutes_column_comes_last_whichever_run_comes_first(tmp_path):
    write_run(tmp_path / "runs" / "augment", {0: [0.20, 0.30]})  # first by name, without the later columns
    write_run(tmp_path / "runs" / "base", {0: [0.20, 0.30]})
    pd.DataFrame({"init": [0, 1], "first_stable_epoch": [1.0, 1.0]}).to_csv(
        tmp_path / "runs" / "base" / "first_stable.csv", index=False)
    table = search_table(tmp_path / "runs")[0]
    assert table.columns[-2:].tolist() == ["first stable epoch", "minutes"]
    assert table["first stable epoch"].tolist() == ["-", "1.00 ± 0.00"]


def test_a_first_stable_epoch_over_other_initialisations_than_the_runs_says_how_many(tmp_path):
    write_run(tmp_path / "runs" / "base", {0: [0.20, 0.30]})  # 2 replicates; the bisection over a profile's 4
    pd.DataFrame({"init": range(4), "first_stable_epoch": [1 / 3, 2 / 3, 2 / 3, 1.0]}).to_csv(
        tmp_path / "runs" / "base" / "first_stable.csv", index=False)
    assert search_table(tmp_path / "runs")[0].loc[0, "first stable epoch"] == "0.67 ± 0.27 (4 initialisations)"


def test_refined_bisections_get_a_table_by_momentum_beside_the_coarser_search(tmp_path):
    batch512 = {"batch_size": 512, "steps": 90, "milestones": [63, 81]}  # the same 10 epochs, of 9 steps
    for name, train, coarse, fine in (("base", {"lr": 0.1, "momentum": 0.9}, [26, 39], [17, 30]),
                                      ("lr1-momentum0", {"lr": 1.0, "momentum": 0.0}, [13, 26], [9, None]),
                                      ("momentum0", {"lr": 0.1, "momentum": 0.0}, [13, 13], [4, 4]),
                                      ("batch512", {"lr": 0.1, "momentum": 0.9, **batch512}, [3, 0], [2, 0])):
        folder = tmp_path / "runs" / name
        write_run(folder, {0: [0.20, 0.30]}, **train)
        epoch = 5000 // train.get("batch_size", 128)
        for stem, steps in (("first_stable", coarse), ("first_stable_every1", fine)):
            pd.DataFrame({"init": [0, 1], "first_stable_step": steps,
                          "first_stable_epoch": [None if s is None else s / epoch for s in steps]}).to_csv(
                folder / f"{stem}.csv", index=False)
        pd.DataFrame({"init": [0], "step": [9], "barrier": [0.01]}).to_csv(  # the probes: no row of their own
            folder / "first_stable_every1_probes.csv", index=False)
    table = search_table(tmp_path / "runs")[0]
    finer = regime.finer_searches(tmp_path / "runs", table)
    assert finer["run"].tolist() == ["momentum0", "lr1-momentum0", "base", "batch512"]  # by momentum, then lr
    assert "batch" in finer and "model" not in finer  # the settings in which the refined runs differ, no others
    assert finer["lr / (1 - momentum)"].tolist() == ["0.1", "1", "1", "1"]
    assert finer["candidates every (steps)"].tolist() == [1, 1, 1, 1]
    assert finer["first stable step of each initialisation"].tolist() == ["4, 4", "9, never", "17, 30", "2, 0"]
    assert finer["first stable epoch"].tolist() == ["0.10 ± 0.00", "0.23 ± 0.00 (1 of 2 never stable)", "0.60 ± 0.24",
                                                    "0.11 ± 0.16"]
    assert finer["every third of an epoch"].tolist() == ["0.33 ± 0.00", "0.50 ± 0.24", "0.83 ± 0.24", "0.17 ± 0.24"]
    text = write_search_report(tmp_path / "runs", tmp_path / "out").read_text()
    assert "## The first stable step at a finer spacing" in text
    assert "| lr1-momentum0 | 128 | 1 | 0 | 1 | 1 | 9, never |" in text


@pytest.fixture
def drawn(monkeypatch):
    """The figures the regime report draws, kept open instead of saved, and closed after the test."""
    figures = []
    monkeypatch.setattr(regime, "save_figure", lambda figure, path: figures.append(figure))
    yield figures
    for figure in figures:
        plt.close(figure)


def test_every_run_of_the_barrier_figure_has_its_own_colour_and_marker(tmp_path, drawn):
    for index in range(21):  # one more than tab20's colours
        write_run(tmp_path / "runs" / f"run{index:02d}", {0: [0.2, 0.3], 39: [0.01, 0.02]})
    barriers = search_table(tmp_path / "runs")[1]
    regime.plot_barriers(barriers, 0.02, tmp_path / "barriers.png")
    handles, labels = drawn[0].axes[0].get_legend_handles_labels()
    styles = {(handle.lines[0].get_color(), handle.lines[0].get_marker())
              for handle, label in zip(handles, labels) if label.startswith("run")}
    assert len(styles) == 21


def test_the_effective_learning_rate_figure_draws_the_runs_that_differ_in_lr_and_momentum_alone(tmp_path, drawn):
    write_run(tmp_path / "runs" / "base", {0: [0.20, 0.30]}, lr=0.1, momentum=0.9)
    write_run(tmp_path / "runs" / "lr1-momentum0", {0: [0.10, 0.14]}, lr=1.0, momentum=0.0)
    write_run(tmp_path / "runs" / "lr0.2", {0: [0.40, 0.40]}, lr=0.2, momentum=0.9)
    write_run(tmp_path / "runs" / "batch32", {0: [0.70, 0.72]}, lr=0.1, momentum=0.9, batch_size=32)
    for run, epochs in {"base": [1 / 3, 1.0], "batch32": [2.0, 2.0]}.items():
        pd.DataFrame({"init": [0, 1], "first_stable_epoch": epochs}).to_csv(
            tmp_path / "runs" / run / "first_stable.csv", index=False)
    runs = regime.plot_effective_learning_rate(*search_table(tmp_path / "runs"), 0.02, tmp_path / "effective_lr.png")
    barrier, first_stable = ({series.get_label(): (series.lines[0].get_xdata().tolist(),
                                                   series.lines[0].get_ydata().tolist())
                              for series in axes.containers} for axes in drawn[0].axes)
    assert runs == ["base", "lr0.2", "lr1-momentum0"]  # batch 32 differs in more than lr and momentum
    assert barrier["momentum 0"] == (pytest.approx([1.0]), pytest.approx([12.0]))
    assert barrier["momentum 0.9"] == (pytest.approx([1.0, 2.0]), pytest.approx([25.0, 40.0]))
    assert first_stable == {"momentum 0.9": (pytest.approx([1.0]), pytest.approx([2 / 3]))}  # base's alone


def test_the_first_stable_figure_sets_the_warmed_up_runs_apart_and_ranks_against_the_barrier(tmp_path, drawn):
    write_run(tmp_path / "runs" / "base", {0: [0.20, 0.30]})
    write_run(tmp_path / "runs" / "lr0.4", {0: [0.60, 0.70]}, lr=0.4)
    write_run(tmp_path / "runs" / "warmup1", {0: [0.05, 0.07]}, warmup_steps=39)
    write_run(tmp_path / "runs" / "unsearched", {0: [0.90, 0.90]})  # no first stable step: not drawn
    for run, epochs in {"base": [1 / 3, 1.0], "lr0.4": [0.5, 0.5], "warmup1": [1.0, 1.0]}.items():
        pd.DataFrame({"init": [0, 1], "first_stable_epoch": epochs}).to_csv(
            tmp_path / "runs" / run / "first_stable.csv", index=False)
    correlation = regime.plot_first_stable_against_barrier(*search_table(tmp_path / "runs"), tmp_path / "fs.png")
    points = {series.get_label(): (series.lines[0].get_xdata().tolist(), series.lines[0].get_ydata().tolist())
              for series in drawn[0].axes[0].containers}
    assert points["no warm-up"] == (pytest.approx([25.0, 65.0]), pytest.approx([2 / 3, 0.5]))
    assert points["warm-up"] == (pytest.approx([6.0]), pytest.approx([1.0]))
    assert correlation == pytest.approx(-1.0)  # the larger the barrier, the earlier stable, in these three


@pytest.mark.skipif(not (ROOT / "reports/regime/runs").exists(), reason="no committed search")
def test_the_committed_search_report_regenerates_byte_for_byte_from_its_exported_runs(tmp_path):
    write_search_report(ROOT / "reports/regime/runs", tmp_path)
    assert filecmp.cmp(tmp_path / "search.md", ROOT / "reports/regime/search.md", shallow=False)


@pytest.mark.parametrize("comparison", ["reports/regime/rewind", "reports/regime/rewind/seed1",
                                        "reports/regime/rewind/other_cpu", "reports/regime/rewind/lr0.4",
                                        "reports/regime/rewind/lr0.4/seed1"])
def test_the_committed_rewind_comparisons_of_the_profile_regenerate_byte_for_byte(tmp_path, monkeypatch, comparison):
    monkeypatch.chdir(ROOT)  # the report names its runs' folder as given: relative, as scripts/compare_rewind.sh does
    write_rewind_comparison(f"{comparison}/runs", tmp_path)
    assert filecmp.cmp(tmp_path / "rewind.md", ROOT / comparison / "rewind.md", shallow=False)
