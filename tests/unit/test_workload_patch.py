"""WorkloadPatch: JSON-Patch add/remove/replace, stable order, all-or-nothing patches, clear problems."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from strongroom.api.workload import Workload, WorkloadPatch
from strongroom.reconcile.workloadpatch import (
    JsonPatchError,
    apply_operations,
    apply_patches,
    pointer_tokens,
)


def make_workload(spec: dict[str, Any] | None = None, name: str = "api") -> Workload:
    return Workload.model_validate(
        {
            "kind": "Workload",
            "metadata": {"name": name, "namespace": "shop", "uid": "uid-w"},
            "spec": spec or {"containers": {"main": {"image": "app:1", "variables": {"A": "1"}}}},
        }
    )


def make_patch(name: str, ops: list[dict[str, Any]], priority: int = 0, target: str = "api") -> WorkloadPatch:
    return WorkloadPatch.model_validate(
        {
            "kind": "WorkloadPatch",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"workloadName": target, "priority": priority, "patches": ops},
        }
    )


# --- apply_operations -------------------------------------------------------------------------------------


def test_pointer_tokens_unescape() -> None:
    assert pointer_tokens("/spec/metadata/annotations/example.com~1team") == [
        "spec",
        "metadata",
        "annotations",
        "example.com/team",
    ]
    assert pointer_tokens("/a~0b") == ["a~b"]
    assert pointer_tokens("") == []
    with pytest.raises(JsonPatchError):
        pointer_tokens("spec")


def test_add_replace_remove_on_objects() -> None:
    doc = {"spec": {"a": 1, "b": {"c": 2}}}
    out = apply_operations(
        doc,
        [
            {"op": "add", "path": "/spec/x", "value": {"y": [1]}},
            {"op": "replace", "path": "/spec/a", "value": "one"},
            {"op": "remove", "path": "/spec/b/c"},
            {"op": "add", "path": "/spec/a", "value": "add replaces an existing member"},
        ],
    )
    assert out == {"spec": {"a": "add replaces an existing member", "b": {}, "x": {"y": [1]}}}
    assert doc == {"spec": {"a": 1, "b": {"c": 2}}}  # the input is never modified


def test_array_operations_and_append() -> None:
    doc = {"spec": {"args": ["a", "c"]}}
    out = apply_operations(
        doc,
        [
            {"op": "add", "path": "/spec/args/1", "value": "b"},
            {"op": "add", "path": "/spec/args/-", "value": "d"},
            {"op": "replace", "path": "/spec/args/0", "value": "A"},
            {"op": "remove", "path": "/spec/args/3"},
        ],
    )
    assert out == {"spec": {"args": ["A", "b", "c"]}}


def test_add_creates_missing_intermediate_objects() -> None:
    out = apply_operations(
        {"spec": {}}, [{"op": "add", "path": "/spec/containers/main/variables/X", "value": "1"}]
    )
    assert out == {"spec": {"containers": {"main": {"variables": {"X": "1"}}}}}


def test_an_explicit_null_is_a_value() -> None:
    assert apply_operations({"spec": {}}, [{"op": "add", "path": "/spec/x", "value": None}]) == {
        "spec": {"x": None}
    }


@pytest.mark.parametrize(
    ("ops", "message"),
    [
        ([{"op": "remove", "path": "/spec/missing"}], "no such member"),
        ([{"op": "replace", "path": "/spec/missing", "value": 1}], "no such member"),
        ([{"op": "replace", "path": "/spec/nested/missing", "value": 1}], "/spec/nested does not exist"),
        ([{"op": "add", "path": "/spec/args/5", "value": "x"}], "out of range"),
        ([{"op": "remove", "path": "/spec/args/01"}], "not an array index"),
        ([{"op": "remove", "path": "/spec/args/-"}], "not an array index"),
        ([{"op": "add", "path": "/spec/args/x/y", "value": 1}], "not an array index"),
        ([{"op": "add", "path": "/spec/name/x", "value": 1}], "not an object or array"),
        ([{"op": "add", "path": "/spec/x"}], "value is required"),
        ([{"op": "move", "path": "/spec/x"}], "op add, remove or replace"),
        ([{"op": "remove", "path": ""}], "whole document"),
    ],
)
def test_failing_operations_name_the_operation_and_path(ops: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(JsonPatchError, match=message):
        apply_operations({"spec": {"args": ["a"], "name": "n"}}, ops)


def test_failure_message_counts_operations() -> None:
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": "/spec/x", "value": 1},
        {"op": "remove", "path": "/spec/nope"},
    ]
    with pytest.raises(JsonPatchError, match=r"operation 2 \(remove /spec/nope\)"):
        apply_operations({"spec": {}}, ops)


# --- apply_patches ----------------------------------------------------------------------------------------


def test_patches_apply_by_priority_then_name_whatever_the_input_order() -> None:
    def set_a(value: str) -> list[dict[str, Any]]:
        return [{"op": "add", "path": "/spec/containers/main/variables/A", "value": value}]

    patches = [
        make_patch("b-late", set_a("from b-late"), priority=10),
        make_patch("z-first", set_a("from z-first"), priority=-1),
        make_patch("a-late", set_a("from a-late"), priority=10),
    ]
    for ordering in (patches, list(reversed(patches)), [patches[1], patches[0], patches[2]]):
        outcome = apply_patches(make_workload(), ordering)
        assert outcome.applied == ["z-first", "a-late", "b-late"]
        assert outcome.problems == {}
        assert outcome.spec.containers["main"].variables == {"A": "from b-late"}


def test_patches_for_other_workloads_are_ignored() -> None:
    outcome = apply_patches(
        make_workload(), [make_patch("other", [{"op": "remove", "path": "/spec/containers"}], target="web")]
    )
    assert outcome.applied == []
    assert outcome.problems == {}


def test_a_failing_patch_applies_none_of_its_operations_and_later_patches_still_apply() -> None:
    broken = make_patch(
        "broken",
        [
            {"op": "add", "path": "/spec/containers/main/variables/B", "value": "2"},
            {"op": "remove", "path": "/spec/containers/main/variables/NOPE"},
        ],
        priority=1,
    )
    good = make_patch(
        "good", [{"op": "add", "path": "/spec/containers/main/variables/C", "value": "3"}], priority=2
    )
    outcome = apply_patches(make_workload(), [good, broken])
    assert outcome.applied == ["good"]
    assert set(outcome.problems) == {"broken"}
    assert "operation 2 (remove /spec/containers/main/variables/NOPE)" in outcome.problems["broken"]
    assert outcome.spec.containers["main"].variables == {"A": "1", "C": "3"}  # no B


def test_a_patch_that_leaves_an_invalid_spec_is_refused_without_echoing_values() -> None:
    patch = make_patch(
        "bad-port",
        [{"op": "add", "path": "/spec/service", "value": {"ports": {"http": {"port": "not-a-port-canary"}}}}],
    )
    outcome = apply_patches(make_workload(), [patch])
    assert outcome.applied == []
    message = outcome.problems["bad-port"]
    assert message.startswith("the patched Workload spec is not valid: service.ports.http.port:")
    assert "canary" not in message
    assert outcome.spec.service is None


def test_removing_the_spec_is_a_problem() -> None:
    outcome = apply_patches(make_workload(), [make_patch("nuke", [{"op": "remove", "path": "/spec"}])])
    assert outcome.problems == {"nuke": "the patch leaves the Workload without a spec object"}


def test_unknown_fields_are_refused_like_in_the_api() -> None:
    # Humanitec patches may target fields this workload model does not have (e.g. /spec/imagePullSecrets).
    patch = make_patch("pull", [{"op": "add", "path": "/spec/imagePullSecrets", "value": ["regcred"]}])
    outcome = apply_patches(make_workload(), [patch])
    assert "imagePullSecrets" in outcome.problems["pull"]


def test_patch_paths_address_the_wire_form() -> None:
    spec = {"containers": {"main": {"image": "app:1", "livenessProbe": {"exec": {"command": ["true"]}}}}}
    patch = make_patch(
        "probe",
        [{"op": "replace", "path": "/spec/containers/main/livenessProbe/exec/command/0", "value": "ok"}],
    )
    outcome = apply_patches(make_workload(spec), [patch])
    probe = outcome.spec.containers["main"].liveness_probe
    assert probe is not None
    assert probe.exec is not None
    assert probe.exec.command == ["ok"]


def test_patch_values_are_copied_not_shared() -> None:
    value = {"image": "sidecar:1"}
    patch = make_patch("add", [{"op": "add", "path": "/spec/containers/side", "value": value}])
    before = copy.deepcopy(patch.spec.patches[0].value)
    apply_patches(make_workload(), [patch])
    apply_patches(make_workload(), [patch])
    assert patch.spec.patches[0].value == before
