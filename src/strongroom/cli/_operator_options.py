"""The flags of `strongroom operator run`: the operator's documented configuration interface.

Every flag also reads an environment variable (shown by --help) so the Helm chart and a local shell
configure the process the same way. They are one unit: the list the chart's values and the docs mirror;
`operator.py` turns them into an OperatorConfig.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

P = ParamSpec("P")
R = TypeVar("R")

_LOG_FORMATS = ("json", "text")
_LOG_LEVELS = ("debug", "info", "warning", "error")

_OPTIONS = (
    click.option(
        "--kubeconfig",
        envvar=["STRONGROOM_KUBECONFIG", "KUBECONFIG"],
        show_envvar=True,
        metavar="PATH",
        help="Kubeconfig to use (first file if a list). "
        "Default: in-cluster service account, then ~/.kube/config.",
    ),
    click.option(
        "-n",
        "--namespace",
        "namespaces",
        multiple=True,
        envvar="STRONGROOM_NAMESPACES",
        show_envvar=True,
        metavar="NAME",
        help="Watch only this namespace; repeat for more (env: space- or comma-separated). "
        "The operator namespace is always added. Default: all namespaces.",
    ),
    click.option(
        "-A",
        "--all-namespaces",
        is_flag=True,
        envvar="STRONGROOM_ALL_NAMESPACES",
        show_envvar=True,
        help="Watch all namespaces (the default; conflicts with --namespace).",
    ),
    click.option(
        "--operator-namespace",
        envvar=["STRONGROOM_OPERATOR_NAMESPACE", "POD_NAMESPACE"],
        show_envvar=True,
        default="strongroom-system",
        show_default=True,
        help="Namespace of operator-level SecretStores and the default store.",
    ),
    click.option(
        "--service-account",
        envvar="STRONGROOM_SERVICE_ACCOUNT",
        show_envvar=True,
        default=None,
        help="The operator's own ServiceAccount (in the operator namespace): Vault Kubernetes auth without "
        "serviceAccountRef logs in with a token requested for it. The chart sets it.",
    ),
    click.option(
        "--log-format",
        type=click.Choice(_LOG_FORMATS),
        default="json",
        show_default=True,
        envvar="STRONGROOM_LOG_FORMAT",
        show_envvar=True,
        help="JSON lines for log pipelines, or text for a terminal.",
    ),
    click.option(
        "--log-level",
        type=click.Choice(_LOG_LEVELS, case_sensitive=False),
        default="info",
        show_default=True,
        envvar="STRONGROOM_LOG_LEVEL",
        show_envvar=True,
    ),
    click.option(
        "--health-address",
        default="0.0.0.0",  # noqa: S104  # the kubelet probes over the pod IP
        show_default=True,
        envvar="STRONGROOM_HEALTH_ADDRESS",
        show_envvar=True,
        help="Address of the /healthz and /readyz server.",
    ),
    click.option(
        "--health-port",
        type=click.IntRange(1, 65535),
        default=8081,
        show_default=True,
        envvar="STRONGROOM_HEALTH_PORT",
        show_envvar=True,
    ),
    click.option(
        "--metrics-address",
        default="0.0.0.0",  # noqa: S104  # scraped over the pod IP
        show_default=True,
        envvar="STRONGROOM_METRICS_ADDRESS",
        show_envvar=True,
        help="Address of the Prometheus /metrics server.",
    ),
    click.option(
        "--metrics-port",
        type=click.IntRange(0, 65535),
        default=8080,
        show_default=True,
        envvar="STRONGROOM_METRICS_PORT",
        show_envvar=True,
        help="Port of /metrics; 0 turns the metrics server off.",
    ),
    click.option(
        "--worker-limit",
        type=click.IntRange(min=1),
        default=20,
        show_default=True,
        envvar="STRONGROOM_WORKER_LIMIT",
        show_envvar=True,
        help="Most objects of one kind in flight at once, counting Resources waiting on a remote driver.",
    ),
    click.option(
        "--reconcile-limit",
        type=click.IntRange(min=1),
        default=4,
        show_default=True,
        envvar="STRONGROOM_RECONCILE_LIMIT",
        show_envvar=True,
        help="Most reconciles of one kind working at once (a wait on a remote driver does not count).",
    ),
    click.option(
        "--namespace-worker-share",
        type=click.FloatRange(min=0, max=1, min_open=True),
        default=0.5,
        show_default=True,
        envvar="STRONGROOM_NAMESPACE_WORKER_SHARE",
        show_envvar=True,
        help="Most of one kind's workers the objects of one namespace may hold at once (at least one).",
    ),
    click.option(
        "--namespace-reconcile-rate",
        type=click.FloatRange(min=0),
        default=20.0,
        show_default=True,
        envvar="STRONGROOM_NAMESPACE_RECONCILE_RATE",
        show_envvar=True,
        help="Most reconciles of one kind a namespace starts a second while other namespaces are working, "
        "and for changes to existing objects always (0: no pacing).",
    ),
    click.option(
        "--namespace-reconcile-burst",
        type=click.IntRange(min=1),
        default=100,
        show_default=True,
        envvar="STRONGROOM_NAMESPACE_RECONCILE_BURST",
        show_envvar=True,
        help="Reconciles a namespace may start at once before --namespace-reconcile-rate applies.",
    ),
    click.option(
        "--standalone/--peering",
        default=True,
        show_default=True,
        envvar="STRONGROOM_STANDALONE",
        show_envvar=True,
        help="No effect (the operator no longer uses kopf or its peering); accepted so existing command "
        "lines still work. Several replicas: --leader-elect.",
    ),
    click.option(
        "--refresh-interval",
        default="1h",
        show_default=True,
        envvar="STRONGROOM_REFRESH_INTERVAL",
        show_envvar=True,
        help="How often SecretMappings re-read their stores unless they set spec.refreshInterval, and how "
        "often Workloads are re-rendered to repair drift (Go duration; 0 = never). Jittered by 10%.",
    ),
    click.option(
        "--resource-resync-interval",
        default="1h",
        show_default=True,
        envvar="STRONGROOM_RESOURCE_RESYNC_INTERVAL",
        show_envvar=True,
        help="How often a Resource's driver is called (PUT) again although its inputs did not change, to "
        "repair drift (Go duration, > 0). Counted from status.lastAppliedTime, so restarts do not reset it.",
    ),
    click.option(
        "--driver-max-response-bytes",
        type=click.IntRange(min=1024, max=8 * 1024 * 1024),
        default=1024 * 1024,
        show_default=True,
        envvar="STRONGROOM_DRIVER_MAX_RESPONSE_BYTES",
        show_envvar=True,
        help="Largest answer read from a remote driver, as sent and after decompression, unless its Driver "
        "sets spec.maxResponseBytes; a larger one fails the Resource with DriverAnswerTooLarge.",
    ),
    click.option(
        "--store-check-interval",
        default="5m",
        show_default=True,
        envvar="STRONGROOM_STORE_CHECK_INTERVAL",
        show_envvar=True,
        help="How often each SecretStore's connectivity and credentials are checked (Go duration).",
    ),
    click.option(
        "--store-qps",
        type=click.FloatRange(min=0, min_open=True),
        default=50.0,
        show_default=True,
        envvar="STRONGROOM_STORE_QPS",
        show_envvar=True,
        help="Requests per second to one store, unless its spec.rateLimit says otherwise.",
    ),
    click.option(
        "--store-burst",
        type=click.IntRange(min=1),
        default=100,
        show_default=True,
        envvar="STRONGROOM_STORE_BURST",
        show_envvar=True,
        help="Requests one store may get in a burst, unless its spec.rateLimit says otherwise.",
    ),
    click.option(
        "--store-read-ttl",
        default="10s",
        show_default=True,
        envvar="STRONGROOM_STORE_READ_TTL",
        show_envvar=True,
        help="How long identical reads (same store, key, version, property) share one result (Go duration).",
    ),
    click.option(
        "--template-timeout",
        default="5s",
        show_default=True,
        envvar="STRONGROOM_TEMPLATE_TIMEOUT",
        show_envvar=True,
        help="Wall-clock limit of one Template-driver call (every template rendered and parsed); past it the "
        "render process is killed and the Resource gets TemplateLimitExceeded (Go duration).",
    ),
    click.option(
        "--template-memory",
        default="128Mi",
        show_default=True,
        envvar="STRONGROOM_TEMPLATE_MEMORY",
        show_envvar=True,
        help="Address-space cap of each Template-driver render process (bytes, Ki, Mi, Gi). The processes "
        "count against the pod's memory limit: keep workers x memory + the operator's own below it.",
    ),
    click.option(
        "--template-workers",
        type=click.IntRange(min=1),
        default=2,
        show_default=True,
        envvar="STRONGROOM_TEMPLATE_WORKERS",
        show_envvar=True,
        help="Template-driver render processes (started on first use); renders beyond this wait for one.",
    ),
    click.option(
        "--explicit-guresid-namespaces",
        "explicit_guresid_namespaces",
        multiple=True,
        envvar="STRONGROOM_EXPLICIT_GURESID_NAMESPACES",
        show_envvar=True,
        metavar="NAMES",
        help="Namespaces whose Resources may set spec.guresid (comma-separated or repeated; '*' for all). "
        "Elsewhere a hand-set GUResID is refused (GuresidNotAllowed): it could address another namespace's "
        "driver resource. Default: none.",
    ),
    click.option(
        "--manifest-kinds",
        "manifest_kinds",
        multiple=True,
        envvar="STRONGROOM_MANIFEST_KINDS",
        show_envvar=True,
        metavar="KINDS",
        help="Kinds drivers' namespace/cluster manifests may create (comma-separated or repeated; Kind for "
        "the core group, group/Kind otherwise). Default: ConfigMap,Secret,Service,apps/Deployment.",
    ),
    click.option(
        "--builtin-cluster-manifests/--no-builtin-cluster-manifests",
        default=False,
        show_default=True,
        envvar="STRONGROOM_BUILTIN_CLUSTER_MANIFESTS",
        show_envvar=True,
        help="Let the built-in drivers (echo, template: whatever the Resource's author writes) create "
        "cluster-scoped objects. Remote drivers need spec.allowClusterManifests on a Driver in the operator "
        "namespace instead.",
    ),
    click.option(
        "--leader-elect/--no-leader-elect",
        default=False,
        show_default=True,
        envvar="STRONGROOM_LEADER_ELECT",
        show_envvar=True,
        help="Run as one of several replicas: only the holder of a Lease in the operator namespace writes, "
        "the others stay warm as standbys (the chart turns it on). Off: this process writes as soon as it "
        "starts.",
    ),
    click.option(
        "--leader-elect-lease-name",
        default="strongroom-operator",
        show_default=True,
        envvar="STRONGROOM_LEADER_ELECT_LEASE_NAME",
        show_envvar=True,
        help="Name of the coordination.k8s.io Lease (in the operator namespace) the replicas elect a leader "
        "on.",
    ),
    click.option(
        "--leader-elect-identity",
        default=None,
        envvar="STRONGROOM_LEADER_ELECT_IDENTITY",
        show_envvar=True,
        help="This replica's name in the Lease and in its User-Agent. Default: host name (the pod's) and a "
        "random part, unique per process.",
    ),
    click.option(
        "--leader-elect-lease-duration",
        default="15s",
        show_default=True,
        envvar="STRONGROOM_LEADER_ELECT_LEASE_DURATION",
        show_envvar=True,
        help="How long a standby waits after the Lease last changed before taking it (whole seconds).",
    ),
    click.option(
        "--leader-elect-renew-deadline",
        default="10s",
        show_default=True,
        envvar="STRONGROOM_LEADER_ELECT_RENEW_DEADLINE",
        show_envvar=True,
        help="The leader stops writing, and exits, when it could not renew the Lease for this long "
        "(less than the lease duration).",
    ),
    click.option(
        "--leader-elect-retry-period",
        default="2s",
        show_default=True,
        envvar="STRONGROOM_LEADER_ELECT_RETRY_PERIOD",
        show_envvar=True,
        help="How often the leader renews the Lease and a standby tries to take it.",
    ),
)


def operator_run_options(func: Callable[P, R]) -> Callable[P, R]:
    """Add every `operator run` flag, in the order --help lists them."""
    for option in reversed(_OPTIONS):
        func = option(func)
    return func
