"""Leader election's pure parts and the write fence: who may take the Lease, when a leader may write, and
that every write door (HTTP stack, store guard) asks the fence. The election against a real API server is
tested in tests/integration/test_leader_election.py."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest
from aiohttp import web
from lightkube import KubeConfig
from lightkube.config.kubeconfig import SingleConfig

from strongroom.net import AiohttpTransport
from strongroom.net.fence import WriteFenced, ensure_may_write, install_fence, remove_fence
from strongroom.operator.config import OperatorConfig
from strongroom.operator.leader import (
    LeaderElectionSettings,
    LeaderElector,
    Leadership,
    LeaseRecord,
    may_take,
)
from strongroom.stores.base import SecretValue
from strongroom.stores.guard import GuardedStore, GuardSettings
from testenv.process import LOOPBACK, free_port
from tests.unit.test_store_guard import CountingStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _record(holder: str, duration: float | None = 15.0, version: str = "1") -> LeaseRecord:
    stamp = datetime.datetime(2026, 12, 5, tzinfo=datetime.UTC)
    return LeaseRecord(holder, duration, 0, stamp, version, stamp)


def test_a_free_or_own_lease_may_be_taken_at_once() -> None:
    assert may_take(_record(""), "me", observed_at=10.0, now=10.0, default_duration=15.0)
    assert may_take(_record("me"), "me", observed_at=10.0, now=10.0, default_duration=15.0)


def test_another_holders_lease_only_after_its_duration_unchanged_on_our_clock() -> None:
    record = _record("other", duration=15.0)
    assert not may_take(record, "me", observed_at=10.0, now=24.9, default_duration=60.0)
    assert may_take(record, "me", observed_at=10.0, now=25.0, default_duration=60.0)
    # A record without a duration: the candidate's own.
    assert not may_take(_record("other", None), "me", observed_at=10.0, now=24.0, default_duration=60.0)
    assert may_take(_record("other", None), "me", observed_at=10.0, now=70.0, default_duration=60.0)


def test_leadership_ends_at_the_renew_deadline_counted_from_the_renews_start() -> None:
    clock = Clock()
    leadership = Leadership(renew_deadline=10.0, clock=clock)
    assert leadership.check() == "this replica is not the leader"
    leadership.renewed(started_at=100.0)
    clock.now = 109.9
    assert leadership.check() is None
    clock.now = 110.0  # a process paused past its deadline refuses as soon as it runs again
    assert "renew deadline" in (leadership.check() or "")
    leadership.renewed(started_at=109.0)
    assert leadership.held
    leadership.revoke()
    assert not leadership.held


def test_settings_need_retry_below_renew_below_lease() -> None:
    LeaderElectionSettings(namespace="ns")  # the defaults: 2 < 10 < 15
    with pytest.raises(ValueError, match="renew deadline < lease duration"):
        LeaderElectionSettings(namespace="ns", renew_deadline=15.0)
    with pytest.raises(ValueError, match="retry period < renew deadline"):
        LeaderElectionSettings(namespace="ns", retry_period=10.0)
    with pytest.raises(ValueError, match="whole number of seconds"):
        LeaderElectionSettings(namespace="ns", lease_duration=15.5)
    # The operator's configuration refuses the same at start, naming the flags.
    with pytest.raises(ValueError, match="lease duration"):
        OperatorConfig(leader_elect=True, leader_elect_renew_deadline=20.0)
    with pytest.raises(ValueError, match="--leader-elect-lease-name"):
        OperatorConfig(leader_elect=True, leader_elect_lease_name="Not_A_Name")
    OperatorConfig(leader_elect=False, leader_elect_renew_deadline=20.0)  # not checked when off


def test_identities_are_unique_per_process() -> None:
    assert LeaderElectionSettings(namespace="ns").identity != LeaderElectionSettings(namespace="ns").identity
    config = OperatorConfig(leader_elect=True, leader_elect_identity="pod-a")
    assert config.leader_election().identity == "pod-a"


# --- the fence at the write doors ---------------------------------------------------------------------------


@pytest.fixture
def fence() -> Iterator[Leadership]:
    clock = Clock()
    leadership = Leadership(renew_deadline=10.0, clock=clock)
    install_fence(leadership.check)
    try:
        yield leadership
    finally:
        remove_fence()


def test_without_a_fence_every_write_is_allowed() -> None:
    ensure_may_write("anything")


def test_the_fence_refuses_until_the_lease_is_held(fence: Leadership) -> None:
    with pytest.raises(WriteFenced, match=r"not writing \(PATCH x\): this replica is not the leader"):
        ensure_may_write("PATCH x")
    fence.renewed(started_at=100.0)
    ensure_may_write("PATCH x")


@pytest.fixture
async def seen() -> AsyncIterator[tuple[str, list[str]]]:
    methods: list[str] = []

    async def record(request: web.Request) -> web.Response:
        methods.append(request.method)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/x", record)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, LOOPBACK, port).start()
    try:
        yield f"http://{LOOPBACK}:{port}", methods
    finally:
        await runner.cleanup()


async def test_a_fenced_transport_sends_reads_but_no_write_without_the_lease(
    fence: Leadership, seen: tuple[str, list[str]]
) -> None:
    url, methods = seen
    async with httpx2.AsyncClient(base_url=url, transport=AiohttpTransport()) as client:
        assert (await client.get("/x")).status_code == 200
        for method in ("PUT", "PATCH", "POST", "DELETE"):
            with pytest.raises(WriteFenced):
                await client.request(method, "/x")
        fence.renewed(started_at=100.0)
        assert (await client.put("/x")).status_code == 200  # on a reused connection
    assert methods == ["GET", "PUT"]


async def test_the_fence_is_asked_again_once_the_connection_is_ready(
    fence: Leadership, seen: tuple[str, list[str]]
) -> None:
    url, methods = seen
    # Allowed when the request starts, refused by the time its connection is ready (a process paused in
    # between): nothing reaches the server.
    answers = iter([None, "lost"])
    install_fence(lambda: next(answers))
    async with httpx2.AsyncClient(base_url=url, transport=AiohttpTransport()) as client:
        with pytest.raises(WriteFenced, match="lost"):
            await client.put("/x")
    assert methods == []


async def test_the_leases_own_transport_is_not_fenced(fence: Leadership, seen: tuple[str, list[str]]) -> None:
    url, methods = seen
    async with httpx2.AsyncClient(base_url=url, transport=AiohttpTransport(fenced=False)) as client:
        assert (await client.put("/x")).status_code == 200
    assert methods == ["PUT"]


async def test_the_store_guard_refuses_writes_and_deletes_but_reads(fence: Leadership) -> None:
    inner = CountingStore()
    guarded = GuardedStore("ns/store", inner, GuardSettings())
    await guarded.fetch("k", None)
    with pytest.raises(WriteFenced, match="write in store ns/store"):
        await guarded.write("k", SecretValue("v"))
    with pytest.raises(WriteFenced, match="delete in store ns/store"):
        await guarded.delete("k")
    fence.renewed(started_at=100.0)
    assert (await guarded.write("k", SecretValue("v"))).key == "k"


# --- the elector's own bookkeeping (the election against a real API server: the integration test) ---------


def unreachable_cluster() -> SingleConfig:
    """A cluster configuration whose API server nobody answers (port 1): for code built, not run, here."""
    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    ).get()
    assert config is not None
    return config


def _elector(clock: Clock) -> LeaderElector:
    config = unreachable_cluster()
    settings = LeaderElectionSettings(namespace="ns", identity="me", retry_period=2.0)
    return LeaderElector(config, settings, "strongroom-operator/test (me)", clock=clock)


def test_a_lease_record_counts_transitions_and_keeps_its_acquire_time_on_renew() -> None:
    elector = _elector(Clock())
    t0 = datetime.datetime(2026, 12, 5, 8, 0, tzinfo=datetime.UTC)
    t1 = t0 + datetime.timedelta(seconds=2)
    created = elector._spec(None, t0)
    assert (created.holderIdentity, created.leaseTransitions, created.acquireTime) == ("me", 0, t0)
    assert created.leaseDurationSeconds == 15
    renewed = elector._spec(LeaseRecord("me", 15.0, 3, t0, "7", t0), t1)
    assert (renewed.leaseTransitions, renewed.acquireTime, renewed.renewTime) == (3, t0, t1)
    taken = elector._spec(LeaseRecord("other", 15.0, 3, t0, "7", t0), t1)
    assert (taken.holderIdentity, taken.leaseTransitions, taken.acquireTime) == ("me", 4, t1)


def test_a_candidate_tries_again_when_the_lease_it_saw_expires() -> None:
    clock = Clock()
    elector = _elector(clock)
    assert 2.0 <= elector._next_try() <= 2.4  # a jittered retry period
    record = LeaseRecord("other", 15.0, 0, None, "1", None)
    elector._observe(record)
    elector._expires_at = 100.0 + 15.0
    clock.now = 114.0
    assert elector._next_try() == pytest.approx(1.01)  # not a whole retry period past the expiry
    assert elector.holder == "other"
