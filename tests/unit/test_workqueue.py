"""WorkQueue: dedup, priorities, dirty re-runs, delayed adds."""

from __future__ import annotations

import asyncio

import pytest

from strongroom.operator.workqueue import (
    LOW_TURN_EVERY,
    Activity,
    Pace,
    Priority,
    QueueClosed,
    WorkQueue,
    group_limit,
)


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


def _namespaced() -> WorkQueue[tuple[str, str]]:
    return WorkQueue(group_of=lambda key: key[0])


async def _take(queue: WorkQueue[tuple[str, str]], count: int) -> list[tuple[str, str]]:
    taken = []
    for _ in range(count):
        async with asyncio.timeout(1):
            key = await queue.get()
        queue.done(key)
        taken.append(key)
    return taken


async def test_namespaces_take_turns_within_a_priority() -> None:
    queue = _namespaced()
    for i in range(100):
        queue.add(("busy", f"m{i}"))
    queue.add(("quiet-a", "x"))
    queue.add(("quiet-b", "y"))
    # A namespace with 100 queued keys gets one turn per round, like one with a single key.
    assert await _take(queue, 4) == [("busy", "m0"), ("quiet-a", "x"), ("quiet-b", "y"), ("busy", "m1")]


async def test_a_namespace_added_later_is_served_in_the_next_round() -> None:
    queue = _namespaced()
    for i in range(50):
        queue.add(("busy", f"m{i}"))
    assert await _take(queue, 2) == [("busy", "m0"), ("busy", "m1")]
    queue.add(("late", "z"))
    assert await _take(queue, 2) == [("busy", "m2"), ("late", "z")]


async def test_a_namespace_holds_at_most_its_limit_of_keys_at_once() -> None:
    queue = _namespaced()
    queue.set_group_limit(2)
    for i in range(10):
        queue.add(("busy", f"m{i}"))
    first = [await queue.get(), await queue.get()]
    assert first == [("busy", "m0"), ("busy", "m1")]
    # A third key of the namespace waits in the queue, not in a worker, while another namespace's runs.
    third = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not third.done()
    queue.add(("other", "o"))
    assert await asyncio.wait_for(third, 1) == ("other", "o")
    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    queue.done(first[0])  # room again: the waiting worker gets the namespace's next key
    assert await asyncio.wait_for(waiting, 1) == ("busy", "m2")


async def test_high_churn_cannot_starve_low_work() -> None:
    queue = _namespaced()
    queue.add(("quiet", "refresh"), Priority.LOW)
    taken: list[tuple[str, str]] = []
    for i in range(LOW_TURN_EVERY * 3):
        queue.add(("churn", f"c{i}"), Priority.HIGH)  # a tenant changes specs without pause
        queue.add(("churn", f"d{i}"), Priority.HIGH)
        taken.extend(await _take(queue, 1))
        if ("quiet", "refresh") in taken:
            break
    assert ("quiet", "refresh") in taken
    assert taken.index(("quiet", "refresh")) == LOW_TURN_EVERY - 1
    # ... and new objects still go first whenever there is no LOW turn due.
    assert all(key[0] == "churn" for key in taken[: LOW_TURN_EVERY - 1])


async def test_a_raised_key_is_taken_once() -> None:
    queue = _namespaced()
    queue.add(("a", "k"), Priority.LOW)
    queue.add(("a", "k"), Priority.HIGH)
    queue.add(("b", "l"), Priority.LOW)
    assert await _take(queue, 2) == [("a", "k"), ("b", "l")]
    assert len(queue) == 0
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not getter.done()  # the stale LOW entry of ("a", "k") is not handed out again
    getter.cancel()


async def test_a_namespace_at_its_limit_does_not_hold_back_low_work_of_others() -> None:
    queue = _namespaced()
    queue.set_group_limit(1)
    queue.add(("busy", "a"))
    queue.add(("busy", "b"))
    assert await queue.get() == ("busy", "a")
    queue.add(("calm", "refresh"), Priority.LOW)
    # busy's HIGH key waits for busy's room; calm's LOW key need not wait for it.
    assert await asyncio.wait_for(queue.get(), 1) == ("calm", "refresh")


def test_group_limit_is_a_share_of_the_workers_and_at_least_one() -> None:
    assert group_limit(20, 0.5) == 10
    assert group_limit(3, 0.5) == 1
    assert group_limit(1, 0.1) == 1
    assert group_limit(4, 1.0) == 4
    with pytest.raises(ValueError, match="at least 1"):
        WorkQueue[str]().set_group_limit(0)


# --- pacing: a namespace beyond its rate waits while others work -------------------------------------------


def _paced(
    clock: FakeClock, rate: float, burst: float, activity: Activity | None = None
) -> WorkQueue[tuple[str, str]]:
    queue: WorkQueue[tuple[str, str]] = WorkQueue(clock=clock, group_of=lambda key: key[0])
    queue.set_pace(Pace(rate, burst), activity or Activity(window=10, clock=clock))
    return queue


def _take_now(queue: WorkQueue[tuple[str, str]]) -> tuple[str, str] | None:
    """The key a worker would get at this instant, or None (no waiting: the clock is fake)."""
    queue._promote_due()
    key = queue._take()
    if key is not None:
        queue.done(key)
    return key


def test_new_objects_of_a_namespace_alone_are_not_paced() -> None:
    clock = FakeClock()
    queue = _paced(clock, rate=1, burst=2)
    for i in range(20):
        queue.add(("only", f"m{i}"))
    assert [_take_now(queue) for _ in range(20)] == [("only", f"m{i}") for i in range(20)]
    assert queue.paused_count == 0


def test_changes_of_a_namespace_alone_are_paced() -> None:
    """Nobody else worked lately, which says nothing about the next second: a namespace changing its
    objects without pause is answered at the paced rate anyway, so that another namespace's next deploy
    does not arrive while the churn runs flat out."""
    clock = FakeClock()
    queue = _paced(clock, rate=2, burst=3)
    for i in range(6):
        queue.add(("churn", f"m{i}"), changed=True)
    assert [_take_now(queue) for _ in range(4)] == [("churn", "m0"), ("churn", "m1"), ("churn", "m2"), None]
    assert queue.paused_count == 1
    clock.now += 0.5
    assert [_take_now(queue), _take_now(queue)] == [("churn", "m3"), None]


def test_a_changed_key_is_paced_once_and_its_later_refresh_is_not() -> None:
    clock = FakeClock()
    queue = _paced(clock, rate=1, burst=1)
    queue.add(("only", "a"), changed=True)
    queue.add(("only", "a"), Priority.LOW)  # a refresh of the same key coalesces with the change
    assert [_take_now(queue), _take_now(queue)] == [("only", "a"), None]
    queue.add(("only", "a"))  # the change was answered: what comes next is paced only if it is one
    assert _take_now(queue) == ("only", "a")
    queue.add(("only", "a"), changed=True)
    queue.forget(("only", "a"))
    queue.add(("only", "a"))  # deleted and created again: a new object
    assert _take_now(queue) == ("only", "a")


def test_beyond_its_burst_a_namespace_waits_while_another_works() -> None:
    clock = FakeClock()
    queue = _paced(clock, rate=2, burst=3)
    for i in range(10):
        queue.add(("busy", f"m{i}"))
    queue.add(("quiet", "q0"))
    taken = [_take_now(queue) for _ in range(5)]
    # busy spends its burst of 3 in turns with quiet, then waits; quiet is served meanwhile.
    assert taken == [("busy", "m0"), ("quiet", "q0"), ("busy", "m1"), ("busy", "m2"), None]
    assert queue.paused_count == 1
    queue.add(("quiet", "q1"))
    assert _take_now(queue) == ("quiet", "q1")
    clock.now += 0.49
    assert _take_now(queue) is None  # a token takes 1/rate = 0.5 s
    clock.now += 0.02
    assert _take_now(queue) == ("busy", "m3")
    assert _take_now(queue) is None
    clock.now += 0.5
    assert _take_now(queue) == ("busy", "m4")


def test_a_namespace_that_ran_flat_out_alone_is_paced_as_soon_as_another_starts() -> None:
    clock = FakeClock()
    queue = _paced(clock, rate=1, burst=5)
    for i in range(10):
        queue.add(("busy", f"m{i}"))
    assert [_take_now(queue) for _ in range(6)] == [("busy", f"m{i}") for i in range(6)]
    queue.add(("quiet", "q"))
    assert _take_now(queue) == ("quiet", "q")
    assert _take_now(queue) is None  # its tokens were spent while it was alone


def test_pacing_ends_when_the_others_have_been_quiet_for_the_window() -> None:
    clock = FakeClock()
    queue = _paced(clock, rate=0.001, burst=1)
    for i in range(5):
        queue.add(("busy", f"m{i}"))
    queue.add(("quiet", "q"))
    assert [_take_now(queue) for _ in range(3)] == [("busy", "m0"), ("quiet", "q"), None]
    clock.now += 10.5  # quiet started nothing for longer than the window ...
    queue.add(("busy", "m0"))
    # ... but a pause, once begun, lasts until its token is due (1 / rate), so busy is not served early.
    assert _take_now(queue) is None
    clock.now += 1000
    assert [_take_now(queue) for _ in range(3)] == [("busy", "m1"), ("busy", "m2"), ("busy", "m3")]


def test_contention_is_judged_across_the_queues_of_every_kind() -> None:
    clock = FakeClock()
    activity = Activity(window=10, clock=clock)
    mappings = _paced(clock, rate=1, burst=1, activity=activity)
    resources = _paced(clock, rate=1, burst=1, activity=activity)
    for i in range(3):
        mappings.add(("churn", f"m{i}"))
    resources.add(("victim", "r"))
    assert _take_now(resources) == ("victim", "r")
    # The victim's Resource started work: the churning namespace's SecretMappings are paced.
    assert [_take_now(mappings), _take_now(mappings)] == [("churn", "m0"), None]


def test_changes_to_a_paused_namespace_coalesce() -> None:
    clock = FakeClock()
    queue = _paced(clock, rate=1, burst=1)
    queue.add(("busy", "a"))
    queue.add(("quiet", "q"))
    assert [_take_now(queue), _take_now(queue)] == [("busy", "a"), ("quiet", "q")]
    for _ in range(50):  # the same two objects changed fifty times while their namespace waits
        queue.add(("busy", "a"))
        queue.add(("busy", "b"))
    assert _take_now(queue) is None
    assert len(queue) == 2  # each queued once: fifty changes cost one reconcile each
    clock.now += 1
    assert _take_now(queue) == ("busy", "a")
    clock.now += 1
    assert _take_now(queue) == ("busy", "b")


async def test_a_worker_waiting_on_an_empty_turn_wakes_when_the_pause_ends() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue(group_of=lambda key: key[0])
    queue.set_pace(Pace(rate=50, burst=1), Activity(window=10))
    queue.add(("busy", "a"))
    queue.add(("busy", "b"))
    queue.add(("quiet", "q"))
    assert await _take(queue, 3) == [("busy", "a"), ("quiet", "q"), ("busy", "b")]  # b: after 20 ms


def test_a_pace_needs_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError, match="rate above 0"):
        Pace(0, 10)
    with pytest.raises(ValueError, match="burst of at least 1"):
        Pace(5, 0)


def test_housekeeping_queues_are_paced_but_do_not_pace_others() -> None:
    clock = FakeClock()
    activity = Activity(window=10, clock=clock)
    mappings = _paced(clock, rate=1, burst=1, activity=activity)
    stores: WorkQueue[tuple[str, str]] = WorkQueue(clock=clock, group_of=lambda key: key[0])
    stores.set_pace(Pace(1, 1), activity, marks_activity=False)
    stores.add(("strongroom-system", "vault"))
    assert _take_now(stores) == ("strongroom-system", "vault")
    for i in range(3):
        mappings.add(("app", f"m{i}"))
    # A store check in the operator namespace is no other tenant: the app namespace runs at full speed.
    assert [_take_now(mappings) for _ in range(3)] == [("app", "m0"), ("app", "m1"), ("app", "m2")]
    mappings.add(("other", "o"))
    for i in range(3):
        stores.add(("app", f"s{i}"))
    # With another tenant working, the app namespace's store checks are paced like its mappings.
    assert [_take_now(stores), _take_now(stores)] == [("app", "s0"), None]


async def test_the_priority_a_key_was_taken_at_is_known_until_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("refresh", Priority.LOW)
    queue.add("new", Priority.HIGH)
    assert queue.taken_at("new") is None  # queued, not taken
    first, second = await queue.get(), await queue.get()
    assert (first, queue.taken_at(first)) == ("new", Priority.HIGH)
    assert (second, queue.taken_at(second)) == ("refresh", Priority.LOW)
    queue.done(first)
    assert queue.taken_at(first) is None
