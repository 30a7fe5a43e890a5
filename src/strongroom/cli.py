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
    help="Most objects handled at the same time.",
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
    help="How often SecretMappings re-read their stores unless they set spec.refreshInterval "
    "(Go duration; 0 = never). Refreshes are jittered by 10%.",
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
@_one_line_errors
def operator_run_command(
    kubeconfig: str | None,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    operator_namespace: str,
    log_format: str,
    log_level: str,
    health_address: str,
    health_port: int,
    metrics_address: str,
    metrics_port: int,
    worker_limit: int,
    standalone: bool,
    refresh_interval: str,
    store_check_interval: str,
    store_qps: float,
    store_burst: int,
    store_read_ttl: str,
) -> None:
    """Run the operator: watch strongroom resources and reconcile them until SIGTERM/SIGINT."""
    from strongroom.api.common import parse_duration
    from strongroom.operator.config import LogFormat, LogLevel, OperatorConfig, split_namespaces

    def seconds(flag: str, text: str) -> float:
        try:
            return parse_duration(text).total_seconds()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=flag) from None

    watched = split_namespaces(namespaces)
    if watched and all_namespaces:
        raise click.UsageError("--namespace and --all-namespaces exclude each other")
    config = OperatorConfig(
        namespaces=watched,
        operator_namespace=operator_namespace,
        kubeconfig=kubeconfig or None,
        log_format=LogFormat(log_format),
        log_level=LogLevel(log_level.lower()),
        health_address=health_address,
        health_port=health_port,
        metrics_address=metrics_address,
        metrics_port=metrics_port,
        worker_limit=worker_limit,
        standalone=standalone,
        refresh_interval=seconds("--refresh-interval", refresh_interval),
        store_check_interval=seconds("--store-check-interval", store_check_interval),
        store_qps=store_qps,
        store_burst=store_burst,
        store_read_ttl=seconds("--store-read-ttl", store_read_ttl),
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
