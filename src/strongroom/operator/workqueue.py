"""A level-based work queue in the manner of client-go's, with two priorities.

- A key is queued at most once; adding it again while queued only raises its priority.
- A key being processed is never processed twice at once; if it is added meanwhile it is marked
  dirty and runs again right after.
- New and changed objects (`Priority.HIGH`) are always taken before periodic refreshes
  (`Priority.LOW`), so a first sync never waits behind a refresh backlog.
- `add_after` schedules a key for later (refresh, retry with backoff) on one timer heap, not one
  task per object.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

logger = logging.getLogger("strongroom.operator.workqueue")


class Priority(enum.IntEnum):
    HIGH = 0  # created or changed: someone is waiting for it
    LOW = 1  # periodic refresh, retries, dependants woken by another object


class WorkQueue(Generic[K]):
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ready: list[tuple[int, int, K]] = []  # heap of (priority, sequence, key)
        self._queued: dict[K, Priority] = {}
        self._processing: set[K] = set()
        self._dirty: dict[K, Priority] = {}
        self._delayed: list[tuple[float, int, K, Priority]] = []
        self._delayed_due: dict[K, float] = {}
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._queued)

    @property
    def delayed_count(self) -> int:
        return len(self._delayed_due)

    def add(self, key: K, priority: Priority = Priority.HIGH) -> None:
        if key in self._processing:
            current = self._dirty.get(key)
            self._dirty[key] = priority if current is None else min(current, priority)
            return
        current = self._queued.get(key)
        if current is not None and current <= priority:
            return
        # A new entry (or a raised priority); the stale heap entry is skipped when popped.
        self._queued[key] = priority
        heapq.heappush(self._ready, (priority, next(self._seq), key))
        self._wakeup.set()

    def add_after(self, key: K, delay: float, priority: Priority = Priority.LOW) -> None:
        """Queue `key` after `delay` seconds; an earlier pending schedule for the key wins."""
        due = self._clock() + max(0.0, delay)
        existing = self._delayed_due.get(key)
        if existing is not None and existing <= due:
            return
        self._delayed_due[key] = due
        heapq.heappush(self._delayed, (due, next(self._seq), key, priority))
        self._wakeup.set()

    def forget(self, key: K) -> None:
        """Drop pending schedules for a key (the object was deleted)."""
        self._delayed_due.pop(key, None)
        self._queued.pop(key, None)
        self._dirty.pop(key, None)

    def _promote_due(self) -> float | None:
        """Move due delayed keys into the ready heap; return seconds until the next one is due."""
        now = self._clock()
        while self._delayed:
            due, _, key, priority = self._delayed[0]
            if self._delayed_due.get(key) != due:
                heapq.heappop(self._delayed)  # superseded by an earlier schedule or forgotten
                continue
            if due > now:
                return due - now
            heapq.heappop(self._delayed)
            del self._delayed_due[key]
            self.add(key, priority)
        return None

    async def get(self) -> K:
        """Wait for the next key (highest priority first) and mark it as processing."""
        while True:
            wait = self._promote_due()
            while self._ready:
                priority, _, key = heapq.heappop(self._ready)
                if self._queued.get(key) != priority:
                    continue  # stale entry
                del self._queued[key]
                self._processing.add(key)
                return key
            if self._closed:
                raise QueueClosed
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait)

    def done(self, key: K) -> None:
        """Processing of `key` finished; run it again if it was added meanwhile."""
        self._processing.discard(key)
        priority = self._dirty.pop(key, None)
        if priority is not None:
            self.add(key, priority)

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()


class QueueClosed(Exception):
    """The queue was closed; workers stop."""


async def run_workers(
    queue: WorkQueue[K], handle: Callable[[K], Awaitable[None]], count: int, name: str
) -> None:
    """Run `count` workers until the queue closes or the task is cancelled."""

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except QueueClosed:
                return
            try:
                await handle(key)
            except Exception:
                # A bug in one reconcile must not stop the worker; the handler owns retries.
                logger.exception("%s: unexpected error while reconciling %s", name, key)
            finally:
                queue.done(key)

    async with asyncio.TaskGroup() as group:
        for index in range(count):
            group.create_task(worker(), name=f"{name}-worker-{index}")
