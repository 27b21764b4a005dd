import filecmp
import json
from pathlib import Path

import pandas as pd
import yaml

from lthlib.report.common import level_summary
from lthlib.report.data_diet import (
    compare_schemes,
    dominance,
    figure_verdicts,
    load_runs,
    write_data_diet_report,
)

ROOT = Path(__file__).resolve().parents[1]
SMOKE = {"pretrain": {"steps": 4}, "train": {"steps": 24, "milestones": [16]}, "pruning": {"levels": 2},
         "el2n": {"steps": 8}}


def write_run(root, name, kind, size, steps, noise, accuracies, std=0.01):
    folder = root / name
    folder.mkdir()
    params = {**SMOKE, "pretrain": {"steps": steps}, "subset": {"kind": kind, "size": size},
              "data": {"label_noise": noise}}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    rows = [{"replicate": r, "level": level, "fraction_remaining": 0.5 ** level,
             "test_accuracy": accuracy + (std if r else -std), "test_loss": 0.5, "train_loss": 0.4,
             "pruning_ratio": 0.5, "train_steps": 20, "test_examples": 1000}
            for level, accuracy in enumerate(accuracies) for r in range(2)]
    level_summary(pd.DataFrame(rows)).to_csv(folder / "imp_summary.csv", index=False)
    if kind != "all":
        (folder / "subset.json").write_text(json.dumps({"examples_per_class_min": 0, "examples_per_class_max": size,
                                                        "corrupted_fraction": noise / 2}))


def make_grid(root):
    write_run(root, "all_t0", "all", 1.0, 0, 0.0, [0.90, 0.80, 0.70])
    write_run(root, "all_t2", "all", 1.0, 2, 0.0, [0.90, 0.85, 0.80])
    write_run(root, "all_t4", "all", 1.0, 4, 0.0, [0.90, 0.88, 0.86])
    write_run(root, "easy_100", "easy", 100, 2, 0.0, [0.90, 0.885, 0.865])
    write_run(root, "easy_10", "easy", 10, 2, 0.0, [0.90, 0.86, 0.83])
    write_run(root, "hard_100", "hard", 100, 2, 0.0, [0.90, 0.75, 0.70])
    write_run(root, "random_100", "random", 100, 2, 0.5, [0.90, 0.82, 0.75])


def test_runs_are_collected_with_their_scheme_and_summarized_over_replicates(tmp_path):
    make_grid(tmp_path)
    runs = load_runs(tmp_path)
    assert runs["run"].nunique() == 7 and len(runs) == 21
    easy = runs[runs["run"] == "easy_100"].set_index("level")
    assert easy.loc[1, "test_accuracy"] == 0.885 and easy.loc[1, "kind"] == "easy" and easy.loc[1, "size"] == 100
    assert runs.loc[runs["run"] == "random_100", "label_noise"].iloc[0] == 0.5


def test_dominance_follows_definition_3_1(tmp_path):
    make_grid(tmp_path)
    runs = load_runs(tmp_path)
    run = {name: frame for name, frame in runs.groupby("run")}
    assert dominance(run["all_t4"], run["all_t2"]) == "dominates"
    assert dominance(run["easy_100"], run["all_t4"]) == "weakly dominates"  # within one std
    assert dominance(run["hard_100"], run["all_t2"]) == "does not dominate"
    sentences, t_star = compare_schemes(runs)
    assert t_star == 4
    matching = [s for s in sentences if "matching initialization" in s]
    assert len(matching) == 1 and "easy_100" in matching[0]


def test_report_writes_figures_and_states_dominance(tmp_path):
    (tmp_path / "runs").mkdir()
    make_grid(tmp_path / "runs")
    markdown = write_data_diet_report(load_runs(tmp_path / "runs"), tmp_path / "out")
    assert (tmp_path / "out" / "data_diet_sparsity.png").stat().st_size > 0
    assert (tmp_path / "out" / "data_diet_subset_size.png").stat().st_size > 0
    assert "`easy_100` (easy 100, t_r=2) weakly dominates w_{4}" in markdown
    assert "| random_100 | 82.00 | 75.00 | 0-100 | 25.0 |" in markdown
    assert "7 runs of lenet_300_100 on fashion_mnist, 2 replicates, 2 levels of 0.2 pruning, 24 training" in markdown


def test_figures_2_and_3_end_in_a_verdict_that_needs_the_papers_premise(tmp_path):
    """Fig. 2 holds when an easy subset at t*/2 is matching for t* and all data at t*/2 is not; when all data at t*/2
    is already matching, there is nothing to show (inconclusive). Fig. 3 the same with label noise."""
    make_grid(tmp_path)
    fig2, fig3 = figure_verdicts(load_runs(tmp_path), 4)
    assert fig2.endswith(": reproduced: `easy_100` matching for t* at t*/2, all data at t*/2 not.")
    assert "Fig. 3" in fig3 and fig3.endswith("inconclusive: it needs, with label noise, an easy subset and all data "
                                              "or a random subset at t*/2.")
    write_run(tmp_path, "easy_100_noisy", "easy", 100, 2, 0.5, [0.90, 0.88, 0.86])
    fig3 = figure_verdicts(load_runs(tmp_path), 4)[1]  # random_100 (noisy) is not matching, the easy one is
    assert fig3.endswith("reproduced: with label noise, `easy_100_noisy` matching for t*, `random_100` not.")
    write_run(tmp_path, "all_t2_again", "all", 1.0, 2, 0.0, [0.90, 0.88, 0.86])  # all data at t*/2 matches too
    fig2 = figure_verdicts(load_runs(tmp_path).query("run != 'all_t2'"), 4)[0]
    assert fig2.endswith("inconclusive: all data at t*/2 = 2 is already a matching initialization for t*, so there is "
                         "no gap for a subset to close.")
    fig2 = figure_verdicts(load_runs(tmp_path).query("run != 'easy_100'"), 4)[0]
    assert "not reproduced: no easy subset at t*/2 (`easy_10`)" in fig2
    assert figure_verdicts(load_runs(tmp_path).query("run != 'all_t4'"), 4)[0].endswith("no run on all data at t* = 4 "
                                                                                           "to compare with.")


def test_the_regimes_committed_report_regenerates_byte_for_byte_from_its_exported_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the report names its runs' folder as given
    write_data_diet_report(load_runs("reports/regime/data_diet/runs"), tmp_path, t_star=39)
    assert filecmp.cmp(tmp_path / "data_diet.md", ROOT / "reports/regime/data_diet/data_diet.md", shallow=False)
