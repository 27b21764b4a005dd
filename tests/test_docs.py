"""The documentation states what the code does: the README's test command is CI's, every parameter is documented."""

import re
from pathlib import Path

import yaml
from test_config import keys

ROOT = Path(__file__).resolve().parents[1]


def test_the_readmes_test_command_is_the_one_ci_runs():
    readme = (ROOT / "README.md").read_text()
    commands = [line.split("#")[0].strip() for line in readme.splitlines() if line.startswith("bash scripts/setup.sh")]
    assert len(commands) == 2, "the README's two commands"
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def documented_keys(reference: str) -> set[str]:
    """The keys a table of docs/parameters.md names: a row's first cell lists `section.key` and, after it,
    further `key`s of the same section."""
    found = set()
    for row in reference.splitlines():
        if not row.startswith("| `"):
            continue
        section = ""
        for name in re.findall(r"`([^`]+)`", row.split("|")[1]):
            if "." in name:
                section, _, name = name.rpartition(".")
            found.add(f"{section}.{name}" if section else name)
    return found


def test_every_parameter_is_documented():
    reference = (ROOT / "docs" / "parameters.md").read_text()
    params = keys(yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert not params - documented_keys(reference), "undocumented in docs/parameters.md"
