"""GuardedStore: coalescing, TTL reuse, rate limiting, error propagation and metrics."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from strongroom.stores.base import (
    SecretDocument,
    SecretNotFound,
    SecretRef,
    SecretValue,
    StoreCapabilities,
    WriteResult,
)
from strongroom.stores.guard import GuardedStore, GuardSettings, Throttle


class CountingStore:
    """A backend double that counts calls and answers after a short delay."""

    def __init__(self, delay: float = 0.01) -> None:
        self.reads: list[SecretRef] = []
        self.delay = delay
        self.fail: Exception | None = None

    async def fetch(self, key: str, version: str | None) -> SecretDocument:
        self.reads.append(SecretRef(key, version))
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return SecretDocument(lambda prop: SecretValue(f"value-of-{key}" + (f"#{prop}" if prop else "")))

    async def read(self, ref: SecretRef) -> SecretValue:
        return (await self.fetch(ref.key, ref.version)).pick(ref.property)

    async def write(self, key: str, value: SecretValue) -> WriteResult:
        return WriteResult(key=key, version="1")

    async def delete(self, key: str) -> None:
        return None

    async def check(self) -> StoreCapabilities:
        return StoreCapabilities(read=True, write=True)

    async def close(self) -> None:
        return None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_identical_concurrent_reads_make_one_request() -> None:
    inner = CountingStore()
    store = GuardedStore("s", inner, GuardSettings(qps=1000, burst=1000))
    refs = [SecretRef(f"k{i % 10}") for i in range(1000)]
    values = await asyncio.gather(*(store.read(ref) for ref in refs))
    assert len(inner.reads) == 10
    assert values[3].reveal() == b"value-of-k3"


async def test_recent_reads_are_reused_within_ttl_only() -> None:
    inner, clock = CountingStore(delay=0), FakeClock()
    store = GuardedStore("s", inner, GuardSettings(qps=1000, burst=1000, read_ttl=10), clock=clock)
    await store.read(SecretRef("a"))
    clock.now += 5
    await store.read(SecretRef("a"))
    assert len(inner.reads) == 1
    clock.now += 6
    await store.read(SecretRef("a"))
    assert len(inner.reads) == 2


async def test_properties_of_one_secret_share_a_fetch_but_versions_do_not() -> None:
    inner = CountingStore()
    store = GuardedStore("s", inner, GuardSettings())
    values = await asyncio.gather(
        store.read(SecretRef("a")),
        store.read(SecretRef("a", property="p")),
        store.read(SecretRef("a", property="q")),
        store.read(SecretRef("a", version="2")),
    )
    assert inner.reads == [SecretRef("a"), SecretRef("a", "2")]
    assert [v.reveal() for v in values[:3]] == [b"value-of-a", b"value-of-a#p", b"value-of-a#q"]


async def test_errors_reach_every_waiter_and_are_not_cached() -> None:
    inner = CountingStore()
    inner.fail = SecretNotFound("store 's': secret 'a' not found")
    store = GuardedStore("s", inner, GuardSettings())
    results = await asyncio.gather(*(store.read(SecretRef("a")) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, SecretNotFound) for r in results)
    assert len(inner.reads) == 1
    inner.fail = None
    assert (await store.read(SecretRef("a"))).reveal() == b"value-of-a"
    assert len(inner.reads) == 2


async def test_cancelled_leader_does_not_cancel_followers() -> None:
    inner = CountingStore(delay=0.05)
    store = GuardedStore("s", inner, GuardSettings())
    leader = asyncio.create_task(store.read(SecretRef("a")))
    await asyncio.sleep(0.01)
    follower = asyncio.create_task(store.read(SecretRef("a")))
    await asyncio.sleep(0.01)
    leader.cancel()
    assert (await follower).reveal() == b"value-of-a"


async def test_write_invalidates_cached_reads_of_that_key() -> None:
    inner = CountingStore(delay=0)
    store = GuardedStore("s", inner, GuardSettings(read_ttl=60))
    await store.read(SecretRef("a"))
    await store.write("a", SecretValue("new"))
    await store.read(SecretRef("a"))
    assert len(inner.reads) == 2


async def test_metrics_count_requests_by_outcome() -> None:
    inner = CountingStore(delay=0)
    store = GuardedStore("metrics-store", inner, GuardSettings())
    await store.read(SecretRef("a"))
    inner.fail = SecretNotFound("x")
    with pytest.raises(SecretNotFound):
        await store.read(SecretRef("b"))

    def sample(status: str) -> float | None:
        return REGISTRY.get_sample_value(
            "strongroom_store_requests_total",
            {"store": "metrics-store", "operation": "read", "status": status},
        )

    assert sample("ok") == 1
    assert sample("SecretNotFound") == 1


async def test_the_throttle_spaces_requests_beyond_the_burst() -> None:
    clock = FakeClock()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    throttle = Throttle(rate=200, burst=5, clock=clock, sleep=fake_sleep)
    start = clock.now
    for _ in range(25):
        await throttle.acquire()
    assert slept[:1] == [pytest.approx(1 / 200)]
    assert len(slept) == 20  # the first 5 come from the burst
    assert clock.now - start == pytest.approx(20 / 200)


def test_the_throttle_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="rate"):
        Throttle(rate=0, burst=1)


async def test_a_forced_read_shares_no_read_asked_for_before_it() -> None:
    inner, clock = CountingStore(delay=0), FakeClock()
    store = GuardedStore("s", inner, GuardSettings(read_ttl=3600), clock=clock)
    await store.read(SecretRef("a"))
    clock.now += 1
    forced_at = clock.now
    await store.read(SecretRef("a", property="p"), fresh_after=forced_at)  # the cached read is older
    assert len(inner.reads) == 2
    # ... but a read asked for since is shared, forced or not
    await store.read(SecretRef("a"), fresh_after=forced_at)
    await store.read(SecretRef("a"))
    assert len(inner.reads) == 2


async def test_forced_reads_join_a_request_asked_for_after_them_only() -> None:
    inner, clock = CountingStore(delay=0.05), FakeClock()
    store = GuardedStore("s", inner, GuardSettings(read_ttl=3600), clock=clock)
    old = asyncio.create_task(store.read(SecretRef("a")))
    while not inner.reads:  # noqa: ASYNC110 - the double has no event to signal a call
        await asyncio.sleep(0)
    inner.delay = 0.005  # the old request, in flight, answers after the forced one
    clock.now += 1
    forced = [asyncio.create_task(store.read(SecretRef("a"), fresh_after=clock.now)) for _ in range(50)]
    await asyncio.gather(old, *forced)
    assert len(inner.reads) == 2  # the old request, and one for all 50 forced reads
    # the older answer, coming back last, does not replace the newer one in the cache
    await store.read(SecretRef("a"), fresh_after=clock.now)
    assert len(inner.reads) == 2
