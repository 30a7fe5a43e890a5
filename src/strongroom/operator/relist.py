"""Forget objects that were deleted while a watch was down.

A watch resumes from the last resourceVersion it saw. When the API server can no longer serve from there
(410 Gone: always after the API server restarted, since its watch cache starts afresh) the watch
(listwatch.py) lists the kind again and watches on from the list. A list carries no DELETED events: an object
deleted during the gap is just absent, and a cache fed by events alone keeps it and goes on acting on
it. Measured (tests/integration/test_faults.py): a SecretMapping deleted while the API server was coming
back had its Secret written again on every refresh, each time the garbage collector removed it.

A re-list shows itself by a listed object (event type None) that the cache already holds. From then on
the keys of all events are noted for `settle` seconds; the cached keys not seen by then are asked for
once each (GET), and those the API server no longer has are forgotten as if their DELETED event had
come. In namespaced mode (`per_namespace`) each namespace is listed on its own, so only the cached keys
of the namespaces seen re-listed are asked for; one namespace's re-list must not cost a GET for every
object of every other namespace. Cluster-wide, one list covers every namespace: all missing keys count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

ObjectKey = tuple[str, str]  # (namespace, name)

# Long enough for the watch to deliver a whole list (chunks of 500 objects, each a fast request) before the
# keys not in it are looked up; a key looked up needlessly costs one GET, never a wrong removal.
RELIST_SETTLE_SECONDS = 10.0

logger = logging.getLogger("strongroom.operator.relist")


def uid_of(body: Mapping[str, Any] | None) -> str | None:
    return ((body or {}).get("metadata") or {}).get("uid")


class RelistSweep:
    """Notices re-lists of one kind and forgets the cached objects the API server no longer has."""

    def __init__(
        self,
        kind: str,
        cached: Mapping[ObjectKey, Mapping[str, Any]],
        current: Callable[[ObjectKey], Awaitable[Mapping[str, Any] | None]],
        forget: Callable[[ObjectKey], None],
        settle: float = RELIST_SETTLE_SECONDS,
    ) -> None:
        """`cached`: the live cache (key -> last body); `current(key)`: the object as the API server has it
        now, None if it is gone; `forget(key)`: drop it as if a DELETED event had come."""
        self.kind = kind
        self._cached = cached
        self._current = current
        self._forget = forget
        self.settle = settle
        self._seen: set[ObjectKey] | None = None  # keys of events since a re-list began; None: none began
        self._relisted: set[str] = set()  # namespaces seen re-listed since then
        # Each watched namespace is listed on its own (namespaced mode): sweep only the ones re-listed.
        self.per_namespace = False
        self._tasks: set[asyncio.Task[None]] = set()

    def saw(self, event_type: str | None, key: ObjectKey) -> None:
        """Call for every event, before the cache is updated with it."""
        if self._seen is None:
            if event_type is not None or key not in self._cached:
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # only tests feed events outside a loop; nothing could run the sweep
            self._seen = set()
            loop.call_later(self.settle, self._sweep)
        if event_type is None and key in self._cached:
            self._relisted.add(key[0])
        self._seen.add(key)

    def _sweep(self) -> None:
        seen, self._seen = self._seen or set(), None
        relisted, self._relisted = self._relisted, set()
        missing = {
            key: uid_of(body)
            for key, body in self._cached.items()
            if key not in seen and (not self.per_namespace or key[0] in relisted)
        }
        if not missing:
            return
        task = asyncio.get_running_loop().create_task(
            self._confirm(missing), name=f"strongroom {self.kind} re-list sweep"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _confirm(self, missing: Mapping[ObjectKey, str | None]) -> None:
        for key, uid in missing.items():
            try:
                live = await self._current(key)
            except Exception as exc:  # API server unreachable again: keep it, the next re-list decides
                logger.warning(
                    "could not check whether %s %s/%s still exists (%s: %s)",
                    self.kind,
                    *key,
                    type(exc).__name__,
                    exc,
                )
                continue
            # Unchanged in the cache since the sweep began (not created again under the same name).
            if live is None and key in self._cached and uid_of(self._cached[key]) == uid:
                logger.info("%s %s/%s was deleted while the watch was down: forgotten", self.kind, *key)
                self._forget(key)
