"""The `strongroom` command line.

Every command turns an expected failure into one readable line on stderr and a non-zero exit;
tracebacks are for bugs only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from strongroom import __version__
from strongroom.cli._errors import UserError
from strongroom.cli._errors import one_line_errors as _one_line_errors
from strongroom.cli.crds import crds_command
from strongroom.cli.keys import keys_group
from strongroom.cli.operator import operator_group

__all__ = ["UserError", "main"]

if TYPE_CHECKING:
    from strongroom.orchestrator.direct import DirectSettings
    from strongroom.orchestrator.emit import CRSet
    from strongroom.orchestrator.render import Rendered

P = ParamSpec("P")
R = TypeVar("R")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "STRONGROOM"})
@click.version_option(__version__, prog_name="strongroom")
def main() -> None:
    """strongroom: secrets from your own stores, resources through drivers, workloads on Kubernetes."""


main.add_command(crds_command)
main.add_command(operator_group)
main.add_command(keys_group)


# --- render / deploy (the orchestrator) -------------------------------------------------------------------


def _image_options(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[Any, ...]:
    from strongroom.orchestrator.inputs import parse_image_option

    try:
        return tuple(parse_image_option(value) for value in values)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--image") from None


def _render_options(func: Callable[P, R]) -> Callable[P, R]:
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


_OPERATOR_NAMESPACE_OPTION = click.option(
    "--operator-namespace",
    default="strongroom-system",
    show_default=True,
    envvar="STRONGROOM_OPERATOR_NAMESPACE",
    show_envvar=True,
    help="The operator's namespace, where the platform's Drivers live (render --drivers, operator "
    "mode's check) and where direct mode looks for SecretStores given without one.",
)


def _render_or_exit(
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


@main.command("render")
@_render_options
@click.option("--graph", is_flag=True, help="Print the resource graph instead of the YAML.")
@click.option(
    "--drivers",
    "platform_drivers",
    is_flag=True,
    help="Print the Driver objects the resources use instead of the CR set, for the platform admin to "
    "apply in the operator namespace: allowedNamespaces names this environment's namespace.",
)
@_OPERATOR_NAMESPACE_OPTION
@click.option(
    "-o",
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write one file per object into this directory (the layout gitops mode commits).",
)
@_one_line_errors
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
    rendered = _render_or_exit(score_files, definition_paths, values_file, app, env, env_type, images)
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


_MODES = ("operator", "gitops", "direct")


@main.command("deploy")
@_render_options
@click.option(
    "--mode",
    type=click.Choice(_MODES),
    default="operator",
    show_default=True,
    help="operator: apply the CR set to the cluster; gitops: commit it to Git; direct: no operator, "
    "provision and apply rendered Deployments, Services and Secrets.",
)
@click.option(
    "--kubeconfig",
    envvar=["STRONGROOM_KUBECONFIG", "KUBECONFIG"],
    show_envvar=True,
    metavar="PATH",
    help="Kubeconfig (operator and direct mode). Default: in-cluster, then ~/.kube/config.",
)
@click.option("--context", help="Kubeconfig context to use.")
@click.option(
    "--timeout",
    "timeout_text",
    default="5m",
    show_default=True,
    help="How long to wait until everything is Ready (Go duration; operator and direct mode).",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for Ready (operator mode).")
@click.option(
    "--git-url",
    envvar="STRONGROOM_GIT_URL",
    show_envvar=True,
    help="gitops: repository to commit to: https URL, ssh URL or a local path.",
)
@click.option(
    "--git-branch", envvar="STRONGROOM_GIT_BRANCH", help="gitops: branch. Default: the remote HEAD."
)
@click.option(
    "--git-token",
    envvar="STRONGROOM_GIT_TOKEN",
    show_envvar=True,
    help="gitops: token (HTTP Basic password) for https URLs. Prefer the environment variable.",
)
@click.option(
    "--git-username",
    default="git",
    show_default=True,
    envvar="STRONGROOM_GIT_USERNAME",
    show_envvar=True,
    help="gitops: user name sent with the token.",
)
@click.option(
    "--git-ssh-key",
    type=click.Path(dir_okay=False, exists=True),
    envvar="STRONGROOM_GIT_SSH_KEY",
    help="gitops: private key file for ssh URLs.",
)
@click.option("--git-author", default="strongroom <strongroom@localhost>", show_default=True)
@click.option(
    "--secret-store",
    "secret_store_files",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="direct: SecretStore YAML for stores that references name (credentials are read from the "
    "cluster, in the store's namespace); repeat for more. The embedded store `local` is always there.",
)
@click.option(
    "--default-store",
    default="local",
    show_default=True,
    help="direct: store that keeps driver secret outputs and cookies.",
)
@click.option(
    "--store-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="STRONGROOM_STORE_DIR",
    show_envvar=True,
    help="direct: directory of the embedded store. Default: ~/.local/share/strongroom. Its key comes from "
    "STRONGROOM_STORE_KEY, else a key file created there (0600).",
)
@click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="STRONGROOM_SIGNING_KEY",
    show_envvar=True,
    help="direct: private key (PEM) that signs requests to remote drivers.",
)
@click.option(
    "--org-id", envvar="STRONGROOM_ORG_ID", show_envvar=True, help="direct: organisation id for signing."
)
@_OPERATOR_NAMESPACE_OPTION
@_one_line_errors
def deploy_command(
    score_files: tuple[Path, ...],
    definition_paths: tuple[Path, ...],
    app: str,
    env: str,
    env_type: str | None,
    values_file: Path | None,
    images: tuple[Any, ...],
    mode: str,
    kubeconfig: str | None,
    context: str | None,
    timeout_text: str,
    wait: bool,
    git_url: str | None,
    git_branch: str | None,
    git_token: str | None,
    git_username: str,
    git_ssh_key: str | None,
    git_author: str,
    secret_store_files: tuple[Path, ...],
    default_store: str,
    store_dir: Path | None,
    signing_key: Path | None,
    org_id: str | None,
    operator_namespace: str,
) -> None:
    """Render the CR set of an environment and deliver it (see --mode).

    Progress goes to stderr, the status table to stdout. Exit 1 with the failing conditions when something
    is not Ready in time.
    """
    import asyncio

    from strongroom.api.common import parse_duration

    try:
        timeout = parse_duration(timeout_text).total_seconds()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--timeout") from None
    rendered = _render_or_exit(score_files, definition_paths, values_file, app, env, env_type, images)
    if mode == "operator":
        ok = asyncio.run(
            _deploy_operator(
                rendered, operator_namespace, kubeconfig, context, timeout if wait else 0.0, wait
            )
        )
    elif mode == "gitops":
        if not git_url:
            raise click.UsageError("--mode gitops needs --git-url (or STRONGROOM_GIT_URL)")
        ok = _deploy_gitops(
            rendered.crset, git_url, git_branch, git_token, git_username, git_ssh_key, git_author
        )
        drivers = rendered.plan.remote_driver_types()
        if drivers:
            # Git holds no Driver: the platform installs them, and nothing here can check the cluster.
            click.echo(
                f"note: the Resources use Driver(s) {', '.join(drivers)}: they must be installed in "
                f"namespace {operator_namespace} allowing {rendered.crset.namespace} "
                "(strongroom render --drivers prints them)",
                err=True,
            )
    else:
        from strongroom.orchestrator.direct import DirectSettings, load_secret_stores
        from strongroom.orchestrator.localstore import LocalStore

        key = None
        if signing_key is not None:
            from strongroom.drivers.signing import SigningKey

            if not org_id:
                raise click.UsageError("--signing-key needs --org-id (or STRONGROOM_ORG_ID)")
            key = SigningKey.from_pem(signing_key.read_bytes(), org_id)
        settings = DirectSettings(
            operator_namespace=operator_namespace,
            secret_stores=load_secret_stores(list(secret_store_files), operator_namespace),
            default_store=default_store,
            signing_key=key,
            local_store=LocalStore(store_dir),
        )
        ok = asyncio.run(_deploy_direct(rendered, kubeconfig, context, settings))
    if not ok:
        raise click.exceptions.Exit(1)


async def _deploy_operator(
    rendered: Rendered,
    operator_namespace: str,
    kubeconfig: str | None,
    context: str | None,
    wait_seconds: float,
    wait: bool,
) -> bool:
    from strongroom.orchestrator.kube import Cluster, load_config
    from strongroom.orchestrator.operator_mode import check_drivers, deploy
    from strongroom.orchestrator.status import Progress, failures, table

    crset = rendered.crset
    cluster = Cluster(load_config(kubeconfig, context))
    progress: Progress | None = None
    try:
        # Before anything is applied: Resources whose Driver the platform has not installed for this
        # namespace would only end in DriverNotFound or DriverNotAllowed.
        missing = await check_drivers(cluster, rendered.plan, operator_namespace)
        if missing:
            for line in missing:
                click.echo(f"error: {line}", err=True)
            click.echo("error: nothing was applied", err=True)
            return False
        progress = Progress()
        click.echo(f"applying {len(crset.objects)} objects to namespace {crset.namespace}", err=True)
        outcome = await deploy(
            cluster, crset, wait_seconds=wait_seconds, on_progress=progress.update if wait else None
        )
    finally:
        if progress is not None:
            progress.finish()
        await cluster.close()
    for name in outcome.pruned:
        click.echo(f"pruned {name}", err=True)
    for state in outcome.states:
        if state.pods_error:
            click.echo(f"note: cannot read the pods of {state.label}: {state.pods_error}", err=True)
    sys.stdout.write(table(outcome.states))
    if not wait:
        return True
    if outcome.ok:
        return True
    why = "timed out" if outcome.timed_out else "stalled"
    click.echo(f"error: deploy {why}; not Ready:", err=True)
    for line in failures(outcome.states):
        click.echo(f"error: {line}", err=True)
    return False


def _deploy_gitops(
    crset: CRSet,
    url: str,
    branch: str | None,
    token: str | None,
    username: str,
    ssh_key: str | None,
    author: str,
) -> bool:
    from strongroom.orchestrator.gitops import GitTarget, publish

    target = GitTarget(url=url, branch=branch, username=username, token=token, ssh_key=ssh_key, author=author)

    def retry(attempt: int) -> None:
        click.echo(f"the branch moved meanwhile (attempt {attempt}); fetching and re-applying", err=True)

    outcome = publish(target, crset, on_retry=retry)
    where = f"{target.display_url} {outcome.branch}:{outcome.path}/"
    if outcome.commit is None:
        click.echo(f"{where} already holds this CR set; nothing to commit", err=True)
    else:
        click.echo(f"committed {outcome.commit[:12]} to {where} ({len(crset.objects)} objects)", err=True)
    sys.stdout.write(f"{outcome.commit or ''}\n")
    return True


async def _deploy_direct(
    rendered: Rendered, kubeconfig: str | None, context: str | None, settings: DirectSettings
) -> bool:
    from strongroom.orchestrator.direct import deploy
    from strongroom.orchestrator.kube import Cluster, load_config

    cluster = Cluster(load_config(kubeconfig, context))
    crset = rendered.crset
    click.echo(f"provisioning and applying into namespace {crset.namespace} (direct mode)", err=True)
    try:
        outcome = await deploy(cluster, crset, rendered.plan, settings)
    finally:
        await cluster.close()
    width = max([len("KIND"), *(len(kind) for kind, _, _ in outcome.rows)])
    name_width = max([len("NAME"), *(len(name) for _, name, _ in outcome.rows)])
    lines = [f"{'KIND':<{width}}  {'NAME':<{name_width}}  RESULT"]
    lines += [f"{kind:<{width}}  {name:<{name_width}}  {what}" for kind, name, what in outcome.rows]
    sys.stdout.write("\n".join(lines) + "\n")
    return True
