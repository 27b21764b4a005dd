"""docs/parameters.md, generated from `lthlib.core.config`: every key with its type (the allowed values of an
enumeration), its value in params.yaml and its meaning, the comment next to its field (the comment lines above
it and the one on its line). `python -m lthlib.core.reference` rewrites the page; a test fails when it is out of
date, so the reference cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from pathlib import Path

from lthlib.core import io
from lthlib.core.config import Config, load_config, to_dict, type_name
from lthlib.core.dependencies import ROOT

PAGE = ROOT / "docs" / "parameters.md"
_FIELD = re.compile(r"^    (\w+): .+? = .+?(?:  # (.*))?$")
_COMMENT = re.compile(r"^    # ?(.*)$")

INTRO = """# Parameters (`params.yaml`)

Generated from `lthlib/core/config.py` by `python -m lthlib.core.reference` (a test fails when this page is out of
date). Every key is parsed and validated in one place; an error names the key, e.g. `error: pruning.ratio must be
in (0, 1), got 1.5`, and the stage exits with status 2 without writing anything. An unknown key is an error that
suggests the closest known one. Every profile in `profiles/` sets every key. The values shown are `params.yaml`'s
(the CPU-sized default); `compute.*` is not part of the results' identity: changing it re-runs nothing.
"""


def field_comments(cls) -> dict[str, str]:
    """Each field's comment: the comment lines right above it and the one on its line, joined."""
    comments, pending = {}, []
    for line in inspect.getsource(cls).splitlines():
        if comment := _COMMENT.match(line):
            pending.append(comment[1])
        elif field := _FIELD.match(line):
            comments[field[1]] = " ".join(pending + ([field[2]] if field[2] else []))
            pending = []
        else:
            pending = []
    return comments


def _value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _rows(cls, values: dict, prefix: str) -> list[str]:
    hints, comments = typing.get_type_hints(cls), field_comments(cls)
    rows = []
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[field.name]):
            continue
        options = typing.get_args(hints[field.name]) if isinstance(hints[field.name], type(int | None)) \
            else (hints[field.name],)
        kind = " or ".join(map(type_name, options))
        meaning = comments.get(field.name, "").replace("|", "\\|")
        rows.append(f"| `{prefix}{field.name}` | {kind} | `{_value(values[field.name])}` | {meaning} |")
    return rows


def reference(params: str | Path = ROOT / "params.yaml") -> str:
    """The page: top-level keys, then one table per section, in the order of `Config`."""
    values = to_dict(load_config(params))
    hints = typing.get_type_hints(Config)
    header = "| key | type | params.yaml | meaning |\n|---|---|---|---|"
    parts = [INTRO, "## Top level\n", header, *_rows(Config, values, "")]
    for field in dataclasses.fields(Config):
        section = hints[field.name]
        if dataclasses.is_dataclass(section):
            summary = (inspect.getdoc(section) or "").replace("\n", " ")
            summary = [] if summary.startswith(section.__name__ + "(") else [summary + "\n"]  # dataclasses' default
            parts += [f"\n## `{field.name}`\n", *summary, header, *_rows(section, values[field.name], f"{field.name}.")]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    with io.atomic_path(PAGE) as tmp:
        tmp.write_text(reference())
    print(PAGE)
