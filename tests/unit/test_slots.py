"""Reconcile slots: never more holders than slots, never idle while someone waits, handed out fairly."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.operator.slots import FairSlots


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_one_group_alone_may_hold_every_slot() -> None:
    slots = FairSlots(3)
    for _ in range(3):
        await slots.acquire("busy")
    assert slots.free == 0
    assert slots.held("busy") == 3


async def test_a_freed_slot_goes_to_the_group_holding_fewest() -> None:
    slots = FairSlots(2)
    await slots.acquire("busy")
    await slots.acquire("busy")
    order: list[str] = []

    async def take(group: str) -> None:
        await slots.acquire(group)
        order.append(group)

    # Five more of the busy namespace queue up first, then one of another namespace.
    waiters = [asyncio.create_task(take("busy")) for _ in range(5)]
    await _settle()
    waiters.append(asyncio.create_task(take("quiet")))
    await _settle()
    assert order == []
    slots.release("busy")
    await _settle()
    assert order == ["quiet"]  # not behind the busy namespace's backlog
    slots.release("busy")
    await _settle()
    assert order == ["quiet", "busy"]
    for _ in range(4):
        slots.release("busy" if slots.held("busy") else "quiet")
        await _settle()
    assert len(order) == 6
    for task in waiters:
        await task


async def test_equal_holders_are_served_in_arrival_order() -> None:
    slots = FairSlots(1)
    await slots.acquire("a")
    order: list[str] = []

    async def take(group: str) -> None:
        await slots.acquire(group)
        order.append(group)

    tasks = [asyncio.create_task(take(g)) for g in ("b", "c", "d")]
    await _settle()
    for holder in ("a", "b", "c"):
        slots.release(holder)
        await _settle()
    assert order == ["b", "c", "d"]
    for task in tasks:
        await task


async def test_within_a_group_urgent_waiters_go_first_then_arrival_order() -> None:
    slots = FairSlots(1)
    await slots.acquire("ns")
    order: list[str] = []

    async def take(name: str, urgent: bool) -> None:
        await slots.acquire("ns", urgent=urgent)
        order.append(name)

    waiters = [
        ("refresh-1", False),
        ("refresh-2", False),
        ("new-1", True),
        ("refresh-3", False),
        ("new-2", True),
    ]
    tasks = []
    for name, urgent in waiters:
        tasks.append(asyncio.create_task(take(name, urgent)))
        await _settle()
    for _ in waiters:
        slots.release("ns")
        await _settle()
    assert order == ["new-1", "new-2", "refresh-1", "refresh-2", "refresh-3"]
    for task in tasks:
        await task


async def test_cancelled_waiters_leave_the_count_intact() -> None:
    slots = FairSlots(1)
    await slots.acquire("a")
    waiter = asyncio.create_task(slots.acquire("b"))
    await _settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    slots.release("a")
    assert slots.free == 1
    # A waiter granted the slot and cancelled before it ran hands the slot on.
    await slots.acquire("a")
    granted = asyncio.create_task(slots.acquire("b"))
    await _settle()
    slots.release("a")  # grants "b" ...
    granted.cancel()  # ... which is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await granted
    assert slots.free == 1
    assert slots.held("b") == 0


async def test_a_group_holds_its_share_while_another_is_active() -> None:
    slots = FairSlots(4, share=0.5)
    assert slots.group_cap == 2
    for _ in range(4):
        await slots.acquire("busy")  # alone: every slot
    quiet = asyncio.create_task(slots.acquire("quiet"))
    more = [asyncio.create_task(slots.acquire("busy")) for _ in range(3)]
    await _settle()
    slots.release("busy")
    await _settle()
    assert quiet.done()  # the freed slot went to the other namespace
    slots.release("busy")
    await _settle()
    # busy holds 2 (its cap) and quiet 1: the free slot stays free rather than go to busy again.
    assert slots.held("busy") == 2
    assert slots.free == 1
    assert not any(task.done() for task in more)
    slots.release("quiet")
    await _settle()
    # quiet is done: busy is alone again and takes what is free.
    assert slots.held("busy") == 4
    assert sum(task.done() for task in more) == 2
    for _ in range(4):
        slots.release("busy")
        await _settle()
    assert all(task.done() for task in more)


def test_capacity_and_share_must_make_sense() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FairSlots(0)
    with pytest.raises(ValueError, match="share"):
        FairSlots(2, share=0)
