"""Re-list sweep: after kopf lists a kind again, cached objects the list did not return and the API server
no longer has are forgotten; everything else is kept."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from strongroom.operator.controllers.base import Controller, ObjectKey
from strongroom.operator.relist import RelistSweep

SETTLE = 0.05


def body(name: str, uid: str, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "uid": uid, "generation": 1}}


class Cache(Controller):
    """A controller whose API server is a dict: `live` holds what exists now."""

    kind = "Thing"

    def __init__(self) -> None:
        super().__init__()
        self.relist.settle = SETTLE
        self.live: dict[ObjectKey, dict[str, Any]] = {}
        self.asked: list[ObjectKey] = []
        self.gone: list[ObjectKey] = []
        self.unreachable = False

    async def current(self, key: ObjectKey) -> Mapping[str, Any] | None:
        self.asked.append(key)
        if self.unreachable:
            raise ConnectionError("API server unreachable")
        return self.live.get(key)

    def deleted(self, key: ObjectKey) -> None:
        self.gone.append(key)

    async def reconcile(self, key: ObjectKey) -> str:
        return "unused"

    def create(self, name: str, uid: str) -> None:
        obj = body(name, uid)
        self.live[("ns", name)] = obj
        self.observe("ADDED", obj)

    def list_again(self) -> None:
        """What kopf does after a watch it cannot resume: every existing object, as event type None."""
        for obj in list(self.live.values()):
            self.observe(None, obj)


async def settle() -> None:
    await asyncio.sleep(SETTLE * 3)


async def test_an_object_deleted_during_the_gap_is_forgotten_after_the_relist() -> None:
    cache = Cache()
    for name in ("kept", "deleted", "untouched"):
        cache.create(name, f"uid-{name}")
    del cache.live[("ns", "deleted")]  # deleted while the watch was down: no DELETED event ever comes
    cache.list_again()
    await settle()
    assert cache.asked == [("ns", "deleted")]  # only what the list did not return is asked for
    assert cache.gone == [("ns", "deleted")]
    assert set(cache.bodies) == {("ns", "kept"), ("ns", "untouched")}


async def test_first_list_and_watch_events_start_no_sweep() -> None:
    cache = Cache()
    cache.observe(None, body("a", "uid-a"))  # the initial list: nothing cached yet
    cache.observe("MODIFIED", body("a", "uid-a"))
    await settle()
    assert cache.asked == []
    assert set(cache.bodies) == {("ns", "a")}


async def test_an_object_that_still_exists_is_kept() -> None:
    cache = Cache()
    cache.create("a", "uid-a")
    cache.create("b", "uid-b")
    cache.observe(None, cache.live[("ns", "a")])  # a re-list of only part (another namespace's watch)
    await settle()
    assert cache.asked == [("ns", "b")]
    assert cache.gone == []
    assert set(cache.bodies) == {("ns", "a"), ("ns", "b")}


async def test_unreachable_api_server_keeps_the_object() -> None:
    cache = Cache()
    cache.create("a", "uid-a")
    cache.create("b", "uid-b")
    del cache.live[("ns", "b")]
    cache.unreachable = True
    cache.list_again()
    await settle()
    assert cache.asked == [("ns", "b")]
    assert ("ns", "b") in cache.bodies


async def test_recreated_under_the_same_name_during_the_check_is_kept() -> None:
    cache = Cache()
    cache.create("a", "uid-a")
    cache.create("b", "uid-old")
    del cache.live[("ns", "b")]
    checked = asyncio.Event()
    original = cache.current

    async def slow_current(key: ObjectKey) -> Mapping[str, Any] | None:
        answer = await original(key)
        checked.set()
        await asyncio.sleep(SETTLE)  # the new object's ADDED event arrives meanwhile
        return answer

    cache.relist = RelistSweep(cache.kind, cache.bodies, slow_current, cache._forget, settle=SETTLE)
    cache.list_again()
    await asyncio.wait_for(checked.wait(), 1)
    cache.create("b", "uid-new")
    await settle()
    assert cache.bodies[("ns", "b")]["metadata"]["uid"] == "uid-new"
    assert cache.gone == []


async def test_a_failing_object_listed_again_is_retried_at_once() -> None:
    cache = Cache()
    cache.create("a", "uid-a")
    assert await asyncio.wait_for(cache.queue.get(), 1) == ("ns", "a")  # its first reconcile
    cache.queue.done(("ns", "a"))
    for _ in range(6):
        cache.failed(("ns", "a"), retry=True, fallback_after=None)  # backoff grown to about a minute
    cache.list_again()
    assert await asyncio.wait_for(cache.queue.get(), 1) == ("ns", "a")


async def test_in_namespaced_mode_a_relist_asks_only_for_its_own_namespace() -> None:
    cache = Cache()
    cache.relist.per_namespace = True
    for namespace in ("a", "b"):
        for name in ("x", "y"):
            obj = body(name, f"{namespace}-{name}", namespace)
            cache.live[(namespace, name)] = obj
            cache.observe("ADDED", obj)
    del cache.live[("a", "y")]  # deleted during a's watch gap
    cache.observe(None, cache.live[("a", "x")])  # only namespace a is listed again
    await settle()
    assert cache.asked == [("a", "y")]  # b's objects, not in this list, are not asked for
    assert cache.gone == [("a", "y")]
