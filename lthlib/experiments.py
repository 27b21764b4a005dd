"""What the scripts that run grids of DVC experiments (`dvc exp run -S ...`, scripts/) share."""

from __future__ import annotations

import contextlib
from pathlib import Path


@contextlib.contextmanager
def params_for_each_run(path: str | Path = "params.yaml"):
    """Yields `reset`, which puts back the user's params.yaml: call it before each run of a grid; the file is put
    back at the end too. A workspace run leaves its own params behind, rewritten by DVC (lists in block style): the
    next run's overrides would stack on them (a grid scaled from the last run's schedule, not the user's), and
    DVC 3 corrupts the file when it sets such a list, with a comment, to []."""
    path = Path(path)
    original = path.read_text()

    def reset() -> None:
        path.write_text(original)
    try:
        yield reset
    finally:
        reset()
