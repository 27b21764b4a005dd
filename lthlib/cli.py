"""What every stage script shares: one-line errors with a non-zero exit instead of tracebacks."""

from __future__ import annotations

import functools
import sys

from lthlib.config import ConfigError

# Errors a user can cause and fix (bad params, missing files); anything else is a bug and keeps its traceback.
USER_ERRORS = (ConfigError, FileNotFoundError, ValueError)


def user_errors_exit(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except USER_ERRORS as error:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
    return wrapper
