"""Waiting for a CR set: readiness per object, the progress line, the status table, failures."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from strongroom.orchestrator.status import (
    Pods,
    Progress,
    deleted_state,
    failures,
    object_state,
    pod_controllers,
    pods,
    table,
)


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
    assert lines[0].split() == ["KIND", "NAME", "READY", "PODS", "REASON", "MESSAGE"]
    assert lines[1].split()[:5] == ["Resource", "postgres-web-db", "True", "-", "Provisioned"]
    assert lines[1].endswith("...")
    assert len(lines[1]) - lines[1].index("xxx") == 80  # the message is clipped to its width
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


def workload(*objects: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"generation": 1}, "status": {"observedGeneration": 1, "objects": list(objects)}}


def controller(replicas: int | None, ready: int | None) -> dict[str, Any]:
    spec = {} if replicas is None else {"replicas": replicas}
    status = {} if ready is None else {"readyReplicas": ready}
    return {"spec": spec, "status": status}


def test_pod_controllers_are_the_deployments_and_statefulsets_a_workload_lists() -> None:
    live = workload(
        {"apiVersion": "v1", "kind": "Service", "name": "web"},
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "web-files"},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"},
    )
    assert pod_controllers(live) == [("apps/v1", "Deployment", "web"), ("apps/v1", "StatefulSet", "db")]
    assert pod_controllers(workload()) == []
    assert pod_controllers({"metadata": {}}) == []  # no status yet
    assert pod_controllers(None) == []  # not created yet


def test_pods_count_ready_out_of_desired_replicas() -> None:
    assert pods([controller(2, 1)]) == Pods(ready=1, desired=2)
    assert pods([controller(None, None)]) == Pods(ready=0, desired=1)  # the replicas default, no pod ready
    assert pods([controller(3, 3), controller(1, 0)]) == Pods(ready=3, desired=4)
    assert pods([controller(1, 1), None]) == Pods(ready=1, desired=1)  # one not created yet
    assert pods([None]) is None
    assert pods([]) is None


def test_table_shows_workload_pods() -> None:
    web = object_state("Workload", "web", obj(1, 1, cond("Ready", "True", "Applied")))
    worker = object_state("Workload", "worker", obj(1, 1, cond("Ready", "False", "WaitingForResources")))
    db = object_state("Resource", "db", obj(1, 1, cond("Ready", "True", "Provisioned")))
    gone = deleted_state("Workload", "old", None)
    states = [
        dataclasses.replace(web, pods=Pods(ready=1, desired=1)),
        worker,  # its Deployment is not there yet
        dataclasses.replace(web, name="api", pods_error="reading Deployment api: forbidden (HTTP 403)"),
        db,
        gone,
    ]
    rows = [line.split()[:4] for line in table(states).splitlines()[1:]]
    assert rows == [
        ["Workload", "web", "True", "1/1"],
        ["Workload", "worker", "False", "<none>"],
        ["Workload", "api", "True", "?"],
        ["Resource", "db", "True", "-"],
        ["Workload", "old", "Deleted", "-"],
    ]
