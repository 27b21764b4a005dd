"""dvc.yaml's library deps are exactly what each stage imports; IMP's fingerprint reads the same list."""

import ast
import hashlib

import pytest
import yaml

from lthlib.core import dependencies
from lthlib.core.dependencies import ROOT, library_files

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
LOCK = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_lists_exactly_the_library_files_it_imports(stage):
    script = STAGES[stage]["cmd"].removeprefix("python -m ").replace(".", "/") + ".py"
    deps = STAGES[stage]["deps"]
    assert script in deps, f"{stage}: its script {script} is not a dep"
    listed = sorted(d for d in deps if d.startswith("lthlib/"))
    imported = library_files(script)
    assert not set(imported) - set(listed), f"dvc.yaml stage {stage} misses {sorted(set(imported) - set(listed))}"
    assert not set(listed) - set(imported), f"dvc.yaml stage {stage} lists unused {sorted(set(listed) - set(imported))}"


def test_package_init_files_hold_only_docstrings():
    """library_files leaves __init__.py out, which is exact only while they hold no code."""
    for init in (ROOT / "lthlib").rglob("__init__.py"):
        body = ast.parse(init.read_text()).body
        assert len(body) <= 1 and all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body), init


def test_imports_are_followed_transitively_in_every_form(tmp_path, monkeypatch):
    package = tmp_path / "lthlib"
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text('"""doc"""\n')
    (package / "core" / "__init__.py").write_text('"""doc"""\n')
    (package / "core" / "a.py").write_text("from lthlib.core import b\nfrom lthlib.core.c import thing\n")
    (package / "core" / "b.py").write_text("def f():\n    import lthlib.core.d\n")  # an import inside a function
    (package / "core" / "c.py").write_text("thing = 1\n")
    (package / "core" / "d.py").write_text("import os\n")
    (package / "core" / "unused.py").write_text("")
    (tmp_path / "stage.py").write_text("from lthlib.core.a import x\n")
    monkeypatch.setattr(dependencies, "ROOT", tmp_path)
    expected = ["lthlib/core/a.py", "lthlib/core/b.py", "lthlib/core/c.py", "lthlib/core/d.py"]
    assert library_files("stage.py") == expected
    assert library_files("lthlib.core.b") == ["lthlib/core/b.py", "lthlib/core/d.py"]


def test_imp_fingerprint_covers_the_ratio_rules_and_the_evaluation_they_use():
    assert {"lthlib/core/pruning_schedule.py", "lthlib/core/interpolate.py", "lthlib/core/train.py",
            "lthlib/core/config.py"} <= set(library_files("lthlib.core.imp"))


@pytest.mark.parametrize("layer, allowed", [("core", ("core",)), ("analyses", ("core", "analyses")),
                                            ("report", ("core", "analyses", "report"))])
def test_imports_run_downward_only(layer, allowed):
    """core <- analyses <- report: no module imports from a layer above its own."""
    for module in sorted((ROOT / "lthlib" / layer).glob("*.py")):
        for imported in library_files(module.relative_to(ROOT).as_posix()):
            assert imported.split("/")[1] in allowed, f"{module.name} imports {imported}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_dvc_lock_holds_the_code_and_params_every_stage_last_ran_with(stage):
    """Code or params.yaml changed without `dvc repro` leave dvc.lock stale: the committed outputs are then not
    what the committed code and params make, and the README's `dvc repro` reruns the stage."""
    assert stage in LOCK, f"{stage} never ran: run `dvc repro` and commit dvc.lock"
    locked = {dep["path"]: dep["md5"] for dep in LOCK[stage]["deps"]}
    assert sorted(locked) == sorted(STAGES[stage]["deps"]), f"{stage}: dvc.lock has other deps than dvc.yaml"
    stale = [path for path, md5 in locked.items()
             if path.endswith(".py") and hashlib.md5((ROOT / path).read_bytes()).hexdigest() != md5]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in LOCK[stage].get("params", {}).get("params.yaml", {}).items():
        current = params
        for part in key.split("."):
            current = current[part]
        if current != value:
            stale.append(f"params.yaml {key}")
    assert not stale, f"{stage}: dvc.lock is stale in {stale}: run `dvc repro` and commit dvc.lock"
