"""A grid as a Slurm job array, for real: scripts/slurm_grid.py on a one-node cluster (scripts/slurm_cluster.sh),
a bare Git repository and a local-folder DVC remote. Skipped (with the reason) where Slurm is not installed."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, run, smoke_repo

WAIT_SECONDS = 900


def sinfo_works(env) -> bool:
    return subprocess.run(["sinfo", "-h"], env=env, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The environment of a reachable Slurm cluster: the one SLURM_CONF names, or one started here."""
    if shutil.which("sbatch") is None:
        pytest.skip("Slurm is not installed: Debian's slurm-wlm, then `bash scripts/slurm_cluster.sh start`")
    env = dict(os.environ)
    if sinfo_works(env):
        yield env
        return
    state = tmp_path_factory.mktemp("slurm")
    env |= {"SLURM_STATE": str(state), "SLURM_CONF": str(state / "slurm.conf")}
    started = subprocess.run(["bash", str(ROOT / "scripts/slurm_cluster.sh"), "start"], env=env, capture_output=True,
                             text=True)
    if started.returncode or not sinfo_works(env):
        pytest.skip(f"no Slurm cluster could be started here: {started.stderr.strip()}")
    yield env
    subprocess.run(["bash", str(ROOT / "scripts/slurm_cluster.sh"), "stop"], env=env)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The smoke project after `dvc repro`, committed, with an empty bare Git repository and DVC remote beside it."""
    root = tmp_path_factory.mktemp("grid")
    (root / "repo").mkdir()
    repo = smoke_repo(root / "repo")
    run(["dvc", "repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "results"], repo)
    run(["git", "init", "-q", "--bare", str(root / "remote.git")], root)
    return repo, {"--git-remote": str(root / "remote.git"), "--dvc-remote": str(root / "storage")}


def slurm_grid(repo, env, action, grid, remotes, *options):
    arguments = [sys.executable, "scripts/slurm_grid.py", action, str(grid)]
    arguments += [value for pair in remotes.items() for value in pair]
    return run(arguments + list(options), repo, **{k: v for k, v in env.items() if k.startswith("SLURM")}).stdout


def job_of(output: str) -> str:
    return output.split("submitted job array ")[1].split(":")[0]


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def finished(job: str, env) -> bool:
    queue = subprocess.run(["squeue", "-h", "-j", job], env=env, capture_output=True, text=True).stdout
    return not queue.strip()


def submit(repo, env, remotes, work: Path, grid: Path, *options) -> str:
    """Submit the grid file `grid` with this test environment's Python; the job id."""
    return job_of(slurm_grid(repo, env, "submit", grid, remotes, "--work", str(work), "--venv", sys.prefix, *options))


def logs(work: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(work.glob("grids/*/logs/*.out")))


def test_a_grid_runs_as_a_job_array_and_comes_back_as_experiments(slurm, project, tmp_path):
    (repo, remotes), work, grid = project, tmp_path / "work", tmp_path / "grid.txt"
    grid.write_text("dvc exp run -n sl-lr -S train.lr=0.1 -S compute.threads=1\n"
                    "dvc exp run -n sl-levels -S pruning.levels=3 -S 'tickets.levels=[3]' -S compute.threads=1\n")
    job = submit(repo, slurm, remotes, work, grid)
    wait_until(lambda: finished(job, slurm), f"job {job}")
    text = logs(work)
    assert "pushed experiment sl-lr" in text and "pushed experiment sl-levels" in text, text[-3000:]
    assert not (repo / "runs").exists()
    slurm_grid(repo, slurm, "collect", grid, remotes)
    shown = json.dumps(json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout))
    assert "sl-lr" in shown and "sl-levels" in shown and "dense_test_accuracy" in shown
    run(["bash", "scripts/collect_experiments.sh", "sl-", "runs/sl"], repo)
    exported = {p.name for p in (repo / "runs/sl").iterdir()}
    assert exported == {"sl-lr", "sl-levels"}
    assert yaml.safe_load((repo / "runs/sl/sl-lr/params.yaml").read_text())["train"]["lr"] == 0.1
    assert pd.read_csv(repo / "runs/sl/sl-levels/imp_summary.csv").level.tolist() == [0, 1, 2, 3]
    assert set(pd.read_csv(repo / "runs/sl/sl-levels/baselines.csv").level) == {3}


def test_a_killed_task_resumes_imp_at_its_first_unfinished_level_when_resubmitted(slurm, project, tmp_path):
    (repo, remotes), work, grid = project, tmp_path / "work", tmp_path / "grid.txt"
    grid.write_text("dvc exp run -n sl-long -S pruning.levels=6 -S train.steps=400 -S instability.search_every=100 "
                    "-S compute.threads=1\n")
    job = submit(repo, slurm, remotes, work, grid)
    wait_until(lambda: "level 1: 0." in logs(work), "level 1 to finish")
    subprocess.run(["scancel", "--full", "--signal=KILL", job], env=slurm, check=True)  # as a preemption would
    wait_until(lambda: finished(job, slurm), f"job {job} to end")
    assert "pushed experiment sl-long" not in logs(work)
    job = submit(repo, slurm, remotes, work, grid, "--tasks", "0")
    wait_until(lambda: finished(job, slurm), f"job {job}")
    text = logs(work)
    assert "resuming in" in text and "level 0: reusing" in text and "level 1: reusing" in text, text[-3000:]
    assert "pushed experiment sl-long" in text
    slurm_grid(repo, slurm, "collect", grid, remotes)
    run(["bash", "scripts/collect_experiments.sh", "sl-long", "runs/long"], repo)
    assert pd.read_csv(repo / "runs/long/sl-long/imp_summary.csv").level.tolist() == list(range(7))


def test_an_experiment_trains_across_the_tasks_of_its_allocation(slurm, project, tmp_path):
    """`--tasks-per-node 2` (as `--nodes M --gpus-per-node G` on a GPU cluster): IMP's stage starts the allocation's
    two tasks with srun, and they train one network together, as one process does (float32: the verdicts)."""
    (repo, remotes), work, grid = project, tmp_path / "work", tmp_path / "grid.txt"
    # evaluation batches of another size re-run every training stage, with the baseline's arithmetic
    grid.write_text("dvc exp run -n sl-dp -S compute.processes=auto -S compute.threads=1 -S train.eval_batch_size=32\n")
    job = submit(repo, slurm, remotes, work, grid, "--tasks-per-node", "2")
    wait_until(lambda: finished(job, slurm), f"job {job}")
    text = logs(work)
    assert "imp: 2 processes share every training batch (the Slurm allocation's tasks, with srun)" in text, text[-3000:]
    assert "pushed experiment sl-dp" in text
    slurm_grid(repo, slurm, "collect", grid, remotes)
    run(["bash", "scripts/collect_experiments.sh", "sl-dp", "runs/dp"], repo)
    two = pd.read_csv(repo / "runs/dp/sl-dp/imp_summary.csv")
    one = pd.read_csv(repo / "reports/imp_summary.csv")  # the baseline, trained in one process
    assert two.level.tolist() == one.level.tolist()
    assert (two.fraction_remaining - one.fraction_remaining).abs().max() < 1e-3
    assert (two.test_accuracy - one.test_accuracy).abs().max() < 0.05


def test_a_grid_file_that_is_not_dvc_exp_run_lines_is_refused_before_anything_is_pushed(tmp_path):
    grid = tmp_path / "grid.txt"
    grid.write_text("dvc exp run --queue -n a -S train.lr=0.1\n")
    remotes = ["--git-remote", str(tmp_path / "remote.git"), "--dvc-remote", str(tmp_path / "storage")]
    result = subprocess.run([sys.executable, "scripts/slurm_grid.py", "submit", str(grid), "--work",
                             str(tmp_path / "work"), *remotes], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "must be `dvc exp run -n NAME ...` without --queue" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.txt"]  # nothing pushed, nothing submitted
