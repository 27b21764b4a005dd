"""Which library files decide a stage's numbers: the transitive `lthlib` imports of a module.

One source for two consumers, so they cannot disagree: the test that checks every stage's
`deps` in dvc.yaml, and the code part of IMP's per-level fingerprint. Imports are read from
the source (ast), not executed. Package `__init__.py` files hold only docstrings (tested), so
they are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: lthlib/ and stages/ live here
PACKAGE = "lthlib"


def library_files(entry: str | Path) -> list[str]:
    """Paths (relative to the checkout, sorted) of every lthlib module `entry` imports, directly or not.

    `entry` is a dotted module name (``lthlib.core.imp``) or a Python file (``stages/imp.py``);
    the entry itself is included when it is a library module.
    """
    start = _module_file(entry) if isinstance(entry, str) and not entry.endswith(".py") else ROOT / entry
    seen, pending = set(), [start]
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        pending += [f for f in map(_module_file, _imported_modules(path)) if f is not None]
    return sorted(p.relative_to(ROOT).as_posix() for p in seen
                  if p.name != "__init__.py" and p.is_relative_to(ROOT / PACKAGE))


def _imported_modules(path: Path) -> list[str]:
    """Dotted names of the lthlib modules a file imports (`from lthlib.core import io` names lthlib.core.io)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return [name for name in names if name == PACKAGE or name.startswith(PACKAGE + ".")]


def _module_file(name: str) -> Path | None:
    """The file of a dotted lthlib module, or None for a name that is not a module (a function, a class)."""
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None
