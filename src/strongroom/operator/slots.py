"""Reconcile slots shared fairly between namespaces.

`--reconcile-limit` bounds how many reconciles of one kind work at once. A plain semaphore hands a freed
slot to whoever asked first, so a namespace with many objects in flight (a tenant changing specs without
pause) would put every other namespace's new object behind its whole backlog, and then run it beside as
many of its own reconciles as there are slots. Here a freed slot goes to the waiting group (namespace)
that holds the fewest slots, the longest-waiting one on a tie; and while another group holds or waits for
a slot, no group holds more than its `share` of them (at least one). A group alone may hold them all.
Within a group, an `urgent` waiter (a new or changed object) is served before the others (refreshes,
retries): a worker that took a new object must not wait behind the workers of its namespace already
queued for a slot with refreshes (with 1000 mappings forced to refresh at once, a new one waited 1-2.5 s
for a slot on a loaded machine).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
from collections.abc import Hashable


class FairSlots:
    """At most `capacity` holders at once, handed out fairly between groups."""

    def __init__(self, capacity: int, share: float = 1.0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.capacity = capacity
        #: Most slots one group holds while another group holds or waits for one.
        self.group_cap = max(1, int(capacity * share))
        self._free = capacity
        self._held: collections.Counter[Hashable] = collections.Counter()
        # group -> its waiters as (rank: 0 urgent, 1 not; arrival; future), in arrival order
        self._waiters: dict[Hashable, collections.deque[tuple[int, int, asyncio.Future[None]]]] = {}
        self._seq = itertools.count()

    @property
    def free(self) -> int:
        """Slots nobody holds now."""
        return self._free

    def held(self, group: Hashable) -> int:
        return self._held[group]

    async def acquire(self, group: Hashable, urgent: bool = False) -> None:
        if self._free > 0 and not self._waiters and self._may_take(group):
            self._take(group)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (0 if urgent else 1, next(self._seq), future)
        self._waiters.setdefault(group, collections.deque()).append(entry)
        self._hand_out()  # a slot may be free that only the groups at their cap could not take
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(group)  # granted just as the waiter was cancelled: hand it on
            else:
                self._drop(group, future)
            raise

    def release(self, group: Hashable) -> None:
        self._held[group] -= 1
        if self._held[group] <= 0:
            del self._held[group]
        self._free += 1
        self._hand_out()

    def _take(self, group: Hashable) -> None:
        self._free -= 1
        self._held[group] += 1

    def _drop(self, group: Hashable, future: asyncio.Future[None]) -> None:
        queue = self._waiters.get(group)
        if queue is None:
            return
        self._waiters[group] = collections.deque(entry for entry in queue if entry[2] is not future)
        if not self._waiters[group]:
            del self._waiters[group]

    def _may_take(self, group: Hashable) -> bool:
        """Below its cap, or alone: no other group holds or waits for a slot."""
        if self._held[group] < self.group_cap:
            return True
        return all(g == group for g in (*self._held, *self._waiters))

    def _hand_out(self) -> None:
        # O(groups waiting) per release; only workers wait here, so that is at most --worker-limit.
        while self._free > 0 and self._waiters:
            eligible = [g for g in self._waiters if self._may_take(g)]
            if not eligible:
                return  # the groups waiting are at their cap while others work: the slot stays free
            group = min(eligible, key=lambda g: (self._held[g], self._waiters[g][0][1]))
            queue = self._waiters[group]
            entry = min(queue, key=lambda waiter: waiter[:2])  # urgent first, then by arrival
            queue.remove(entry)
            future = entry[2]
            if not queue:
                del self._waiters[group]
            if future.cancelled():
                continue
            self._take(group)
            future.set_result(None)
