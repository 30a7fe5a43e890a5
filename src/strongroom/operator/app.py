"""The operator process: kopf embedded in our own asyncio loop, next to the probe/metrics servers.

Why not `kopf run file.py`: the process needs its own flags, its own log format, probes with our
semantics and a registry that holds exactly our handlers. kopf is used as a library:
`kopf.spawn_tasks` + `kopf.run_tasks` with an explicit registry, settings and stop flag.

Lifecycle: load the cluster configuration (fail fast, one line) -> start probe and metrics servers
-> (with --leader-elect: start campaigning for the Lease; the controllers' workers wait until this
replica leads, leader.py) -> spawn kopf -> run until SIGTERM/SIGINT -> kopf stops its watchers and
workers -> (release the Lease) -> servers stop -> "stopped" log line -> exit 0. A leader that loses the
Lease stops the same way but exits 1, to be restarted as a standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from typing import Any

import kopf

# kopf does not export Insights; it is the only way to see what it watches. kopf is pinned, and
# tests/integration/test_operator_process.py fails if this ever stops working.
from kopf._cogs.structs.references import Insights

from strongroom import __version__
from strongroom.api.constants import GROUP
from strongroom.net.fence import install_fence, remove_fence
from strongroom.operator import handlers, metrics
from strongroom.operator.config import OperatorConfig
from strongroom.operator.controllers.resource import ResourcePolicy
from strongroom.operator.health import ApiServerProbe, HealthState, HttpServers, health_app, metrics_app
from strongroom.operator.kubeconfig import (
    USER_AGENT,
    connection_info,
    load_cluster_access,
    replica_user_agent,
)
from strongroom.operator.leader import IS_LEADER, LeaderElector
from strongroom.operator.logging import configure_logging
from strongroom.operator.runtime import Runtime, RuntimeSettings
from strongroom.reconcile.resource import GuresidPolicy
from strongroom.stores.guard import GuardSettings

logger = logging.getLogger("strongroom.operator")

FINALIZER = f"{GROUP}/finalizer"
# kopf's own finalizer must not be ours: with only event handlers registered, kopf removes its finalizer
# from every object it sees ("no handlers require it"), which would strip the one the Resource controller
# adds itself. No strongroom handler uses kopf's deletion handling, so kopf never adds this one.
KOPF_FINALIZER = f"kopf.{GROUP}/finalizer"
# Seconds the API server keeps a watch open before ending it cleanly; kopf then re-watches. Short
# enough to recover from connections silently dropped by load balancers (python-stack.md 10.2).
WATCH_SERVER_TIMEOUT = 600


class _NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf builds a diff-base (a deep copy of the whole object, managedFields and all) of every event for
    its change handlers, and the operator registers none: only event handlers (handlers/), which get the
    raw event. Measured at about a twentieth of the operator's CPU in a burst of new SecretMappings. An
    empty essence costs nothing; a change handler added later would see no diffs, so register none."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return {}

    def fetch(self, *, body: Any) -> None:
        return None


def build_settings(config: OperatorConfig) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    # A little above the server's timeout, so the server ends the watch, not the client.
    settings.watching.client_timeout = WATCH_SERVER_TIMEOUT + 30
    settings.watching.connect_timeout = 30
    # kopf retries a failed request (a watch too) after 1, 1, 2, 3, 5, 8, 13, 21 s; a watch broken by an API
    # server outage then resumed up to 21 s after the server was back (tests/integration/test_faults.py).
    # The same number of tries, none more than 5 s apart: watches resume within 5 s of its return.
    settings.networking.error_backoffs = (1, 1, 2, 3, 5, 5, 5, 5)
    # kopf's per-object workers only hand events to our controllers, whose own workers (as many as
    # --worker-limit) do the real work. Capping kopf's workers would stall event delivery: each one
    # lingers for idle_timeout after its last event, so a burst of new objects waited in batches of
    # worker_limit every idle_timeout (measured: 100 new mappings took 21 s instead of 1 s).
    settings.queueing.worker_limit = None
    settings.queueing.idle_timeout = 1.0
    # Handler progress and the diff-base under our own prefix, v2 keys only (a fresh project has no
    # v1 annotations to stay compatible with); no diff-base is built (`_NoDiffBase`).
    settings.persistence.finalizer = KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP, v1=False)
    settings.persistence.diffbase_storage = _NoDiffBase(
        prefix=GROUP, key="last-handled-configuration", v1=False
    )
    # kopf posts no Events: its log lines (which can carry API error texts) must never reach readers of a
    # namespace's events. The operator posts its own, from conditions' reasons and messages
    # (operator/events.py).
    settings.posting.enabled = False
    settings.posting.loggers = False
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "strongroom"
    settings.posting.reporting_instance = socket.gethostname()
    settings.posting.event_name_prefix = "strongroom-event-"
    # When the process is told to stop but cannot, the kubelet's SIGKILL after the grace period is
    # the backstop; kopf's own 10-minute self-kill would only matter outside Kubernetes.
    settings.process.ultimate_exiting_timeout = 60
    return settings


class LeadershipLost(Exception):
    """This replica was the leader and lost the Lease: it stopped, and must be restarted as a standby."""


def build_registry(config: OperatorConfig, user_agent: str = USER_AGENT) -> kopf.OperatorRegistry:
    # A plain registry, not kopf's "smart" default one: that one piggybacks on whichever Kubernetes
    # client library happens to be importable; ours always logs in the same, documented way.
    registry = kopf.OperatorRegistry()

    def login(**_: Any) -> kopf.ConnectionInfo:
        # Re-read on every (re-)login: in a pod the projected service account token rotates.
        return connection_info(load_cluster_access(config.kubeconfig), user_agent)

    kopf.on.login(registry=registry, id="strongroom-login")(login)
    handlers.register_all(registry)
    return registry


def _describe_scope(config: OperatorConfig) -> str:
    return "all namespaces" if config.clusterwide else ", ".join(config.watched_namespaces)


async def run_operator(config: OperatorConfig, *, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set or SIGTERM/SIGINT arrives. Raises ValueError on bad configuration."""
    access = load_cluster_access(config.kubeconfig)
    connection_info(access)  # unsupported credentials (exec plugins) fail here, before anything runs
    stop = stop if stop is not None else asyncio.Event()
    election = config.leader_election() if config.leader_elect else None
    user_agent = replica_user_agent(election.identity) if election is not None else USER_AGENT
    elector = LeaderElector(access.config, election, user_agent) if election is not None else None
    logger.info(
        "strongroom operator %s starting: watching %s; operator namespace %s; cluster from %s",
        __version__,
        _describe_scope(config),
        config.operator_namespace,
        access.source,
    )

    runtime = Runtime(
        access.config,
        RuntimeSettings(
            operator_namespace=config.operator_namespace,
            service_account=config.service_account,
            workers=config.worker_limit,
            slots=config.reconcile_limit,
            namespace_worker_share=config.namespace_worker_share,
            namespace_pace=config.namespace_pace,
            refresh_interval=config.refresh_interval,
            store_check_interval=config.store_check_interval,
            resource_resync_interval=config.resource_resync_interval,
            template_limits=config.template_limits,
            resource_policy=ResourcePolicy(
                guresid=GuresidPolicy(frozenset(config.explicit_guresid_namespaces)),
                manifest_kinds=frozenset(config.manifest_kinds),
                builtin_cluster_manifests=config.builtin_cluster_manifests,
            ),
            driver_max_response_bytes=config.driver_max_response_bytes,
            store_guard=GuardSettings(
                qps=config.store_qps, burst=config.store_burst, read_ttl=config.store_read_ttl
            ),
            user_agent=user_agent,
        ),
    )
    probe = ApiServerProbe(access.config)
    insights = Insights()
    state = HealthState(
        required=handlers.REQUIRED_KINDS,
        api_check=probe.check,
        scanned=lambda: insights.ready_resources.is_set() and insights.ready_namespaces.is_set(),
        watched=lambda: {(r.group, r.plural) for r in insights.watched_resources},
        role=lambda: "leader" if elector is None or elector.leadership.held else "standby",
    )
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        if not stop.is_set():
            logger.info("received %s, stopping", signum.name)
        state.stopping = True
        stop.set()

    def install_signal_handlers() -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not in the main thread
                loop.add_signal_handler(signum, on_signal, signum)

    install_signal_handlers()
    servers = HttpServers()
    ready_flag = asyncio.Event()

    async def follow_lifecycle() -> None:
        await ready_flag.wait()
        state.started = True
        logger.info("kopf started")
        # A stop requested through `stop` (not a signal) must turn readiness off at once, too.
        await stop.wait()
        state.stopping = True

    lost_lease = False

    async def follow_leadership(elector: LeaderElector) -> None:
        nonlocal lost_lease
        await elector.lost.wait()
        lost_lease = True
        state.stopping = True
        stop.set()

    lifecycle = asyncio.create_task(follow_lifecycle(), name="strongroom lifecycle")
    leadership = (
        asyncio.create_task(follow_leadership(elector), name="strongroom leadership")
        if elector is not None
        else None
    )
    if elector is not None:
        # Every write of this process asks the lease first (net/fence.py); without election it always may.
        install_fence(elector.leadership.check)
        IS_LEADER.set(0)
    else:
        IS_LEADER.set(1)
    state.start_heartbeat()
    try:
        await servers.start(health_app(state), config.health_address, config.health_port, "health")
        if config.metrics_port:
            await servers.start(metrics_app(), config.metrics_address, config.metrics_port, "metrics")
        # The controllers' workers start before kopf: tasks that exist now are ours, and kopf
        # cancels every task created after it started.
        await runtime.prime(config.watched_namespaces)
        # Everything imported and loaded so far lives as long as the process: keep it out of the cyclic
        # collector's full passes, which otherwise stop the loop for 80+ ms (measured) mid-burst.
        gc.freeze()
        if elector is not None:
            elector.start()
        runtime.start(elector.leading if elector is not None else None)
        existing = asyncio.all_tasks()
        tasks = await kopf.spawn_tasks(
            registry=build_registry(config, user_agent),
            settings=build_settings(config),
            insights=insights,
            memo=kopf.Memo(config=config, cluster=access, runtime=runtime),
            standalone=True if config.standalone else None,
            clusterwide=config.clusterwide,
            namespaces=config.watched_namespaces,
            stop_flag=stop,
            ready_flag=ready_flag,
        )
        # kopf replaced our signal handlers with its own; take them back so that every stop
        # (signal or `stop`) goes one way and readiness turns false at once.
        install_signal_handlers()
        await kopf.run_tasks(tasks, ignored=existing)
    finally:
        state.stopping = True
        metrics.READY.set(0)
        for task in (lifecycle, leadership):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await runtime.stop()
        if elector is not None:
            # Only now that no worker runs: a standby may take over the moment the Lease is released.
            await elector.stop(release=not lost_lease)
            remove_fence()
        await servers.stop()
        await probe.aclose()
        await state.stop_heartbeat()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
        logger.info("stopped")
    if lost_lease:
        raise LeadershipLost("lost the leader Lease; exiting to restart as a standby")


def run(config: OperatorConfig) -> None:
    """Entry point of `strongroom operator run`: configure logging, run, return when stopped (exit 1 when
    the process stopped because it lost the leader Lease)."""
    configure_logging(config.log_format, config.log_level)
    try:
        asyncio.run(run_operator(config))
    except LeadershipLost:
        raise SystemExit(1) from None
