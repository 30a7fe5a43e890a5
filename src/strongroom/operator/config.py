"""Run-time configuration of the operator process.

The CLI (`strongroom operator run`) parses flags and environment variables into one immutable
`OperatorConfig`; everything below the CLI takes that object and never reads flags or the
environment itself, so the process can be unit-tested without a shell.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from strongroom.drivers.sandbox import (
    DEFAULT_MEMORY_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_WORKERS,
    SandboxLimits,
)

if TYPE_CHECKING:
    from strongroom.operator.leader import LeaderElectionSettings

# Kinds drivers' manifests may create by default: what the chart's RBAC grants the operator.
from strongroom.operator.workqueue import Pace
from strongroom.reconcile.resource import DEFAULT_MANIFEST_KINDS as DEFAULT_MANIFEST_KINDS

# Where operator-level SecretStores and the default store live when nothing says otherwise; the
# Helm chart installs into this namespace by convention.
DEFAULT_OPERATOR_NAMESPACE = "strongroom-system"

# Probes come from the kubelet over the pod IP, so in-cluster the servers must listen on all
# interfaces; tests and local runs pass 127.0.0.1.
DEFAULT_BIND_ADDRESS = "0.0.0.0"  # noqa: S104
DEFAULT_HEALTH_PORT = 8081
DEFAULT_METRICS_PORT = 8080

# Without a cap a burst of thousands of objects would hit the API server (and the secret stores) all at
# once. 20 keeps a restart after an outage
# gentle while still parallel.
DEFAULT_WORKER_LIMIT = 20
# Of those, how many reconciles of one kind work at once (a Resource waiting on a remote driver does
# not count). They share one event loop: under a burst, each reconcile's time is about this number
# times its CPU time, while throughput stays the same (bench/resources.py: 4 gives p50 29 ms /
# p99 143 ms per Resource, 20 gives 147 ms / 393 ms, in the same total time).
DEFAULT_RECONCILE_LIMIT = 4
# The most of one kind's workers that the objects of one namespace may hold at once (at least one):
# one tenant's burst or hung driver leaves the other half to everyone else.
DEFAULT_NAMESPACE_WORKER_SHARE = 0.5
# While other namespaces are working, one namespace starts at most this many reconciles of one kind a
# second, after a burst of DEFAULT_NAMESPACE_RECONCILE_BURST: a tenant changing specs without pause
# would otherwise have the operator write two objects per change into the API server that every other
# tenant's reconciles wait on (bench/blast_radius.py, scenario churn). Alone, a namespace is not paced.
DEFAULT_NAMESPACE_RECONCILE_RATE = 20.0
DEFAULT_NAMESPACE_RECONCILE_BURST = 100

# How often a SecretMapping re-reads its stores when it does not say (spec.refreshInterval).
DEFAULT_REFRESH_INTERVAL = 3600.0
# How often a Resource's driver is called again although its inputs did not change (drift repair).
DEFAULT_RESOURCE_RESYNC_INTERVAL = 3600.0
# How often a SecretStore's connectivity and credentials are re-checked.
DEFAULT_STORE_CHECK_INTERVAL = 300.0
# Client-side limits per store; a store's spec.rateLimit overrides them.
DEFAULT_STORE_QPS = 50.0
DEFAULT_STORE_BURST = 100
# How long a read result is shared by identical reads: bounds staleness, makes shared keys cheap.
DEFAULT_STORE_READ_TTL = 10.0
# Largest answer read from a remote driver (as sent and decompressed); a Driver's maxResponseBytes wins.
DEFAULT_DRIVER_MAX_RESPONSE_BYTES = 1024 * 1024

# Leader election (operator/leader.py): client-go's defaults. Off unless asked for (`--leader-elect`, on in
# the chart): a process started by hand on a laptop is usually the only one.
DEFAULT_LEASE_NAME = "strongroom-operator"
DEFAULT_LEASE_DURATION = 15.0
DEFAULT_RENEW_DEADLINE = 10.0
DEFAULT_RETRY_PERIOD = 2.0

# RFC 1123 label, which is what Kubernetes accepts as a namespace name.
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# A DNS subdomain (RFC 1123): what Kubernetes accepts as a Lease name.
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# `Kind` or `group/Kind` (a group is a DNS subdomain).
_MANIFEST_KIND_RE = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Z][A-Za-z0-9]*$")


class LogFormat(enum.StrEnum):
    JSON = "json"
    TEXT = "text"


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def number(self) -> int:
        """The `logging` module's numeric level."""
        return int(logging.getLevelNamesMapping()[self.value.upper()])


@dataclass(frozen=True, slots=True)
class OperatorConfig:
    """Everything `strongroom operator run` can be told; see docs/operator.md."""

    # Empty means cluster-wide.
    namespaces: tuple[str, ...] = ()
    operator_namespace: str = DEFAULT_OPERATOR_NAMESPACE
    # The operator's own ServiceAccount, for Vault Kubernetes auth without serviceAccountRef.
    service_account: str | None = None
    # None means: KUBECONFIG, then in-cluster service account, then ~/.kube/config.
    kubeconfig: str | None = None
    log_format: LogFormat = LogFormat.JSON
    log_level: LogLevel = LogLevel.INFO
    health_address: str = DEFAULT_BIND_ADDRESS
    health_port: int = DEFAULT_HEALTH_PORT
    metrics_address: str = DEFAULT_BIND_ADDRESS
    # 0 disables the metrics server.
    metrics_port: int = DEFAULT_METRICS_PORT
    worker_limit: int = DEFAULT_WORKER_LIMIT
    reconcile_limit: int = DEFAULT_RECONCILE_LIMIT
    namespace_worker_share: float = DEFAULT_NAMESPACE_WORKER_SHARE
    # 0 turns pacing off.
    namespace_reconcile_rate: float = DEFAULT_NAMESPACE_RECONCILE_RATE
    namespace_reconcile_burst: int = DEFAULT_NAMESPACE_RECONCILE_BURST
    # No effect: kept so command lines from before the operator dropped kopf (and its peering) still work.
    # Several replicas use Lease-based election (`leader_elect`, leader.py).
    standalone: bool = True
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL
    store_check_interval: float = DEFAULT_STORE_CHECK_INTERVAL
    store_qps: float = DEFAULT_STORE_QPS
    store_burst: int = DEFAULT_STORE_BURST
    store_read_ttl: float = DEFAULT_STORE_READ_TTL
    resource_resync_interval: float = DEFAULT_RESOURCE_RESYNC_INTERVAL
    # Template-driver renders: wall-clock limit per driver call, address-space cap and number of worker
    # processes (drivers/sandbox.py; workers count against the pod's memory limit).
    template_timeout: float = DEFAULT_TIMEOUT_SECONDS
    template_memory: int = DEFAULT_MEMORY_BYTES
    template_workers: int = DEFAULT_WORKERS
    # Namespaces whose Resources may set spec.guresid ("*": all); none by default.
    explicit_guresid_namespaces: tuple[str, ...] = ()
    manifest_kinds: tuple[str, ...] = DEFAULT_MANIFEST_KINDS
    # Whether the built-in drivers (whose templates tenants write) may emit cluster manifests.
    builtin_cluster_manifests: bool = False
    driver_max_response_bytes: int = DEFAULT_DRIVER_MAX_RESPONSE_BYTES
    # Leader election on a Lease in the operator namespace; identity None: host name and a random part.
    leader_elect: bool = False
    leader_elect_lease_name: str = DEFAULT_LEASE_NAME
    leader_elect_identity: str | None = None
    leader_elect_lease_duration: float = DEFAULT_LEASE_DURATION
    leader_elect_renew_deadline: float = DEFAULT_RENEW_DEADLINE
    leader_elect_retry_period: float = DEFAULT_RETRY_PERIOD

    def __post_init__(self) -> None:
        for ns in (*self.namespaces, self.operator_namespace):
            if not _NAMESPACE_RE.match(ns) or len(ns) > 63:
                raise ValueError(f"not a valid namespace name: {ns!r}")
        for ns in self.explicit_guresid_namespaces:
            if ns != "*" and (not _NAMESPACE_RE.match(ns) or len(ns) > 63):
                raise ValueError(f"--explicit-guresid-namespaces: not a namespace name or '*': {ns!r}")
        for kind in self.manifest_kinds:
            if not _MANIFEST_KIND_RE.match(kind):
                raise ValueError(f"--manifest-kinds: {kind!r} is not Kind or group/Kind")
        for port in (self.health_port, self.metrics_port):
            if not 0 <= port <= 65535:
                raise ValueError(f"port out of range: {port}")
        if self.health_port == 0:
            raise ValueError("the health port cannot be 0: the probes need a fixed port")
        if self.store_qps <= 0 or self.store_burst < 1:
            raise ValueError("--store-qps must be > 0 and --store-burst >= 1")
        if self.store_check_interval <= 0:
            raise ValueError("--store-check-interval must be > 0")
        if self.refresh_interval < 0 or self.store_read_ttl < 0:
            raise ValueError("--refresh-interval and --store-read-ttl cannot be negative")
        if self.resource_resync_interval <= 0:
            raise ValueError("--resource-resync-interval must be > 0")
        if self.driver_max_response_bytes < 1024:
            raise ValueError("--driver-max-response-bytes must be at least 1024")
        if self.worker_limit < 1:
            raise ValueError(f"worker limit must be at least 1, got {self.worker_limit}")
        if self.reconcile_limit < 1:
            raise ValueError(f"reconcile limit must be at least 1, got {self.reconcile_limit}")
        if not 0 < self.namespace_worker_share <= 1:
            raise ValueError(f"--namespace-worker-share must be in (0, 1], got {self.namespace_worker_share}")
        if self.namespace_reconcile_rate < 0:
            raise ValueError(
                f"--namespace-reconcile-rate must be 0 (off) or more, got {self.namespace_reconcile_rate}"
            )
        if self.namespace_reconcile_burst < 1:
            raise ValueError(
                f"--namespace-reconcile-burst must be at least 1, got {self.namespace_reconcile_burst}"
            )
        # The same checks as the pool's, with the flags' names.
        SandboxLimits(self.template_timeout, self.template_memory, self.template_workers)
        if self.leader_elect:
            self.leader_election()  # the same checks as the election's

    def leader_election(self) -> LeaderElectionSettings:
        """The leader election's settings (a fresh random identity each call unless one was given)."""
        from strongroom.operator.leader import LeaderElectionSettings

        if not _SUBDOMAIN_RE.match(self.leader_elect_lease_name) or len(self.leader_elect_lease_name) > 253:
            raise ValueError(f"--leader-elect-lease-name: not a valid name: {self.leader_elect_lease_name!r}")
        identity = {"identity": self.leader_elect_identity} if self.leader_elect_identity is not None else {}
        return LeaderElectionSettings(
            namespace=self.operator_namespace,
            lease_name=self.leader_elect_lease_name,
            lease_duration=self.leader_elect_lease_duration,
            renew_deadline=self.leader_elect_renew_deadline,
            retry_period=self.leader_elect_retry_period,
            **identity,
        )

    @property
    def namespace_pace(self) -> Pace | None:
        if not self.namespace_reconcile_rate:
            return None
        return Pace(self.namespace_reconcile_rate, self.namespace_reconcile_burst)

    @property
    def template_limits(self) -> SandboxLimits:
        return SandboxLimits(self.template_timeout, self.template_memory, self.template_workers)

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def watched_namespaces(self) -> tuple[str, ...]:
        """Namespaces watched in namespaced mode (empty when cluster-wide).

        The operator namespace is always added: operator-level SecretStores (and the default store)
        live there and must be served even when the user lists only application namespaces.
        """
        if self.clusterwide:
            return ()
        return tuple(dict.fromkeys((*self.namespaces, self.operator_namespace)))


def split_list(values: Iterable[str]) -> tuple[str, ...]:
    """Flatten repeated flags (`-n a -n b`) and list forms `a,b` / `"a b"` (env vars) into unique names."""
    names: list[str] = []
    for value in values:
        names.extend(part for part in re.split(r"[\s,]+", value) if part)
    return tuple(dict.fromkeys(names))
