"""strongroom.api: models parse the examples; generated CRDs are structural, default-free and stable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from strongroom.api import (
    ALL_KINDS,
    API_VERSION,
    Condition,
    Resource,
    SecretReference,
    SecretStore,
    SecretStoreStatus,
    Workload,
    WorkloadPatch,
    iter_secret_refs,
    ordered_patches,
    parse_duration,
    parse_object,
)
from strongroom.api.crds import CrdSchemaError, crd_dicts, render_crds_yaml, structural
from strongroom.api.reference import render_api_markdown

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
NOT_CUSTOM_RESOURCES = ("app", "gitops")


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    """(label, object) for every document of every example file."""
    documents: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        # examples/app holds orchestrator inputs (Score files, definitions, values) and examples/gitops
        # Argo CD / Flux objects; tests/unit/test_orchestrator_render.py covers them.
        if path.relative_to(EXAMPLES).parts[0] in NOT_CUSTOM_RESOURCES:
            continue
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if doc is not None:
                documents.append((f"{path.relative_to(EXAMPLES)}#{index}", doc))
    return documents


EXAMPLE_DOCUMENTS = example_documents()


# --- Examples and models ----------------------------------------------------------------------------------


def test_examples_cover_every_kind() -> None:
    kinds = {doc["kind"] for _, doc in EXAMPLE_DOCUMENTS}
    assert kinds == {kind.KIND for kind in ALL_KINDS}


@pytest.mark.parametrize(("label", "doc"), EXAMPLE_DOCUMENTS, ids=[label for label, _ in EXAMPLE_DOCUMENTS])
def test_models_parse_example(label: str, doc: dict[str, Any]) -> None:
    obj = parse_object(doc)
    assert obj.api_version == API_VERSION
    assert doc["kind"] == type(obj).KIND
    # What the models write back parses to the same object (defaults filled in, nothing lost).
    assert type(obj).model_validate(obj.to_dict()) == obj


def test_parse_whole_object_with_status() -> None:
    obj = {
        "apiVersion": API_VERSION,
        "kind": "SecretStore",
        "metadata": {
            "name": "vault",
            "namespace": "ops",
            "generation": 3,
            "labels": {"app.humanitec.io/default-store": "true"},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {
            "vault": {"url": "http://127.0.0.1:8200", "path": "secret", "auth": {"kubernetes": {"role": "r"}}}
        },
        "status": {
            "observedGeneration": 3,
            "storeType": "vault",
            "capabilities": ["read", "write"],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Connected",
                    "lastTransitionTime": "2025-01-02T03:04:05Z",
                }
            ],
        },
    }
    store = SecretStore.model_validate(obj)
    assert store.name == "vault"
    assert store.namespace == "ops"
    assert store.is_default
    assert store.spec.backend == "vault"
    assert store.spec.vault is not None
    assert store.spec.vault.version == "v2"
    assert store.status is not None
    ready = store.status.condition("Ready")
    assert ready is not None
    assert ready.status == "True"
    assert ready.message == ""
    assert store.status.condition("Stalled") is None
    # Metadata fields the models do not name are kept.
    assert store.to_dict()["metadata"]["managedFields"] == [{"manager": "kubectl"}]


def test_parse_object_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="not a strongroom kind"):
        parse_object({"apiVersion": API_VERSION, "kind": "Secret", "spec": {}})


def test_models_reject_unknown_fields_and_wrong_api_version() -> None:
    good = {
        "apiVersion": API_VERSION,
        "kind": "Driver",
        "metadata": {"name": "d"},
        "spec": {"target": "http://d/"},
    }
    parse_object(good)
    with pytest.raises(pydantic.ValidationError, match="targett"):
        parse_object({**good, "spec": {"target": "http://d/", "targett": "x"}})
    with pytest.raises(pydantic.ValidationError):
        parse_object({**good, "apiVersion": "humanitec.io/v1alpha1"})


def test_status_round_trips_with_camel_case() -> None:
    status = SecretStoreStatus(
        observed_generation=2,
        store_type="kubernetes",
        conditions=[
            Condition(
                type="Ready",
                status="False",
                reason="Unreachable",
                message="connection refused",
                last_transition_time=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
            )
        ],
    )
    data = status.model_dump(mode="json", exclude_none=True)
    assert data["observedGeneration"] == 2
    assert data["conditions"][0]["lastTransitionTime"] == "2025-01-02T03:04:05Z"
    assert SecretStoreStatus.model_validate(data) == status


def test_secret_ref_tree_leaves_and_branches() -> None:
    doc = next(doc for label, doc in EXAMPLE_DOCUMENTS if label.startswith("resources/template.yaml"))
    resource = Resource.model_validate(doc)
    assert resource.spec.driver_inputs is not None
    assert resource.spec.driver_inputs.secret_refs is not None
    flat = iter_secret_refs(resource.spec.driver_inputs.secret_refs)
    assert flat == [(("credentials", "apiToken"), SecretReference(store="vault", ref="apps/api-token"))]
    assert resource.spec.resource_class == "default"


@pytest.mark.parametrize(
    "secret_refs",
    [
        {"a": {"b": {"ref": "x"}}},  # deep leaf without store: only the models see this deep
        {"a": {"b": {"store": "s", "ref": "x", "value": "plain"}}},  # a value where only references belong
        {"a": {"b": "plain"}},
    ],
)
def test_secret_ref_tree_rejects_bad_deep_leaves(secret_refs: dict[str, Any]) -> None:
    spec = {
        "type": "t1",
        "id": "x",
        "driverType": "humanitec/echo",
        "driverInputs": {"secretRefs": secret_refs},
    }
    with pytest.raises(pydantic.ValidationError):
        Resource.model_validate({"kind": "Resource", "spec": spec})


def test_workload_accepts_score_list_form_for_files_and_volumes() -> None:
    spec = {
        "containers": {
            "main": {
                "image": "busybox",
                "files": [
                    {"target": "/etc/a", "content": "a"},
                    {"target": "/etc/b", "source": "b.txt", "mode": "0600"},
                ],
                "volumes": [{"source": "data", "target": "/data", "read_only": True}],
            }
        }
    }
    workload = Workload.model_validate({"kind": "Workload", "spec": spec})
    container = workload.spec.containers["main"]
    assert container.files is not None
    assert sorted(container.files) == ["/etc/a", "/etc/b"]
    assert container.volumes is not None
    assert container.volumes["/data"].read_only is True
    assert workload.spec.rollout_on_secret_change is True  # code default
    written = workload.to_dict()["spec"]["containers"]["main"]
    assert written["files"]["/etc/b"] == {"mode": "0600", "source": "b.txt"}
    assert written["volumes"] == {"/data": {"source": "data", "readOnly": True}}


def test_workload_patch_value_presence_and_order() -> None:
    def patch(name: str, priority: int, op: dict[str, Any]) -> WorkloadPatch:
        return WorkloadPatch.model_validate(
            {
                "kind": "WorkloadPatch",
                "metadata": {"name": name},
                "spec": {"workloadName": "api", "priority": priority, "patches": [op]},
            }
        )

    remove = {"op": "remove", "path": "/spec/service"}
    add_null = {"op": "add", "path": "/spec/metadata/x", "value": None}  # an explicit null is a value
    patches = [patch("b", 0, remove), patch("a", 0, add_null), patch("c", -5, remove)]
    assert [p.name for p in ordered_patches(patches)] == ["c", "a", "b"]
    with pytest.raises(pydantic.ValidationError, match="value is required"):
        patch("x", 0, {"op": "add", "path": "/spec/x"})
    with pytest.raises(pydantic.ValidationError, match="not allowed for remove"):
        patch("x", 0, {"op": "remove", "path": "/spec/x", "value": 1})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("2h0m0s", timedelta(hours=2)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "1 h", "-5m", "h", "1d", "1.h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


# --- CRDs -------------------------------------------------------------------------------------------------


def schema_nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node under `node` (properties, additionalProperties, items), with its path."""
    assert isinstance(node, dict), path
    yield path, node
    for name, prop in node.get("properties", {}).items():
        yield from schema_nodes(prop, f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        yield from schema_nodes(node["items"], f"{path}[*]")


def all_schema_nodes() -> Iterator[tuple[str, dict[str, Any]]]:
    for crd in crd_dicts():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        yield from schema_nodes(schema, crd["metadata"]["name"])


def test_crds_one_per_kind() -> None:
    crds = crd_dicts()
    assert sorted(crd["spec"]["names"]["kind"] for crd in crds) == sorted(kind.KIND for kind in ALL_KINDS)
    for crd in crds:
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "strongroom"
        spec = crd["spec"]
        assert spec["group"] == "strongroom.dev"
        assert spec["scope"] == "Namespaced"
        assert crd["metadata"]["name"] == f"{spec['names']['plural']}.strongroom.dev"
        assert "strongroom" in spec["names"]["categories"]
        assert spec["names"]["shortNames"]
        (version,) = spec["versions"]
        assert version["name"] == "v1alpha1"
        assert version["served"]
        assert version["storage"]
        assert version["subresources"] == {"status": {}}
        columns = {column["name"]: column for column in version["additionalPrinterColumns"]}
        assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
        assert columns["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
        assert columns["Age"]["type"] == "date"
        schema = version["schema"]["openAPIV3Schema"]
        assert schema["required"] == ["spec"]
        status = schema["properties"]["status"]["properties"]
        assert {"conditions", "observedGeneration"} <= set(status)
        assert status["conditions"]["x-kubernetes-list-map-keys"] == ["type"]
        condition = status["conditions"]["items"]
        assert condition["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
        assert set(condition["required"]) >= {"type", "status", "reason", "lastTransitionTime"}


def test_every_schema_node_is_structural() -> None:
    for path, node in all_schema_nodes():
        assert (
            "type" in node
            or node.get("x-kubernetes-preserve-unknown-fields")
            or node.get("x-kubernetes-int-or-string")
        ), f"{path} has no type"
        for junctor in ("anyOf", "oneOf", "allOf", "not", "$ref", "nullable", "const", "title"):
            assert junctor not in node, f"{path} has {junctor}"
        assert not ("properties" in node and "additionalProperties" in node), path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True, path
            assert "minimum" in node, path


def test_no_default_anywhere_in_crds() -> None:
    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            assert "default" not in value, f"default at {path}"
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    for crd in crd_dicts():
        walk(crd, crd["metadata"]["name"])


def test_free_form_maps_preserve_unknown_fields() -> None:
    nodes = dict(all_schema_nodes())
    for path in (
        "resources.strongroom.dev.spec.driverInputs.values",
        "resources.strongroom.dev.spec.driverInputs.secrets",
        "resources.strongroom.dev.spec.resourceInputs",
        "resources.strongroom.dev.status.outputs.values",
        "workloads.strongroom.dev.spec.resources.*.params",
        "workloadpatches.strongroom.dev.spec.patches[*].value",
    ):
        assert nodes[path].get("x-kubernetes-preserve-unknown-fields") is True, path
    leaf = nodes["resources.strongroom.dev.spec.driverInputs.secretRefs.*"]
    assert leaf["type"] == "object"
    assert leaf["x-kubernetes-preserve-unknown-fields"] is True
    assert set(leaf["properties"]) == {"store", "ref", "version"}
    typed_map = nodes["workloads.strongroom.dev.spec.containers"]
    assert typed_map["type"] == "object"
    assert typed_map["additionalProperties"]["type"] == "object"


def test_exactly_one_of_rules_are_cel() -> None:
    nodes = dict(all_schema_nodes())
    store_rules = [
        rule["rule"] for rule in nodes["secretstores.strongroom.dev.spec"]["x-kubernetes-validations"]
    ]
    assert any(
        all(f"has(self.{b})" in rule for b in ("vault", "awssm", "gcpsm", "azurekv", "kubernetes"))
        for rule in store_rules
    )
    auth_rules = nodes["secretstores.strongroom.dev.spec.vault.auth"]["x-kubernetes-validations"]
    assert "size() == 1" in auth_rules[0]["rule"]


def test_cel_iterated_collections_are_bounded() -> None:
    # CEL cost is estimated from the largest possible collection; unbounded ones can exceed the budget.
    for path, node in all_schema_nodes():
        rules = node.get("x-kubernetes-validations", [])
        if any("self.all(" in rule["rule"] for rule in rules):
            assert "maxProperties" in node or "maxItems" in node, path


def test_name_fields_use_kubernetes_name_patterns() -> None:
    nodes = dict(all_schema_nodes())
    subdomain = nodes["secretmappings.strongroom.dev.spec.secretName"]["pattern"]
    assert nodes["secretmappings.strongroom.dev.spec.secretData[*].secretStoreName"]["pattern"] == subdomain
    assert nodes["workloadpatches.strongroom.dev.spec.workloadName"]["pattern"] == subdomain
    assert (
        nodes["secretmappings.strongroom.dev.spec.secretData[*].secretKey"]["pattern"] == "^[-._a-zA-Z0-9]+$"
    )
    assert nodes["secretstores.strongroom.dev.spec.kubernetes.namespace"]["maxLength"] == 63


def test_render_is_deterministic_and_parses_back() -> None:
    first = render_crds_yaml()
    assert first == render_crds_yaml()
    documents = [doc for doc in yaml.safe_load_all(first) if doc is not None]
    assert documents == crd_dicts()
    assert [doc["metadata"]["name"] for doc in documents] == sorted(
        doc["metadata"]["name"] for doc in documents
    )


def test_cli_prints_crds() -> None:
    from click.testing import CliRunner

    from strongroom.cli import main

    result = CliRunner().invoke(main, ["crds"])
    assert result.exit_code == 0, result.output
    assert result.output == render_crds_yaml()


def test_api_docs_are_current() -> None:
    """docs/api.md is generated; regenerate with `python -m strongroom.api.reference > docs/api.md`."""
    assert (REPO / "docs" / "api.md").read_text() == render_api_markdown()


def test_structural_inlines_refs_and_refuses_what_crds_cannot_express() -> None:
    defs = {"A": {"$ref": "#/$defs/B", "title": "A"}, "B": {"type": "integer", "title": "B", "default": 1}}
    assert structural({"$ref": "#/$defs/A", "description": "d"}, defs) == {
        "type": "integer",
        "description": "d",
    }
    assert structural({"type": "number", "exclusiveMinimum": 0}, {}) == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
    }
    with pytest.raises(CrdSchemaError, match="anyOf"):
        structural({"anyOf": [{"type": "string"}, {"type": "integer"}]}, {})
    with pytest.raises(CrdSchemaError, match="unresolvable"):
        structural({"$ref": "#/$defs/Missing"}, {})
