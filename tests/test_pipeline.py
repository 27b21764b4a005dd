"""End to end: the real DVC pipeline on the smoke profile, in a temporary git repository."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import run, run_stages, smoke_project, smoke_repo

from lthlib.core.pruning import fraction_remaining

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = smoke_repo(tmp_path_factory.mktemp("repo"))
    run(["dvc", "repro"], repo)
    return repo


def test_repro_writes_every_artifact_and_they_agree(repo):
    for r in range(2):
        assert (repo / f"data/pretrain/rep_{r}/init.pt").exists()
        assert (repo / f"data/pretrain/rep_{r}/rewind.pt").exists()
    table = pd.read_csv(repo / "reports/imp.csv")
    assert sorted(zip(table.replicate, table.level)) == [(r, l) for r in range(2) for l in range(3)]
    for row in table.itertuples():
        folder = repo / f"data/imp/rep_{row.replicate}/level_{row.level:02d}"
        mask = torch.load(folder / "mask.pt", weights_only=True)
        final = torch.load(folder / "final.pt", weights_only=True)
        assert row.fraction_remaining == pytest.approx(fraction_remaining(mask))
        assert all((final[name][~m] == 0).all() for name, m in mask.items())
    dense, sparsest = table[table.level == 0].test_accuracy, table[table.level == 2].test_accuracy
    assert dense.min() > 0.6  # ten learnable classes: far above chance (0.1)
    assert (sparsest > dense.mean() - 0.15).all()  # 25% of the weights still learn them
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["dense_test_accuracy"] == pytest.approx(dense.mean())
    assert metrics["last_level_fraction_remaining"] == pytest.approx(table[table.level == 2].fraction_remaining.mean())
    report = (repo / "reports/report.md").read_text()
    assert "Dense (level 0) test accuracy" in report and "figures/imp_accuracy.png" in report
    assert (repo / "reports/figures/imp_accuracy.png").stat().st_size > 10_000


def test_dvc_plots_show_the_stability_curves_and_every_figure(repo):
    """dvc.yaml's plots: the curves of every level (two series each) and the report's images, for plots diff."""
    plots = json.loads(run(["dvc", "plots", "show", "--json"], repo).stdout)["data"]
    levels = len(pd.read_csv(repo / "reports/imp_summary.csv"))
    curves = {"convergence_auc": ["test_auc", "train_auc"], "forgetting": ["never_learned", "unforgettable"]}
    for plot, fields in curves.items():
        values = plots[plot][0]["content"]["data"]["values"]
        assert sorted(v["field"] for v in values) == sorted(fields * levels)
    figures = {f"reports/figures/{path.name}" for path in (repo / "reports/figures").glob("*.png")}
    assert "reports/figures/imp_accuracy.png" in figures and figures <= set(plots)


def test_repro_writes_the_error_landscape(repo):
    paths = pd.read_csv(repo / "reports/lmc_paths.csv")
    assert sorted(set(paths.level)) == [0, 1] and len(paths) == 2 * 11  # levels 0->1, 1->2; 11 betas
    ends = paths[paths.beta.isin([0.0, 1.0])].sort_values(["level", "beta"])
    assert ends.error_mean.iloc[1] == pytest.approx(ends.error_mean.iloc[2])  # level 1 ends one path, starts the next
    pairs = pd.read_csv(repo / "reports/lmc_pairs.csv").set_index(["level_a", "level_b"])
    assert sorted(pairs.index) == [(0, 1), (0, 2), (1, 2)] and (pairs.examples == 64).all()
    errors = ends.set_index(["level", "beta"]).error_mean  # the pair (L, L+1)'s maximum includes its end points
    for level in (0, 1):
        assert pairs.loc[(level, level + 1), "max_error_mean"] >= max(errors[(level, 0.0)], errors[(level, 1.0)]) - 1e-9
    for level in (0, 1):
        grid = np.load(repo / f"data/landscape/level_{level:02d}.npz")
        assert grid["error"].shape == (5, 5) and grid["points"].shape == (3, 2)
        np.testing.assert_allclose(grid["points"][1], [1, 0])  # the projection sits at (1, 0)
    instability = pd.read_csv(repo / "reports/instability.csv")
    assert sorted(zip(instability.rewind_step, instability.level)) == [(0, 0), (0, 2), (4, 0), (4, 2)]
    assert (instability.barrier_definition == "mean").all() and instability.barrier.equals(instability.barrier_mean)
    for figure in ("lmc_paths", "lmc_pairs", "landscape_level_00", "landscape_all", "instability"):
        assert (repo / f"reports/figures/{figure}.png").stat().st_size > 10_000
    report = (repo / "reports/report.md").read_text()
    assert "## Error landscape of IMP" in report and "Central claim" in report


def test_repro_writes_the_stability_measurements(repo):
    table = pd.read_csv(repo / "reports/imp.csv")
    assert table[["train_auc", "forgetting_events", "unforgettable", "never_learned"]].notna().all().all()
    assert (table.unforgettable + table.never_learned <= 1).all()
    curves = pd.read_csv(repo / "data/imp/rep_1/level_02/curves.csv")
    assert curves.step.tolist() == [4, 12, 20, 24]  # t_r, every epoch of 8 steps, the end
    # pretraining sees the 64-example subset: an epoch is 2 steps
    assert pd.read_csv(repo / "data/pretrain/rep_0/curves.csv").step.tolist() == [0, 2, 4]
    first = pd.read_csv(repo / "reports/first_stable.csv")
    probes = pd.read_csv(repo / "reports/first_stable_probes.csv")
    assert len(first) == 1 and first.probes[0] <= 4
    assert not probes.duplicated(["init", "step"]).any()  # one pair of copies per probed step
    verdicts = probes.set_index("step")["stable"]
    assert verdicts[first.first_stable_step[0]]  # the answer was measured stable ...
    if not pd.isna(first.last_unstable_step[0]):  # ... and the step before it in the bracket unstable
        assert not verdicts[first.last_unstable_step[0]]
    paths = pd.read_csv(repo / "reports/instability_paths.csv")
    assert len(paths) == 4 * 5  # (rewind step, level) pairs x the smoke profile's instability.path_points
    report = (repo / "reports/report.md").read_text()
    assert "## First stable rewind step" in report and "## Training stability of every level" in report
    assert (repo / "reports/figures/imp_convergence.png").stat().st_size > 10_000
    assert "figures/imp_curves.png" in report and (repo / "reports/figures/imp_curves.png").stat().st_size > 10_000


def test_repro_writes_the_data_diet(repo):
    noise = json.loads((repo / "reports/noise.json").read_text())
    assert noise["selected"] == round(0.1 * 256)  # smoke: 10% of the 256 training labels redrawn
    scores = pd.read_csv(repo / "data/el2n/scores.csv")
    assert len(scores) == 256 and scores.score.between(0, 2 ** 0.5).all()
    subset = pd.read_csv(repo / "data/subset.csv")
    assert len(subset) == 64 and subset.score.is_monotonic_increasing
    assert set(subset["index"]) == set(scores.nsmallest(64, "score")["index"])  # easy = lowest EL2N
    run_record = json.loads((repo / "data/pretrain/rep_0/run.json").read_text())
    assert run_record["examples"] == 64 and run_record["passes"] == 2.0 and run_record["lr"] == 0.1
    for figure in ("histograms", "examples"):
        assert (repo / f"reports/el2n/{figure}.png").stat().st_size > 10_000
    assert "![EL2N by class](histograms.png)" in (repo / "reports/el2n/el2n.md").read_text()


def test_a_second_repro_runs_nothing(repo):
    output = run(["dvc", "repro"], repo).stdout
    assert "Running stage" not in output


def stage_hashes(repo) -> dict:
    """Every stage's deps and outs as dvc.lock records them, less imp's timing metric (wall seconds)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    return {name: {kind: [entry for entry in stage.get(kind, []) if entry["path"] != "reports/imp_timing.json"]
                   for kind in ("deps", "outs")} for name, stage in lock.items()}


def test_forcing_every_stage_reproduces_every_output_byte_for_byte(repo):
    """The same bytes on the same machine and thread count (what lthlib promises; across CPUs, verdicts only)."""
    before = stage_hashes(repo)
    run(["dvc", "repro", "--force"], repo)  # other wall times, the same numbers
    assert stage_hashes(repo) == before


def test_repro_studies_the_tickets_against_baselines_probes_few_shot_and_transfer(repo):
    imp = pd.read_csv(repo / "reports/imp.csv").set_index(["level", "replicate"])
    baselines = pd.read_csv(repo / "reports/baselines.csv")
    assert sorted(zip(baselines.level, baselines.baseline, baselines.replicate)) == [
        (level, baseline, r) for level in (1, 2) for baseline in ("random_pruning", "random_reinit") for r in (0, 1)]
    for row in baselines.itertuples():  # the level's sparsity, exactly
        assert row.fraction_remaining == pytest.approx(imp.loc[(row.level, row.replicate), "fraction_remaining"])
    probes = pd.read_csv(repo / "reports/probes.csv")
    assert probes.groupby(["level", "network"]).size().to_dict() == {
        (0, "ticket"): 4, (1, "permuted"): 4, (1, "ticket"): 4, (2, "permuted"): 4, (2, "ticket"): 4}
    assert probes.probe_accuracy.min() > 0.3  # ten classes, chance 0.1: frozen random features are still linear-ish
    few_shot = pd.read_csv(repo / "reports/few_shot.csv")
    assert sorted(set(zip(few_shot.fraction, few_shot.examples))) == [(0.25, 64), (0.5, 128)]
    assert sorted(set(few_shot.level)) == [0, 1, 2] and len(few_shot) == 2 * 3 * 2
    target = torch.load(repo / "data/transfer.pt", weights_only=True)
    assert target["name"] == "mnist" and tuple(target["train_x"].shape) == (128, 1, 28, 28)
    transfer = pd.read_csv(repo / "reports/transfer.csv")
    assert transfer.groupby("network").size().to_dict() == {"dense_finetuned": 2, "dense_retrained": 2, "ticket": 4}
    assert (transfer.test_examples == 64).all() and transfer.test_accuracy.min() > 0.3
    report = (repo / "reports/report.md").read_text()
    for heading in ("## What a ticket knows", "### Linear probes", "### Few-shot training", "### Transfer to mnist"):
        assert heading in report
    for figure in ("tickets_baselines", "tickets_probes"):
        assert (repo / f"reports/figures/{figure}.png").stat().st_size > 10_000


def test_repro_builds_table_7_from_a_full_training_and_the_removals(repo):
    removal = pd.read_csv(repo / "reports/forgetting_removal.csv")
    # 256 training examples; half removed, easiest or hardest; 2 replicates each
    assert sorted(set(zip(removal.removed, removal.fraction, removal.examples))) == [
        ("easiest", 0.5, 128), ("hardest", 0.5, 128), ("none", 0.0, 256)]
    assert len(removal) == 3 * 2 and removal.barrier.notna().all()
    assert len(pd.read_csv(repo / "data/forgetting_scores.csv")) == 256
    assert "## Removing the least and most forgotten examples (Table 7" in (repo / "reports/report.md").read_text()


def test_deleting_imp_and_rerunning_it_leaves_every_later_stage_up_to_date(repo):
    shutil.rmtree(repo / "data" / "imp")
    output = run(["dvc", "repro"], repo).stdout
    assert "Running stage 'imp'" in output and "level 0: reusing" not in output  # really retrained
    assert output.count("Running stage") == 1  # lmc, landscape, instability and report stay up to date
    timing = json.loads((repo / "reports/imp_timing.json").read_text())
    assert sorted(timing["levels"]) == ["0", "1", "2"]
    assert all(seconds["train_seconds"] > 0 for seconds in timing["levels"].values())


def test_imp_trains_in_two_processes_through_dvc(repo, tmp_path):
    """compute.processes: 2 launches two gloo workers that share every batch; rank 0 writes what one process
    would (float32 here: equal up to the order of the additions, so the verdicts, not the bits)."""
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["compute"]["processes"] = 2
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(copy / "data" / "imp")
    output = run(["dvc", "repro", "imp"], copy).stdout
    assert "Running stage 'imp'" in output and "level 0: reusing" not in output
    assert "imp: 2 processes share every training batch" in output
    one, two = (pd.read_csv(folder / "reports/imp.csv") for folder in (repo, copy))
    assert two[["replicate", "level"]].equals(one[["replicate", "level"]])
    np.testing.assert_allclose(two.fraction_remaining, one.fraction_remaining, atol=1e-3)
    np.testing.assert_allclose(two.test_accuracy, one.test_accuracy, atol=0.05)
    final = torch.load(copy / "data/imp/rep_1/level_02/final.pt", weights_only=True)
    mask = torch.load(copy / "data/imp/rep_1/level_02/mask.pt", weights_only=True)
    assert all((final[name][~m] == 0).all() for name, m in mask.items())
    output = run(["dvc", "repro", "--force", "--single-item", "instability"], copy).stdout  # any training stage
    assert "instability: 2 processes share every training batch" in output
    one, two = (pd.read_csv(folder / "reports/instability.csv") for folder in (repo, copy))
    assert len(two) == len(one) and two.barrier.notna().all()


def test_a_killed_two_process_imp_resumes_at_its_first_unfinished_level(repo, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["compute"]["processes"] = 2
    params["train"] |= {"steps": 600, "milestones": [400]}  # levels of seconds, to be killed inside one
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.rmtree(copy / "data" / "imp")
    command = [sys.executable, "-m", "stages.imp"]
    stage = subprocess.Popen(command, cwd=copy, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(copy)})
    finished = copy / "data/imp/rep_1/level_00/level.json"
    deadline = time.monotonic() + 600
    while not finished.exists() and stage.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(stage.pid, signal.SIGKILL)  # the stage and both workers, in the middle of level 1
    stage.wait()
    assert finished.exists() and not (copy / "data/imp/rep_1/level_02").exists()
    output = run(command, copy, PYTHONPATH=str(copy)).stdout
    assert "level 0: reusing the finished level" in output and "level 1: reusing" not in output
    assert (copy / "data/imp/rep_1/level_02/level.json").exists()



def test_replicates_run_as_concurrent_jobs_and_dvc_takes_their_levels(repo, tmp_path):
    """docs/experiments.md's recipe: one job per replicate (here two processes at once) runs pretrain and imp with
    --replicate into the workspace; `dvc commit pretrain`, then `dvc repro` trains nothing and writes the tables."""
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)
    shutil.rmtree(copy / "data" / "pretrain")
    shutil.rmtree(copy / "data" / "imp")
    (copy / "reports/imp.csv").unlink()
    jobs = [subprocess.Popen(["bash", "-c", f"{sys.executable} -m stages.pretrain --replicate {r} && "
                              f"{sys.executable} -m stages.imp --replicate {r}"], cwd=copy, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env={**os.environ, "PYTHONPATH": str(copy), "OMP_NUM_THREADS": "1"}) for r in (0, 1)]
    logs = [job.communicate(timeout=900)[0] for job in jobs]
    assert [job.returncode for job in jobs] == [0, 0], logs
    assert not (copy / "reports/imp.csv").exists()  # the jobs write no table
    run(["dvc", "commit", "-f", "pretrain"], copy)
    output = run(["dvc", "repro", "imp"], copy).stdout
    assert "Running stage 'pretrain'" not in output and "Running stage 'imp'" in output
    assert all(f"level {level}: reusing" in output for level in range(3))
    one, apart = (pd.read_csv(folder / "reports/imp.csv") for folder in (repo, copy))
    assert apart[["replicate", "level"]].equals(one[["replicate", "level"]])
    np.testing.assert_allclose(apart.test_accuracy, one.test_accuracy, atol=1e-6)
    assert "imp" not in run(["dvc", "status", "imp"], copy).stdout

def test_an_experiment_with_more_levels_reuses_the_finished_ones(repo):
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "results"], repo)
    output = run(["dvc", "exp", "run", "-S", "pruning.levels=3"], repo).stdout
    assert "Running stage 'imp'" in output and "Running stage 'pretrain'" not in output
    assert all(f"level {level}: reusing" in output for level in range(3))
    assert "level 3: reusing" not in output
    for stage in ("instability", "baselines", "probes", "few_shot", "transfer"):  # they read levels 0 to 2 only
        assert f"Running stage '{stage}'" not in output
    assert sorted(set(pd.read_csv(repo / "reports/imp.csv").level)) == [0, 1, 2, 3]
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    assert "dense_test_accuracy" in json.dumps(shown)


def test_a_finer_first_stable_search_retrains_no_copies_from_the_measured_rewind_steps(repo):
    output = run(["dvc", "exp", "run", "-S", "instability.search_every=2", "-S", "instability.search_probes=5"],
                 repo).stdout
    assert "Running stage 'first_stable'" in output
    assert "Running stage 'instability'" not in output


def test_adaptive_pruning_runs_as_an_experiment_and_compares_with_fixed(repo):
    output = run(["dvc", "exp", "run", "-n", "adaptive-on", "-S", "pruning.adaptive=true"], repo).stdout
    assert "Running stage 'imp'" in output and "Running stage 'pretrain'" not in output
    assert "level 0: reusing" in output and "level 1: reusing" not in output  # the rule is not the dense level's
    table, sweep = pd.read_csv(repo / "reports/imp.csv"), pd.read_csv(repo / "reports/adaptive_sweep.csv")
    pruned = table[table.level > 0]
    assert len(sweep) == 2 * pruned.level.nunique() * 9 and (pruned.pruning_ratio >= 0.2).all()
    chosen = sweep.groupby(["replicate", "level"]).chosen_ratio.first()
    assert chosen.tolist() == pruned.sort_values(["replicate", "level"]).pruning_ratio.tolist()
    assert "## Adaptive pruning (Section 2.2)" in (repo / "reports/report.md").read_text()
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["retrains_to_target"] is not None
    assert metrics["adaptive"]["threshold"] > metrics["adaptive"]["epsilon"] > 0
    assert len(metrics["adaptive"]["ratio"]) == pruned.level.nunique()

    run(["dvc", "exp", "run", "-n", "adaptive-off", "-S", "pruning.adaptive=false"], repo)
    assert pd.read_csv(repo / "reports/adaptive_sweep.csv").empty
    run(["bash", "scripts/compare_adaptive.sh", "collect"], repo)
    comparison = (repo / "reports/adaptive/adaptive.md").read_text()
    assert "adaptive-on" in comparison and "adaptive-off (fixed 50%)" in comparison
    assert "To reach 30% weights remaining, adaptive-on needed" in comparison
    assert (repo / "reports/adaptive/adaptive_vs_fixed.png").stat().st_size > 10_000


def test_el2n_trains_only_when_the_subset_ranks_by_it(repo):
    result = run(["dvc", "exp", "run", "-n", "random-subset", "-S", "subset.kind=random"], repo)
    assert "Running stage 'el2n'" in result.stdout and "el2n:" not in result.stderr  # ran, trained nothing
    assert pd.read_csv(repo / "data/el2n/scores.csv").score.isna().all()
    assert json.loads((repo / "reports/subset.json").read_text())["score_mean"] is None
    output = run(["dvc", "exp", "run", "-n", "easy-again", "-S", "subset.kind=easy"], repo).stdout
    assert "Running stage 'el2n'" in output or "Stage 'el2n' is cached" in output
    assert pd.read_csv(repo / "data/el2n/scores.csv").score.notna().all()


def test_rewind_steps_compare_as_experiments(repo):
    run(["bash", "scripts/compare_rewind.sh"], repo, STEPS="0 4")
    text = (repo / "reports/rewind/rewind.md").read_text()
    assert "\n| 0 | " in text and "\n| 4 | " in text
    paths = pd.concat([pd.read_csv(repo / f"runs/rewind/rewind-{step}/lmc_paths.csv") for step in (0, 4)])
    assert set(paths.rewind_step) == {0, 4}
    assert (repo / "reports/rewind/lmc_paths_by_rewind.png").stat().st_size > 10_000


def test_the_stability_grids_dense_runs_carry_their_own_summary_and_stability(repo):
    """`--dense-only --stability` runs each experiment to `imp_summary` and `first_stable` only: the exported
    summary is the run's own (its steps, its one level), not the one its baseline commit holds (three levels)."""
    grid = [sys.executable, "scripts/stability_grid.py"]
    options = ["--dense-only", "--configurations", "mu0-bs32,mu0.9-bs64", "--epochs", "2", "--replicates", "2"]
    output = run(grid + ["run", "--stability"] + options, repo).stdout
    assert "Running stage 'first_stable'" in output and "Running stage 'landscape'" not in output
    run(grid + ["collect"] + options[:3], repo)
    steps = {}
    for name in ("st1-mu0-bs32-t0", "st1-mu0p9-bs64-t0"):
        folder = repo / "runs/stability" / name
        summary = pd.read_csv(folder / "imp_summary.csv")
        steps[name] = yaml.safe_load((folder / "params.yaml").read_text())["train"]["steps"]
        assert summary.level.tolist() == [0] and summary.train_steps.tolist() == [steps[name]]
        copies = pd.read_csv(folder / "instability.csv")
        assert copies.rewind_step.tolist() == [0] * len(copies) and set(copies.level) == {0}
        assert len(pd.read_csv(folder / "first_stable.csv")) == copies.replicate.nunique()
        probes = pd.read_csv(folder / "first_stable_probes.csv")  # kept for a finer search to reuse
        assert {"init", "step", "barrier"} <= set(probes.columns)
    assert steps["st1-mu0-bs32-t0"] == 2 * steps["st1-mu0p9-bs64-t0"]  # 2 epochs at either batch size
    report = (repo / "reports/stability/table1.md").read_text()
    assert "| mu0-bs32 | " in report and "## Fig. 1 and Table 6: stability to SGD noise from initialisation" in report
    assert "(a larger batch: a lower barrier between copies from initialisation" not in report  # one batch a momentum


@pytest.mark.parametrize("params, message", [
    ("pruning:\n  ratio: 1.5\n", "error: pruning.ratio must be in (0, 1), got 1.5"),
    ("model:\n  name: vgg99\n", "error: model.name must be one of"),
    ("data:\n  root: nowhere\n", "error: fashion_mnist: no readable files under nowhere/FashionMNIST/raw"),
])
def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path, params, message):
    (tmp_path / "params.yaml").write_text(params)
    result = subprocess.run([sys.executable, str(ROOT / "stages/data.py"), "--out", "dataset.pt"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1
    assert not (tmp_path / "dataset.pt").exists()


# The unstable_resnet profile (docs/regime.md) at smoke size: its model, image size, optimiser and analyses kept,
# only the sizes cut (steps, levels, examples) to the tiny Fashion-MNIST of the tests (256 training images).
UNSTABLE_AT_SMOKE_SIZE = {
    "replicates": 2,
    "data": {"train_examples": 128},
    "train": {"steps": 12, "batch_size": 32, "milestones": [8, 10], "curve_steps": 4, "eval_batch_size": 64},
    "pretrain": {"steps": 4},
    "pruning": {"levels": 2},
    "interpolation": {"eval_examples": 32, "path_points": 3},
    "landscape": {"grid_size": 3},
    "instability": {"rewind_steps": [0, 4], "path_points": 3, "search_every": 2, "search_probes": 2},
    "el2n": {"steps": 4},
    "adaptive": {"train_examples": 64},
    "tickets": {"levels": [1]},
    "probes": {"epochs": 1},
    "few_shot": {"fractions": [0.25]},
}


def at_smoke_size(repo: Path, overrides: dict) -> None:
    """A profile's params.yaml with `overrides` (a section's keys replaced, a top-level value set)."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key, value in overrides.items():
        params[key] = {**params[key], **value} if isinstance(value, dict) else value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_the_unstable_profile_runs_at_smoke_size_through_dvc(tmp_path):
    repo = smoke_repo(tmp_path / "repo", "unstable_resnet.yaml")
    at_smoke_size(repo, UNSTABLE_AT_SMOKE_SIZE)
    run(["dvc", "repro"], repo)
    dataset = torch.load(repo / "data/dataset.pt", weights_only=True)
    per_class = torch.bincount(dataset["train_y"])
    assert dataset["train_x"].shape == (128, 1, 14, 14) and per_class.max() - per_class.min() <= 1
    imp = pd.read_csv(repo / "reports/imp.csv")
    assert sorted(imp.level.unique()) == [0, 1, 2] and imp.test_accuracy.notna().all()
    first = pd.read_csv(repo / "reports/first_stable.csv")
    assert len(first) == 2  # one search per initialisation
    assert "## First stable rewind step" in (repo / "reports/report.md").read_text()


# Appendix C's ImageNet profile at smoke size: torchvision's ResNet-50 (ImageNet stem, bottleneck blocks, 1x1
# downsampling convolutions), SGDW, cosine with warm-up, label smoothing, bf16 and channels-last, on 8-pixel
# Fashion-MNIST images, with BatchNorm re-estimated on the interpolated networks and the transfer target MNIST.
IMAGENET_AT_SMOKE_SIZE = {
    "replicates": 2,
    "data": {"name": "fashion_mnist", "image_size": 8, "storage": "auto"},
    "train": {"steps": 12, "batch_size": 32, "warmup_steps": 4, "eval_batch_size": 64},
    "pretrain": {"steps": 4},
    "pruning": {"levels": 2},
    "el2n": {"networks": 2, "steps": 4},
    "interpolation": {"eval_examples": 32, "path_points": 3, "batch_size": 32, "batchnorm": "reestimate",
                      "reestimate_batches": 2},
    "landscape": {"grid_size": 3},
    "instability": {"rewind_steps": [0, 4], "path_points": 3, "search_every": 4, "search_probes": 2,
                    "search_copies": 2},
    "adaptive": {"train_examples": 64},
    "tickets": {"levels": [1]},
    "probes": {"epochs": 1, "batch_size": 32},
    "few_shot": {"fractions": [0.25]},
    "transfer": {"name": "mnist"},
}


def test_the_imagenet_profile_runs_torchvisions_resnet50_through_every_stage(tmp_path):
    repo = smoke_project(tmp_path / "repo", "imagenet_resnet50.yaml")
    at_smoke_size(repo, IMAGENET_AT_SMOKE_SIZE)
    run_stages(repo)
    imp = pd.read_csv(repo / "reports/imp.csv")
    assert sorted(imp.level.unique()) == [0, 1, 2] and imp.test_accuracy.notna().all()
    mask = torch.load(repo / "data/imp/rep_0/level_02/mask.pt", weights_only=True)
    downsampling = mask["body.layer2.0.downsample.0.weight"]  # a 1x1 convolution of torchvision's, pruned too
    assert 0 < float(downsampling.float().mean()) < 1
    probes = pd.read_csv(repo / "reports/probes.csv")
    assert set(probes.block) == {8, 16} and probes.module.str.startswith("body.layer").all()
    for table in ("lmc_pairs.csv", "instability.csv", "first_stable.csv", "transfer.csv", "few_shot.csv"):
        assert len(pd.read_csv(repo / "reports" / table)) > 0, table
