"""The `strongroom` command line.

Every command turns an expected failure into one readable line on stderr and a non-zero exit;
tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import click

from strongroom import __version__

P = ParamSpec("P")
R = TypeVar("R")


class UserError(click.ClickException):
    """An error the user can fix; printed as one line, exit code 1."""


def _one_line_errors(func: Callable[P, R]) -> Callable[P, R]:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "STRONGROOM"})
@click.version_option(__version__, prog_name="strongroom")
def main() -> None:
    """strongroom: secrets from your own stores, resources through drivers, workloads on Kubernetes."""


@main.command("crds")
@_one_line_errors
def crds_command() -> None:
    """Print the CustomResourceDefinitions (YAML) generated from the API models."""
    from strongroom.api.crds import render_crds_yaml

    sys.stdout.write(render_crds_yaml())


@main.group("operator")
def operator_group() -> None:
    """Run the in-cluster operator."""
