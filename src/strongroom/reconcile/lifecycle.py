"""The Resource lifecycle as one decision function: what to do next, given what is observed.

Shaped like crossplane-runtime's managed reconciler. An executor (the operator's Resource controller, over
the Kubernetes API; direct mode, over its state ConfigMap) loops

    observed = observe();  step = next_step(observed, memory);  execute(step);  memory = after(memory, step)

until the step is `Wait` or `Done`. `Observed` is what was read (and can be read again after a crash: the
Resource's finalizer, its verified pending marker, the drivers its sealed status names); `Memory` is what
this pass did (lost in a crash: which drivers confirmed a DELETE, whether the driver answered, which
steps after the answer are done). Nothing here does I/O.

The crash contract it keeps (tests/unit/test_reconcile_lifecycle.py crashes after every step):
- the finalizer and, for drivers that keep something outside the cluster, the pending marker are written
  before the PUT, and the marker is cleared only after the `Ready` status records the driver and GUResID;
  so a crash anywhere between them makes the next pass PUT again with the same GUResID (drivers are
  idempotent per GUResID) or, when the Resource is deleted, DELETE through that driver too;
- a driver the Resource no longer uses is DELETEd before the new one is called, and forgotten (status and
  marker) only once it confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

from strongroom.reconcile.resource import Pending

#: (driver type, GUResID): a driver that holds, or may hold, the Resource's external resource.
Holder = tuple[str, str]


# --- What the executor reads and remembers ----------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """What the executor read before deciding (all of it survives a crash)."""

    driver_type: str
    """`spec.driverType`."""
    guresid: str
    """The GUResID the spec's driver is called with."""
    keeps_external: bool = True
    """Whether the driver keeps anything outside the cluster (remote drivers): only those get the marker."""
    deleting: bool = False
    has_finalizer: bool = False
    pending: Pending | None = None
    """The verified pending marker."""
    to_release: tuple[Holder, ...] = ()
    """Drivers other than the spec's that may hold the resource, to DELETE through first (provisioning)."""
    holders: tuple[Holder, ...] = ()
    """Every driver that may hold the resource, to DELETE through (deletion)."""
    apply_reason: str | None = None
    """Why the driver must be called (reconcile.resource.apply_reason), or None when the last PUT stands."""


@dataclass(frozen=True)
class InProgress:
    """The driver answered 202/409: it is still working; ask again after `retry_after` seconds."""

    retry_after: float


@dataclass(frozen=True)
class Applied:
    """The driver answered the PUT and its answer passed the checks (the executor holds the outputs)."""


DriverAnswer = Applied | InProgress


@dataclass(frozen=True)
class Memory:
    """What this pass did. A crash loses it; nothing may depend on it for safety, only for not repeating."""

    released: frozenset[Holder] = frozenset()
    """Drivers that confirmed a DELETE."""
    started: bool = False
    """The marker/finalizer (provisioning) or the `Deleting` status (deletion) was written."""
    answer: DriverAnswer | None = None
    """The last driver answer of this pass."""
    done: frozenset[str] = frozenset()
    """Kinds of the steps done since the answer (or, deleting, since the drivers confirmed)."""


# --- Steps ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """The status a step records: a progress condition (`reason`) with a message a person can act on."""

    reason: Literal["Provisioning", "Deleting", "Ready"]
    message: str


@dataclass(frozen=True)
class Step:
    kind: ClassVar[str]


@dataclass(frozen=True)
class ReleasePreviousDriver(Step):
    """DELETE through a driver the Resource no longer uses, before the new one is called."""

    kind: ClassVar[str] = "ReleasePreviousDriver"
    holder: Holder


@dataclass(frozen=True)
class ForgetPreviousDriver(Step):
    """Every previous driver confirmed: drop its cookie, `status.driverType`, and a marker naming it."""

    kind: ClassVar[str] = "ForgetPreviousDriver"
    clear_pending: bool


@dataclass(frozen=True)
class MarkPending(Step):
    """Before the PUT: the finalizer (if missing) and the pending marker (if the driver keeps anything
    outside the cluster), in one write; then the progress status."""

    kind: ClassVar[str] = "MarkPending"
    pending: Pending | None
    add_finalizer: bool
    record: Record | None


@dataclass(frozen=True)
class CallDriver(Step):
    kind: ClassVar[str] = "CallDriver"
    method: Literal["PUT", "DELETE"]
    holder: Holder


@dataclass(frozen=True)
class WriteOutputs(Step):
    """Secret outputs and the cookie into the default store (only what changed), the manifests Secret,
    the outputs Secret."""

    kind: ClassVar[str] = "WriteOutputs"


@dataclass(frozen=True)
class ApplyManifests(Step):
    """Record grown manifests in the status first, then apply the objects, delete the stale ones, apply the
    WorkloadPatch."""

    kind: ClassVar[str] = "ApplyManifests"


@dataclass(frozen=True)
class PruneStore(Step):
    """Store entries the new outputs no longer use."""

    kind: ClassVar[str] = "PruneStore"


@dataclass(frozen=True)
class RecordReady(Step):
    kind: ClassVar[str] = "RecordReady"
    record: Record


@dataclass(frozen=True)
class ClearPending(Step):
    kind: ClassVar[str] = "ClearPending"


@dataclass(frozen=True)
class RecordDeleting(Step):
    kind: ClassVar[str] = "RecordDeleting"
    record: Record


@dataclass(frozen=True)
class DeleteManifests(Step):
    """Objects the drivers' manifests made, each only if the live object proves this Resource made it."""

    kind: ClassVar[str] = "DeleteManifests"


@dataclass(frozen=True)
class DeleteStoreEntries(Step):
    kind: ClassVar[str] = "DeleteStoreEntries"


@dataclass(frozen=True)
class RemoveFinalizer(Step):
    kind: ClassVar[str] = "RemoveFinalizer"


@dataclass(frozen=True)
class Wait(Step):
    """The driver is working: the executor stops and asks again after `after` seconds."""

    kind: ClassVar[str] = "Wait"
    after: float


@dataclass(frozen=True)
class Done(Step):
    kind: ClassVar[str] = "Done"
    outcome: Literal["unchanged", "provisioned", "deleted", "deleting"]
    """`deleting`: a deleted Resource without our finalizer (never provisioned, or already deprovisioned)."""


#: Every kind of step, in the order a full provisioning and a deletion take them (the diagram's order).
STEP_KINDS = tuple(
    cls.kind
    for cls in (
        ReleasePreviousDriver,
        ForgetPreviousDriver,
        MarkPending,
        CallDriver,
        WriteOutputs,
        ApplyManifests,
        PruneStore,
        RecordReady,
        ClearPending,
        RecordDeleting,
        DeleteManifests,
        DeleteStoreEntries,
        RemoveFinalizer,
        Wait,
        Done,
    )
)

# After the PUT's answer, in this order.
_AFTER_ANSWER = (WriteOutputs(), ApplyManifests(), PruneStore())


# --- The decision -----------------------------------------------------------------------------------------


def next_step(observed: Observed, memory: Memory) -> Step:
    """The one next thing to do."""
    if isinstance(memory.answer, InProgress):
        return Wait(memory.answer.retry_after)
    if observed.deleting:
        return _deletion_step(observed, memory)
    return _provisioning_step(observed, memory)


def _provisioning_step(observed: Observed, memory: Memory) -> Step:
    if isinstance(memory.answer, Applied):
        for step in _AFTER_ANSWER:
            if step.kind not in memory.done:
                return step
        if RecordReady.kind not in memory.done:
            return RecordReady(Record("Ready", f"driver {observed.driver_type!r} provisioned it"))
        if observed.pending is not None:
            return ClearPending()
        return Done("provisioned")
    for holder in observed.to_release:
        if holder not in memory.released:
            return ReleasePreviousDriver(holder)
    if observed.to_release:
        pending = observed.pending
        return ForgetPreviousDriver(
            clear_pending=pending is not None and pending.driver_type != observed.driver_type
        )
    if observed.apply_reason is None:
        return Done("unchanged")
    if not memory.started:
        marker = Pending(observed.driver_type, observed.guresid) if observed.keeps_external else None
        record = (
            Record("Provisioning", f"driver {observed.driver_type!r} is working: {observed.apply_reason}")
            if observed.keeps_external
            else None
        )
        return MarkPending(marker, add_finalizer=not observed.has_finalizer, record=record)
    return CallDriver("PUT", (observed.driver_type, observed.guresid))


def _deletion_step(observed: Observed, memory: Memory) -> Step:
    if RemoveFinalizer.kind in memory.done:
        return Done("deleted")
    if not observed.has_finalizer:
        return Done("deleting")
    if not memory.started:
        return RecordDeleting(Record("Deleting", "deprovisioning through the driver"))
    for holder in observed.holders:
        if holder not in memory.released:
            return CallDriver("DELETE", holder)
    if DeleteManifests.kind not in memory.done:
        return DeleteManifests()
    if DeleteStoreEntries.kind not in memory.done:
        return DeleteStoreEntries()
    return RemoveFinalizer()


def after(memory: Memory, step: Step, answer: DriverAnswer | None = None) -> Memory:
    """Memory once `step` was executed; `answer` is the driver's, for a step that calls one."""
    if isinstance(answer, InProgress):
        return replace(memory, answer=answer)  # the driver is still at it: nothing is confirmed yet
    if isinstance(step, ReleasePreviousDriver):
        return replace(memory, released=memory.released | {step.holder})
    if isinstance(step, CallDriver):
        if step.method == "DELETE":
            return replace(memory, released=memory.released | {step.holder}, answer=None)
        return replace(memory, answer=answer or Applied(), done=frozenset())
    if isinstance(step, (MarkPending, RecordDeleting)):
        return replace(memory, started=True)
    if isinstance(step, ForgetPreviousDriver):
        return memory
    return replace(memory, done=memory.done | {step.kind})


# --- The diagram ------------------------------------------------------------------------------------------


@dataclass
class Transitions:
    """Edges (step kind -> next step kind) seen while executing the machine; rendered as the docs'
    diagram. The tests collect them by running every scenario, so the diagram is what the code does."""

    edges: set[tuple[str, str]] = field(default_factory=set)

    def add(self, before: Step | None, step: Step) -> None:
        self.edges.add(("[*]" if before is None else before.kind, step.kind))

    def mermaid(self) -> str:
        order = {kind: i for i, kind in enumerate(("[*]", *STEP_KINDS))}
        lines = ["stateDiagram-v2"]
        for a, b in sorted(self.edges, key=lambda e: (order[e[0]], order[e[1]])):
            lines.append(f"    {a} --> {b}")
        lines.append("    Wait --> [*]")
        lines.append("    Done --> [*]")
        return "\n".join(lines)


__all__ = [
    "STEP_KINDS",
    "Applied",
    "ApplyManifests",
    "CallDriver",
    "ClearPending",
    "DeleteManifests",
    "DeleteStoreEntries",
    "Done",
    "DriverAnswer",
    "ForgetPreviousDriver",
    "Holder",
    "InProgress",
    "MarkPending",
    "Memory",
    "Observed",
    "PruneStore",
    "Record",
    "RecordDeleting",
    "RecordReady",
    "ReleasePreviousDriver",
    "RemoveFinalizer",
    "Step",
    "Transitions",
    "Wait",
    "after",
    "next_step",
]
