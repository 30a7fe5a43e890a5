"""`strongroom crds`: the CustomResourceDefinitions generated from the API models."""

from __future__ import annotations

import sys

import click

from strongroom.cli._errors import one_line_errors


@click.command("crds")
@one_line_errors
def crds_command() -> None:
    """Print the CustomResourceDefinitions (YAML) generated from the API models."""
    from strongroom.api.crds import render_crds_yaml

    sys.stdout.write(render_crds_yaml())
