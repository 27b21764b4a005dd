import importlib.util
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import smoke_project

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "regime_search.py"
spec = importlib.util.spec_from_file_location("regime_search", SCRIPT)
regime_search = sys.modules["regime_search"] = importlib.util.module_from_spec(spec)  # its dataclasses look it up
spec.loader.exec_module(regime_search)


def probes(rows: list[tuple[int, int, float]], source: str) -> pd.DataFrame:
    return pd.DataFrame([{"init": init, "step": step, "copy_a": 0, "copy_b": 1, "barrier": barrier,
                          "stable": barrier < 0.02, "source": source} for init, step, barrier in rows])


def test_earlier_probes_gather_every_earlier_bisection_of_the_run(tmp_path):
    assert regime_search.earlier_probes(tmp_path, tmp_path / "earlier.csv") is None  # no search yet
    probes([(0, 0, 0.30), (0, 13, 0.05), (0, 26, 0.01)], "instability").to_csv(
        tmp_path / "first_stable_probes.csv", index=False)
    probes([(0, 13, 0.05), (0, 20, 0.03), (0, 23, 0.01)], "search").to_csv(
        tmp_path / "first_stable_every1_probes.csv", index=False)
    earlier = pd.read_csv(regime_search.earlier_probes(tmp_path, tmp_path / "earlier.csv"))
    assert sorted(earlier["step"]) == [0, 13, 13, 20, 23, 26]  # the stage drops the repeated pair
    assert earlier.set_index("step").loc[20, "barrier"] == 0.03


@pytest.mark.parametrize("args, message", [
    (["--every", "0", "base"], "--every takes a positive whole number"),
    (["--initialisations", "two", "base"], "--initialisations takes a positive whole number"),
    (["--every"], "--every takes a positive whole number"),
    (["--copies", "1", "base"], r"--copies takes a whole number of at least 2 \(a barrier needs a pair\)"),
    (["--every", "1"], "first-stable: name at least one exported run"),
    (["--runs", "nowhere", "base"], "--runs takes a folder of exported runs, not 'nowhere'"),
])
def test_first_stable_options_are_checked_before_any_run(args, message):
    with pytest.raises(SystemExit, match=message):
        regime_search.first_stable_command(args)


def test_a_run_outside_the_search_folder_is_named_with_runs(tmp_path):
    (tmp_path / "grid" / "st1-mu0-bs32-t0").mkdir(parents=True)  # no instability.csv: not an exported run
    with pytest.raises(SystemExit, match=r"no exported run .*grid/st1-mu0-bs32-t0 \(params.yaml and instability"):
        regime_search.first_stable_command(["--runs", str(tmp_path / "grid"), "--every", "1", "st1-mu0-bs32-t0"])


def test_a_run_on_every_example_needs_the_spacing_named(tmp_path):
    run = tmp_path / "runs" / "all"
    run.mkdir(parents=True)
    shutil.copy(ROOT / "profiles" / "smoke.yaml", run / "params.yaml")  # data.train_examples: 0
    (run / "instability.csv").write_text("level,replicate,rewind_step,barrier\n")
    with pytest.raises(SystemExit, match="trains on every example .* name the spacing with --every STEPS"):
        regime_search.first_stable_command(["--runs", str(tmp_path / "runs"), "all"])


@pytest.mark.parametrize("copies", [None, 3])
def test_first_stable_searches_an_exported_run_in_a_scratch_folder(tmp_path, monkeypatch, copies):
    """The bisection trains real copies of the smoke network from the run's params alone, reuses the exported
    verdict at step 0, and writes nothing but the run's tables: the project's params.yaml, data/ and DVC state stay.
    With `--copies 3` every step probed is judged by the three pairs of three copies, the exported verdict (one
    pair's) not reused, into the tables first_stable_every8_copies3*.csv; a later search with more initialisations
    reuses those pairs."""
    project = smoke_project(tmp_path / "project")
    run = project / "runs" / "tiny"
    run.mkdir(parents=True)
    shutil.copy(project / "params.yaml", run / "params.yaml")
    pd.DataFrame({"level": [0], "replicate": [0], "rewind_step": [0], "barrier": [0.5]}).to_csv(
        run / "instability.csv", index=False)
    params = (project / "params.yaml").read_text()

    def project_files():  # Python's bytecode caches aside
        return sorted(path for path in project.rglob("*") if {"runs", "__pycache__"}.isdisjoint(path.parts))
    before = project_files()
    monkeypatch.chdir(project)
    regime_search.first_stable_command(["--runs", "runs", "--every", "8", *(["--copies", "3"] if copies else []),
                                        "tiny"])
    stem = "first_stable_every8" + (f"_copies{copies}" if copies else "")
    table, probes = pd.read_csv(run / f"{stem}.csv"), pd.read_csv(run / f"{stem}_probes.csv")
    assert len(table) == 1 and set(probes["step"]) <= {0, 8, 16, 24}  # one initialisation
    if copies:
        assert (probes["source"] == "first_stable").all()
        assert all(sorted(zip(pairs["copy_a"], pairs["copy_b"])) == [(0, 1), (0, 2), (1, 2)]
                   for _, pairs in probes.groupby("step"))
        # a second initialisation: the first one's three-copy verdicts are reused, none trained again
        regime_search.first_stable_command(["--runs", "runs", "--every", "8", "--initialisations", "2",
                                            "--copies", "3", "tiny"])
        again = pd.read_csv(run / f"{stem}.csv")
        assert len(again) == 2 and again.loc[0, "first_stable_step"] == table.loc[0, "first_stable_step"]
        assert again.loc[0, "probes"] == 0 and again.loc[0, "reused"] == table.loc[0, "probes"]
        assert again.loc[1, "probes"] > 0
    else:
        assert table["first_stable_step"].iloc[0] > 0  # unstable at step 0
        assert probes.set_index("step").loc[0, "source"] == "instability"  # step 0 reused, not trained again
        assert (probes["step"] > 0).any()
    assert (project / "params.yaml").read_text() == params
    assert project_files() == before
