"""Expected failures of the command line: one readable line on stderr and exit 1, no traceback.

Every command is wrapped in `one_line_errors`; a command raises `UserError` for input the user can fix.
Tracebacks are for bugs only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import click

P = ParamSpec("P")
R = TypeVar("R")


class UserError(click.ClickException):
    """An error the user can fix; printed as one line, exit code 1."""


def one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print expected errors (bad input, unreachable cluster, ...) as one line without a traceback."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except (OSError, ValueError) as exc:
            raise UserError(f"{type(exc).__name__}: {exc}") from None

    return wrapper
