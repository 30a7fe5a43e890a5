"""The inputs `render` and `deploy` share: what to render, for which environment, and rendering it.

Both commands take the same Score files, definitions and environment options and render them the same
way (one line per input problem on stderr, exit 1), so the options and the render call live here once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

P = ParamSpec("P")
R = TypeVar("R")


def _image_options(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[Any, ...]:
    from strongroom.orchestrator.inputs import parse_image_option

    try:
        return tuple(parse_image_option(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--image") from None


def render_options(func: Callable[P, R]) -> Callable[P, R]:
    """Inputs shared by `render` and `deploy`: what to render and for which environment."""
    options = [
        click.option(
            "-f",
            "--score",
            "score_files",
            multiple=True,
            required=True,
            type=click.Path(dir_okay=False, path_type=Path),
            help="Score file (score.dev/v1b1), one workload each; repeat for more.",
        ),
        click.option(
            "-d",
            "--definitions",
            "definition_paths",
            multiple=True,
            type=click.Path(path_type=Path),
            help="Resource definitions: a YAML file or a directory (read recursively); repeat for more. "
            "strongroom's ResourceDefinition and Humanitec's Definition format, plus Driver objects.",
        ),
        click.option("--app", required=True, help="Application id (lower-case DNS label)."),
        click.option("--env", required=True, help="Environment id (lower-case DNS label)."),
        click.option("--env-type", help="Environment type for definition criteria. Default: the env id."),
        click.option(
            "--values",
            "values_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Shared values: YAML mapping KEY: text or KEY: {store, ref, version}.",
        ),
        click.option(
            "--image",
            "images",
            multiple=True,
            metavar="[WORKLOAD[.CONTAINER]=]IMAGE",
            callback=_image_options,
            help="Image for containers whose Score image is the placeholder '.': IMAGE for every workload, "
            "WORKLOAD=IMAGE for one workload; WORKLOAD.CONTAINER=IMAGE sets that container's image whatever "
            "the Score file says. Repeat for more.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


OPERATOR_NAMESPACE_OPTION = click.option(
    "--operator-namespace",
    default="strongroom-system",
    show_default=True,
    envvar="STRONGROOM_OPERATOR_NAMESPACE",
    show_envvar=True,
    help="The operator's namespace, where the platform's Drivers live (render --drivers, operator "
    "mode's check) and where direct mode looks for SecretStores given without one.",
)


def render_or_exit(
    score_files: tuple[Path, ...],
    definition_paths: tuple[Path, ...],
    values_file: Path | None,
    app: str,
    env: str,
    env_type: str | None,
    images: tuple[Any, ...],
) -> Any:
    """Render the CR set, or print one line per problem on stderr and exit 1."""
    from strongroom.orchestrator.problems import InputProblems
    from strongroom.orchestrator.render import render

    try:
        return render(
            list(score_files),
            list(definition_paths),
            values_file,
            app=app,
            env=env,
            env_type=env_type,
            images=images,
        )
    except InputProblems as exc:
        for line in exc.problems:
            click.echo(f"error: {line}", err=True)
        raise click.exceptions.Exit(1) from None
