"""Waiting for a CR set: what each object's status says, a progress line, and the final table.

An object counts as Ready when its `Ready` condition is True for its current generation
(`status.observedGeneration`, or the condition's own, is at least `metadata.generation`). `Stalled=True`
fails at once; anything else is waited for until the timeout. WorkloadPatches are done unless their
`Ready` is False (the operator writes a condition on a patch when it applies it or cannot). Objects the
deploy pruned are done when they are gone (a Resource's finalizer deprovisions it first).

The table also shows each Workload's pods: ready/desired replicas of the Deployments and StatefulSets the
Workload's status lists, as `kubectl get deployment` counts them. It is shown, not waited for: a
Workload is Ready once its objects are applied, and pods take as long as their images and probes take.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

#: Kinds that get a Ready condition from the operator, and are waited for.
WAITED_KINDS = frozenset({"Resource", "Workload", "SecretMapping", "WorkloadPatch"})
#: Kinds a Workload runs its pods with, whose replica counts the table shows.
POD_CONTROLLER_KINDS = frozenset({"Deployment", "StatefulSet"})


@dataclass(frozen=True)
class Pods:
    """A Workload's pods: Ready replicas out of the desired ones, summed over its pod controllers."""

    ready: int
    desired: int

    @property
    def text(self) -> str:
        return f"{self.ready}/{self.desired}"


@dataclass(frozen=True)
class ObjectState:
    kind: str
    name: str
    ready: bool
    failed: bool = False
    reason: str = ""
    message: str = ""
    deleting: bool = False
    stalled: bool = False
    """`Stalled=True`: the operator gave up until something changes; waiting longer cannot help."""
    pods: Pods | None = None
    """Workloads only: their pods, once a pod controller of theirs exists."""
    pods_error: str = ""
    """Workloads only: why their pods could not be read (the table shows `?`)."""

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def pods_text(self) -> str:
        if self.kind != "Workload" or self.deleting:
            return "-"
        if self.pods_error:
            return "?"
        return self.pods.text if self.pods is not None else "<none>"

    @property
    def word(self) -> str:
        if self.deleting:
            return "Deleted" if self.ready else "Deleting"
        if self.ready:
            return "True"
        return "False" if self.failed else "Pending"


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next((cond for cond in status.get("conditions") or [] if cond.get("type") == kind), None)


def object_state(kind: str, name: str, obj: Mapping[str, Any] | None) -> ObjectState:
    if obj is None:
        return ObjectState(kind, name, ready=False, reason="NotFound", message="not in the cluster yet")
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    generation = meta.get("generation")
    ready = _condition(status, "Ready")
    stalled = _condition(status, "Stalled")
    if stalled is not None and stalled.get("status") == "True":
        return ObjectState(
            kind,
            name,
            ready=False,
            failed=True,
            stalled=True,
            reason=str(stalled.get("reason") or "Stalled"),
            message=str(stalled.get("message") or ""),
        )
    if ready is None:
        if kind == "WorkloadPatch":
            return ObjectState(kind, name, ready=True, reason="", message="")
        return ObjectState(kind, name, ready=False, reason="Pending", message="no status yet")
    observed = status.get("observedGeneration", ready.get("observedGeneration"))
    current = generation is None or (isinstance(observed, int) and observed >= generation)
    reason = str(ready.get("reason") or "")
    message = str(ready.get("message") or "")
    if not current:
        return ObjectState(
            kind,
            name,
            ready=False,
            reason=reason or "Pending",
            message="the latest spec is not reconciled yet",
        )
    if ready.get("status") == "True":
        return ObjectState(kind, name, ready=True, reason=reason, message=message)
    return ObjectState(
        kind, name, ready=False, failed=ready.get("status") == "False", reason=reason, message=message
    )


def pod_controllers(workload: Mapping[str, Any] | None) -> list[tuple[str, str, str]]:
    """(apiVersion, kind, name) of the Deployments and StatefulSets a Workload's status lists."""
    if workload is None:
        return []
    found = []
    for ref in (workload.get("status") or {}).get("objects") or []:
        kind, name, api_version = ref.get("kind"), ref.get("name"), ref.get("apiVersion")
        if kind in POD_CONTROLLER_KINDS and isinstance(name, str) and isinstance(api_version, str):
            found.append((api_version, str(kind), name))
    return found


def pods(controllers: Sequence[Mapping[str, Any] | None]) -> Pods | None:
    """Ready out of desired replicas of these pod controllers (None for one not created yet); None when
    none exists. Desired is `spec.replicas` (default 1), Ready is `status.readyReplicas`."""
    live = [obj for obj in controllers if obj is not None]
    if not live:
        return None
    ready = desired = 0
    for obj in live:
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        desired += replicas if isinstance(replicas, int) else 0
        ready_replicas = (obj.get("status") or {}).get("readyReplicas", 0)
        ready += ready_replicas if isinstance(ready_replicas, int) else 0
    return Pods(ready=ready, desired=desired)


def deleted_state(kind: str, name: str, obj: Mapping[str, Any] | None) -> ObjectState:
    if obj is None:
        return ObjectState(kind, name, ready=True, reason="Pruned", message="deleted", deleting=True)
    status = obj.get("status") or {}
    ready = _condition(status, "Ready") or {}
    return ObjectState(
        kind,
        name,
        ready=False,
        reason=str(ready.get("reason") or "Deleting"),
        message=str(ready.get("message") or "waiting for the finalizer"),
        deleting=True,
    )


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 3, 0)] + "..."


class Progress:
    """One line on stderr: redrawn in place on a terminal, printed when it changes otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last = ""

    def update(self, states: Sequence[ObjectState], elapsed: float) -> None:
        waiting = [state for state in states if not state.ready]
        done = len(states) - len(waiting)
        if waiting:
            first = waiting[0]
            detail = f"{first.label}: {first.reason}" + (f" ({first.message})" if first.message else "")
            more = f" and {len(waiting) - 1} more" if len(waiting) > 1 else ""
            line = f"[{elapsed:4.0f}s] {done}/{len(states)} ready; waiting for {detail}{more}"
        else:
            line = f"[{elapsed:4.0f}s] {done}/{len(states)} ready"
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r\033[K" + _clip(line, width))
            self.stream.flush()
        elif line.split("] ", 1)[1] != self._last.split("] ", 1)[-1]:
            self.stream.write(line + "\n")
            self.stream.flush()
        self._last = line

    def finish(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()


def table(states: Sequence[ObjectState], message_width: int = 80) -> str:
    """The status table printed after a deploy: KIND, NAME, READY, PODS (a Workload's Ready/desired pods,
    `<none>` before its Deployment exists, `?` when unreadable, `-` for other kinds), REASON, MESSAGE."""
    header = ("KIND", "NAME", "READY", "PODS", "REASON", "MESSAGE")
    rows = [(s.kind, s.name, s.word, s.pods_text, s.reason, _clip(s.message, message_width)) for s in states]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def failures(states: Sequence[ObjectState]) -> list[str]:
    """One line per object that is not Ready: its failing condition (reason and message)."""
    return [
        f"{state.label}: {state.reason or 'NotReady'}" + (f": {state.message}" if state.message else "")
        for state in states
        if not state.ready
    ]
