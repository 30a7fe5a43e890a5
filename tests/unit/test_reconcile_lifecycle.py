"""The Resource lifecycle machine (strongroom.reconcile.lifecycle): every transition, and a model of the
world it acts on in which the executor crashes after every step."""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from strongroom.reconcile import lifecycle as lc
from strongroom.reconcile.resource import Pending

G = "guresid-1"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def obs(**kw: object) -> lc.Observed:
    values: dict[str, object] = {
        "driver_type": "remote-b",
        "guresid": G,
        "apply_reason": "first provisioning",
    }
    values.update(kw)
    return lc.Observed(**values)  # type: ignore[arg-type]


# --- Every transition, one at a time ----------------------------------------------------------------------


def test_nothing_to_do_is_unchanged() -> None:
    assert lc.next_step(obs(apply_reason=None, has_finalizer=True), lc.Memory()) == lc.Done("unchanged")


def test_marker_and_finalizer_come_before_the_put() -> None:
    step = lc.next_step(obs(), lc.Memory())
    assert step == lc.MarkPending(
        Pending("remote-b", G),
        add_finalizer=True,
        record=lc.Record("Provisioning", "driver 'remote-b' is working: first provisioning"),
    )
    assert lc.next_step(obs(), lc.after(lc.Memory(), step)) == lc.CallDriver("PUT", ("remote-b", G))


def test_builtin_driver_gets_no_marker_and_no_progress_status() -> None:
    step = lc.next_step(obs(keeps_external=False, has_finalizer=True), lc.Memory())
    assert step == lc.MarkPending(None, add_finalizer=False, record=None)


def test_after_the_answer_outputs_manifests_store_ready_then_the_marker_goes() -> None:
    observed = obs(pending=Pending("remote-b", G), has_finalizer=True)
    memory = lc.after(lc.Memory(started=True), lc.CallDriver("PUT", ("remote-b", G)), lc.Applied())
    kinds = []
    for _ in range(6):
        step = lc.next_step(observed, memory)
        kinds.append(step.kind)
        memory = lc.after(memory, step)
        if isinstance(step, lc.ClearPending):
            observed = obs(has_finalizer=True)
    assert kinds == [
        "WriteOutputs",
        "ApplyManifests",
        "PruneStore",
        "RecordReady",
        "ClearPending",
        "Done",
    ]
    assert lc.next_step(observed, memory) == lc.Done("provisioned")


def test_no_marker_to_clear_goes_straight_to_done() -> None:
    memory = lc.Memory(
        started=True,
        answer=lc.Applied(),
        done=frozenset({"WriteOutputs", "ApplyManifests", "PruneStore", "RecordReady"}),
    )
    assert lc.next_step(obs(keeps_external=False), memory) == lc.Done("provisioned")


def test_a_driver_at_work_means_wait() -> None:
    memory = lc.after(lc.Memory(started=True), lc.CallDriver("PUT", ("remote-b", G)), lc.InProgress(2.0))
    assert lc.next_step(obs(), memory) == lc.Wait(2.0)
    deleting = lc.after(lc.Memory(started=True), lc.CallDriver("DELETE", ("remote-b", G)), lc.InProgress(3.0))
    assert lc.next_step(obs(deleting=True, has_finalizer=True), deleting) == lc.Wait(3.0)


def test_a_previous_driver_still_deleting_is_not_forgotten() -> None:
    observed = obs(to_release=(("remote-a", G),))
    memory = lc.after(lc.Memory(), lc.ReleasePreviousDriver(("remote-a", G)), lc.InProgress(2.0))
    assert memory.released == frozenset()
    assert lc.next_step(observed, memory) == lc.Wait(2.0)


def test_previous_drivers_are_released_one_by_one_then_forgotten() -> None:
    observed = obs(to_release=(("remote-a", G), ("remote-c", G)), pending=Pending("remote-c", G))
    memory = lc.Memory()
    assert lc.next_step(observed, memory) == lc.ReleasePreviousDriver(("remote-a", G))
    memory = lc.after(memory, lc.ReleasePreviousDriver(("remote-a", G)))
    assert lc.next_step(observed, memory) == lc.ReleasePreviousDriver(("remote-c", G))
    memory = lc.after(memory, lc.ReleasePreviousDriver(("remote-c", G)))
    assert lc.next_step(observed, memory) == lc.ForgetPreviousDriver(clear_pending=True)
    # A marker of the spec's own driver stays: it is the crash record of the new driver's PUT.
    own = obs(to_release=(("remote-a", G),), pending=Pending("remote-b", G))
    assert lc.next_step(own, lc.Memory(released=frozenset({("remote-a", G)}))) == lc.ForgetPreviousDriver(
        clear_pending=False
    )


def test_deletion_deletes_through_every_holder_then_cleans_up() -> None:
    observed = obs(deleting=True, has_finalizer=True, holders=(("remote-a", G), ("remote-b", G)))
    memory = lc.Memory()
    kinds = []
    while True:
        step = lc.next_step(observed, memory)
        kinds.append(step)
        if isinstance(step, lc.Done):
            break
        memory = lc.after(memory, step)
    assert kinds == [
        lc.RecordDeleting(lc.Record("Deleting", "deprovisioning through the driver")),
        lc.CallDriver("DELETE", ("remote-a", G)),
        lc.CallDriver("DELETE", ("remote-b", G)),
        lc.DeleteManifests(),
        lc.DeleteStoreEntries(),
        lc.RemoveFinalizer(),
        lc.Done("deleted"),
    ]


def test_confirmed_deletes_are_not_repeated() -> None:
    observed = obs(deleting=True, has_finalizer=True, holders=(("remote-a", G),))
    memory = lc.Memory(started=True, released=frozenset({("remote-a", G)}))
    assert lc.next_step(observed, memory) == lc.DeleteManifests()


def test_deleted_without_our_finalizer_is_left_alone() -> None:
    assert lc.next_step(obs(deleting=True), lc.Memory()) == lc.Done("deleting")


# --- The model: a world the machine acts on, crashed after every step --------------------------------------

BUILTIN = "echo"


@dataclass
class World:
    """What survives a crash: the Resource's metadata and status, the drivers' external resources, the
    store, the owned objects."""

    driver: str
    inputs: str = "v1"
    in_place: bool = False
    deleting: bool = False
    finalizer: bool = False
    pending: Pending | None = None
    status_driver: str | None = None
    status_inputs: str | None = None
    ready: bool = False
    external: dict[str, dict[str, str]] = field(default_factory=dict)
    creations: Counter[tuple[str, str]] = field(default_factory=Counter)
    store: set[str] = field(default_factory=set)
    outputs_secret: str | None = None
    objects: set[str] = field(default_factory=set)
    slow: Counter[str] = field(default_factory=Counter)
    """Per driver, how many more calls answer 202 first."""

    def observe(self) -> lc.Observed:
        recorded = [(self.status_driver, G)] if self.status_driver else []
        marked = [(self.pending.driver_type, self.pending.guresid)] if self.pending else []
        holding = sorted(set(recorded + marked))
        to_release = () if self.in_place else tuple(h for h in holding if h[0] != self.driver)
        holders = tuple(holding) or ((self.driver, G),)
        if self.pending is not None:
            reason: str | None = "a driver call that did not finish is repeated"
        elif self.status_inputs is None:
            reason = "first provisioning"
        elif self.status_driver != self.driver:
            reason = "the driver changed"
        elif self.status_inputs != self.inputs:
            reason = "the inputs changed"
        elif not self.ready or self.outputs_secret != self.inputs:
            reason = "the last attempt did not succeed"
        else:
            reason = None
        return lc.Observed(
            driver_type=self.driver,
            guresid=G,
            keeps_external=self.driver != BUILTIN,
            deleting=self.deleting,
            has_finalizer=self.finalizer,
            pending=self.pending,
            to_release=to_release,
            holders=holders,
            apply_reason=reason,
        )

    def execute(self, step: lc.Step) -> lc.DriverAnswer | None:
        """One step against the world, as an executor performs it."""
        if isinstance(step, lc.ReleasePreviousDriver):
            if self.slow[step.holder[0]] > 0:
                self.slow[step.holder[0]] -= 1
                return lc.InProgress(1.0)
            self.external.get(step.holder[0], {}).pop(step.holder[1], None)
        elif isinstance(step, lc.ForgetPreviousDriver):
            self.status_driver = None
            self.store.discard("cookie")
            if step.clear_pending:
                self.pending = None
        elif isinstance(step, lc.MarkPending):
            self.finalizer = self.finalizer or step.add_finalizer
            if step.pending is not None:
                self.pending = step.pending
        elif isinstance(step, lc.CallDriver):
            driver, guresid = step.holder
            if self.slow[driver] > 0:
                self.slow[driver] -= 1
                return lc.InProgress(1.0)
            if step.method == "DELETE":
                self.external.get(driver, {}).pop(guresid, None)
                return None
            if driver != BUILTIN:  # a built-in driver keeps nothing outside the cluster
                held = self.external.setdefault(driver, {})
                if guresid not in held:
                    self.creations[(driver, guresid)] += 1
                held[guresid] = self.inputs
            return lc.Applied()
        elif isinstance(step, lc.WriteOutputs):
            self.store.update({"outputs/password", "cookie"})
            self.outputs_secret = self.inputs
        elif isinstance(step, lc.ApplyManifests):
            self.objects.add("ConfigMap/db")
        elif isinstance(step, lc.RecordReady):
            self.status_driver, self.status_inputs, self.ready = self.driver, self.inputs, True
        elif isinstance(step, lc.ClearPending):
            self.pending = None
        elif isinstance(step, lc.DeleteManifests):
            self.objects.clear()
        elif isinstance(step, lc.DeleteStoreEntries):
            self.store.clear()
        elif isinstance(step, lc.RemoveFinalizer):
            self.finalizer = False
        return None


TRANSITIONS = lc.Transitions()


def run_pass(world: World, crash_after: int | None = None) -> tuple[lc.Step | None, int]:
    """One reconcile: observe, decide, execute until Wait/Done, or a crash after `crash_after` steps.
    Returns the final step (None after a crash) and the number of steps executed."""
    memory = lc.Memory()
    before: lc.Step | None = None
    for executed in range(50):
        step = lc.next_step(world.observe(), memory)
        TRANSITIONS.add(before, step)
        if isinstance(step, (lc.Wait, lc.Done)):
            return step, executed
        if crash_after is not None and executed == crash_after:
            return None, executed  # the process dies: memory is gone, the world keeps what was written
        answer = world.execute(step)
        memory = lc.after(memory, step, answer)
        before = step
    raise AssertionError("the machine did not converge in one pass")


def converge(world: World) -> int:
    """Run passes until Done; the number of passes."""
    for passes in range(1, 10):
        last, _ = run_pass(world)
        if isinstance(last, lc.Done):
            return passes
    raise AssertionError("no convergence")


def provisioned(driver: str, **kw: object) -> World:
    world = World(driver=driver, **kw)  # type: ignore[arg-type]
    converge(world)
    return world


def assert_provisioned(world: World) -> None:
    assert world.pending is None
    assert world.finalizer
    assert world.ready
    assert (world.status_driver, world.status_inputs) == (world.driver, world.inputs)
    expected = {} if world.driver == BUILTIN else {world.driver: {G: world.inputs}}
    assert {d: held for d, held in world.external.items() if held} == expected, "an orphan driver resource"
    assert all(n == 1 for n in world.creations.values()), "a duplicate first provisioning"
    assert world.outputs_secret == world.inputs


def assert_deleted(world: World) -> None:
    assert not any(world.external.values()), "an orphan driver resource"
    assert not world.finalizer
    assert not world.store
    assert not world.objects


SCENARIOS: dict[str, Callable[[], World]] = {
    "first provisioning, remote": lambda: World(driver="remote-b"),
    "first provisioning, built in": lambda: World(driver=BUILTIN),
    "changed inputs": lambda: _changed(provisioned("remote-b"), inputs="v2"),
    "driver change": lambda: _changed(provisioned("remote-a"), driver="remote-b"),
    "driver change in place": lambda: _changed(provisioned("remote-a"), driver="remote-b", in_place=True),
    "driver change to built in": lambda: _changed(provisioned("remote-a"), driver=BUILTIN),
}


def _changed(world: World, **kw: object) -> World:
    for name, value in kw.items():
        setattr(world, name, value)
    return world


def clean_steps(make: Callable[[], World]) -> int:
    world = make()
    _, executed = run_pass(world)
    return executed


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_converges_after_a_crash_at_every_step(scenario: str) -> None:
    make = SCENARIOS[scenario]
    total = clean_steps(make)
    assert total > 0
    for crash in range(total):
        world = make()
        last, executed = run_pass(world, crash_after=crash)
        assert last is None
        assert executed == crash
        converge(world)
        if world.in_place:
            # The new driver takes the resource over: the old one keeps what it had, by design.
            world.external.pop("remote-a", None)
        assert_provisioned(world)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_two_crashes_then_deletion_leave_no_orphan(scenario: str) -> None:
    make = SCENARIOS[scenario]
    total = clean_steps(make)
    for first, second in itertools.product(range(total), range(total)):
        world = make()
        run_pass(world, crash_after=first)
        run_pass(world, crash_after=second)
        world.deleting = True
        deleting_steps = run_pass(_copy(world))[1]
        for crash in range(deleting_steps):
            attempt = _copy(world)
            run_pass(attempt, crash_after=crash)
            converge(attempt)
            if attempt.in_place:
                attempt.external.pop("remote-a", None)
            assert_deleted(attempt)


def _copy(world: World) -> World:
    return copy.deepcopy(world)


def test_a_driver_at_work_waits_then_finishes() -> None:
    world = World(driver="remote-b")
    world.slow["remote-b"] = 2
    assert isinstance(run_pass(world)[0], lc.Wait)
    assert world.pending == Pending("remote-b", G)  # a crash now would PUT again, never orphan
    assert converge(world) == 2
    assert_provisioned(world)


def test_a_slow_delete_waits_then_finishes() -> None:
    world = provisioned("remote-b")
    world.deleting = True
    world.slow["remote-b"] = 1
    assert isinstance(run_pass(world)[0], lc.Wait)
    assert world.finalizer
    converge(world)
    assert_deleted(world)


def test_a_slow_release_waits_and_the_new_driver_is_not_called_meanwhile() -> None:
    world = _changed(provisioned("remote-a"), driver="remote-b")
    world.slow["remote-a"] = 1
    assert isinstance(run_pass(world)[0], lc.Wait)
    assert world.status_driver == "remote-a"  # not forgotten while it is still deleting
    assert "remote-b" not in world.external
    converge(world)
    assert_provisioned(world)


def test_a_provisioned_resource_is_left_alone() -> None:
    world = provisioned("remote-b")
    assert run_pass(world) == (lc.Done("unchanged"), 0)


def test_docs_diagram_is_the_machine() -> None:
    """docs/architecture.md shows exactly the transitions the scenarios of this module exercise."""
    TRANSITIONS.edges.clear()
    for scenario in SCENARIOS:
        test_converges_after_a_crash_at_every_step(scenario)
        test_two_crashes_then_deletion_leave_no_orphan(scenario)
    test_a_driver_at_work_waits_then_finishes()
    test_a_slow_delete_waits_then_finishes()
    test_a_slow_release_waits_and_the_new_driver_is_not_called_meanwhile()
    test_a_provisioned_resource_is_left_alone()
    converge(World(driver="remote-b", deleting=True))
    diagram = TRANSITIONS.mermaid()
    assert f"```mermaid\n{diagram}\n```" in DOCS.read_text(), f"update the diagram:\n{diagram}"
