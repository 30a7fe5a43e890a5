"""`strongroom operator run`: the flags become one OperatorConfig, and the operator runs with it.

The flags themselves (names, environment variables, defaults, help) are in `_operator_options`.
"""

from __future__ import annotations

import click

from strongroom.cli._errors import one_line_errors
from strongroom.cli._operator_options import operator_run_options


@click.group("operator")
def operator_group() -> None:
    """Run the in-cluster operator."""


@operator_group.command("run")
@operator_run_options
@one_line_errors
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
