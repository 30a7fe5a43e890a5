"""A level-based work queue in the manner of client-go's, with two priorities, fair across namespaces.

- A key is queued at most once; adding it again while queued only raises its priority.
- A key being processed is never processed twice at once; if it is added meanwhile it is marked
  dirty and runs again right after.
- New and changed objects (`Priority.HIGH`) are taken before periodic refreshes and retries
  (`Priority.LOW`), so a first sync does not wait behind a refresh backlog — but not forever: while
  both are waiting, every `LOW_TURN_EVERY`-th key taken is a LOW one, so one tenant changing specs
  without pause cannot stop everyone's refreshes and retries.
- Within a priority, keys are served round-robin across groups (the controllers group by namespace):
  a group with 1000 waiting keys gets one turn per round, like a group with one.
- A group may have at most `group_limit` keys processing at once; its further keys wait in the queue
  (not in a worker) and the group skips its turns until one of them is done.
- `add_after` schedules a key for later (refresh, retry with backoff) on one timer heap, not one
  task per object.

Every operation is O(1) amortised, except the timer heap's O(log n).
"""

from __future__ import annotations

import asyncio
import collections
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

# While HIGH and LOW keys are both waiting, one take in this many goes to LOW: new objects still get
# most of the throughput, and refreshes and retries keep moving at a fifth of it under any churn.
LOW_TURN_EVERY = 5


class Priority(enum.IntEnum):
    HIGH = 0  # created or changed: someone is waiting for it
    LOW = 1  # periodic refresh, retries, dependants woken by another object


def _one_group(_key: Hashable) -> Hashable:
    return None


class _Lane(Generic[K]):
    """The keys of one priority: a FIFO per group, and the ring of groups that may take a turn.

    Entries are not removed when a key is raised to another priority or forgotten; the queue's
    `_queued` map is the truth and stale entries are skipped when they come up.
    """

    def __init__(self) -> None:
        self.waiting: dict[Hashable, collections.deque[K]] = {}
        # Groups with waiting keys and room to process one, in turn order (dict order, O(1) rotation).
        self.ring: dict[Hashable, None] = {}

    def push(self, group: Hashable, key: K, eligible: bool) -> None:
        self.waiting.setdefault(group, collections.deque()).append(key)
        if eligible:
            self.ring.setdefault(group, None)


def group_limit(workers: int, share: float) -> int:
    """How many of `workers` one group may hold at once: `share` of them, at least one."""
    return max(1, int(workers * share))


class WorkQueue(Generic[K]):
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        group_of: Callable[[K], Hashable] = _one_group,
    ) -> None:
        self._clock = clock
        self._group_of = group_of
        self._group_limit: int | None = None
        self._lanes: dict[Priority, _Lane[K]] = {priority: _Lane() for priority in Priority}
        self._active: collections.Counter[Hashable] = collections.Counter()  # processing, per group
        self._high_streak = 0  # HIGH keys taken in a row while LOW ones waited
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

    def set_group_limit(self, limit: int | None) -> None:
        """At most `limit` keys of one group processing at once (None: no limit). Set before `get`."""
        if limit is not None and limit < 1:
            raise ValueError(f"a group limit must be at least 1, got {limit}")
        self._group_limit = limit
        for lane in self._lanes.values():
            lane.ring = {
                group: None for group, keys in lane.waiting.items() if keys and self._has_room(group)
            }

    def _has_room(self, group: Hashable) -> bool:
        return self._group_limit is None or self._active[group] < self._group_limit

    def add(self, key: K, priority: Priority = Priority.HIGH) -> None:
        if key in self._processing:
            current = self._dirty.get(key)
            self._dirty[key] = priority if current is None else min(current, priority)
            return
        current = self._queued.get(key)
        if current is not None and current <= priority:
            return
        # A new entry (or a raised priority); the entry in the lower lane is skipped when it comes up.
        self._queued[key] = priority
        group = self._group_of(key)
        self._lanes[priority].push(group, key, self._has_room(group))
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
        """Move due delayed keys into their lanes; return seconds until the next one is due."""
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

    def _take_from(self, priority: Priority) -> K | None:
        """The next live key of a lane, round-robin over the groups that have room; None if none."""
        lane = self._lanes[priority]
        while lane.ring:
            group = next(iter(lane.ring))
            keys = lane.waiting[group]
            del lane.ring[group]
            while keys:
                key = keys.popleft()
                if self._queued.get(key) == priority:
                    break
            else:
                del lane.waiting[group]
                continue
            if not keys:
                del lane.waiting[group]
            del self._queued[key]
            self._start(key, group)
            if keys and self._has_room(group):
                lane.ring[group] = None  # back to the end of the round
            return key
        return None

    def _start(self, key: K, group: Hashable) -> None:
        self._processing.add(key)
        self._active[group] += 1
        if not self._has_room(group):
            for lane in self._lanes.values():
                lane.ring.pop(group, None)

    def _take(self) -> K | None:
        high, low = self._lanes[Priority.HIGH], self._lanes[Priority.LOW]
        if high.ring and low.ring and self._high_streak >= LOW_TURN_EVERY - 1:
            key = self._take_from(Priority.LOW)
            if key is not None:
                self._high_streak = 0
                return key
        key = self._take_from(Priority.HIGH)
        if key is not None:
            self._high_streak = self._high_streak + 1 if low.ring else 0
            return key
        self._high_streak = 0
        return self._take_from(Priority.LOW)

    async def get(self) -> K:
        """Wait for the next key (see the module's rules for which) and mark it as processing."""
        while True:
            wait = self._promote_due()
            key = self._take()
            if key is not None:
                return key
            if self._closed:
                raise QueueClosed
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait)

    def done(self, key: K) -> None:
        """Processing of `key` finished; run it again if it was added meanwhile."""
        if key not in self._processing:
            return
        self._processing.discard(key)
        group = self._group_of(key)
        self._active[group] -= 1
        if not self._active[group]:
            del self._active[group]
        if self._group_limit is not None and self._has_room(group):
            woke = False
            for lane in self._lanes.values():
                if lane.waiting.get(group) and group not in lane.ring:
                    lane.ring[group] = None
                    woke = True
            if woke:
                self._wakeup.set()  # a worker waiting for work may now take this group's next key
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
