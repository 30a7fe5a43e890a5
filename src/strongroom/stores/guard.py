"""What every store client gets, whatever its backend: a rate limit, read coalescing, metrics.

External Secrets Operator's best-known scale failures are request storms against the backend
(one read per key per object per refresh) and throttling by the provider. Here reads of the same
secret (same store, key and version, whatever property they pick) that are in flight share one
request, and a result is reused
for a short TTL, so 1000 mappings that share 10 keys cost 10 reads per refresh. A token bucket per
store keeps the request rate under what the operator was told the store accepts.

A forced refresh (a user asked for the store's current value) passes `fresh_after`: it shares only a
request asked for at or after that moment, so it is never answered from before the user asked, yet
1000 mappings forced together still share the requests asked for since.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from prometheus_client import Counter

from strongroom.net.fence import ensure_may_write
from strongroom.ratelimit import TokenBucket
from strongroom.stores.base import (
    SecretDocument,
    SecretRef,
    SecretValue,
    StoreCapabilities,
    StoreClient,
    StoreError,
    WriteResult,
)

T = TypeVar("T")
FetchKey = tuple[str, str | None]  # (key, version): what one request to the store fetches
# Operations that change the store: only a process the write fence allows makes them (net/fence.py).
_WRITES = frozenset({"write", "delete"})

STORE_REQUESTS = Counter(
    "strongroom_store_requests",
    "Requests made to secret stores (after coalescing), by outcome.",
    ["store", "operation", "status"],
)
STORE_READS_COALESCED = Counter(
    "strongroom_store_reads_coalesced",
    "Reads answered by an identical in-flight or recent read instead of a new request.",
    ["store"],
)


class Throttle:
    """Waits for a token of a `TokenBucket` (`rate` a second, at most `burst` saved up) before each call."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._bucket = TokenBucket(rate, burst, clock())
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        # The lock makes waiters queue in arrival order instead of racing for each new token.
        async with self._lock:
            if not self._bucket.take(self._clock()):
                await self._sleep(self._bucket.seconds_to_token())
                self._bucket.spend(self._clock())


@dataclass(frozen=True)
class GuardSettings:
    qps: float = 50.0
    burst: int = 100
    read_ttl: float = 10.0  # seconds a read result is reused; bounds how stale a refresh may be


class _Answer(NamedTuple):
    asked: float  # when the request was asked for: the value is at least as new as that
    answered: float  # when it came back: the TTL counts from here
    document: SecretDocument


class GuardedStore:
    """A `StoreClient` wrapper adding rate limiting, read coalescing and request metrics."""

    def __init__(
        self,
        name: str,
        inner: StoreClient,
        settings: GuardSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.inner = inner
        self._settings = settings
        self._throttle = Throttle(settings.qps, settings.burst, clock)
        self._clock = clock
        # (when the request was asked for, its future): a request is at least as new as that
        self._in_flight: dict[FetchKey, tuple[float, asyncio.Future[SecretDocument]]] = {}
        self._recent: dict[FetchKey, _Answer] = {}

    async def _call(self, operation: str, func: Callable[[], Awaitable[T]]) -> T:
        await self._throttle.acquire()
        if operation in _WRITES:
            # After the bucket's wait, right before the call: the process may have lost its lease meanwhile.
            ensure_may_write(f"{operation} in store {self.name}")
        try:
            result = await func()
        except StoreError as exc:
            STORE_REQUESTS.labels(self.name, operation, exc.reason).inc()
            raise
        except Exception:
            STORE_REQUESTS.labels(self.name, operation, "InternalError").inc()
            raise
        STORE_REQUESTS.labels(self.name, operation, "ok").inc()
        return result

    async def read(self, ref: SecretRef, fresh_after: float | None = None) -> SecretValue:
        return (await self.fetch(ref.key, ref.version, fresh_after)).pick(ref.property)

    async def fetch(self, key: str, version: str | None, fresh_after: float | None = None) -> SecretDocument:
        """One request per (key, version) in flight or within the TTL, whatever properties are picked.

        With `fresh_after` (on this store's clock, `time.monotonic` by default), only a request asked for
        at or after that moment is shared."""
        wanted: FetchKey = (key, version or None)
        while True:
            cached = self._recent.get(wanted)
            if (
                cached is not None
                and self._clock() - cached.answered < self._settings.read_ttl
                and (fresh_after is None or cached.asked >= fresh_after)
            ):
                STORE_READS_COALESCED.labels(self.name).inc()
                return cached.document
            entry = self._in_flight.get(wanted)
            if entry is None or (fresh_after is not None and entry[0] < fresh_after):
                return await self._lead_fetch(wanted)
            pending = entry[1]
            STORE_READS_COALESCED.labels(self.name).inc()
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                if not pending.cancelled():
                    raise  # we were cancelled ourselves
                # The leading fetch was cancelled, not us: try again (maybe as the new leader).

    async def _lead_fetch(self, wanted: FetchKey) -> SecretDocument:
        future: asyncio.Future[SecretDocument] = asyncio.get_running_loop().create_future()
        asked = self._clock()
        entry = (asked, future)
        self._in_flight[wanted] = entry  # a forced fetch may replace an older one still in flight
        try:
            document = await self._call("read", lambda: self.inner.fetch(*wanted))
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: there may be no followers, that is not an error
            raise
        else:
            future.set_result(document)
            self._remember(wanted, asked, document)
            return document
        finally:
            if self._in_flight.get(wanted) is entry:
                del self._in_flight[wanted]

    def _remember(self, wanted: FetchKey, asked: float, document: SecretDocument) -> None:
        previous = self._recent.get(wanted)
        if previous is not None and previous.asked > asked:
            return  # a request asked for later (a forced one) already answered: keep the newer value
        now = self._clock()
        self._recent[wanted] = _Answer(asked, now, document)
        if len(self._recent) > 4096:  # drop expired entries so the cache stays bounded
            ttl = self._settings.read_ttl
            self._recent = {k: v for k, v in self._recent.items() if now - v.answered < ttl}

    def forget(self, key: str | None = None) -> None:
        """Drop cached reads (of one key, or all), e.g. after a write or a credential change."""
        if key is None:
            self._recent.clear()
        else:
            self._recent = {k: v for k, v in self._recent.items() if k[0] != key}

    async def write(self, key: str, value: SecretValue) -> WriteResult:
        result = await self._call("write", lambda: self.inner.write(key, value))
        self.forget(key)
        return result

    async def delete(self, key: str) -> None:
        await self._call("delete", lambda: self.inner.delete(key))
        self.forget(key)

    async def check(self) -> StoreCapabilities:
        return await self._call("check", self.inner.check)

    async def close(self) -> None:
        await self.inner.close()
