"""The Resource controller's decisions (strongroom.reconcile.resource): pure, no cluster."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from strongroom.api import constants as c
from strongroom.api.common import SecretReference
from strongroom.api.resource import DRIVER_INPUTS_MAX_BYTES, Resource
from strongroom.drivers.base import DriverResult, Manifest, reveal_tree
from strongroom.reconcile import resource as plan
from strongroom.reconcile.stores import Problem
from strongroom.stores.base import SecretValue

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
KEY = b"k" * 32
CANARY = "canary-unit-9f3e"


def make(
    name: str = "db",
    *,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    generation: int = 1,
    annotations: dict[str, str] | None = None,
) -> Resource:
    body: dict[str, Any] = {
        "apiVersion": c.API_VERSION,
        "kind": "Resource",
        "metadata": {"name": name, "namespace": "apps", "uid": f"uid-{name}", "generation": generation},
        "spec": {"type": "postgres", "id": "shared.db", "driverType": "humanitec/echo", **(spec or {})},
    }
    if annotations:
        body["metadata"]["annotations"] = annotations
    if status is not None:
        body["status"] = status
    return Resource.model_validate(body)


def ready_body(
    name: str, values: dict[str, Any], secret_refs: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "apps", "generation": 2},
        "status": {
            "observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Provisioned"}],
            "outputs": {"values": values, "secretRefs": secret_refs or {}},
        },
    }


# --- identity ---------------------------------------------------------------------------------------------


def test_guresid_is_derived_stably_and_matches_the_driver_api_pattern() -> None:
    one = plan.derive_guresid("apps", "postgres", "default", "shared.db")
    assert one == plan.derive_guresid("apps", "postgres", "default", "shared.db")
    assert re.fullmatch(c.GURESID, one)
    assert len(one) == 40
    assert one != plan.derive_guresid("apps2", "postgres", "default", "shared.db")
    assert one != plan.derive_guresid("apps", "postgres", "large", "shared.db")
    assert plan.guresid_of(make()) == one
    assert plan.guresid_of(make(spec={"guresid": "given-id-1"})) == "given-id-1"


def test_owned_names_stay_valid_when_the_resource_name_is_long() -> None:
    assert plan.outputs_secret_name("db") == "db-outputs"
    assert plan.manifests_secret_name("db") == "db-manifests"
    long = "a" * 250
    name = plan.outputs_secret_name(long)
    assert len(name) <= 253
    assert name.endswith("-outputs")
    assert name != plan.outputs_secret_name("a" * 249 + "b")
    assert plan.output_store_key("apps", "db", "conn.password") == "strongroom/apps/db/outputs/conn.password"
    assert plan.cookie_store_key("apps", "db") == "strongroom/apps/db/cookie"


def test_pending_marker_round_trips_and_ignores_garbage() -> None:
    marker = plan.Pending("s3", "abc-123")
    found = plan.pending_of({plan.PENDING_ANNOTATION: marker.annotation("uid-1", KEY)}, "uid-1", KEY)
    assert found == plan.PendingMarker(marker)
    for bad in ("{", "[]", '{"driverType": 1}', '{"driverType": "x"}'):
        assert plan.pending_of({plan.PENDING_ANNOTATION: bad}, "uid-1", KEY) == plan.PendingMarker(None, True)
    assert plan.pending_of({plan.PENDING_ANNOTATION: ""}, "uid-1", KEY) == plan.PendingMarker(None)
    assert plan.pending_of(None, "uid-1", KEY) == plan.PendingMarker(None)


def test_a_forged_or_copied_pending_marker_is_ignored() -> None:
    # What a tenant can write: the old, unsigned shape naming another namespace's GUResID; a MAC made with
    # another key; a valid marker copied from another Resource; a valid marker with its GUResID changed.
    victim = plan.derive_guresid("team-a", "postgres", "default", "shared.db")
    unsigned = json.dumps({"driverType": "postgres", "guresid": victim})
    other_key = plan.Pending("postgres", victim).annotation("uid-1", b"x" * 32)
    copied = plan.Pending("postgres", victim).annotation("uid-of-another", KEY)
    edited = json.loads(plan.Pending("postgres", "mine").annotation("uid-1", KEY)) | {"guresid": victim}
    for forged in (unsigned, other_key, copied, json.dumps(edited)):
        assert plan.pending_of({plan.PENDING_ANNOTATION: forged}, "uid-1", KEY) == plan.PendingMarker(
            None, ignored=True
        )
    assert plan.tamper_condition(status_altered=False, marker_ignored=True) is not None
    assert plan.tamper_condition(status_altered=False, marker_ignored=False) is None


def test_hand_set_guresid_only_where_the_admin_allows_it() -> None:
    derived = plan.derive_guresid("apps", "postgres", "default", "shared.db")
    none = plan.GuresidPolicy()
    assert plan.guresid_problem(make(), none) is None
    assert plan.guresid_problem(make(spec={"guresid": derived}), none) is None  # the derived one is harmless
    problem = plan.guresid_problem(make(spec={"guresid": "team-a-db"}), none)
    assert problem is not None
    assert problem.reason == "GuresidNotAllowed"
    assert not problem.retryable
    assert "team-a-db" in problem.message
    assert "--explicit-guresid-namespaces" in problem.message
    assert (
        plan.guresid_problem(make(spec={"guresid": "x-1"}), plan.GuresidPolicy(frozenset({"apps"}))) is None
    )
    assert plan.guresid_problem(make(spec={"guresid": "x-1"}), plan.GuresidPolicy(frozenset({"*"}))) is None
    assert (
        plan.guresid_problem(make(spec={"guresid": "x-1"}), plan.GuresidPolicy(frozenset({"b"}))) is not None
    )
    # The identity two Resources are compared by: the GUResID they would be allowed to use.
    assert plan.identity_key(make(spec={"guresid": "x-1"}), none) == derived
    assert plan.identity_key(make(spec={"guresid": "x-1"}), plan.GuresidPolicy(frozenset({"*"}))) == "x-1"


def test_the_oldest_resource_of_an_identity_wins_then_the_name() -> None:
    def body(name: str, created: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "creationTimestamp": created}}

    first, second, same_time = (
        body("b-db", "2025-01-01T10:00:00Z"),
        body("a-db", "2025-01-01T11:00:00Z"),
        body("c-db", "2025-01-01T10:00:00Z"),
    )
    everyone = [first, second, same_time]
    assert plan.duplicate_winner(first, everyone) is None
    assert plan.duplicate_winner(second, everyone) == "b-db"
    assert plan.duplicate_winner(same_time, everyone) == "b-db"  # same second: the name decides
    assert plan.duplicate_winner(second, [second]) is None
    problem = plan.duplicate_problem(make("a-db"), "b-db")
    assert problem.reason == "DuplicateResource"
    assert "'b-db'" in problem.message
    assert not problem.retryable


# --- status seal ------------------------------------------------------------------------------------------


def _provisioned_status() -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Provisioned",
                "lastTransitionTime": "2025-01-01T12:00:00Z",
            }
        ],
        "guresid": "g-1",
        "driverType": "postgres",
        "inputsHash": "hmac-sha256:00",
        "outputs": {
            "values": {"host": "h"},
            "secretRefs": {"password": {"store": "bao", "ref": "strongroom/apps/db/outputs/password"}},
        },
        "secretName": "db-outputs",
        "manifests": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "location": "namespace"}],
        "cookieRef": {"store": "bao", "ref": "strongroom/apps/db/cookie"},
    }


def test_status_seal_covers_what_the_operator_acts_on() -> None:
    status = _provisioned_status()
    status["seal"] = plan.status_seal("uid-db", status, KEY)
    assert status["seal"].startswith("hmac-sha256:")
    assert not plan.status_altered("uid-db", status, KEY)
    # Conditions, values and times are not sealed: the operator does not act on them.
    assert not plan.status_altered("uid-db", {**status, "outputs": {**status["outputs"], "values": {}}}, KEY)
    assert not plan.status_altered("uid-db", {**status, "conditions": []}, KEY)
    victim = {"store": "bao", "ref": "platform/victim-key"}
    for altered in (
        {**status, "outputs": {**status["outputs"], "secretRefs": {"password": victim}}},
        {**status, "manifests": [{"apiVersion": "v1", "kind": "Secret", "name": "victim"}]},
        {**status, "guresid": plan.derive_guresid("team-a", "postgres", "default", "shared.db")},
        {**status, "driverType": "other"},
        {**status, "cookieRef": victim},
        {**status, "secretName": "victim"},
        {**status, "inputsHash": "hmac-sha256:11"},
        {**status, "seal": None},
    ):
        assert plan.status_altered("uid-db", altered, KEY)
    assert plan.status_altered("uid-other", status, KEY)  # copied from another Resource
    assert plan.status_altered("uid-db", status, b"x" * 32)
    # A status with nothing sealed needs no seal (a Resource never provisioned).
    assert not plan.status_altered("uid-db", {"conditions": []}, KEY)
    assert plan.status_seal("uid-db", {"conditions": []}, KEY) is None


def test_an_altered_status_is_forgotten() -> None:
    status = _provisioned_status()
    forgotten = plan.apply_merge_patch(status, plan.unsealed_fields(status))
    assert forgotten == {"observedGeneration": 1, "conditions": status["conditions"]}
    resource = make(status=forgotten)
    assert plan.drivers_holding(resource, None) == []
    assert (
        plan.apply_reason(
            resource, "hmac-sha256:00", None, outputs_secret_present=True, now=NOW, resync_seconds=3600
        )
        == "first provisioning"
    )
    cond = plan.tamper_condition(status_altered=True, marker_ignored=False)
    assert cond is not None
    assert (cond.type, cond.status, cond.reason) == ("Tampered", True, "StatusAltered")
    written = {
        "conditions": [
            {"type": "Tampered", "status": "True", "reason": "StatusAltered", "observedGeneration": 3}
        ]
    }
    assert plan.standing_tamper(written, 3) is not None
    assert plan.standing_tamper(written, 4) is None  # until the spec changes


# --- store keys -------------------------------------------------------------------------------------------


def test_only_the_resources_own_store_keys_are_ever_deleted() -> None:
    assert plan.is_own_store_key("strongroom/apps/db/outputs/password", "apps", "db")
    assert plan.is_own_store_key("strongroom/apps/db/cookie", "apps", "db")
    for other in (
        "platform/victim-key",
        "strongroom/apps/other/outputs/password",
        "strongroom/team-a/db/outputs/password",
        "strongroom/apps/db/outputs/../../team-a/db/outputs/password",
        "strongroom/apps/db/outputs/",
        "strongroom/apps/db",
    ):
        assert not plan.is_own_store_key(other, "apps", "db"), other
    # Whatever the status records as the key, the one deleted is derived from namespace, name, output key.
    resource = make()
    victim = SecretReference(store="shared", ref="platform/victim-key")
    entries = plan.store_entries_to_delete(resource, {"password": victim}, victim, ["token"], "bao")
    assert [(e.store, e.ref) for e in entries] == [
        ("bao", "strongroom/apps/db/outputs/token"),
        ("shared", "strongroom/apps/db/cookie"),
        ("shared", "strongroom/apps/db/outputs/password"),
    ]
    assert all(plan.is_own_store_key(e.ref, "apps", "db") for e in entries)


# --- dependencies -----------------------------------------------------------------------------------------


def test_dependencies_come_from_values_secrets_and_resource_inputs() -> None:
    resource = make(
        spec={
            "driverInputs": {
                "values": {"host": "${resources.a.outputs.host}"},
                "secrets": {"pw": "${resources['b.v2'].outputs.password}"},
            },
            "resourceInputs": {"x": "${resources.c.outputs.y}", "ctx": "${context.app.id}"},
        }
    )
    assert plan.dependency_names(resource) == {"a", "b.v2", "c"}


def test_find_cycle_follows_only_what_start_reaches() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}, "e": {"a"}}
    visited: list[str] = []

    def lookup(name: str) -> set[str]:
        visited.append(name)
        return edges.get(name, set())

    assert plan.find_cycle("a", lookup) == ["a", "b", "c", "a"]
    assert plan.find_cycle("d", lookup) == ["d", "d"]
    visited.clear()
    assert plan.find_cycle("e", lookup) is None  # e reaches a cycle but is not part of it
    assert plan.find_cycle("x", lambda n: {"y"} if n == "x" else set()) is None


def test_dependency_view_requires_ready_for_the_current_generation() -> None:
    body = ready_body("a", {"host": "h"}, {"pw": {"store": "bao", "ref": "k", "version": "1"}})
    view = plan.dependency_view(body)
    assert view.ready
    assert view.secret_keys == {"pw"}
    stale = json.loads(json.dumps(body))
    stale["metadata"]["generation"] = 3
    assert not plan.dependency_view(stale).ready
    deleting = json.loads(json.dumps(body))
    deleting["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    assert plan.dependency_view(deleting).why == "is being deleted"
    failing = json.loads(json.dumps(body))
    failing["status"]["conditions"][0] = {"type": "Ready", "status": "False", "reason": "DriverUnavailable"}
    assert "DriverUnavailable" in plan.dependency_view(failing).why


def test_placeholders_resolve_values_and_secrets_in_place() -> None:
    resource = make(
        spec={
            "driverInputs": {
                "values": {
                    "url": "postgres://${resources.a.outputs.host}:${resources.a.outputs.port}",
                    "port": "${resources.a.outputs.port}",
                },
                "secrets": {"dsn": "user:${resources.a.outputs.pw}@x", "pw": "${resources.a.outputs.pw}"},
            },
            "resourceInputs": {"ctx": "${context.app.id}"},
        }
    )
    view = plan.dependency_view(
        ready_body("a", {"host": "h", "port": 5432}, {"pw": {"store": "s", "ref": "r"}})
    )
    with_secrets = plan.DependencyView(
        True, view.values, view.secret_keys, secrets={"pw": SecretValue(CANARY)}
    )
    resolved = plan.resolve_placeholders(resource, {"a": with_secrets})
    assert isinstance(resolved, plan.ResolvedInputs)
    assert resolved.values == {"url": "postgres://h:5432", "port": 5432}  # a lone placeholder keeps its type
    assert resolved.secrets == {"dsn": f"user:{CANARY}@x", "pw": CANARY}
    assert resolved.resource_inputs == {"ctx": "${context.app.id}"}  # the orchestrator's, left as written


def test_secret_outputs_are_refused_outside_driver_secrets() -> None:
    resource = make(spec={"driverInputs": {"values": {"pw": "${resources.a.outputs.pw}"}}})
    view = plan.DependencyView(True, {}, frozenset({"pw"}), secrets={"pw": SecretValue(CANARY)})
    problem = plan.resolve_placeholders(resource, {"a": view})
    assert isinstance(problem, plan.InputProblem)
    assert problem.reason == "SecretOutputInValues"
    assert not problem.retryable
    assert CANARY not in problem.message


def test_missing_dependencies_and_outputs_are_waited_for_by_name() -> None:
    resource = make(
        spec={
            "driverInputs": {
                "values": {
                    "a": "${resources.a.outputs.host}",
                    "b": "${resources.b.outputs.host}",
                    "c": "${resources.c.outputs.nope}",
                }
            }
        }
    )
    views = {
        "b": plan.DependencyView(False, why="is not Ready yet"),
        "c": plan.dependency_view(ready_body("c", {"host": "h"})),
    }
    problem = plan.resolve_placeholders(resource, views)
    assert isinstance(problem, plan.InputProblem)
    assert problem.reason == "WaitingForResources"
    assert problem.retryable
    assert problem.waiting_for == ("a", "b", "c")
    assert "'a' does not exist" in problem.message
    assert "'c' has no output 'nope'" in problem.message


def test_malformed_placeholders_are_not_retried() -> None:
    for text in ("${resources.a.outputs}", "${resources.a", "${resources.a}"):
        problem = plan.resolve_placeholders(make(spec={"driverInputs": {"values": {"x": text}}}), {})
        assert isinstance(problem, plan.InputProblem), text
        assert problem.reason == "InvalidPlaceholder"
        assert not problem.retryable


def test_inputs_over_the_size_cap_are_refused_once_resolved() -> None:
    # A dependency's output can make small-looking inputs large: the cap applies after resolution.
    big = "x" * (DRIVER_INPUTS_MAX_BYTES // 2)
    resource = make(
        spec={
            "driverInputs": {"values": {"a": big}, "secrets": {"b": "${resources.a.outputs.blob}"}},
        }
    )
    view = plan.dependency_view(ready_body("a", {"blob": big}))
    problem = plan.resolve_placeholders(resource, {"a": view})
    assert isinstance(problem, plan.InputProblem)
    assert problem.reason == "InputsTooLarge"
    assert not problem.retryable
    assert f"limit of {DRIVER_INPUTS_MAX_BYTES} bytes" in problem.message
    assert "values" in problem.message
    assert "secrets" in problem.message
    assert big not in problem.message

    # Just under the cap is fine.
    fits = make(spec={"driverInputs": {"values": {"a": "x" * (DRIVER_INPUTS_MAX_BYTES - 100)}}})
    assert isinstance(plan.resolve_placeholders(fits, {}), plan.ResolvedInputs)


def test_secret_dependencies_are_only_those_read_for_secret_outputs() -> None:
    resource = make(
        spec={
            "driverInputs": {"secrets": {"pw": "${resources.a.outputs.pw}", "h": "${resources.b.outputs.h}"}}
        }
    )
    views = {
        "a": plan.DependencyView(True, {}, frozenset({"pw"})),
        "b": plan.DependencyView(True, {"h": 1}, frozenset({"other"})),
    }
    assert plan.secret_dependencies(plan.dependencies(resource), views) == {"a"}


# --- request and digest -----------------------------------------------------------------------------------


def _request(resource: Resource, secret: str = CANARY) -> Any:
    inputs = plan.resolve_placeholders(resource, {})
    assert isinstance(inputs, plan.ResolvedInputs)
    return plan.driver_request(resource, inputs, [(("db", "password"), SecretValue(secret))], None)


def test_secret_refs_are_merged_at_their_paths() -> None:
    resource = make(spec={"driverInputs": {"values": {"a": 1}, "secrets": {"db": {"user": "u"}, "t": "x"}}})
    request = _request(resource)
    assert reveal_tree(request.secrets) == {"db": {"user": "u", "password": CANARY}, "t": "x"}
    assert request.values == {"a": 1}
    assert request.guresid == plan.guresid_of(resource)
    assert CANARY not in repr(request)


def test_inputs_digest_is_keyed_and_ignores_the_cookie() -> None:
    resource = make(spec={"driverInputs": {"values": {"a": 1}}})
    request = _request(resource)
    digest = plan.inputs_digest(request, "humanitec/echo", KEY)
    assert digest.startswith(plan.HMAC_PREFIX)
    assert CANARY not in digest
    import hashlib

    assert hashlib.sha256(CANARY.encode()).hexdigest() not in digest
    from dataclasses import replace

    assert plan.inputs_digest(replace(request, cookie=SecretValue("c")), "humanitec/echo", KEY) == digest
    assert plan.inputs_digest(_request(resource, "other"), "humanitec/echo", KEY) != digest
    assert plan.inputs_digest(request, "strongroom/echo", KEY) != digest
    assert plan.inputs_digest(request, "humanitec/echo", b"x" * 32) != digest


def _provisioned(
    digest: str, *, applied: datetime = NOW, driver: str = "humanitec/echo", **spec: Any
) -> Resource:
    return make(
        spec={"driverType": driver, **spec},
        status={
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Provisioned",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                }
            ],
            "inputsHash": digest,
            "driverType": driver,
            "lastAppliedTime": applied.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )


def _why(
    resource: Resource,
    digest: str,
    pending: plan.Pending | None = None,
    *,
    present: bool = True,
    now: datetime = NOW,
) -> str | None:
    return plan.apply_reason(
        resource, digest, pending, outputs_secret_present=present, now=now, resync_seconds=3600
    )


def test_apply_reason_covers_every_trigger() -> None:
    digest = "hmac-sha256:aa"
    assert _why(make(), digest) == "first provisioning"
    current = _provisioned(digest)
    assert _why(current, digest) is None
    assert _why(current, "hmac-sha256:bb") == "the inputs changed"
    assert _why(current, digest, plan.Pending("x", "y")) == "a driver call that did not finish is repeated"
    assert _why(current, digest, present=False) == "the outputs Secret is missing"
    assert _why(current, digest, now=NOW + timedelta(hours=1)) == "periodic resync"
    assert _why(current, digest, now=NOW + timedelta(minutes=59)) is None
    assert plan.seconds_until_resync(current, NOW + timedelta(minutes=10), 3600) == pytest.approx(3000)
    changed = _provisioned(digest)
    changed.spec.driver_type = "s3"
    assert _why(changed, digest) == "the driver changed"
    failed = _provisioned(digest)
    assert failed.status is not None
    failed.status.conditions[0].status = "False"
    assert _why(failed, digest) == "the last attempt did not succeed"
    newer = _provisioned(digest)
    newer.metadata.generation = 2
    assert _why(newer, digest) == "the last attempt did not succeed"


def test_drivers_to_release_on_a_driver_change() -> None:
    resource = _provisioned("d", driver="old-driver")
    resource.spec.driver_type = "new-driver"
    guresid = plan.guresid_of(resource)
    assert plan.drivers_to_release(resource, None) == [("old-driver", guresid)]
    assert plan.drivers_to_release(resource, plan.Pending("third", "g")) == [
        ("old-driver", guresid),
        ("third", "g"),
    ]
    resource.spec.in_place_driver_change = True
    assert plan.drivers_to_release(resource, None) == []
    same = _provisioned("d")
    assert plan.drivers_to_release(same, plan.Pending("humanitec/echo", "g")) == []
    assert plan.drivers_holding(make(), None) == []
    assert plan.drivers_holding(make(), plan.Pending("s3", "g")) == [("s3", "g")]


# --- outputs ----------------------------------------------------------------------------------------------


def _result(**fields: Any) -> DriverResult:
    return DriverResult(id="g", type="postgres", **fields)


def test_outputs_are_split_and_flattened() -> None:
    result = _result(
        values={"host": "h"},
        secrets={"password": SecretValue(CANARY), "conn": {"user": SecretValue("u")}},
        manifests=[
            Manifest("containers", {"name": "sidecar", "image": "x"}),
            Manifest("volumes", {"name": "v", "emptyDir": {}}),
            Manifest("namespace", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}),
            Manifest("cluster", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}),
        ],
    )
    outputs = plan.check_outputs(make(), result)
    assert isinstance(outputs, plan.Outputs)
    assert set(outputs.secrets) == {"password", "conn.user"}
    assert outputs.secret_shape == {"conn": {"user": "conn.user"}, "password": "password"}
    assert [m["name"] for m in outputs.containers] == ["sidecar"]
    assert [m["name"] for m in outputs.volumes] == ["v"]
    assert [m["kind"] for m in outputs.namespace_objects] == ["ConfigMap"]
    assert [m["kind"] for m in outputs.cluster_objects] == ["Namespace"]
    refs = {k: plan.reference("bao", f"strongroom/apps/db/outputs/{k}", "1") for k in outputs.secrets}
    assert plan.refs_tree(outputs.secret_shape, refs) == {
        "conn": {"user": {"store": "bao", "ref": "strongroom/apps/db/outputs/conn.user", "version": "1"}},
        "password": {"store": "bao", "ref": "strongroom/apps/db/outputs/password", "version": "1"},
    }
    assert plan.flatten_refs(plan.refs_tree(outputs.secret_shape, refs)).keys() == {"conn.user", "password"}


@pytest.mark.parametrize(
    ("manifest", "needle"),
    [
        (
            Manifest(
                "namespace",
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "other"}},
            ),
            "names namespace 'other'",
        ),
        (
            Manifest(
                "cluster",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "namespace": "apps"}},
            ),
            "location cluster",
        ),
        (Manifest("namespace", {"kind": "ConfigMap", "metadata": {"name": "x"}}), "no apiVersion"),
        (
            Manifest("namespace", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}),
            "no metadata.name",
        ),
        (Manifest("containers", {"image": "x"}), "no container name"),
    ],
)
def test_unusable_manifests_are_a_condition(manifest: Manifest, needle: str) -> None:
    problem = plan.check_outputs(make(), _result(manifests=[manifest]))
    assert isinstance(problem, Problem)
    assert problem.reason == "InvalidOutputs"
    assert not problem.retryable
    assert needle in problem.message


def test_bad_secret_keys_and_updates_are_refused() -> None:
    problem = plan.check_outputs(make(), _result(secrets={"bad key": SecretValue("v")}))
    assert isinstance(problem, Problem)
    assert "'bad key'" in problem.message
    nested = plan.check_outputs(make(), _result(secrets={"db": {"ref": SecretValue("v")}}))
    assert isinstance(nested, Problem)
    bad_update = plan.check_outputs(
        make(spec={"type": "workload"}),
        DriverResult(id="g", type="workload", update=[{"op": "move", "path": "/spec/x", "from": "/spec/y"}]),
    )
    assert isinstance(bad_update, Problem)
    assert "WorkloadPatch" in bad_update.message


def test_owned_secrets_carry_ownership_labels_and_content_hash() -> None:
    resource = make()
    secret = plan.outputs_secret(resource, {"password": SecretValue(CANARY)})
    assert secret["metadata"]["name"] == "db-outputs"
    assert secret["metadata"]["labels"][c.MANAGED_LABEL] == "true"
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Resource", "uid-db", True)
    assert base64.b64decode(secret["data"]["password"]).decode() == CANARY
    assert CANARY not in json.dumps(secret["metadata"])
    assert plan.secret_current(secret, secret, "uid-db")
    assert not plan.secret_current(secret, secret, "uid-other")
    other = plan.outputs_secret(resource, {"password": SecretValue("new")})
    assert not plan.secret_current(secret, other, "uid-db")
    assert plan.manifests_secret(resource, plan.check_outputs(resource, _result())) is None  # type: ignore[arg-type]
    outputs = plan.check_outputs(resource, _result(manifests=[Manifest("containers", {"name": "s"})]))
    assert isinstance(outputs, plan.Outputs)
    manifests = plan.manifests_secret(resource, outputs)
    assert manifests is not None
    assert json.loads(base64.b64decode(manifests["data"][plan.CONTAINERS_KEY])) == [{"name": "s"}]
    assert json.loads(base64.b64decode(manifests["data"][plan.VOLUMES_KEY])) == []


def test_manifest_objects_and_stale_ones() -> None:
    resource = make()
    ns_obj = plan.namespace_object(
        resource, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    )
    assert ns_obj["metadata"]["namespace"] == "apps"
    assert ns_obj["metadata"]["ownerReferences"][0]["controller"] is False
    cl_obj = plan.cluster_object(
        resource, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}
    )
    assert "ownerReferences" not in cl_obj["metadata"]
    assert cl_obj["metadata"]["annotations"][plan.RESOURCE_ANNOTATION] == "apps/db"
    assert cl_obj["metadata"]["annotations"][plan.RESOURCE_UID_ANNOTATION] == "uid-db"
    current = [plan.applied_reference(ns_obj, "namespace")]
    previous = [*current, {"apiVersion": "v1", "kind": "Namespace", "name": "gone", "location": "cluster"}]
    assert plan.stale_manifests(previous, current) == [previous[1]]
    assert plan.stale_manifests(None, current) == []


def test_workload_patch_target() -> None:
    ops = [{"op": "add", "path": "/spec/containers/main/variables/X", "value": "1"}]
    assert plan.workload_patch(make(spec={"type": "workload", "id": "modules.api"}), ops)["spec"] == {
        "workloadName": "api",
        "patches": ops,
    }
    named = make(spec={"type": "workload", "id": "x", "resourceInputs": {"workloadName": "web"}})
    assert plan.workload_name(named) == "web"
    assert plan.workload_name(make("w", spec={"type": "workload", "id": "x"})) == "w"


def test_store_writes_only_for_changed_values() -> None:
    outputs = plan.check_outputs(make(), _result(secrets={"a": SecretValue("1"), "b": SecretValue("2")}))
    assert isinstance(outputs, plan.Outputs)
    ref = SecretReference
    previous = {
        "a": ref(store="bao", ref="k/a", version="1"),
        "b": ref(store="bao", ref="k/b"),
        "c": ref(store="bao", ref="k/c"),
    }
    observed = {"a": b"1", "b": b"old"}
    assert plan.keys_to_write(outputs, observed, previous, "bao") == ["b"]
    assert plan.keys_to_write(outputs, observed, previous, "other") == ["a", "b"]
    assert plan.keys_to_write(outputs, {}, {}, "bao") == ["a", "b"]
    # Stale entries are deleted at the keys derived for this Resource, not at the recorded ones.
    own = "strongroom/apps/db/outputs/"
    assert [r.ref for r in plan.stale_refs(make(), previous, outputs, "bao")] == [own + "c"]
    assert [r.ref for r in plan.stale_refs(make(), previous, outputs, "other")] == [own + k for k in "abc"]


# --- status -----------------------------------------------------------------------------------------------


def test_ready_status_holds_refs_never_values() -> None:
    resource = make()
    outputs = plan.check_outputs(
        resource, _result(values={"host": "h"}, secrets={"password": SecretValue(CANARY)})
    )
    assert isinstance(outputs, plan.Outputs)
    refs = plan.refs_tree(outputs.secret_shape, {"password": plan.reference("bao", "k", "3")})
    status = plan.ready_status(
        resource,
        now=NOW,
        driver_type="humanitec/echo",
        guresid="g",
        digest="hmac-sha256:1",
        outputs=outputs,
        secret_refs=refs,
        manifests=[],
        cookie_ref=None,
        applied_now=True,
    )
    assert CANARY not in json.dumps(status)
    assert status["outputs"] == {
        "values": {"host": "h"},
        "secretRefs": {"password": {"store": "bao", "ref": "k", "version": "3"}},
    }
    assert status["secretName"] == "db-outputs"
    assert status["lastAppliedTime"] == "2025-01-01T12:00:00Z"
    assert status["conditions"][0]["status"] == "True"
    assert status["manifests"] is None
    assert Resource.model_validate(
        {**resource.to_dict(), "status": {k: v for k, v in status.items() if v is not None}}
    )


def test_problem_and_progress_statuses() -> None:
    resource = _provisioned("d")
    stalled = plan.problem_status(resource, Problem("DriverRejected", "400", False), NOW)
    assert [(x["type"], x["status"]) for x in stalled["conditions"]] == [
        ("Ready", "False"),
        ("Stalled", "True"),
    ]
    assert set(stalled) == {"observedGeneration", "conditions"}  # outputs of the last success stay
    updating = plan.progress_status(resource, "Provisioning", "working", NOW)
    assert [(x["type"], x["status"]) for x in updating["conditions"]] == [
        ("Ready", "True"),
        ("Reconciling", "True"),
    ]
    first = plan.progress_status(make(), "Provisioning", "working", NOW)
    assert first["conditions"][0]["status"] == "False"
    deleting = plan.progress_status(resource, "Deleting", "bye", NOW)
    assert deleting["conditions"][0]["status"] == "False"


def test_merge_patch_removes_keys_the_driver_no_longer_returns() -> None:
    current = {"outputs": {"values": {"a": 1, "b": 2}}, "cookieRef": {"store": "s", "ref": "r"}, "other": 1}
    wanted = {"outputs": {"values": {"a": 1}}, "cookieRef": None}
    patch = plan.merge_patch(current, wanted)
    assert patch == {"outputs": {"values": {"b": None}}, "cookieRef": None}
    assert plan.apply_merge_patch(current, patch) == {"outputs": {"values": {"a": 1}}, "other": 1}
    assert plan.merge_patch(plan.apply_merge_patch(current, patch), wanted) is None
    assert plan.merge_patch({}, {"x": None}) is None


# --- manifests: ownership, kinds, cluster scope -----------------------------------------------------------


def test_manifests_touch_only_objects_this_resource_made() -> None:
    resource = make()
    made = plan.namespace_object(
        resource, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    )
    assert plan.manifest_owned(made, resource, "namespace")
    unowned = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "apps"}}
    assert not plan.manifest_owned(unowned, resource, "namespace")
    assert not plan.manifest_owned(made, make("other"), "namespace")  # another Resource's (other uid)
    cluster = plan.cluster_object(
        resource, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}
    )
    assert plan.manifest_owned(cluster, resource, "cluster")
    # The annotation naming the Resource is not enough without its uid (a re-created Resource, a copy).
    named_only = json.loads(json.dumps(cluster))
    del named_only["metadata"]["annotations"][plan.RESOURCE_UID_ANNOTATION]
    assert not plan.manifest_owned(named_only, resource, "cluster")
    assert not plan.manifest_owned(cluster, make("other"), "cluster")
    assert not plan.manifest_owned(unowned, resource, "cluster")
    problem = plan.manifest_conflict(plan.applied_reference(made, "namespace"))
    assert problem.reason == "ManifestConflict"
    assert "ConfigMap 'cm'" in problem.message
    assert not problem.retryable


def _outputs_with(*manifests: Manifest) -> plan.Outputs:
    outputs = plan.check_outputs(make(), _result(manifests=list(manifests)))
    assert isinstance(outputs, plan.Outputs)
    return outputs


def test_manifest_kinds_and_cluster_scope_are_the_admins_to_allow() -> None:
    assert plan.kind_name({"apiVersion": "v1", "kind": "Secret"}) == "Secret"
    assert plan.kind_name({"apiVersion": "apps/v1", "kind": "Deployment"}) == "apps/Deployment"
    crb = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "tenant-admin"},
    }
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    default = plan.ManifestPolicy()
    assert plan.manifest_policy_problem(_outputs_with(Manifest("namespace", cm)), default) is None
    refused = plan.manifest_policy_problem(_outputs_with(Manifest("namespace", role)), default)
    assert refused is not None
    assert refused.reason == "ManifestKindNotAllowed"
    assert "rbac.authorization.k8s.io/Role" in refused.message
    cluster = plan.manifest_policy_problem(_outputs_with(Manifest("cluster", crb)), default)
    assert cluster is not None
    assert cluster.reason == "ClusterManifestNotAllowed"
    assert "ClusterRoleBinding 'tenant-admin'" in cluster.message
    allowed = plan.ManifestPolicy(
        frozenset({*plan.DEFAULT_MANIFEST_KINDS, "rbac.authorization.k8s.io/ClusterRoleBinding"}), None
    )
    assert plan.manifest_policy_problem(_outputs_with(Manifest("cluster", crb)), allowed) is None
    # Allowed to emit cluster manifests, but not that kind: still refused.
    kinds_only = plan.ManifestPolicy(cluster_refusal=None)
    assert plan.manifest_policy_problem(_outputs_with(Manifest("cluster", crb)), kinds_only) is not None


def test_service_account_token_secrets_are_refused() -> None:
    """ESO's GHSA-fq7h-9x26-6j22: a Secret of this type gets a ServiceAccount's API token from the API
    server; a Resource's author must not be able to have the operator create one."""
    token = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "steal", "annotations": {"kubernetes.io/service-account.name": "default"}},
    }
    plain = {**token, "type": "Opaque", "metadata": {"name": "plain"}}
    policy = plan.ManifestPolicy()
    refused = plan.manifest_policy_problem(_outputs_with(Manifest("namespace", token)), policy)
    assert refused is not None
    assert refused.reason == "ServiceAccountTokenNotAllowed"
    assert "'steal'" in refused.message
    assert not refused.retryable
    assert plan.manifest_policy_problem(_outputs_with(Manifest("namespace", plain)), policy) is None


def test_who_may_emit_cluster_manifests() -> None:
    def refusal(**kwargs: Any) -> str | None:
        args: dict[str, Any] = {
            "builtin": False,
            "driver_namespace": "strongroom-system",
            "allow_cluster_manifests": True,
            "operator_namespace": "strongroom-system",
            "builtin_allowed": False,
        } | kwargs
        return plan.cluster_manifest_refusal("drv", **args)

    assert refusal() is None  # an admin's Driver that says so
    assert refusal(allow_cluster_manifests=False) is not None
    assert refusal(driver_namespace="team-a") is not None  # a tenant's Driver cannot say so
    assert refusal(builtin=True, driver_namespace=None) is not None  # template: whatever a tenant writes
    assert refusal(builtin=True, driver_namespace=None, builtin_allowed=True) is None


def test_outputs_that_cannot_be_stored_are_refused_with_sizes() -> None:
    resource = make()
    small = plan.check_outputs(resource, _result(values={"a": "x" * 1000}))
    assert isinstance(small, plan.Outputs)
    assert plan.outputs_size_problem(resource, small) is None
    big_values = plan.check_outputs(resource, _result(values={"a": "x" * (2 * 1024 * 1024)}))
    assert isinstance(big_values, plan.Outputs)
    problem = plan.outputs_size_problem(resource, big_values)
    assert problem is not None
    assert problem.reason == "OutputsTooLarge"
    assert not problem.retryable
    assert str(plan.STATUS_VALUES_MAX) in problem.message
    assert "2097" in problem.message  # the size found
    big_secret = plan.check_outputs(resource, _result(secrets={"blob": SecretValue("y" * (1024 * 1024))}))
    assert isinstance(big_secret, plan.Outputs)
    problem = plan.outputs_size_problem(resource, big_secret)
    assert problem is not None
    assert "secret outputs" in problem.message
    assert "'db-outputs'" in problem.message
