"""WorkQueue: dedup, priorities, dirty re-runs, delayed adds."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.operator.workqueue import Priority, QueueClosed, WorkQueue


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_high_priority_is_taken_before_low() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for i in range(5):
        queue.add(f"refresh-{i}", Priority.LOW)
    queue.add("new", Priority.HIGH)
    assert await queue.get() == "new"


async def test_key_is_queued_once_and_can_be_raised() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a", Priority.LOW)
    queue.add("b", Priority.LOW)
    queue.add("a", Priority.LOW)
    queue.add("b", Priority.HIGH)
    assert len(queue) == 2
    assert [await queue.get(), await queue.get()] == ["b", "a"]


async def test_key_added_while_processing_runs_again_after_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    assert len(queue) == 0  # not handed to a second worker
    queue.done(key)
    assert await queue.get() == "a"


async def test_add_after_waits_for_the_clock_and_earliest_schedule_wins() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("a", 10)
    queue.add_after("a", 5)
    queue.add_after("a", 20)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    clock.now = 5
    queue.add("wake")  # any add wakes the waiter so it re-checks the timer heap
    first = await getter
    second = await queue.get()
    assert {first, second} == {"a", "wake"}
    assert queue.delayed_count == 0


async def test_forget_drops_schedules() -> None:
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue(clock=clock)
    queue.add_after("gone", 1)
    queue.forget("gone")
    clock.now = 2
    queue.add("other")
    assert await queue.get() == "other"
    queue.close()
    with pytest.raises(QueueClosed):
        await queue.get()
