"""Kubernetes Events (core/v1) for the state changes users care about: synced, rotated, provisioned, failed.

Aggregated the way client-go's recorder does it: an event equal to one posted before for the same object
(type, reason, message) is not posted again; the existing Event's `count` and `lastTimestamp` are patched
instead. Writes are rate-limited per object (a token bucket: `BURST` writes, then one per `REFILL_SECONDS`)
and per namespace (`NAMESPACE_BURST`, then one per `NAMESPACE_REFILL_SECONDS`): an Event is written only
when both have a token. Repeats that find none are counted and carried by the next write of that Event.
All caches are bounded (least recently used entries are forgotten first).

Why per namespace too (issue 11): a tenant changing 100 specs a second had the operator write ~50 Events a
second for its namespace, as many writes as its Secrets and statuses together, on the API server every
other namespace waits for. The per-object bucket never bit: each of 100 objects had its own ten. Like the
API server's EventRateLimit admission plugin, the namespace is the unit a tenant controls.

Events are posted in the background: a reconcile never waits for one, and an Event that cannot be written
(no RBAC, API server busy) is dropped with a debug log line, never failing the reconcile. What an Event
says is a condition's reason and message, which never carry a secret value (the controllers redact them);
log lines never become Events (they can quote API error texts).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from lightkube.core.exceptions import ApiError

from strongroom.net.kubejson import MERGE_PATCH, KubeJson, object_path
from strongroom.ratelimit import TokenBucket

logger = logging.getLogger("strongroom.operator.events")

COMPONENT = "strongroom"
BURST = 10
REFILL_SECONDS = 30.0
# A namespace's Events: a first burst (a new namespace syncing its objects), then two a second at most.
NAMESPACE_BURST = 100
NAMESPACE_REFILL_SECONDS = 0.5
# Objects and distinct events remembered; past that the least recently used are forgotten.
MAX_TRACKED = 4096
# Events waiting to be written (like client-go's broadcaster queue); past that new ones are dropped: under
# such a burst the API server is the bottleneck, and the objects' conditions say the same.
MAX_IN_FLIGHT = 1000
# Events written at once: a burst of syncs must not take every connection to the API server.
CONCURRENT_WRITES = 4
MESSAGE_LIMIT = 1024

EventType = Literal["Normal", "Warning"]


@dataclass
class _Posted:
    name: str
    count: int  # how often the event happened
    written: int = 0  # the count the API server has (0: not created yet)
    busy: bool = False  # a write is in flight: later repeats only count


class _TokenBuckets:
    """A `TokenBucket` per key (`burst` tokens, one more every `refill_seconds`), the least recently used
    forgotten past MAX_TRACKED keys (a forgotten key starts full again)."""

    def __init__(self, burst: int, refill_seconds: float) -> None:
        self.burst = burst
        self.rate = 1 / refill_seconds
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def refilled(self, key: str, now: float) -> TokenBucket:
        """The key's bucket with the tokens earned since it was last looked at."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > MAX_TRACKED:
                self._buckets.popitem(last=False)
            return bucket
        self._buckets.move_to_end(key)
        bucket.refill(now)
        return bucket


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(
        self,
        client: KubeJson,
        *,
        burst: int = BURST,
        refill_seconds: float = REFILL_SECONDS,
        namespace_burst: int = NAMESPACE_BURST,
        namespace_refill_seconds: float = NAMESPACE_REFILL_SECONDS,
        instance: str | None = None,
    ) -> None:
        self.client = client
        self.instance = instance or socket.gethostname()
        self._posted: OrderedDict[tuple[str, str, str, str], _Posted] = OrderedDict()
        self._per_object = _TokenBuckets(burst, refill_seconds)
        self._per_namespace = _TokenBuckets(namespace_burst, namespace_refill_seconds)
        self._tasks: set[asyncio.Task[None]] = set()
        self._writing = asyncio.Semaphore(CONCURRENT_WRITES)
        self.dropped = 0

    def record(self, obj: Mapping[str, Any], type_: EventType, reason: str, message: str) -> None:
        """Post (or count) one Event about `obj` (a Kubernetes object as a dict) in the background."""
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        if not uid or not meta.get("namespace"):
            return
        message = message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"
        key = (uid, type_, reason, message)
        posted = self._posted.get(key)
        if posted is None:
            posted = _Posted(f"{meta.get('name')}.{secrets.token_hex(8)}", 1)
            self._posted[key] = posted
            if len(self._posted) > MAX_TRACKED:
                self._posted.popitem(last=False)
        else:
            self._posted.move_to_end(key)
            posted.count += 1
        if posted.busy or not self._take_tokens(uid, str(meta["namespace"])):
            return  # counted; the next write for this event carries it
        if len(self._tasks) >= MAX_IN_FLIGHT:
            self.dropped += 1
            return
        posted.busy = True
        task = asyncio.get_running_loop().create_task(
            self._write(obj, posted, type_, reason, message), name=f"strongroom event {reason}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take_tokens(self, uid: str, namespace: str) -> bool:
        now = time.monotonic()
        per_object = self._per_object.refilled(uid, now)
        per_namespace = self._per_namespace.refilled(namespace, now)
        if per_object.tokens < 1 or per_namespace.tokens < 1:
            return False
        per_object.spend(now)
        per_namespace.spend(now)
        return True

    async def _write(
        self, obj: Mapping[str, Any], posted: _Posted, type_: EventType, reason: str, message: str
    ) -> None:
        async with self._writing:
            await self._write_now(obj, posted, type_, reason, message)

    async def _write_now(
        self, obj: Mapping[str, Any], posted: _Posted, type_: EventType, reason: str, message: str
    ) -> None:
        meta = obj.get("metadata") or {}
        namespace = str(meta["namespace"])
        count = posted.count
        try:
            if posted.written:
                try:
                    await self.client.patch_only(
                        object_path("v1", "events", namespace, posted.name),
                        {"count": count, "lastTimestamp": _now()},
                        MERGE_PATCH,
                    )
                    posted.written = count
                    return
                except ApiError as exc:
                    if exc.status.code != 404:
                        raise
                    # Expired (Events live about an hour): post a new one under a new name.
                    posted.name = f"{meta.get('name')}.{secrets.token_hex(8)}"
            now = _now()
            event = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": posted.name, "namespace": namespace},
                "involvedObject": {
                    "apiVersion": obj.get("apiVersion"),
                    "kind": obj.get("kind"),
                    "name": meta.get("name"),
                    "namespace": namespace,
                    "uid": meta.get("uid"),
                },
                "type": type_,
                "reason": reason,
                "message": message,
                "count": count,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": COMPONENT},
                "reportingComponent": COMPONENT,
                "reportingInstance": self.instance,
            }
            await self.client.create_only(object_path("v1", "events", namespace), event)
            posted.written = count
        except Exception as exc:  # an Event is a courtesy: never fail or slow a reconcile for it
            logger.debug("could not post Event %s (%s: %s)", reason, type(exc).__name__, exc)
        finally:
            posted.busy = False

    async def close(self) -> None:
        """Wait for Events being written (operator shutdown), briefly."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2)
