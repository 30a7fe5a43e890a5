"""The `strongroom` command line.

Every command turns an expected failure into one readable line on stderr and a non-zero exit;
tracebacks are for bugs only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from strongroom import __version__

if TYPE_CHECKING:
    from strongroom.orchestrator.direct import DirectSettings
    from strongroom.orchestrator.emit import CRSet
    from strongroom.orchestrator.render import Rendered

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


# --- operator ---------------------------------------------------------------------------------------------
# Every flag also reads an environment variable (shown by --help) so the Helm chart and a local shell
# configure the process the same way.

_LOG_FORMATS = ("json", "text")
_LOG_LEVELS = ("debug", "info", "warning", "error")


@operator_group.command("run")
@click.option(
    "--kubeconfig",
    envvar=["STRONGROOM_KUBECONFIG", "KUBECONFIG"],
    show_envvar=True,
    metavar="PATH",
    help="Kubeconfig to use (first file if a list). "
    "Default: in-cluster service account, then ~/.kube/config.",
)
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    envvar="STRONGROOM_NAMESPACES",
    show_envvar=True,
    metavar="NAME",
    help="Watch only this namespace; repeat for more (env: space- or comma-separated). "
    "The operator namespace is always added. Default: all namespaces.",
)
@click.option(
    "-A",
    "--all-namespaces",
    is_flag=True,
    envvar="STRONGROOM_ALL_NAMESPACES",
    show_envvar=True,
    help="Watch all namespaces (the default; conflicts with --namespace).",
)
@click.option(
    "--operator-namespace",
    envvar=["STRONGROOM_OPERATOR_NAMESPACE", "POD_NAMESPACE"],
    show_envvar=True,
    default="strongroom-system",
    show_default=True,
    help="Namespace of operator-level SecretStores and the default store.",
)
@click.option(
    "--service-account",
    envvar="STRONGROOM_SERVICE_ACCOUNT",
    show_envvar=True,
    default=None,
    help="The operator's own ServiceAccount (in the operator namespace): Vault Kubernetes auth without "
    "serviceAccountRef logs in with a token requested for it. The chart sets it.",
)
@click.option(
    "--log-format",
    type=click.Choice(_LOG_FORMATS),
    default="json",
    show_default=True,
    envvar="STRONGROOM_LOG_FORMAT",
    show_envvar=True,
    help="JSON lines for log pipelines, or text for a terminal.",
)
@click.option(
    "--log-level",
    type=click.Choice(_LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    envvar="STRONGROOM_LOG_LEVEL",
    show_envvar=True,
)
@click.option(
    "--health-address",
    default="0.0.0.0",  # noqa: S104  # the kubelet probes over the pod IP
    show_default=True,
    envvar="STRONGROOM_HEALTH_ADDRESS",
    show_envvar=True,
    help="Address of the /healthz and /readyz server.",
)
@click.option(
    "--health-port",
    type=click.IntRange(1, 65535),
    default=8081,
    show_default=True,
    envvar="STRONGROOM_HEALTH_PORT",
    show_envvar=True,
)
@click.option(
    "--metrics-address",
    default="0.0.0.0",  # noqa: S104  # scraped over the pod IP
    show_default=True,
    envvar="STRONGROOM_METRICS_ADDRESS",
    show_envvar=True,
    help="Address of the Prometheus /metrics server.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    envvar="STRONGROOM_METRICS_PORT",
    show_envvar=True,
    help="Port of /metrics; 0 turns the metrics server off.",
)
@click.option(
    "--worker-limit",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    envvar="STRONGROOM_WORKER_LIMIT",
    show_envvar=True,
    help="Most objects of one kind in flight at once, counting Resources waiting on a remote driver.",
)
@click.option(
    "--reconcile-limit",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    envvar="STRONGROOM_RECONCILE_LIMIT",
    show_envvar=True,
    help="Most reconciles of one kind working at once (a wait on a remote driver does not count).",
)
@click.option(
    "--namespace-worker-share",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.5,
    show_default=True,
    envvar="STRONGROOM_NAMESPACE_WORKER_SHARE",
    show_envvar=True,
    help="Most of one kind's workers the objects of one namespace may hold at once (at least one).",
)
@click.option(
    "--namespace-reconcile-rate",
    type=click.FloatRange(min=0),
    default=20.0,
    show_default=True,
    envvar="STRONGROOM_NAMESPACE_RECONCILE_RATE",
    show_envvar=True,
    help="While other namespaces are working, most reconciles of one kind a namespace starts a second "
    "(0: no pacing).",
)
@click.option(
    "--namespace-reconcile-burst",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    envvar="STRONGROOM_NAMESPACE_RECONCILE_BURST",
    show_envvar=True,
    help="Reconciles a namespace may start at once before --namespace-reconcile-rate applies.",
)
@click.option(
    "--standalone/--peering",
    default=True,
    show_default=True,
    envvar="STRONGROOM_STANDALONE",
    show_envvar=True,
    help="Standalone: no kopf peering (one replica, the supported setup). --peering lets kopf use its "
    "KopfPeering objects if their CRDs are installed.",
)
@click.option(
    "--refresh-interval",
    default="1h",
    show_default=True,
    envvar="STRONGROOM_REFRESH_INTERVAL",
    show_envvar=True,
    help="How often SecretMappings re-read their stores unless they set spec.refreshInterval, and how "
    "often Workloads are re-rendered to repair drift (Go duration; 0 = never). Jittered by 10%.",
)
@click.option(
    "--resource-resync-interval",
    default="1h",
    show_default=True,
    envvar="STRONGROOM_RESOURCE_RESYNC_INTERVAL",
    show_envvar=True,
    help="How often a Resource's driver is called (PUT) again although its inputs did not change, to "
    "repair drift (Go duration, > 0). Counted from status.lastAppliedTime, so restarts do not reset it.",
)
@click.option(
    "--driver-max-response-bytes",
    type=click.IntRange(min=1024, max=8 * 1024 * 1024),
    default=1024 * 1024,
    show_default=True,
    envvar="STRONGROOM_DRIVER_MAX_RESPONSE_BYTES",
    show_envvar=True,
    help="Largest answer read from a remote driver, as sent and after decompression, unless its Driver "
    "sets spec.maxResponseBytes; a larger one fails the Resource with DriverAnswerTooLarge.",
)
@click.option(
    "--store-check-interval",
    default="5m",
    show_default=True,
    envvar="STRONGROOM_STORE_CHECK_INTERVAL",
    show_envvar=True,
    help="How often each SecretStore's connectivity and credentials are checked (Go duration).",
)
@click.option(
    "--store-qps",
    type=click.FloatRange(min=0, min_open=True),
    default=50.0,
    show_default=True,
    envvar="STRONGROOM_STORE_QPS",
    show_envvar=True,
    help="Requests per second to one store, unless its spec.rateLimit says otherwise.",
)
@click.option(
    "--store-burst",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    envvar="STRONGROOM_STORE_BURST",
    show_envvar=True,
    help="Requests one store may get in a burst, unless its spec.rateLimit says otherwise.",
)
@click.option(
    "--store-read-ttl",
    default="10s",
    show_default=True,
    envvar="STRONGROOM_STORE_READ_TTL",
    show_envvar=True,
    help="How long identical reads (same store, key, version, property) share one result (Go duration).",
)
@click.option(
    "--template-timeout",
    default="5s",
    show_default=True,
    envvar="STRONGROOM_TEMPLATE_TIMEOUT",
    show_envvar=True,
    help="Wall-clock limit of one Template-driver call (every template rendered and parsed); past it the "
    "render process is killed and the Resource gets TemplateLimitExceeded (Go duration).",
)
@click.option(
    "--template-memory",
    default="128Mi",
    show_default=True,
    envvar="STRONGROOM_TEMPLATE_MEMORY",
    show_envvar=True,
    help="Address-space cap of each Template-driver render process (bytes, Ki, Mi, Gi). The processes "
    "count against the pod's memory limit: keep workers x memory + the operator's own below it.",
)
@click.option(
    "--template-workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    envvar="STRONGROOM_TEMPLATE_WORKERS",
    show_envvar=True,
    help="Template-driver render processes (started on first use); renders beyond this wait for one.",
)
@click.option(
    "--explicit-guresid-namespaces",
    "explicit_guresid_namespaces",
    multiple=True,
    envvar="STRONGROOM_EXPLICIT_GURESID_NAMESPACES",
    show_envvar=True,
    metavar="NAMES",
    help="Namespaces whose Resources may set spec.guresid (comma-separated or repeated; '*' for all). "
    "Elsewhere a hand-set GUResID is refused (GuresidNotAllowed): it could address another namespace's "
    "driver resource. Default: none.",
)
@click.option(
    "--manifest-kinds",
    "manifest_kinds",
    multiple=True,
    envvar="STRONGROOM_MANIFEST_KINDS",
    show_envvar=True,
    metavar="KINDS",
    help="Kinds drivers' namespace/cluster manifests may create (comma-separated or repeated; Kind for the "
    "core group, group/Kind otherwise). Default: ConfigMap,Secret,Service,apps/Deployment.",
)
@click.option(
    "--builtin-cluster-manifests/--no-builtin-cluster-manifests",
    default=False,
    show_default=True,
    envvar="STRONGROOM_BUILTIN_CLUSTER_MANIFESTS",
    show_envvar=True,
    help="Let the built-in drivers (echo, template: whatever the Resource's author writes) create "
    "cluster-scoped objects. Remote drivers need spec.allowClusterManifests on a Driver in the operator "
    "namespace instead.",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=False,
    show_default=True,
    envvar="STRONGROOM_LEADER_ELECT",
    show_envvar=True,
    help="Run as one of several replicas: only the holder of a Lease in the operator namespace writes, the "
    "others stay warm as standbys (the chart turns it on). Off: this process writes as soon as it starts.",
)
@click.option(
    "--leader-elect-lease-name",
    default="strongroom-operator",
    show_default=True,
    envvar="STRONGROOM_LEADER_ELECT_LEASE_NAME",
    show_envvar=True,
    help="Name of the coordination.k8s.io Lease (in the operator namespace) the replicas elect a leader on.",
)
@click.option(
    "--leader-elect-identity",
    default=None,
    envvar="STRONGROOM_LEADER_ELECT_IDENTITY",
    show_envvar=True,
    help="This replica's name in the Lease and in its User-Agent. Default: host name (the pod's) and a "
    "random part, unique per process.",
)
@click.option(
    "--leader-elect-lease-duration",
    default="15s",
    show_default=True,
    envvar="STRONGROOM_LEADER_ELECT_LEASE_DURATION",
    show_envvar=True,
    help="How long a standby waits after the Lease last changed before taking it (whole seconds).",
)
@click.option(
    "--leader-elect-renew-deadline",
    default="10s",
    show_default=True,
    envvar="STRONGROOM_LEADER_ELECT_RENEW_DEADLINE",
    show_envvar=True,
    help="The leader stops writing, and exits, when it could not renew the Lease for this long "
    "(less than the lease duration).",
)
@click.option(
    "--leader-elect-retry-period",
    default="2s",
    show_default=True,
    envvar="STRONGROOM_LEADER_ELECT_RETRY_PERIOD",
    show_envvar=True,
    help="How often the leader renews the Lease and a standby tries to take it.",
)
@_one_line_errors
def operator_run_command(
    kubeconfig: str | None,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    operator_namespace: str,
    service_account: str | None,
    log_format: str,
    log_level: str,
    health_address: str,
    health_port: int,
    metrics_address: str,
    metrics_port: int,
    worker_limit: int,
    reconcile_limit: int,
    namespace_worker_share: float,
    namespace_reconcile_rate: float,
    namespace_reconcile_burst: int,
    standalone: bool,
    refresh_interval: str,
    store_check_interval: str,
    store_qps: float,
    store_burst: int,
    store_read_ttl: str,
    resource_resync_interval: str,
    template_timeout: str,
    template_memory: str,
    template_workers: int,
    explicit_guresid_namespaces: tuple[str, ...],
    manifest_kinds: tuple[str, ...],
    builtin_cluster_manifests: bool,
    driver_max_response_bytes: int,
    leader_elect: bool,
    leader_elect_lease_name: str,
    leader_elect_identity: str | None,
    leader_elect_lease_duration: str,
    leader_elect_renew_deadline: str,
    leader_elect_retry_period: str,
) -> None:
    """Run the operator: watch strongroom resources and reconcile them until SIGTERM/SIGINT."""
    from strongroom.api.common import parse_duration
    from strongroom.drivers.sandbox import parse_bytes
    from strongroom.operator.config import (
        DEFAULT_MANIFEST_KINDS,
        LogFormat,
        LogLevel,
        OperatorConfig,
        split_list,
    )

    def seconds(flag: str, text: str) -> float:
        try:
            return parse_duration(text).total_seconds()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=flag) from None

    try:
        memory_bytes = parse_bytes(template_memory)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--template-memory") from None
    watched = split_list(namespaces)
    if watched and all_namespaces:
        raise click.UsageError("--namespace and --all-namespaces exclude each other")
    config = OperatorConfig(
        namespaces=watched,
        operator_namespace=operator_namespace,
        service_account=service_account or None,
        kubeconfig=kubeconfig or None,
        log_format=LogFormat(log_format),
        log_level=LogLevel(log_level.lower()),
        health_address=health_address,
        health_port=health_port,
        metrics_address=metrics_address,
        metrics_port=metrics_port,
        worker_limit=worker_limit,
        reconcile_limit=reconcile_limit,
        namespace_worker_share=namespace_worker_share,
        namespace_reconcile_rate=namespace_reconcile_rate,
        namespace_reconcile_burst=namespace_reconcile_burst,
        standalone=standalone,
        refresh_interval=seconds("--refresh-interval", refresh_interval),
        store_check_interval=seconds("--store-check-interval", store_check_interval),
        store_qps=store_qps,
        store_burst=store_burst,
        store_read_ttl=seconds("--store-read-ttl", store_read_ttl),
        resource_resync_interval=seconds("--resource-resync-interval", resource_resync_interval),
        template_timeout=seconds("--template-timeout", template_timeout),
        template_memory=memory_bytes,
        template_workers=template_workers,
        explicit_guresid_namespaces=split_list(explicit_guresid_namespaces),
        manifest_kinds=split_list(manifest_kinds) or DEFAULT_MANIFEST_KINDS,
        builtin_cluster_manifests=builtin_cluster_manifests,
        driver_max_response_bytes=driver_max_response_bytes,
        leader_elect=leader_elect,
        leader_elect_lease_name=leader_elect_lease_name,
        leader_elect_identity=leader_elect_identity or None,
        leader_elect_lease_duration=seconds("--leader-elect-lease-duration", leader_elect_lease_duration),
        leader_elect_renew_deadline=seconds("--leader-elect-renew-deadline", leader_elect_renew_deadline),
        leader_elect_retry_period=seconds("--leader-elect-retry-period", leader_elect_retry_period),
    )

    from strongroom.operator.app import run

    run(config)


# --- keys -------------------------------------------------------------------------------------------------


@main.group("keys")
def keys_group() -> None:
    """Manage the key pair that signs requests to remote drivers."""


@keys_group.command("generate")
@click.option(
    "--bits",
    type=click.IntRange(2048, 16384),
    default=4096,
    show_default=True,
    help="RSA modulus size (Humanitec's key registry asks for 4096).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the private key (PKCS#8 PEM) to this file, created with mode 0600.",
)
@click.option(
    "--print-private-key",
    is_flag=True,
    help="Print the private key on stdout instead (for piping into a secret manager).",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@_one_line_errors
def keys_generate_command(bits: int, out: Path | None, print_private_key: bool, force: bool) -> None:
    """Create an RSA key pair for signing driver requests.

    The public key (PEM) goes to stdout, its SHA-256 fingerprint (the JWT `kid` drivers look keys up by)
    to stderr. Store the private key in a Secret with keys `privateKey` and `organisationID`.
    """
    from strongroom.drivers.signing import (
        generate_private_key,
        private_key_pem,
        public_key_fingerprint,
        public_key_pem,
    )

    if out is None and not print_private_key:
        raise UserError("give --out FILE for the private key, or --print-private-key")
    if out is not None and print_private_key:
        raise UserError("--out and --print-private-key exclude each other")
    key = generate_private_key(bits)
    private = private_key_pem(key)
    if out is not None:
        _write_private(out, private, force=force)
    else:
        sys.stdout.write(private.decode())
    sys.stdout.write(public_key_pem(key).decode())
    sys.stdout.flush()
    if out is not None:
        click.echo(f"private key written to {out} (mode 0600)", err=True)
    click.echo(f"fingerprint (JWT kid): {public_key_fingerprint(key)}", err=True)


def _write_private(path: Path, data: bytes, *, force: bool) -> None:
    """Write a private key so that it is never readable by others, not even for a moment."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise UserError(f"{path} exists; use --force to overwrite it") from None
    with os.fdopen(fd, "wb") as handle:
        # An existing file keeps its old mode through O_TRUNC; tighten it before writing the key.
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)


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
