import hashlib
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def commit_pipeline(repo: Path, lr: float, summary: str, baselines: str, baseline_stage_md5: str) -> str:
    """params.yaml, two stages' tables and the dvc.lock that records them; the commit."""
    (repo / "params.yaml").write_text(yaml.safe_dump({"train": {"lr": lr}}))
    (repo / "reports/imp_summary.csv").write_text(summary)
    (repo / "reports/baselines.csv").write_text(baselines)
    summary_md5 = hashlib.md5(summary.encode()).hexdigest()
    lock = {"schema": "2.0", "stages": {
        "imp_summary": {"cmd": "python -m stages.imp_summary", "params": {"params.yaml": {"train": {"lr": lr}}},
                        "outs": [{"path": "reports/imp_summary.csv", "md5": summary_md5}]},
        "baselines": {"cmd": "python -m stages.baselines",
                      "outs": [{"path": "reports/baselines.csv", "md5": baseline_stage_md5}]}}}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", f"lr {lr}")
    return git(repo, "rev-parse", "HEAD")


def test_an_experiment_exports_the_tables_of_the_stages_it_ran_and_not_the_baselines_others(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "reports").mkdir()
    for script in ("collect_experiments.sh", "fresh_tables.py"):
        shutil.copy(ROOT / "scripts" / script, repo / "scripts")
    git(repo, "init", "-q")
    baseline = commit_pipeline(repo, 0.1, "level\n0\n", "baseline's tickets\n", "b0")
    # an experiment with targets: imp_summary re-ran, baselines kept the baseline's lock entry and table
    targeted = commit_pipeline(repo, 0.4, "level\n0\n1\n", "baseline's tickets\n", "b0")
    git(repo, "checkout", "-q", baseline)
    whole = commit_pipeline(repo, 0.2, "level\n0\n1\n2\n", "its own tickets\n", "b2")
    git(repo, "checkout", "-q", baseline)
    unchanged = commit_pipeline(repo, 0.1, "level\n0\n", "baseline's tickets\n", "b0")  # re-ran nothing
    git(repo, "checkout", "-q", baseline)
    for name, commit in (("x-targeted", targeted), ("x-whole", whole), ("x-unchanged", unchanged)):
        git(repo, "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}", commit)
    done = subprocess.run(["bash", "scripts/collect_experiments.sh", "x-", "runs"], cwd=repo, capture_output=True,
                          text=True, check=True)
    assert sorted(path.name for path in (repo / "runs").iterdir()) == ["x-targeted", "x-whole"]
    assert sorted(path.name for path in (repo / "runs/x-targeted").iterdir()) == ["imp_summary.csv", "params.yaml"]
    assert (repo / "runs/x-targeted/imp_summary.csv").read_text() == "level\n0\n1\n"
    assert yaml.safe_load((repo / "runs/x-targeted/params.yaml").read_text()) == {"train": {"lr": 0.4}}
    assert (repo / "runs/x-whole/baselines.csv").read_text() == "its own tickets\n"
    assert "skipping x-unchanged: no reports/imp_summary.csv of its own" in done.stderr
