"""The `strongroom` command line.

Every command turns an expected failure into one readable line on stderr and a non-zero exit;
tracebacks are for bugs only (`_errors`). One module per command group: `crds`, `operator` (its flags
in `_operator_options`), `keys`, `render` and `deploy` (their shared inputs in `_render_inputs`). This
module holds the top-level group and wires the commands into it. Commands import what they run inside
their function, so `strongroom --help` loads click and nothing else.
"""

from __future__ import annotations

import click

from strongroom import __version__
from strongroom.cli._errors import UserError
from strongroom.cli.crds import crds_command
from strongroom.cli.deploy import deploy_command
from strongroom.cli.keys import keys_group
from strongroom.cli.operator import operator_group
from strongroom.cli.render import render_command

__all__ = ["UserError", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "STRONGROOM"})
@click.version_option(__version__, prog_name="strongroom")
def main() -> None:
    """strongroom: secrets from your own stores, resources through drivers, workloads on Kubernetes."""


main.add_command(crds_command)
main.add_command(operator_group)
main.add_command(keys_group)
main.add_command(render_command)
main.add_command(deploy_command)
