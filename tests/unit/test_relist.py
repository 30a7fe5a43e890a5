"""Re-list correction: a complete list the watch hands over after a gap (410) shows what was deleted
meanwhile; those cached objects are forgotten, everything else is kept (operator/relist.py)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest

from strongroom.drivers.registry import DriverRegistry
from strongroom.operator.controllers.base import Controller, ObjectKey
from strongroom.operator.drivercache import DriverCache
from strongroom.operator.kube import Kube
from strongroom.operator.relist import gone_during_gap
from strongroom.operator.workqueue import Priority


def body(name: str, uid: str, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "uid": uid, "generation": 1}}


class Cache(Controller):
    """A controller whose API server is a dict: `live` holds what exists now."""

    kind = "Thing"

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[ObjectKey, dict[str, Any]] = {}
        self.gone: list[ObjectKey] = []

    def deleted(self, key: ObjectKey) -> None:
        self.gone.append(key)

    async def reconcile(self, key: ObjectKey) -> str:
        return "unused"

    def create(self, name: str, uid: str, namespace: str = "ns") -> None:
        obj = body(name, uid, namespace)
        self.live[(namespace, name)] = obj
        self.observe("ADDED", obj)

    def list_again(self, namespace: str = "ns") -> None:
        """What the runtime does with a list after a watch it cannot resume (runtime._tell_listed)."""
        listed = [obj for key, obj in self.live.items() if not namespace or key[0] == namespace]
        self.forget_unlisted(namespace, listed)
        for obj in listed:
            self.observe(None, obj)


def test_an_object_deleted_during_the_gap_is_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    cache = Cache()
    for name in ("kept", "deleted", "untouched"):
        cache.create(name, f"uid-{name}")
    del cache.live[("ns", "deleted")]  # deleted while the watch was down: no DELETED event ever comes
    with caplog.at_level(logging.INFO, logger="strongroom.operator.relist"):
        cache.list_again()
    assert cache.gone == [("ns", "deleted")]
    assert set(cache.bodies) == {("ns", "kept"), ("ns", "untouched")}
    assert "Thing ns/deleted was deleted while the watch was down" in caplog.text


def test_the_first_list_and_a_list_of_everything_forget_nothing() -> None:
    cache = Cache()
    cache.live[("ns", "a")] = body("a", "uid-a")
    cache.list_again()  # the initial list: nothing cached yet
    cache.list_again()  # and again, with nothing deleted
    assert cache.gone == []
    assert set(cache.bodies) == {("ns", "a")}


async def test_an_object_created_again_under_its_name_is_handled_as_new() -> None:
    cache = Cache()
    cache.create("b", "uid-old")
    assert await asyncio.wait_for(cache.queue.get(), 1) == ("ns", "b")
    cache.queue.done(("ns", "b"))
    cache.live[("ns", "b")] = body("b", "uid-new")  # deleted and created again during the gap
    cache.list_again()
    assert cache.gone == [("ns", "b")]
    assert cache.bodies[("ns", "b")]["metadata"]["uid"] == "uid-new"
    # Same generation as the old one, yet queued: it is a new object (before, it would have been ignored).
    assert cache.queue.taken_at(("ns", "b")) is None
    assert await asyncio.wait_for(cache.queue.get(), 1) == ("ns", "b")
    assert cache.queue.taken_at(("ns", "b")) == Priority.HIGH


async def test_a_failing_object_listed_again_is_retried_at_once() -> None:
    cache = Cache()
    cache.create("a", "uid-a")
    assert await asyncio.wait_for(cache.queue.get(), 1) == ("ns", "a")  # its first reconcile
    cache.queue.done(("ns", "a"))
    for _ in range(6):
        cache.failed(("ns", "a"), retry=True, fallback_after=None)  # backoff grown to about a minute
    cache.list_again()
    assert await asyncio.wait_for(cache.queue.get(), 1) == ("ns", "a")


def test_a_list_of_one_namespace_forgets_only_in_that_namespace() -> None:
    cache = Cache()
    for namespace in ("a", "b"):
        for name in ("x", "y"):
            cache.create(name, f"{namespace}-{name}", namespace)
    del cache.live[("a", "y")]  # deleted during a's watch gap
    del cache.live[("b", "y")]  # deleted too, but b's watch has not listed again yet
    cache.list_again("a")
    assert cache.gone == [("a", "y")]
    assert ("b", "y") in cache.bodies


def test_a_list_of_every_namespace_forgets_in_all() -> None:
    cached = [(("a", "x"), "1"), (("b", "x"), "2")]
    assert gone_during_gap(cached, [body("x", "1", "a")], "") == [("b", "x")]
    assert gone_during_gap(cached, [body("x", "1", "a")], "a") == []


def test_the_driver_cache_forgets_drivers_deleted_during_the_gap() -> None:
    drivers = DriverCache(cast(Kube, None), "strongroom-system", DriverRegistry())
    spec = {"type": "humanitec/echo", "builtin": "echo"}
    for name in ("kept", "deleted"):
        drivers.observe(
            "ADDED",
            {"metadata": {"namespace": "ns", "name": name, "uid": name, "generation": 1}, "spec": spec},
        )
    assert set(drivers.drivers) | set(drivers.invalid) == {("ns", "kept"), ("ns", "deleted")}
    listed = [{"metadata": {"namespace": "ns", "name": "kept", "uid": "kept", "generation": 1}, "spec": spec}]
    drivers.forget_unlisted("ns", listed)
    assert set(drivers.drivers) | set(drivers.invalid) == {("ns", "kept")}
