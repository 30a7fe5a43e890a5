"""Operator mode: check the platform Drivers, server-side apply the CR set, prune what left it, wait until
everything is Ready.

0. Before anything is applied: every Driver the Resources use must be installed in the operator namespace
   and allow the app namespace (`check_drivers`). The deploy installs no Driver itself: Drivers are the
   platform admin's, and the operator refuses to sign for a Driver in an app namespace that names no key
   of its own.
1. The Namespace, then every object of the set, in the set's order, with server-side apply under field
   manager `strongroom` (conflicting fields are taken over: the orchestrator owns these objects).
2. Prune: strongroom objects in the namespace labelled with this app and env that are not in the set are
   deleted. Objects without those labels (made by hand, or by the operator, such as WorkloadPatches from
   `update` outputs) are never touched. Labelled Drivers are copies made by earlier versions: they go
   too, since the operator would find them before the platform's Driver and refuse them.
3. Wait: until every object is Ready for its current generation and every pruned object is gone (a
   Resource's finalizer deprovisions it through its driver first), or until the timeout, or until an
   object reports `Stalled`.
4. For the status table, once: each Workload's pods, read from the Deployments and StatefulSets its
   status lists (read only; not waited for).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pydantic

from strongroom.api import constants as c
from strongroom.api.driver import Driver
from strongroom.orchestrator import naming
from strongroom.orchestrator.emit import MANAGED_KINDS, CRSet
from strongroom.orchestrator.kube import Cluster, ClusterError
from strongroom.orchestrator.plan import Plan
from strongroom.orchestrator.status import (
    WAITED_KINDS,
    ObjectState,
    deleted_state,
    object_state,
    pod_controllers,
    pods,
)


@dataclass
class DeployOutcome:
    states: list[ObjectState] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return all(state.ready for state in self.states)


async def check_drivers(cluster: Cluster, plan: Plan, operator_namespace: str) -> list[str]:
    """One line per Driver the plan's Resources use that they could not use: missing from the operator
    namespace, not allowing the app namespace, or unreadable. Empty when all are in place.

    A Driver of the same name in the app namespace itself is not counted: the operator would use it only
    if it signs with a key of its own, and the deploy never makes one (earlier versions' copies, labelled
    with this app and env, are pruned).
    """
    namespace = plan.namespace
    problems: list[str] = []
    for name in plan.remote_driver_types():
        if name in plan.drivers:
            how = "(strongroom render --drivers prints it)"
        else:
            how = "(it is not among the definition files: get it from the driver's author)"
        install = f"apply it there with allowedNamespaces [{namespace}] {how}"
        try:
            live = await cluster.get(c.API_VERSION, "Driver", operator_namespace, name)
        except ClusterError as exc:
            problems.append(
                f"Driver {name!r}: cannot check it in namespace {operator_namespace}: {exc} (the deploy "
                "needs get on drivers.strongroom.dev there)"
            )
            continue
        if live is None:
            problems.append(f"Driver {name!r} is not installed in namespace {operator_namespace}: {install}")
            continue
        try:
            driver = Driver.model_validate(live)
        except pydantic.ValidationError:
            problems.append(f"Driver {operator_namespace}/{name} is not a valid Driver: {install}")
            continue
        if namespace != operator_namespace and not driver.spec.allows(namespace):
            allowed = ", ".join(driver.spec.allowed_namespaces or []) or "none"
            problems.append(
                f"Driver {name!r} in namespace {operator_namespace} does not allow namespace {namespace} "
                f"(allowedNamespaces: {allowed}): add {namespace} to its spec.allowedNamespaces {how}"
            )
    return problems


async def apply_set(cluster: Cluster, crset: CRSet) -> None:
    for obj in crset.objects:
        await cluster.apply(obj)


async def prune(
    cluster: Cluster,
    crset: CRSet,
    kinds: Sequence[str] = ("WorkloadPatch", "Workload", "SecretMapping", "Resource", "Driver"),
) -> list[tuple[str, str]]:
    """Delete labelled strongroom objects of this app/env that the set no longer has; (kind, name) each.

    Workloads and patches go first, so nothing is rendered against a Resource that is going away. The set
    has no Drivers, so every labelled Driver (a copy an earlier version made) goes: Resources, those being
    deleted included, then find the platform's Driver in the operator namespace.
    """
    wanted = {(obj["kind"], obj["metadata"]["name"]) for obj in crset.strongroom_objects()}
    labels = naming.labels_for(crset.app, crset.env)
    deleted: list[tuple[str, str]] = []
    for kind in kinds:
        assert kind in MANAGED_KINDS
        for obj in await cluster.list(c.API_VERSION, kind, crset.namespace, labels):
            name = obj["metadata"]["name"]
            if (kind, name) not in wanted and await cluster.delete(
                c.API_VERSION, kind, crset.namespace, name
            ):
                deleted.append((kind, name))
    return deleted


async def observe(cluster: Cluster, crset: CRSet, pruned: Sequence[tuple[str, str]]) -> list[ObjectState]:
    states: list[ObjectState] = []
    for obj in crset.strongroom_objects():
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind not in WAITED_KINDS:
            continue
        live = await cluster.get(c.API_VERSION, kind, crset.namespace, name)
        states.append(object_state(kind, name, live))
    for kind, name in pruned:
        live = await cluster.get(c.API_VERSION, kind, crset.namespace, name)
        states.append(deleted_state(kind, name, live))
    return states


async def with_pods(cluster: Cluster, namespace: str, states: Sequence[ObjectState]) -> list[ObjectState]:
    """The states with each (not deleted) Workload's pods filled in; a read error is kept per Workload."""
    out: list[ObjectState] = []
    for state in states:
        if state.kind != "Workload" or state.deleting:
            out.append(state)
            continue
        try:
            live = await cluster.get(c.API_VERSION, "Workload", namespace, state.name)
            controllers = [
                await cluster.get(api_version, kind, namespace, name)
                for api_version, kind, name in pod_controllers(live)
            ]
        except ClusterError as exc:
            out.append(dataclasses.replace(state, pods_error=str(exc)))
            continue
        out.append(dataclasses.replace(state, pods=pods(controllers)))
    return out


async def deploy(
    cluster: Cluster,
    crset: CRSet,
    *,
    wait_seconds: float,
    on_progress: Callable[[list[ObjectState], float], None] | None = None,
    interval: float = 1.0,
) -> DeployOutcome:
    start = time.monotonic()
    await apply_set(cluster, crset)
    pruned = await prune(cluster, crset)
    outcome = DeployOutcome(pruned=[f"{kind}/{name}" for kind, name in pruned])
    while True:
        states = await observe(cluster, crset, pruned)
        outcome.states = states
        elapsed = time.monotonic() - start
        if on_progress is not None:
            on_progress(states, elapsed)
        done = all(state.ready for state in states)
        stalled = any(state.stalled for state in states)
        outcome.timed_out = not done and not stalled and elapsed >= wait_seconds
        if done or stalled or outcome.timed_out:
            outcome.states = await with_pods(cluster, crset.namespace, states)
            return outcome
        await asyncio.sleep(min(interval, max(wait_seconds - elapsed, 0.05)))
