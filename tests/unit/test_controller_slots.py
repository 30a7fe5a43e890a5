"""Controller slots: at most `slots` reconciles work at once; one waiting on a remote party frees its slot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import pytest

from strongroom.operator.controllers.base import Controller, ObjectKey
from strongroom.operator.slots import FairSlots


class Probe(Controller):
    """Counts reconciles working at once; `wait_outside` makes each one wait in `waiting()` first."""

    kind = "Probe"

    def __init__(self, wait_outside: bool) -> None:
        super().__init__()
        self.wait_outside = wait_outside
        self.release = asyncio.Event()
        self.working = 0
        self.most_working = 0
        self.outside = 0
        self.most_outside = 0
        self.done: list[ObjectKey] = []

    async def _work(self) -> None:
        self.working += 1
        self.most_working = max(self.most_working, self.working)
        await asyncio.sleep(0.01)
        self.working -= 1

    async def reconcile(self, key: ObjectKey) -> str:
        await self._work()
        if self.wait_outside:
            async with self.waiting():
                self.outside += 1
                self.most_outside = max(self.most_outside, self.outside)
                await self.release.wait()
                self.outside -= 1
            await self._work()
        self.done.append(key)
        return "ok"


async def _run(probe: Probe, objects: int, workers: int, slots: int) -> asyncio.Task[None]:
    probe.namespace_worker_share = 1.0  # all objects are in one namespace: these tests are about slots
    for i in range(objects):
        probe.observe("ADDED", {"metadata": {"namespace": "ns", "name": f"o{i}", "generation": 1}})
    return asyncio.create_task(probe.run(workers, slots))


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the probe has no event to signal each change
            await asyncio.sleep(0.005)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    ("workers", "slots", "most"),
    [(10, 3, 3), (2, 5, 2)],  # the slots bound the working reconciles; never more than the workers
)
async def test_no_more_than_slots_reconciles_work_at_once(workers: int, slots: int, most: int) -> None:
    probe = Probe(wait_outside=False)
    task = await _run(probe, objects=30, workers=workers, slots=slots)
    await _until(lambda: len(probe.done) == 30)
    await _stop(task)
    assert probe.most_working == most


async def test_a_reconcile_waiting_outside_gives_its_slot_away() -> None:
    probe = Probe(wait_outside=True)
    task = await _run(probe, objects=8, workers=8, slots=2)
    # All eight get past their first step although only two slots exist: each waits without one.
    await _until(lambda: probe.outside == 8)
    assert probe.most_working <= 2
    probe.release.set()
    await _until(lambda: len(probe.done) == 8)
    await _stop(task)
    assert probe.most_working <= 2
    assert probe.most_outside == 8


async def test_a_cancelled_wait_leaves_the_slot_count_intact() -> None:
    probe = Probe(wait_outside=True)
    task = await _run(probe, objects=4, workers=4, slots=1)
    await _until(lambda: probe.outside == 4)
    await _stop(task)  # every reconcile is cancelled while waiting outside, holding no slot
    assert await _free(probe._slots) == 1


async def _free(slots: FairSlots) -> int:
    """How many slots can be taken without waiting."""
    return slots.free


class Parked(Controller):
    """Every reconcile of namespace `busy` hangs (a hung driver, say); others finish at once."""

    kind = "Parked"

    def __init__(self) -> None:
        super().__init__()
        self.hung: set[ObjectKey] = set()
        self.done: list[ObjectKey] = []

    async def reconcile(self, key: ObjectKey) -> str:
        if key[0] == "busy":
            self.hung.add(key)
            await asyncio.Event().wait()
        self.done.append(key)
        return "ok"


async def test_one_namespace_holds_at_most_its_share_of_the_workers() -> None:
    controller = Parked()
    controller.namespace_worker_share = 0.5
    for i in range(20):
        controller.observe("ADDED", {"metadata": {"namespace": "busy", "name": f"h{i}", "generation": 1}})
    task = asyncio.create_task(controller.run(workers=4, slots=4))
    await _until(lambda: len(controller.hung) == 2)
    for i in range(5):
        controller.observe("ADDED", {"metadata": {"namespace": "calm", "name": f"c{i}", "generation": 1}})
    # The hung namespace holds two of the four workers; the other two serve everyone else.
    await _until(lambda: len(controller.done) == 5)
    await _stop(task)
    assert len(controller.hung) == 2
