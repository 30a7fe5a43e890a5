"""What every controller shares: an object cache fed by events, a work queue, retry backoff."""

from __future__ import annotations

import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter, Histogram

from strongroom.api.constants import API_VERSION
from strongroom.operator.workqueue import Priority, WorkQueue, run_workers

ObjectKey = tuple[str, str]  # (namespace, name)

RECONCILE_SECONDS = Histogram(
    "strongroom_reconcile_duration_seconds",
    "Time spent in one reconcile, including store and API calls.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RECONCILES = Counter("strongroom_reconciles", "Reconciles by outcome.", ["kind", "result"])

BACKOFF_BASE = 2.0
BACKOFF_MAX = 300.0


def jittered(seconds: float, spread: float = 0.1) -> float:
    """`seconds` ± `spread`: objects created together must not refresh together forever after."""
    return seconds * random.uniform(1 - spread, 1 + spread)


class Controller(ABC):
    kind: str

    def __init__(self) -> None:
        self.queue: WorkQueue[ObjectKey] = WorkQueue()
        self.bodies: dict[ObjectKey, dict[str, Any]] = {}
        self._generations: dict[ObjectKey, int | None] = {}
        self._failures: dict[ObjectKey, int] = {}
        self.logger = logging.getLogger(f"strongroom.controller.{self.kind.lower()}")

    # --- events -------------------------------------------------------------------------------------------

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Feed one watch event. Only new objects and spec changes are queued (status writes are ours)."""
        meta = body.get("metadata") or {}
        key: ObjectKey = (meta.get("namespace") or "", meta.get("name") or "")
        if event_type == "DELETED":
            self.bodies.pop(key, None)
            self._generations.pop(key, None)
            self._failures.pop(key, None)
            self.queue.forget(key)
            self.deleted(key)
            return
        self.bodies[key] = dict(body)
        generation = meta.get("generation")
        if key not in self._generations or self._generations[key] != generation:
            self._generations[key] = generation
            self._failures.pop(key, None)
            self.changed(key)
            self.queue.add(key, Priority.HIGH)

    def changed(self, key: ObjectKey) -> None:  # noqa: B027 - optional hook
        """Hook: an object appeared or its spec changed (before it is queued)."""

    def deleted(self, key: ObjectKey) -> None:  # noqa: B027 - optional hook
        """Hook: an object is gone."""

    def log(self, level: int, key: ObjectKey, message: str, *args: object) -> None:
        """Log about one object; the JSON formatter renders it as the line's `object` field."""
        ref = {"apiVersion": API_VERSION, "kind": self.kind, "namespace": key[0], "name": key[1]}
        self.logger.log(level, message, *args, extra={"k8s_ref": ref})

    # --- processing ---------------------------------------------------------------------------------------

    async def run(self, workers: int) -> None:
        await run_workers(self.queue, self._process, workers, self.kind)

    async def _process(self, key: ObjectKey) -> None:
        if key not in self.bodies:
            return
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
            outcome = "error"
        finally:
            RECONCILE_SECONDS.labels(self.kind).observe(time.perf_counter() - started)
        RECONCILES.labels(self.kind, outcome).inc()
        self.log(logging.DEBUG, key, "reconciled: %s in %.3fs", outcome, time.perf_counter() - started)

    @abstractmethod
    async def reconcile(self, key: ObjectKey) -> str:
        """Bring one object to its desired state; return an outcome word for metrics."""

    def succeeded(self, key: ObjectKey, refresh_after: float | None) -> None:
        self._failures.pop(key, None)
        if refresh_after is not None and refresh_after > 0:
            self.queue.add_after(key, jittered(refresh_after), Priority.LOW)

    def failed(self, key: ObjectKey, retry: bool, fallback_after: float | None) -> float | None:
        """Schedule a retry with exponential backoff (or, when retrying cannot help, a slow re-check)."""
        if not retry:
            if fallback_after:
                self.queue.add_after(key, jittered(fallback_after), Priority.LOW)
            return fallback_after
        count = self._failures.get(key, 0) + 1
        self._failures[key] = count
        delay = jittered(min(BACKOFF_BASE * 2 ** (count - 1), BACKOFF_MAX), 0.2)
        self.queue.add_after(key, delay, Priority.LOW)
        return delay

    def wake(self, key: ObjectKey) -> None:
        """Re-run an object now because something it waits for (a store, a resource) changed."""
        if key in self.bodies:
            self.queue.add(key, Priority.HIGH)
