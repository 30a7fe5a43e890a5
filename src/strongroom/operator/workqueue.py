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
- A group starts at most `Pace.rate` keys a second after a burst of `Pace.burst` while another group
  is working (any kind's queue queued or started one of its keys in the last `Activity.window`
  seconds), and always when the key answers a change to an object already seen (`add(changed=True)`).
  A namespace changing specs without pause is paced, and the keys it changes meanwhile coalesce in the
  queue (a key is queued once), so its API writes shrink instead of crowding the API server that every
  other namespace's reconciles go through. Changes are paced even in a group alone, because "alone"
  only means nobody else worked in the last few seconds: a namespace that deploys now and then would
  otherwise always arrive while the churn runs unpaced. New objects of a group alone (a bulk import)
  are not paced.
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
from dataclasses import dataclass
from typing import Generic, TypeVar

from strongroom.ratelimit import TokenBucket

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


@dataclass(frozen=True)
class Pace:
    """How fast one group may start keys while another group is working."""

    rate: float  # keys a second, sustained
    burst: float  # keys at once, after a quiet spell

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"a pace needs a rate above 0 and a burst of at least 1, got {self}")


class Activity:
    """The groups that queued or started work lately; one is shared by the queues of every kind.

    Contention is judged across kinds because what pacing protects is shared by all of them: one
    namespace's SecretMapping churn slows another namespace's Resources through the API server.
    """

    def __init__(self, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._clock = clock
        self._last: collections.OrderedDict[Hashable, float] = collections.OrderedDict()

    def started(self, group: Hashable) -> None:
        self._last[group] = self._clock()
        self._last.move_to_end(group)

    def others_working(self, group: Hashable) -> bool:
        """Whether a group other than `group` had work within the window. O(1) amortised."""
        horizon = self._clock() - self.window
        while self._last:
            oldest, stamp = next(iter(self._last.items()))
            if stamp >= horizon:
                break
            del self._last[oldest]
        if len(self._last) > 1:
            return True
        return bool(self._last) and group not in self._last


def group_limit(workers: int, share: float) -> int:
    """How many of `workers` one group may hold at once: `share` of them, at least one."""
    return max(1, int(workers * share))


class WorkQueue(Generic[K]):
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        group_of: Callable[[K], Hashable] = _one_group,
        activity: Activity | None = None,
    ) -> None:
        self._clock = clock
        self._group_of = group_of
        self._group_limit: int | None = None
        self._activity = activity if activity is not None else Activity(clock=clock)
        self._marks_activity = True
        self._pace: Pace | None = None
        self._buckets: dict[Hashable, TokenBucket] = {}
        self._paused: dict[Hashable, float] = {}  # group -> when it may start its next key
        self._pauses: list[tuple[float, int, Hashable]] = []
        self.on_pause: Callable[[Hashable], None] | None = None
        self._lanes: dict[Priority, _Lane[K]] = {priority: _Lane() for priority in Priority}
        self._active: collections.Counter[Hashable] = collections.Counter()  # processing, per group
        self._high_streak = 0  # HIGH keys taken in a row while LOW ones waited
        self._queued: dict[K, Priority] = {}
        # Keys whose pending work answers a change to an object already seen: paced even when alone.
        self._changes: set[K] = set()
        self._processing: dict[K, Priority] = {}  # key -> the priority it was taken at
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

    def set_pace(
        self, pace: Pace | None, activity: Activity | None = None, marks_activity: bool = True
    ) -> None:
        """Pace groups while others work (None: never). `activity` is shared with other kinds' queues;
        without `marks_activity` this queue's work is paced by the others' but does not count as work
        that paces them (housekeeping such as periodic store checks)."""
        self._pace = pace
        self._marks_activity = marks_activity
        if activity is not None:
            self._activity = activity

    @property
    def paused_count(self) -> int:
        return len(self._paused)

    def _has_room(self, group: Hashable) -> bool:
        if group in self._paused:
            return False
        return self._group_limit is None or self._active[group] < self._group_limit

    def _may_start(self, group: Hashable, changed: bool) -> bool:
        """Spend one of the group's tokens, or pause the group until it has one (while others work, or when
        `changed`)."""
        pace = self._pace
        if pace is None:
            return True
        now = self._clock()
        bucket = self._buckets.get(group)
        if bucket is None:
            bucket = self._buckets[group] = TokenBucket(pace.rate, pace.burst, now)
        if not changed and not self._activity.others_working(group):
            # New objects of a group alone are not paced; spending still counts, so a group that ran flat
            # out alone is paced at once when someone else starts, and an idle one arrives with its burst.
            bucket.spend(now)
            return True
        if bucket.take(now):
            return True
        due = now + bucket.seconds_to_token()
        self._paused[group] = due
        heapq.heappush(self._pauses, (due, next(self._seq), group))
        for lane in self._lanes.values():
            lane.ring.pop(group, None)
        if self.on_pause is not None:
            self.on_pause(group)
        return False

    def _resume_due(self, now: float) -> float | None:
        """Give paused groups whose time has come their turns back; seconds until the next one is due."""
        while self._pauses:
            due, _, group = self._pauses[0]
            if due > now:
                return due - now
            heapq.heappop(self._pauses)
            if self._paused.get(group) != due:
                continue
            del self._paused[group]
            if self._has_room(group):
                for lane in self._lanes.values():
                    if lane.waiting.get(group):
                        lane.ring.setdefault(group, None)
        return None

    def add(self, key: K, priority: Priority = Priority.HIGH, changed: bool = False) -> None:
        """Queue `key` (see the module's rules); `changed`: its work answers a change to an object already
        seen, which is paced even when its group is alone."""
        if changed:
            self._changes.add(key)
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
        if self._marks_activity:
            self._activity.started(group)  # a namespace with work waiting counts as working
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
        self._changes.discard(key)

    def _promote_due(self) -> float | None:
        """Move due delayed keys into their lanes and resume paused groups; seconds until the next is due."""
        now = self._clock()
        resume = self._resume_due(now)
        while self._delayed:
            due, _, key, priority = self._delayed[0]
            if self._delayed_due.get(key) != due:
                heapq.heappop(self._delayed)  # superseded by an earlier schedule or forgotten
                continue
            if due > now:
                delay = due - now
                return delay if resume is None else min(delay, resume)
            heapq.heappop(self._delayed)
            del self._delayed_due[key]
            self.add(key, priority)
        return resume

    def _take_from(self, priority: Priority) -> K | None:
        """The next live key of a lane, round-robin over the groups that have room; None if none."""
        lane = self._lanes[priority]
        while lane.ring:
            group = next(iter(lane.ring))
            keys = lane.waiting[group]
            del lane.ring[group]
            while keys and self._queued.get(keys[0]) != priority:
                keys.popleft()  # stale: raised to another lane, taken, or forgotten
            if not keys:
                del lane.waiting[group]
                continue
            if not self._may_start(group, keys[0] in self._changes):
                continue  # paused: off every ring until `_resume_due`
            key = keys.popleft()
            if not keys:
                del lane.waiting[group]
            del self._queued[key]
            self._start(key, group, priority)
            if keys and self._has_room(group):
                lane.ring[group] = None  # back to the end of the round
            return key
        return None

    def _start(self, key: K, group: Hashable, priority: Priority) -> None:
        self._processing[key] = priority
        self._changes.discard(key)
        self._active[group] += 1
        if self._marks_activity:
            self._activity.started(group)
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
            self._promote_due()
            key = self._take()
            if key is not None:
                return key
            if self._closed:
                raise QueueClosed
            self._wakeup.clear()
            # Taking may have paused groups: wait until the first of them resumes or a timer is due.
            wait = self._promote_due()
            if any(lane.ring for lane in self._lanes.values()):
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait)

    def taken_at(self, key: K) -> Priority | None:
        """The priority a key being processed was taken at (None if it is not being processed)."""
        return self._processing.get(key)

    def done(self, key: K) -> None:
        """Processing of `key` finished; run it again if it was added meanwhile."""
        if key not in self._processing:
            return
        del self._processing[key]
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
