"""The Workload controller's own decisions: which Resource a workload means, what it must read, when to
apply. Everything here is pure; the controller's I/O is covered by tests/integration/test_workloads.py."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.api.resource import private_resource_id as default_resource_id
from strongroom.api.workload import ScoreResource, WorkloadSpec
from strongroom.operator.controllers.workload import WorkloadController
from strongroom.operator.kube import Kube
from strongroom.operator.workqueue import Priority
from strongroom.reconcile.ownership import controlled_by
from strongroom.reconcile.workload import RenderResult
from strongroom.reconcile.workloadgather import (
    RENDERED_HASH_ANNOTATION,
    Gathered,
    ResourceIdentity,
    composed_keys,
    decide,
    match_identity,
    matching,
    parse_manifest_list,
    parse_patches,
    rendered_hash,
    resource_identity,
    resource_not_ready,
    with_rendered_hash,
)


def resource_body(
    name: str,
    type_: str,
    id_: str,
    class_: str | None = None,
    *,
    ready: str | None = "True",
    generation: int = 1,
    observed: int | None = 1,
    namespace: str = "ns",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type_, "id": id_, "driverType": "strongroom/echo"}
    if class_ is not None:
        spec["class"] = class_
    status: dict[str, Any] = {}
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": ready, "reason": "Provisioned"}]
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": generation},
        "spec": spec,
        "status": status,
    }


# --- matching -----------------------------------------------------------------------------------------------


def test_private_resource_gets_humanitecs_module_id() -> None:
    identity = match_identity("ns", "api", "db", ScoreResource(type="postgres"))
    assert identity == ResourceIdentity("ns", "postgres", "default", "modules.api.externals.db")
    assert default_resource_id("api", "db") == "modules.api.externals.db"


def test_explicit_id_and_class_are_used_as_written() -> None:
    resource = ScoreResource.model_validate({"type": "dns", "class": "public", "id": "shared.dns"})
    assert match_identity("ns", "api", "dns", resource) == ResourceIdentity(
        "ns", "dns", "public", "shared.dns"
    )


def test_resource_without_class_has_the_default_class() -> None:
    assert resource_identity(resource_body("db", "postgres", "shared.db")) == ResourceIdentity(
        "ns", "postgres", "default", "shared.db"
    )
    assert resource_identity(resource_body("db", "postgres", "shared.db", "default")) == ResourceIdentity(
        "ns", "postgres", "default", "shared.db"
    )


def test_matching_compares_namespace_type_class_and_id() -> None:
    wanted = ResourceIdentity("ns", "postgres", "default", "shared.db")
    bodies = [
        resource_body("b", "postgres", "shared.db"),
        resource_body("a", "postgres", "shared.db", "default"),
        resource_body("other-class", "postgres", "shared.db", "large"),
        resource_body("other-type", "mysql", "shared.db"),
        resource_body("other-id", "postgres", "shared.db2"),
        resource_body("other-ns", "postgres", "shared.db", namespace="elsewhere"),
        {"metadata": {"name": "broken", "namespace": "ns"}, "spec": {"type": "postgres"}},
    ]
    assert [body["metadata"]["name"] for body in matching(wanted, bodies)] == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (resource_body("r", "t", "i"), None),
        (resource_body("r", "t", "i", ready=None, observed=None), "it has not been provisioned yet"),
        (resource_body("r", "t", "i", ready="False"), "it is not Ready (Provisioned)"),
        (
            resource_body("r", "t", "i", generation=2, observed=1),
            "its latest spec has not been provisioned yet",
        ),
        (resource_body("r", "t", "i", observed=None), None),
    ],
)
def test_resource_readiness(body: dict[str, Any], why: str | None) -> None:
    assert resource_not_ready(body) == why


def test_resource_being_deleted_is_not_used() -> None:
    body = resource_body("r", "t", "i")
    body["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert resource_not_ready(body) == "it is being deleted"


# --- which secret values are read ------------------------------------------------------------------------


def test_only_outputs_composed_with_text_are_read() -> None:
    spec = WorkloadSpec.model_validate(
        {
            "containers": {
                "main": {
                    "image": "app",
                    "variables": {
                        "PASSWORD": "${resources.db.password}",  # by reference: not read
                        "DSN": "postgres://${resources.db.user}:${resources.db.outputs.password}@x",
                        "BROKEN": "${resources.db",  # reported by the renderer, ignored here
                    },
                    "files": {
                        "/etc/token": {"content": "${resources.vault.token}"},
                        "/etc/app.conf": {"content": "key=${resources.vault['api.key']}\n"},
                        "/etc/raw": {"content": "x=${resources.vault.raw}", "noExpand": True},
                    },
                }
            },
            "resources": {"db": {"type": "postgres"}, "vault": {"type": "vault"}},
        }
    )
    assert composed_keys(spec) == {"db": {"user", "password"}, "vault": {"api.key"}}


# --- manifests -------------------------------------------------------------------------------------------


def test_manifest_lists_must_be_lists_of_objects() -> None:
    assert parse_manifest_list(b'[{"name": "otel"}]', "containers.json") == [{"name": "otel"}]
    with pytest.raises(ValueError, match=r"^containers.json is not valid JSON$"):
        parse_manifest_list(b"{nope", "containers.json")
    with pytest.raises(ValueError, match="not a JSON list of objects"):
        parse_manifest_list(b'{"name": "otel"}', "containers.json")
    with pytest.raises(ValueError, match="not a JSON list of objects"):
        parse_manifest_list(b'["otel"]', "volumes.json")


# --- applying --------------------------------------------------------------------------------------------


def test_rendered_hash_is_stable_and_sees_every_change() -> None:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}}
    hashed = with_rendered_hash(manifest)
    assert hashed["metadata"]["annotations"][RENDERED_HASH_ANNOTATION] == rendered_hash(manifest)
    assert "annotations" not in manifest["metadata"]  # the rendered manifest itself is left alone
    reordered = {"data": {"k": "v"}, "metadata": {"name": "a"}, "kind": "ConfigMap", "apiVersion": "v1"}
    assert rendered_hash(reordered) == rendered_hash(manifest)
    assert rendered_hash({**manifest, "data": {"k": "w"}}) != rendered_hash(manifest)


def test_only_the_controlling_owner_counts() -> None:
    obj = {"metadata": {"ownerReferences": [{"uid": "u1", "controller": True}, {"uid": "u2"}]}}
    assert controlled_by(obj, "u1")
    assert not controlled_by(obj, "u2")
    assert not controlled_by({"metadata": {}}, "u1")


# --- conditions --------------------------------------------------------------------------------------------


def test_a_broken_patch_outranks_everything_else() -> None:
    result = RenderResult(patch_problems={"p2": "operation 1 (remove /spec/x) failed"}, waiting_for=["db"])
    decision = decide(result, Gathered(problems=["resources.db: two match"]), {"p1": "the spec is not valid"})
    assert decision is not None
    assert (decision.condition.reason, decision.condition.status, decision.retry) == (
        "InvalidPatch",
        False,
        False,
    )
    assert "p1: the spec is not valid; p2: operation 1" in decision.condition.message
    assert "last good rendering is kept" in decision.condition.message


def test_waiting_names_each_resource_and_why() -> None:
    gathered = Gathered(waiting_notes={"db": "no Resource with type 'postgres'", "mq": "Resource 'mq': x"})
    decision = decide(RenderResult(waiting_for=["db", "mq"]), gathered, {})
    assert decision is not None
    assert decision.condition.reason == "WaitingForResources"
    assert decision.condition.message == (
        "waiting for resources: db (no Resource with type 'postgres'), mq (Resource 'mq': x)"
    )


def test_problems_come_before_waiting_and_mention_it() -> None:
    decision = decide(
        RenderResult(problems=["containers.main.files./x: bad"], waiting_for=["db"]), Gathered(), {}
    )
    assert decision is not None
    assert decision.condition.reason == "RenderFailed"
    assert decision.condition.message == "containers.main.files./x: bad (also waiting for resources: db)"


def test_complete_rendering_is_applied() -> None:
    assert decide(RenderResult(objects=[{"kind": "Deployment"}]), Gathered(), {}) is None


# --- events: who is woken ----------------------------------------------------------------------------------


def controller() -> WorkloadController:
    # Event handling never calls the API; the client is not needed.
    return WorkloadController(Kube(None, None), resync_interval=60)  # type: ignore[arg-type]


def test_a_resource_event_wakes_exactly_the_workloads_that_use_it() -> None:
    workloads = controller()
    for name in ("api", "worker"):
        workloads.bodies[("ns", name)] = {"metadata": {"name": name, "namespace": "ns"}}
    db = ResourceIdentity("ns", "postgres", "default", "shared.db")
    workloads._set_needs(("ns", "api"), {db})
    workloads._set_needs(("ns", "worker"), {ResourceIdentity("ns", "redis", "default", "shared.cache")})

    body = resource_body("db", "postgres", "shared.db")
    workloads.resource_event(None, body)
    assert workloads.queue._queued == {("ns", "api"): Priority.HIGH}
    assert workloads.cached_resources(db) == [workloads.resources[("ns", "db")]]

    workloads.queue._queued.clear()
    # The same state again (a re-list after a watch restart): nothing to do.
    workloads.resource_event("MODIFIED", {**body, "metadata": {**body["metadata"], "labels": {"x": "y"}}})
    assert not workloads.queue._queued
    # Its status changed: the workload reads it, so it is woken.
    workloads.resource_event("MODIFIED", resource_body("db", "postgres", "shared.db", ready="False"))
    assert list(workloads.queue._queued) == [("ns", "api")]

    workloads.queue._queued.clear()
    workloads.resource_event("DELETED", body)
    assert list(workloads.queue._queued) == [("ns", "api")]
    assert workloads.cached_resources(db) == []


def test_a_resource_whose_class_is_set_later_moves_to_its_new_identity() -> None:
    workloads = controller()
    workloads.resource_event(None, resource_body("db", "postgres", "shared.db"))
    workloads.resource_event("MODIFIED", resource_body("db", "postgres", "shared.db", "large"))
    assert workloads.cached_resources(ResourceIdentity("ns", "postgres", "default", "shared.db")) == []
    assert len(workloads.cached_resources(ResourceIdentity("ns", "postgres", "large", "shared.db"))) == 1


def test_a_patch_that_changes_its_workload_wakes_both() -> None:
    workloads = controller()
    for name in ("a", "b"):
        workloads.bodies[("ns", name)] = {"metadata": {"name": name, "namespace": "ns"}}
    patch: dict[str, Any] = {
        "metadata": {"name": "p", "namespace": "ns", "generation": 1},
        "spec": {"workloadName": "a", "patches": [{"op": "remove", "path": "/spec/x"}]},
    }
    workloads.patches.observe(None, patch)
    assert list(workloads.queue._queued) == [("ns", "a")]
    assert workloads.patches.targeting(("ns", "a")) == [("ns", "p")]

    workloads.queue._queued.clear()
    moved = {
        **patch,
        "metadata": {**patch["metadata"], "generation": 2},
        "spec": {**patch["spec"], "workloadName": "b"},
    }
    workloads.patches.observe("MODIFIED", moved)
    assert set(workloads.queue._queued) == {("ns", "a"), ("ns", "b")}
    assert workloads.patches.targeting(("ns", "a")) == []
    assert workloads.patches.targeting(("ns", "b")) == [("ns", "p")]

    workloads.queue._queued.clear()
    workloads.patches.observe("DELETED", moved)
    assert list(workloads.queue._queued) == [("ns", "b")]
    assert workloads.patches.targeting(("ns", "b")) == []


def test_patches_that_do_not_parse_are_reported_as_broken() -> None:
    good = {
        "metadata": {"name": "good", "namespace": "ns"},
        "spec": {"workloadName": "a", "patches": [{"op": "remove", "path": "/spec/x"}]},
    }
    bad = {
        "metadata": {"name": "bad", "namespace": "ns"},
        "spec": {"workloadName": "a", "patches": [{"op": "add", "path": "/spec/x"}]},
    }
    patches, broken = parse_patches([good, bad])
    assert [patch.name for patch in patches] == ["good"]
    assert list(broken) == ["bad"]
    assert broken["bad"].startswith("the spec is not valid: spec.patches.0")
