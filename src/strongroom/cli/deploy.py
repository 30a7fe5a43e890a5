"""`strongroom deploy`: render an environment and deliver it in one of three modes.

operator: apply the CR set to the cluster and wait for Ready; gitops: commit it to Git; direct: no
operator, provision the resources and apply the rendered objects from this process.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from strongroom.cli._errors import one_line_errors
from strongroom.cli._render_inputs import OPERATOR_NAMESPACE_OPTION, render_options, render_or_exit

if TYPE_CHECKING:
    from strongroom.orchestrator.direct import DirectSettings
    from strongroom.orchestrator.emit import CRSet
    from strongroom.orchestrator.render import Rendered


_MODES = ("operator", "gitops", "direct")


@click.command("deploy")
@render_options
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
@OPERATOR_NAMESPACE_OPTION
@one_line_errors
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
    rendered = render_or_exit(score_files, definition_paths, values_file, app, env, env_type, images)
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
