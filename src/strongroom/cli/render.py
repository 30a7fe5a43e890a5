"""`strongroom render`: the CR set of an environment, offline (YAML, the resource graph or the Drivers)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from strongroom.cli._errors import one_line_errors
from strongroom.cli._render_inputs import OPERATOR_NAMESPACE_OPTION, render_options, render_or_exit


@click.command("render")
@render_options
@click.option("--graph", is_flag=True, help="Print the resource graph instead of the YAML.")
@click.option(
    "--drivers",
    "platform_drivers",
    is_flag=True,
    help="Print the Driver objects the resources use instead of the CR set, for the platform admin to "
    "apply in the operator namespace: allowedNamespaces names this environment's namespace.",
)
@OPERATOR_NAMESPACE_OPTION
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write one file per object into this directory (the layout gitops mode commits).",
)
@one_line_errors
def render_command(
    score_files: tuple[Path, ...],
    definition_paths: tuple[Path, ...],
    app: str,
    env: str,
    env_type: str | None,
    values_file: Path | None,
    images: tuple[Any, ...],
    graph: bool,
    platform_drivers: bool,
    operator_namespace: str,
    output_dir: Path | None,
) -> None:
    """Render the CR set of an environment offline (reads no secret value; usable as a pre-merge check).

    Prints the objects as YAML (same inputs, same bytes) or, with --graph, the resource graph, or, with
    --drivers, the platform Driver objects the environment needs. Every problem (no matching definition,
    unresolved placeholder, bad reference, cycle) is one line on stderr, exit 1.
    """
    from strongroom.orchestrator import emit
    from strongroom.orchestrator.render import describe_graph

    if graph and platform_drivers:
        raise click.UsageError("--graph and --drivers exclude each other")
    rendered = render_or_exit(score_files, definition_paths, values_file, app, env, env_type, images)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        for name, text in emit.files(rendered.crset.objects).items():
            (output_dir / name).write_text(text)
    if platform_drivers:
        plan = rendered.plan
        for name in plan.remote_driver_types():
            if name not in plan.drivers:
                click.echo(
                    f"note: driver type {name!r} has no Driver object among the definition files; the "
                    f"platform admin must install it in {operator_namespace} allowing {plan.namespace}",
                    err=True,
                )
        drivers = emit.platform_drivers(plan, operator_namespace)
        if not plan.remote_driver_types():
            click.echo("note: the resources use built-in drivers only; no Driver is needed", err=True)
        sys.stdout.write(emit.to_yaml_stream(drivers))
    elif graph:
        sys.stdout.write(describe_graph(rendered.plan))
    else:
        sys.stdout.write(emit.to_yaml_stream(rendered.crset.objects))
