"""The operator process: the controllers, their watches and the probe/metrics servers on one asyncio loop.

Lifecycle: load the cluster configuration (fail fast, one line) -> start probe and metrics servers
-> load SecretStores and Drivers -> (with --leader-elect: start campaigning for the Lease; the controllers'
workers wait until this replica leads, leader.py) -> start the workers and one list+watch per kind and
namespace (listwatch.py) -> run until SIGTERM/SIGINT -> stop the watches and workers -> (release the
Lease) -> servers stop -> "stopped" log line -> exit 0. A leader that loses the Lease stops the same way
but exits 1, to be restarted as a standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from strongroom import __version__
from strongroom.api.constants import GROUP
from strongroom.net.fence import install_fence, remove_fence
from strongroom.operator import metrics
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
from strongroom.operator.runtime import WATCHED_KINDS, Runtime, RuntimeSettings
from strongroom.reconcile.resource import GuresidPolicy
from strongroom.stores.guard import GuardSettings

logger = logging.getLogger("strongroom.operator")

FINALIZER = f"{GROUP}/finalizer"
#: (group, plural) of every kind the operator serves: /readyz waits until each is listed.
REQUIRED_KINDS: frozenset[tuple[str, str]] = frozenset((GROUP, plural) for plural, _ in WATCHED_KINDS)


class LeadershipLost(Exception):
    """This replica was the leader and lost the Lease: it stopped, and must be restarted as a standby."""


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
    state = HealthState(
        required=REQUIRED_KINDS,
        api_check=probe.check,
        scanned=runtime.scanned,
        watched=lambda: {(GROUP, w.collection.plural) for w in runtime.watches},
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

    async def follow_lifecycle() -> None:
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
        await runtime.watch(config.watched_namespaces)
        # Everything imported and loaded so far lives as long as the process: keep it out of the cyclic
        # collector's full passes, which otherwise stop the loop for 80+ ms (measured) mid-burst.
        gc.freeze()
        if elector is not None:
            elector.start()
        runtime.start(elector.leading if elector is not None else None)
        state.started = True
        logger.info("started: watching %s", _describe_scope(config))
        await stop.wait()
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
