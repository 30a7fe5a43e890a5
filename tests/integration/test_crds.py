"""The generated CRDs on a real kube-apiserver.

Installs the output of `strongroom crds`, applies every example (server-side apply, field manager
`strongroom`) and checks the API server stores it unchanged (no server-side defaults), then sends malformed
objects and checks the API server itself rejects each one, naming the field.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from lightkube import ApiError, Client, KubeConfig
from lightkube.codecs import from_dict
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Namespace
from lightkube.types import PatchType

from strongroom.api import FIELD_MANAGER, Condition, Resource, SecretStore, SecretStoreStatus, parse_object
from strongroom.api.crds import KIND_DEFINITIONS, crd_dicts, render_crds_yaml
from tests.unit.test_api import EXAMPLE_DOCUMENTS
from tests.unit.test_api_malformed import MALFORMED, Malformed

if TYPE_CHECKING:
    from tests.conftest import Cluster

pytestmark = pytest.mark.integration

# lightkube needs a class per custom kind to build URLs; these also let codecs.from_dict find the kinds.
GENERIC = {
    definition.kind: create_namespaced_resource(
        "strongroom.dev", "v1alpha1", definition.kind, definition.plural
    )
    for definition in KIND_DEFINITIONS
}


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> Client:
    """A client for a cluster that has the CRDs installed the way the docs say: `strongroom crds | kubectl
    apply --server-side -f -`, then waits until every CRD is Established."""
    cluster.kubectl_run(
        "apply",
        "--server-side",
        f"--field-manager={FIELD_MANAGER}",
        "--force-conflicts",
        "-f",
        "-",
        input=render_crds_yaml(),
    )
    names = [crd["metadata"]["name"] for crd in crd_dicts()]
    cluster.kubectl_run(
        "wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{name}" for name in names]
    )
    return Client(KubeConfig.from_file(cluster.kubeconfig), field_manager=FIELD_MANAGER)


@pytest.fixture(scope="module")
def namespace(client: Client) -> Iterator[str]:
    name = f"crds-{secrets.token_hex(4)}"
    client.create(Namespace(metadata=ObjectMeta(name=name)))
    yield name
    client.delete(Namespace, name)


def _in_namespace(namespace: str, obj: dict[str, Any]) -> Any:
    return from_dict({**obj, "metadata": {**obj.get("metadata", {}), "namespace": namespace}})


def _apply(client: Client, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    resource = _in_namespace(namespace, obj)
    applied: Any = client.apply(resource, field_manager=FIELD_MANAGER, force=True)
    result: dict[str, Any] = applied.to_dict()
    return result


def _get(client: Client, kind: str, name: str, namespace: str) -> dict[str, Any]:
    found: Any = client.get(GENERIC[kind], name, namespace=namespace)
    result: dict[str, Any] = found.to_dict()
    return result


def test_crds_are_established_and_structural(client: Client) -> None:
    for crd_dict in crd_dicts():
        crd = client.get(CustomResourceDefinition, crd_dict["metadata"]["name"])
        assert crd.status is not None
        conditions = {cond.type: cond.status for cond in crd.status.conditions or []}
        assert conditions.get("Established") == "True", conditions
        assert conditions.get("NamesAccepted") == "True", conditions
        assert "NonStructuralSchema" not in conditions, conditions


@pytest.mark.parametrize(("label", "doc"), EXAMPLE_DOCUMENTS, ids=[label for label, _ in EXAMPLE_DOCUMENTS])
def test_example_is_accepted_and_stored_unchanged(
    client: Client, namespace: str, label: str, doc: dict[str, Any]
) -> None:
    stored = _apply(client, namespace, doc)
    # No server-side defaults and no pruning: the API server keeps exactly what the manifest says.
    assert stored["spec"] == doc["spec"], label
    parse_object(stored)


@pytest.mark.parametrize("case", MALFORMED, ids=lambda case: case.id)
def test_api_server_rejects_malformed(client: Client, namespace: str, case: Malformed) -> None:
    obj = {**case.obj, "metadata": {"name": case.id}}
    with pytest.raises(ApiError) as raised:
        _apply(client, namespace, obj)
    status = raised.value.status
    message = status.message or ""
    assert f"{case.field}:" in message, message
    assert case.message in message, message
    if status.code != 500:
        assert status.code == 422, message
        return
    # Server-side apply turns the object into a typed value before validation, so a value of the wrong
    # type fails there (500, naming the field). A plain create reaches the schema's own checks instead.
    assert message.startswith("failed to create typed patch object"), message
    with pytest.raises(ApiError) as created:
        client.create(_in_namespace(namespace, obj))
    assert created.value.status.code == 422, created.value.status.message
    assert case.field in (created.value.status.message or ""), created.value.status.message


def test_status_subresource_and_printer_columns(cluster: Cluster, client: Client, namespace: str) -> None:
    store = {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretStore",
        "metadata": {"name": "columns", "labels": {"strongroom.dev/default-store": "true"}},
        "spec": {"kubernetes": {"namespace": namespace}},
    }
    applied = _apply(client, namespace, store)
    status = SecretStoreStatus(
        observed_generation=applied["metadata"]["generation"],
        store_type="kubernetes",
        capabilities=["read", "write"],
        conditions=[
            Condition(
                type="Ready",
                status="True",
                reason="Connected",
                message="read and wrote a probe secret",
                last_transition_time=datetime.now(UTC).replace(microsecond=0),
                observed_generation=applied["metadata"]["generation"],
            )
        ],
    )
    client.patch(
        GENERIC["SecretStore"].Status,
        "columns",
        {"status": status.model_dump(mode="json", exclude_none=True)},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    stored = SecretStore.model_validate(_get(client, "SecretStore", "columns", namespace))
    assert stored.status == status

    table = cluster.kubectl_run("get", "srstore", "columns", "-n", namespace).stdout
    header, row = table.splitlines()
    assert header.split()[:7] == ["NAME", "STORE", "TYPE", "DEFAULT", "READY", "REASON", "AGE"]
    assert row.split()[:5] == ["columns", "kubernetes", "true", "True", "Connected"]

    everything = cluster.kubectl_run("get", "strongroom", "-n", namespace, "-o", "name").stdout
    assert "secretstore.strongroom.dev/columns" in everything.split()


def test_resource_identity_is_immutable(client: Client, namespace: str) -> None:
    resource = Resource.model_validate(
        {
            "kind": "Resource",
            "metadata": {"name": "immutable"},
            "spec": {
                "type": "postgres",
                "id": "shared.db",
                "class": "default",
                "driverType": "humanitec/echo",
            },
        }
    ).to_dict()
    _apply(client, namespace, resource)

    # Inputs may change...
    changed_inputs = json.loads(json.dumps(resource))
    changed_inputs["spec"]["driverInputs"] = {"values": {"host": "db2"}}
    _apply(client, namespace, changed_inputs)

    # ...what the resource is may not.
    for field, value in (("type", "mysql"), ("id", "shared.other"), ("class", "fast")):
        changed = json.loads(json.dumps(resource))
        changed["spec"][field] = value
        with pytest.raises(ApiError) as raised:
            _apply(client, namespace, changed)
        assert f"spec.{field}: Invalid value" in (raised.value.status.message or "")
        assert f"{field} is immutable" in (raised.value.status.message or "")
