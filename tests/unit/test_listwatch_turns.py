"""A long list is handed over in turns: other tasks run between them (issue 11: one tenant's namespace of
thousands of objects must not hold the event loop for everyone at each re-list)."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.operator.listwatch import each_in_turns


@pytest.mark.asyncio
async def test_other_tasks_run_while_a_long_list_is_handed_over() -> None:
    handled: list[int] = []
    seen_by_others: list[int] = []
    stop = asyncio.Event()

    async def another_namespace() -> None:
        while not stop.is_set():
            seen_by_others.append(len(handled))
            await asyncio.sleep(0)

    other = asyncio.create_task(another_namespace())
    await asyncio.sleep(0)  # it has started
    await each_in_turns(range(1000), handled.append, turn=250)
    stop.set()
    await other

    assert handled == list(range(1000))  # every object, in order, once
    # The other task ran between turns, not only before and after the whole list.
    assert {n for n in seen_by_others if 0 < n < 1000} == {250, 500, 750}


@pytest.mark.asyncio
async def test_a_short_list_is_handed_over_without_yielding() -> None:
    handled: list[str] = []
    ran: list[int] = []

    async def other() -> None:
        ran.append(len(handled))

    task = asyncio.create_task(other())
    await each_in_turns(["a", "b"], handled.append, turn=250)
    assert handled == ["a", "b"]
    assert ran == []  # nothing else ran in between
    await task
