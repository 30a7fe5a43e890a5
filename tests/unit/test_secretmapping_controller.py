"""The SecretMapping controller's queueing of a force-refresh: a refresh (low priority), never a spec change.

The controller's I/O (store reads, Secret writes, status) is covered by
tests/integration/test_force_refresh.py."""

from __future__ import annotations

from typing import Any

from strongroom.operator.controllers.base import ObjectKey
from strongroom.operator.controllers.secretmapping import SecretMappingController
from strongroom.operator.kube import Kube
from strongroom.operator.storecache import StoreCache
from strongroom.operator.workqueue import Priority
from strongroom.stores.guard import GuardSettings

KEY: ObjectKey = ("ns", "m")


def body(
    generation: int = 1, force: str | None = None, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"namespace": "ns", "name": "m", "uid": "u", "generation": generation}
    if force is not None:
        metadata["annotations"] = {"strongroom.dev/force-refresh": force}
    return {"metadata": metadata, "spec": {}, "status": status or {}}


async def _controller() -> SecretMappingController:
    async def no_client(_store: object) -> Any:
        raise AssertionError("no store is read here")

    controller = SecretMappingController(
        Kube(None, None),  # type: ignore[arg-type]
        StoreCache(no_client, GuardSettings()),
        "strongroom-system",
        3600,
    )
    controller.observe("ADDED", body())
    assert controller.queue._queued == {KEY: Priority.HIGH}  # a new object: someone waits for it
    taken = await controller.queue.get()
    controller.queue.done(taken)
    return controller


async def test_setting_the_annotation_queues_a_refresh_not_a_change() -> None:
    controller = await _controller()
    controller.observe("MODIFIED", body(force="t1"))
    assert controller.queue._queued == {KEY: Priority.LOW}


async def test_the_operators_own_status_write_queues_nothing() -> None:
    controller = await _controller()
    controller.observe("MODIFIED", body(force="t1"))
    taken = await controller.queue.get()
    controller.queue.done(taken)
    controller.observe("MODIFIED", body(force="t1", status={"lastForceRefresh": "t1"}))
    assert controller.queue._queued == {}


async def test_a_spec_change_with_the_annotation_stays_high_priority() -> None:
    controller = await _controller()
    controller.observe("MODIFIED", body(generation=2, force="t1"))
    assert controller.queue._queued == {KEY: Priority.HIGH}


async def test_a_new_value_is_timed_from_when_it_was_first_seen() -> None:
    controller = await _controller()
    controller.observe("MODIFIED", body(force="t1"))
    first = controller._force_seen[KEY]
    controller.observe("MODIFIED", body(generation=2, force="t1"))  # same value: still the same request
    assert controller._force_seen[KEY] == first
    controller.observe("MODIFIED", body(generation=2, force="t2"))
    assert controller._force_seen[KEY][0] == "t2"
    assert controller._force_seen[KEY][1] >= first[1]
    controller.observe("DELETED", body(generation=2, force="t2"))
    assert KEY not in controller._force_seen


async def test_a_new_object_is_queued_as_new_and_an_edit_as_a_change() -> None:
    """Edits (of the spec or of the force-refresh annotation) are paced even when their namespace is alone;
    new objects are not (operator/workqueue.py)."""
    controller = await _controller()  # queued ADDED, taken: never a change
    assert controller.queue._changes == set()
    controller.observe("MODIFIED", body(generation=2))
    assert controller.queue._changes == {KEY}
    controller.queue.done(await controller.queue.get())
    controller.observe("MODIFIED", body(generation=2, force="t1"))
    assert controller.queue._changes == {KEY}
