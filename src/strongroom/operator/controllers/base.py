"""What every controller shares: an object cache fed by events, a work queue, retry backoff, and the
slots that bound how many reconciles of a kind work at once.

Workers bound how many objects are in flight; slots bound how many of those are working. A reconcile
holds a slot except while it waits on something slow outside the cluster (`waiting`: a remote driver
that answers 202 is polled for seconds). All reconciles share one event loop, so under a burst each
one's wall time grows with the number working at once (workers x CPU per reconcile) while throughput
does not: a few slots keep a reconcile's own time short, the rest wait their turn in the queue.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from prometheus_client import Counter, Histogram

from strongroom.api.constants import API_VERSION
from strongroom.operator.config import DEFAULT_NAMESPACE_WORKER_SHARE
from strongroom.operator.events import EventRecorder, EventType
from strongroom.operator.failures import describe_failure
from strongroom.operator.relist import gone_during_gap, key_of, log_forgotten, uid_of
from strongroom.operator.slots import FairSlots
from strongroom.operator.workqueue import Priority, WorkQueue, group_limit, run_workers
from strongroom.reconcile.conditions import READY, merge_conditions, not_ready
from strongroom.reconcile.stores import Problem

if TYPE_CHECKING:
    from lightkube.generic_resource import GenericNamespacedResource

    from strongroom.operator.kube import Kube

ObjectKey = tuple[str, str]  # (namespace, name)


def namespace_of(key: ObjectKey) -> str:
    return key[0]


RECONCILE_SECONDS = Histogram(
    "strongroom_reconcile_duration_seconds",
    "Time spent in one reconcile, including store and API calls.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILES = Counter("strongroom_reconciles", "Reconciles by outcome.", ["kind", "result"])
NAMESPACE_PAUSES = Counter(
    "strongroom_namespace_paused",
    "Times a namespace had to wait for its next reconcile because it exceeded --namespace-reconcile-rate "
    "while other namespaces were working.",
    ["kind"],
)

BACKOFF_BASE = 2.0
BACKOFF_MAX = 300.0

# Whether the current reconcile (one worker task) holds a slot: `waiting` gives it back for a while.
_holds_slot: contextvars.ContextVar[bool] = contextvars.ContextVar("strongroom_holds_slot", default=False)
# The namespace the current reconcile's slot is held for (slots are shared fairly between namespaces).
_slot_group: contextvars.ContextVar[str] = contextvars.ContextVar("strongroom_slot_group", default="")


def jittered(seconds: float, spread: float = 0.1) -> float:
    """`seconds` ± `spread`: objects created together must not refresh together forever after."""
    return seconds * random.uniform(1 - spread, 1 + spread)


class Controller(ABC):
    kind: str
    kube: Kube
    # Where a failure's condition is written (the kind's status subresource); None: nowhere.
    status_resource: ClassVar[type[GenericNamespacedResource] | None] = None
    # Events about this kind's objects (set by the runtime); None in tests that build controllers alone.
    events: EventRecorder | None = None
    operator_namespace: str = ""

    def __init__(self) -> None:
        # Fair across namespaces: round-robin turns, and at most `namespace_worker_share` of the workers each.
        self.queue: WorkQueue[ObjectKey] = WorkQueue(group_of=namespace_of)
        self.queue.on_pause = lambda _namespace: NAMESPACE_PAUSES.labels(self.kind).inc()
        self.namespace_worker_share = DEFAULT_NAMESPACE_WORKER_SHARE
        self.bodies: dict[ObjectKey, dict[str, Any]] = {}
        self._generations: dict[ObjectKey, Hashable] = {}
        self._failures: dict[ObjectKey, int] = {}
        # Objects this one owns that someone else changed or deleted since its last reconcile
        # (operator/owned.py reports them), as (apiVersion, kind, namespace, name).
        self._drifted: dict[ObjectKey, set[tuple[str, str, str, str]]] = {}
        # Retries back off exponentially up to this (every failure, whether a store's, a driver's or the API
        # server's, counts towards it).
        self.longest_retry = BACKOFF_MAX
        self._slots = FairSlots(1)  # sized by `run`
        self.logger = logging.getLogger(f"strongroom.controller.{self.kind.lower()}")

    # --- events -------------------------------------------------------------------------------------------

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Feed one watch event. Only new objects and changes of `trigger_of` are queued (status writes are
        ours)."""
        key: ObjectKey = key_of(body)
        if event_type == "DELETED":
            self.bodies.pop(key, None)
            self._generations.pop(key, None)
            self._failures.pop(key, None)
            self._drifted.pop(key, None)
            self.queue.forget(key)
            self.deleted(key)
            return
        if event_type is None and key in self._failures and key in self.bodies:
            # Listed again while failing: a re-list follows a watch gap, so the failure was most likely the
            # API server's absence; retry now, not at the end of a backoff that grew during the outage.
            self.queue.add_after(key, 0.0, Priority.LOW)
        self.bodies[key] = dict(body)
        generation = self.trigger_of(body)
        if key not in self._generations or self._generations[key] != generation:
            previous = self._generations.get(key)
            self._generations[key] = generation
            self._failures.pop(key, None)
            self.changed(key)
            self.queue.add(key, self.priority_of_change(previous, generation), changed=previous is not None)

    def trigger_of(self, body: Mapping[str, Any]) -> Hashable:
        """What must change for an event to queue the object: its generation (so the operator's own status
        writes never do). Kinds whose labels or annotations carry meaning add those."""
        return (body.get("metadata") or {}).get("generation")

    def priority_of_change(self, previous: Hashable | None, current: Hashable) -> Priority:
        """The queue priority for a change of `trigger_of` (`previous` None: a new object): HIGH, someone
        waits for it. A kind whose trigger holds a request for routine work (a forced refresh) may say LOW,
        so that such work, however much of it, does not hold back new objects."""
        return Priority.HIGH

    def _forget(self, key: ObjectKey) -> None:
        body = self.bodies.get(key)
        if body is not None:
            self.observe("DELETED", body)

    def forget_unlisted(self, namespace: str, listed: Sequence[Mapping[str, Any]]) -> None:
        """Before a complete list of `namespace` ("": all) is told: forget the cached objects it shows
        were deleted while the watch was down (operator/relist.py)."""
        gone = gone_during_gap(((key, uid_of(body)) for key, body in self.bodies.items()), listed, namespace)
        log_forgotten(self.kind, gone)
        for key in gone:
            self._forget(key)

    def changed(self, key: ObjectKey) -> None:  # noqa: B027 - optional hook
        """Hook: an object appeared or its spec changed (before it is queued)."""

    def deleted(self, key: ObjectKey) -> None:  # noqa: B027 - optional hook
        """Hook: an object is gone."""

    def log(self, level: int, key: ObjectKey, message: str, *args: object) -> None:
        """Log about one object; the JSON formatter renders it as the line's `object` field."""
        ref = {"apiVersion": API_VERSION, "kind": self.kind, "namespace": key[0], "name": key[1]}
        self.logger.log(level, message, *args, extra={"k8s_ref": ref})

    # --- processing ---------------------------------------------------------------------------------------

    async def run(self, workers: int, slots: int) -> None:
        """Process the queue: `workers` objects in flight, of which at most `slots` working at once."""
        self._slots = FairSlots(max(1, min(slots, workers)), self.namespace_worker_share)
        self.queue.set_group_limit(group_limit(workers, self.namespace_worker_share))
        await run_workers(self.queue, self._process, workers, self.kind)

    @contextlib.asynccontextmanager
    async def waiting(self) -> AsyncIterator[None]:
        """Give the reconcile's slot to another object while this one waits on a remote party."""
        if not _holds_slot.get():
            yield
            return
        group = _slot_group.get()
        self._slots.release(group)
        _holds_slot.set(False)
        try:
            yield
        finally:
            await self._slots.acquire(group)  # if cancelled here, nothing is held and nothing is released
            _holds_slot.set(True)

    async def _process(self, key: ObjectKey) -> None:
        if key not in self.bodies:
            return
        group = namespace_of(key)
        await self._slots.acquire(group, urgent=self.queue.taken_at(key) == Priority.HIGH)
        _slot_group.set(group)
        _holds_slot.set(True)
        try:
            await self._reconcile_and_record(key)
        finally:
            if _holds_slot.get():
                self._slots.release(group)
            _holds_slot.set(False)

    async def _reconcile_and_record(self, key: ObjectKey) -> None:
        started = time.perf_counter()
        try:
            outcome = await self.reconcile(key)
        except Exception as exc:  # API server errors and bugs: log the type, retry with backoff
            delay = self.failed(key, retry=True, fallback_after=None)
            self.log(
                logging.WARNING,
                key,
                "reconcile failed (%s: %s); retrying in %.0fs",
                type(exc).__name__,
                exc,
                delay or 0,
            )
            await self._record_failure(key, describe_failure(exc, self.operator_namespace))
            outcome = "error"
        finally:
            RECONCILE_SECONDS.labels(self.kind).observe(time.perf_counter() - started)
        RECONCILES.labels(self.kind, outcome).inc()
        self.log(logging.DEBUG, key, "reconciled: %s in %.3fs", outcome, time.perf_counter() - started)

    async def _record_failure(self, key: ObjectKey, problem: Problem) -> None:
        """Make a failure visible on the object: the Ready condition (other conditions kept) and an Event."""
        body = self.bodies.get(key)
        if body is None:
            return
        self.report(key, "Warning", problem.reason, problem.message)
        if self.status_resource is None:
            return
        generation = (body.get("metadata") or {}).get("generation")
        previous = [c for c in (body.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
        ready = merge_conditions(
            previous, [not_ready(problem.reason, problem.message)], datetime.now(UTC), generation
        )
        status = {
            "observedGeneration": generation,
            "conditions": [*ready, *(c for c in previous if c.get("type") != READY)],
        }
        current = body.get("status") or {}
        if all(current.get(k) == v for k, v in status.items()):
            return
        try:
            await self.kube.patch_status(self.status_resource, key[0], key[1], status)
        except Exception as exc:  # the status itself cannot be written (RBAC, API server): the log has it
            self.log(logging.WARNING, key, "could not write the failure condition (%s)", type(exc).__name__)
            return
        body["status"] = {**current, **status}

    def report(self, key: ObjectKey, type_: EventType, reason: str, message: str) -> None:
        """An Event about one object (aggregated and rate-limited by the recorder); nothing without one."""
        body = self.bodies.get(key)
        if self.events is None or body is None:
            return
        self.events.record(body, type_, reason, message)

    @abstractmethod
    async def reconcile(self, key: ObjectKey) -> str:
        """Bring one object to its desired state; return an outcome word for metrics."""

    def succeeded(self, key: ObjectKey, refresh_after: float | None) -> None:
        self._failures.pop(key, None)
        if refresh_after is not None and refresh_after > 0:
            self.queue.add_after(key, jittered(refresh_after), Priority.LOW)

    def failed(self, key: ObjectKey, retry: bool, fallback_after: float | None) -> float | None:
        """Schedule a retry with exponential backoff up to `longest_retry` (or, when retrying cannot help,
        a slow re-check)."""
        if not retry:
            if fallback_after:
                self.queue.add_after(key, jittered(fallback_after), Priority.LOW)
            return fallback_after
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        delay = jittered(min(BACKOFF_BASE * 2 ** (count - 1), self.longest_retry), 0.2)
        self.queue.add_after(key, delay, Priority.LOW)
        return delay

    def drifted(self, key: ObjectKey, uid: str, changed: tuple[str, str, str, str]) -> None:
        """An object this one owns was changed or deleted by someone else: reconcile now to repair it.

        Only the owner with that uid is woken (an owner reference names its owner by uid, and a forged
        one names at most an object of the forger's own namespace, whose reconcile is level-based)."""
        body = self.bodies.get(key)
        if body is None or (body.get("metadata") or {}).get("uid") != uid:
            return
        self._drifted.setdefault(key, set()).add(changed)
        self.log(logging.INFO, key, "%s %s was changed or deleted by someone else: repairing", *changed[1::2])
        self.queue.add(key, Priority.HIGH, changed=True)  # edits of what it owns are paced like its own

    def take_drifted(self, key: ObjectKey) -> set[tuple[str, str, str, str]]:
        """The owned objects reported changed since the last call (the reconcile that repairs them asks)."""
        return self._drifted.pop(key, set())

    def wake(self, key: ObjectKey) -> None:
        """Re-run an object now because something it waits for (a store, a resource) changed."""
        if key in self.bodies:
            self.queue.add(key, Priority.HIGH)
