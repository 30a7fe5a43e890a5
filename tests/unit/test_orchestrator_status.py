"""Waiting for a CR set: readiness per object, the progress line, the status table, failures."""

from __future__ import annotations

import io
from typing import Any

from strongroom.orchestrator.status import Progress, deleted_state, failures, object_state, table


def obj(generation: int, observed: int | None, *conditions: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions)}
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"generation": generation}, "status": status}


def cond(type_: str, status: str, reason: str = "R", message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def test_ready_only_for_the_current_generation() -> None:
    assert object_state("Resource", "db", obj(2, 2, cond("Ready", "True", "Provisioned"))).ready
    stale = object_state("Resource", "db", obj(3, 2, cond("Ready", "True", "Provisioned")))
    assert not stale.ready
    assert stale.message == "the latest spec is not reconciled yet"
    missing = object_state("Resource", "db", None)
    assert (missing.ready, missing.reason) == (False, "NotFound")


def test_failures_and_stalled() -> None:
    waiting = object_state("Workload", "web", obj(1, 1, cond("Ready", "False", "WaitingForResources", "db")))
    assert (waiting.ready, waiting.failed, waiting.stalled) == (False, True, False)
    stalled = object_state(
        "Resource",
        "db",
        obj(1, 1, cond("Ready", "False", "DriverRejected"), cond("Stalled", "True", "DriverRejected", "400")),
    )
    assert stalled.stalled
    assert failures([waiting, stalled]) == [
        "Workload/web: WaitingForResources: db",
        "Resource/db: DriverRejected: 400",
    ]


def test_workload_patches_without_status_count_as_done() -> None:
    assert object_state("WorkloadPatch", "p", {"metadata": {"generation": 1}}).ready
    assert not object_state("Resource", "r", {"metadata": {"generation": 1}}).ready


def test_pruned_objects_are_done_when_gone() -> None:
    going = deleted_state("Resource", "db", obj(1, 1, cond("Ready", "False", "Deleting", "deprovisioning")))
    assert (going.ready, going.word, going.reason) == (False, "Deleting", "Deleting")
    gone = deleted_state("Resource", "db", None)
    assert (gone.ready, gone.word) == (True, "Deleted")


def test_table_and_progress() -> None:
    states = [
        object_state(
            "Resource", "postgres-web-db", obj(1, 1, cond("Ready", "True", "Provisioned", "x" * 200))
        ),
        object_state("Workload", "web", obj(1, 1, cond("Ready", "False", "WaitingForResources", "db"))),
    ]
    text = table(states)
    lines = text.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "READY", "REASON", "MESSAGE"]
    assert lines[1].split()[:4] == ["Resource", "postgres-web-db", "True", "Provisioned"]
    assert lines[1].endswith("...")
    assert len(lines[1]) < 140
    stream = io.StringIO()
    progress = Progress(stream)
    progress.update(states, 1.0)
    progress.update(states, 2.0)  # unchanged: not printed again on a non-terminal
    progress.update(states[:1], 3.0)
    progress.finish()
    assert stream.getvalue().splitlines() == [
        "[   1s] 1/2 ready; waiting for Workload/web: WaitingForResources (db)",
        "[   3s] 1/1 ready",
    ]
