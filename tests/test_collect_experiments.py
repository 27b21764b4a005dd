import hashlib
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def commit_pipeline(repo: Path, lr: float, imp_lr: float, tickets_of: str) -> str:
    """params.yaml with `lr`; an imp stage last run at `imp_lr` and a baselines stage last run on the networks
    that imp made at `tickets_of`, as a dvc.lock records them, with their tables; the commit."""
    summary, tickets = f"IMP at lr {imp_lr}\n", f"tickets of IMP at lr {tickets_of}\n"
    (repo / "params.yaml").write_text(yaml.safe_dump({"train": {"lr": lr}, "tickets": {"levels": [2]}}))
    (repo / "reports/imp_summary.csv").write_text(summary)
    (repo / "reports/baselines.csv").write_text(tickets)
    lock = {"schema": "2.0", "stages": {
        "imp": {"cmd": "python -m stages.imp", "params": {"params.yaml": {"train.lr": imp_lr}},
                "outs": [{"path": "data/imp", "md5": md5(str(imp_lr)) + ".dir"},
                         {"path": "reports/imp_summary.csv", "md5": md5(summary)}]},
        "baselines": {"cmd": "python -m stages.baselines", "params": {"params.yaml": {"tickets": {"levels": [2]}}},
                      "deps": [{"path": "data/imp", "md5": md5(str(tickets_of)) + ".dir"},
                               {"path": "stages/baselines.py", "md5": "code"}],
                      "outs": [{"path": "reports/baselines.csv", "md5": md5(tickets)}]}}}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", f"lr {lr}")
    return git(repo, "rev-parse", "HEAD")


def test_an_experiment_exports_only_the_tables_of_stages_up_to_date_with_its_params(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "reports").mkdir()
    for script in ("collect_experiments.sh", "fresh_tables.py"):
        shutil.copy(ROOT / "scripts" / script, repo / "scripts")
    git(repo, "init", "-q")
    baseline = commit_pipeline(repo, 0.1, 0.1, 0.1)
    experiments = {
        "x-targeted": (0.4, 0.4, 0.1),  # `dvc exp run imp`: baselines.csv is still the tickets of lr 0.1's IMP
        "x-whole": (0.2, 0.2, 0.2),
        "x-unchanged": (0.1, 0.1, 0.1),  # ran nothing: the baseline's tables are its own
        "x-stale": (0.3, 0.1, 0.1),  # ran no stage of the pipeline that depends on lr
    }
    for name, lrs in experiments.items():
        git(repo, "checkout", "-q", baseline)
        git(repo, "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}", commit_pipeline(repo, *lrs))
    git(repo, "checkout", "-q", baseline)
    done = subprocess.run(["bash", "scripts/collect_experiments.sh", "x-", "runs"], cwd=repo, capture_output=True,
                          text=True, check=True)
    assert sorted(path.name for path in (repo / "runs").iterdir()) == ["x-targeted", "x-unchanged", "x-whole"]
    assert sorted(path.name for path in (repo / "runs/x-targeted").iterdir()) == ["imp_summary.csv", "params.yaml"]
    assert (repo / "runs/x-targeted/imp_summary.csv").read_text() == "IMP at lr 0.4\n"
    assert yaml.safe_load((repo / "runs/x-targeted/params.yaml").read_text())["train"] == {"lr": 0.4}
    assert (repo / "runs/x-whole/baselines.csv").read_text() == "tickets of IMP at lr 0.2\n"
    assert (repo / "runs/x-unchanged/baselines.csv").read_text() == "tickets of IMP at lr 0.1\n"
    assert "skipping x-stale: no up-to-date reports/imp_summary.csv" in done.stderr
