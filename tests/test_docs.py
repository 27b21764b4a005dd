"""The documentation states what the code does: the README's test command is CI's, the parameter reference is
generated from the code."""

import re
from pathlib import Path

import yaml
from test_config import keys

from lthlib.core.reference import reference

ROOT = Path(__file__).resolve().parents[1]


def test_the_readmes_test_command_is_the_one_ci_runs():
    readme = (ROOT / "README.md").read_text()
    commands = [line.split("#")[0].strip() for line in readme.splitlines() if line.startswith("bash scripts/setup.sh")]
    assert len(commands) == 2, "the README's two commands"
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_the_parameter_reference_is_generated_from_the_code_and_current():
    assert (ROOT / "docs" / "parameters.md").read_text() == reference(), \
        "docs/parameters.md is out of date: python -m lthlib.core.reference"


def test_the_reference_names_every_key_with_a_meaning():
    params = keys(yaml.safe_load((ROOT / "params.yaml").read_text()))
    rows = {re.match(r"\| `([^`]+)` \|", row)[1]: row for row in reference().splitlines() if row.startswith("| `")}
    assert set(rows) == params
    assert all(not row.endswith("|  |") for row in rows.values()), "a field without a comment in config.py"
    assert "| `train.schedule` | one of constant, step, cosine | `step` |" in rows["train.schedule"]
