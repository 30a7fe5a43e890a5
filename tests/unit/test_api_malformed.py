"""Malformed objects, each with the field the rejection must name.

The same list drives two checks: here, that the models reject each object (so the operator and the
`strongroom` commands fail the way the API server does); in tests/integration/test_crds.py, that the API
server rejects each one through the generated CRDs and names the field.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pydantic
import pytest

from strongroom.api import API_VERSION, parse_object


@dataclass(frozen=True)
class Malformed:
    id: str
    obj: dict[str, Any]
    field: str
    """Field path the API server's message must contain, e.g. `spec.vault.url`. Schema checks write map
    keys as `a.key.b`, CEL rules as `a[key]`."""
    message: str = ""
    """Further text the API server's message must contain (for CEL rules: part of the rule's message)."""
    models_reject: bool = True
    """False where pydantic's lax mode accepts the value (e.g. "yes" for a bool) but the API server not."""


def _obj(kind: str, spec: Any) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": "malformed"}, "spec": spec}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of `base` with keys changed; a value of None removes the key."""
    result = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


_VAULT: dict[str, Any] = {
    "url": "https://vault.example.com:8200",
    "path": "secret",
    "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}},
}
_TOKEN_REF = {"name": "vault-token", "key": "token"}
_AWS_KEY = {"name": "aws", "key": "id"}
_MAPPING: dict[str, Any] = {
    "secretName": "app-secrets",
    "secretData": [
        {"secretKey": "password", "secretStoreName": "vault", "remoteRef": {"key": "db/password"}}
    ],
}
_ENTRY = _MAPPING["secretData"][0]
_DRIVER: dict[str, Any] = {"target": "https://drivers.example.com/s3/"}
_RESOURCE: dict[str, Any] = {"type": "postgres", "id": "shared.db", "driverType": "humanitec/echo"}
_CONTAINER: dict[str, Any] = {"image": "nginx:1.27"}
_WORKLOAD: dict[str, Any] = {"containers": {"main": _CONTAINER}}
_PATCH_OP: dict[str, Any] = {"op": "add", "path": "/spec/containers/main/variables/X", "value": "1"}
_PATCH: dict[str, Any] = {"workloadName": "api", "patches": [_PATCH_OP]}

MALFORMED: list[Malformed] = [
    # --- SecretStore ---
    Malformed(
        "store-two-backends",
        _obj("SecretStore", {"vault": _VAULT, "kubernetes": {"namespace": "secrets"}}),
        "spec",
        "exactly one of vault, awssm, gcpsm, azurekv or kubernetes",
    ),
    Malformed(
        "store-no-backend",
        _obj("SecretStore", {"access": [{"namespaces": ["team-a"], "keyPrefixes": ["a/"]}]}),
        "spec",
        "exactly one of vault, awssm, gcpsm, azurekv or kubernetes",
    ),
    Malformed(
        "store-vault-url-scheme",
        _obj("SecretStore", {"vault": _with(_VAULT, url="ftp://vault")}),
        "spec.vault.url",
    ),
    Malformed(
        "store-vault-missing-path",
        _obj("SecretStore", {"vault": _with(_VAULT, path=None)}),
        "spec.vault.path",
    ),
    Malformed(
        "store-vault-version-enum",
        _obj("SecretStore", {"vault": _with(_VAULT, version="v3")}),
        "spec.vault.version",
    ),
    Malformed(
        "store-vault-two-auth-methods",
        _obj(
            "SecretStore",
            {
                "vault": _with(
                    _VAULT, auth={"tokenSecretRef": _TOKEN_REF, "kubernetes": {"role": "strongroom"}}
                )
            },
        ),
        "spec.vault.auth",
        "exactly one of tokenSecretRef, kubernetes or appRole",
    ),
    Malformed(
        "store-vault-no-auth-method",
        _obj("SecretStore", {"vault": _with(_VAULT, auth={})}),
        "spec.vault.auth",
        "exactly one of tokenSecretRef, kubernetes or appRole",
    ),
    Malformed(
        "store-vault-secret-ref-missing-key",
        _obj("SecretStore", {"vault": _with(_VAULT, auth={"tokenSecretRef": {"name": "vault-token"}})}),
        "spec.vault.auth.tokenSecretRef.key",
    ),
    Malformed(
        "store-vault-secret-ref-bad-name",
        _obj(
            "SecretStore",
            {"vault": _with(_VAULT, auth={"tokenSecretRef": {"name": "Vault_Token", "key": "t"}})},
        ),
        "spec.vault.auth.tokenSecretRef.name",
    ),
    Malformed(
        "store-vault-approle-missing-secret-ref",
        _obj("SecretStore", {"vault": _with(_VAULT, auth={"appRole": {"roleId": "r"}})}),
        "spec.vault.auth.appRole.secretRef",
    ),
    Malformed(
        "store-aws-half-access-keys",
        _obj("SecretStore", {"awssm": {"region": "eu-west-1", "auth": {"accessKeyIDSecretRef": _AWS_KEY}}}),
        "spec.awssm.auth",
        "must be set together",
    ),
    Malformed(
        "store-aws-role-not-arn",
        _obj("SecretStore", {"awssm": {"region": "eu-west-1", "role": "strongroom-reader"}}),
        "spec.awssm.role",
    ),
    Malformed("store-aws-missing-region", _obj("SecretStore", {"awssm": {"auth": {}}}), "spec.awssm.region"),
    Malformed(
        "store-gcp-bad-project",
        _obj("SecretStore", {"gcpsm": {"projectID": "My Project"}}),
        "spec.gcpsm.projectID",
    ),
    Malformed(
        "store-azure-secret-without-client-id",
        _obj(
            "SecretStore",
            {
                "azurekv": {
                    "url": "https://v.vault.azure.net/",
                    "tenantID": "contoso.onmicrosoft.com",
                    "auth": {"clientSecretSecretRef": {"name": "sp", "key": "secret"}},
                }
            },
        ),
        "spec.azurekv.auth",
        "clientSecretSecretRef needs clientID",
    ),
    Malformed(
        "store-kubernetes-bad-namespace",
        _obj("SecretStore", {"kubernetes": {"namespace": "Not_A_Namespace"}}),
        "spec.kubernetes.namespace",
    ),
    Malformed(
        "store-access-not-a-list",
        _obj("SecretStore", {"kubernetes": {"namespace": "s"}, "access": "team-a"}),
        "spec.access",
    ),
    Malformed(
        "store-access-without-prefixes",
        _obj("SecretStore", {"kubernetes": {"namespace": "s"}, "access": [{"namespaces": ["team-a"]}]}),
        "spec.access[0].keyPrefixes",
    ),
    Malformed(
        "store-access-empty-prefix-list",
        _obj(
            "SecretStore",
            {"kubernetes": {"namespace": "s"}, "access": [{"namespaces": ["a"], "keyPrefixes": []}]},
        ),
        "spec.access[0].keyPrefixes",
    ),
    Malformed(
        "store-access-bad-namespace",
        _obj(
            "SecretStore",
            {"kubernetes": {"namespace": "s"}, "access": [{"namespaces": ["Team_A"], "keyPrefixes": ["a/"]}]},
        ),
        "spec.access[0].namespaces[0]",
    ),
    Malformed(
        "store-access-two-placeholders",
        _obj(
            "SecretStore",
            {
                "kubernetes": {"namespace": "s"},
                "access": [{"namespaces": ["a"], "keyPrefixes": ["{namespace}/{namespace}/"]}],
            },
        ),
        "spec.access[0].keyPrefixes[0]",
        "{namespace} at most once",
    ),
    Malformed(
        "store-access-traversal-prefix",
        _obj(
            "SecretStore",
            {
                "kubernetes": {"namespace": "s"},
                "access": [{"namespaces": ["a"], "keyPrefixes": ["teams/../"]}],
            },
        ),
        "spec.access[0].keyPrefixes[0]",
        "`.` or `..` segments",
    ),
    Malformed(
        "store-access-percent-prefix",
        _obj(
            "SecretStore",
            {
                "kubernetes": {"namespace": "s"},
                "access": [{"namespaces": ["a"], "keyPrefixes": ["teams%2f"]}],
            },
        ),
        "spec.access[0].keyPrefixes[0]",
    ),
    Malformed(
        "store-rate-limit-zero-qps",
        _obj("SecretStore", {"kubernetes": {"namespace": "s"}, "rateLimit": {"qps": 0, "burst": 1}}),
        "spec.rateLimit.qps",
    ),
    # --- SecretMapping ---
    Malformed(
        "mapping-missing-secret-name",
        _obj("SecretMapping", _with(_MAPPING, secretName=None)),
        "spec.secretName",
    ),
    Malformed(
        "mapping-bad-secret-name",
        _obj("SecretMapping", _with(_MAPPING, secretName="App.Secrets")),
        "spec.secretName",
    ),
    Malformed(
        "mapping-empty-secret-data", _obj("SecretMapping", _with(_MAPPING, secretData=[])), "spec.secretData"
    ),
    Malformed(
        "mapping-secret-data-not-a-list",
        _obj("SecretMapping", _with(_MAPPING, secretData={"password": "db/password"})),
        "spec.secretData",
    ),
    Malformed(
        "mapping-bad-secret-key",
        _obj("SecretMapping", _with(_MAPPING, secretData=[_with(_ENTRY, secretKey="bad key!")])),
        "spec.secretData[0].secretKey",
    ),
    Malformed(
        "mapping-duplicate-secret-key",
        _obj("SecretMapping", _with(_MAPPING, secretData=[_ENTRY, _ENTRY])),
        "spec.secretData",
        '"password"',  # the duplicated key
    ),
    Malformed(
        "mapping-bad-store-name",
        _obj("SecretMapping", _with(_MAPPING, secretData=[_with(_ENTRY, secretStoreName="My Store")])),
        "spec.secretData[0].secretStoreName",
    ),
    Malformed(
        "mapping-remote-ref-missing-key",
        _obj("SecretMapping", _with(_MAPPING, secretData=[_with(_ENTRY, remoteRef={"version": "2"})])),
        "spec.secretData[0].remoteRef.key",
    ),
    Malformed(
        "mapping-bad-refresh-interval",
        _obj("SecretMapping", _with(_MAPPING, refreshInterval="1 hour")),
        "spec.refreshInterval",
    ),
    # Below the floor: `1us` requeued at once (thousands of API requests per object), `1ns` parsed to zero
    # and silently meant "never"; above the ceiling is as good as never and should say 0.
    *(
        Malformed(
            f"mapping-refresh-interval-{interval}",
            _obj("SecretMapping", _with(_MAPPING, refreshInterval=interval)),
            "spec.refreshInterval",
            "must be 0 (never) or between 10s and 168h",
        )
        for interval in ("1us", "1ns", "9.5s", "169h", "168h1ns")
    ),
    # --- Driver ---
    Malformed("driver-target-not-url", _obj("Driver", {"target": "drivers.example.com/s3/"}), "spec.target"),
    Malformed(
        "driver-bad-timeout",
        _obj("Driver", _with(_DRIVER, timeouts={"request": "10 seconds"})),
        "spec.timeouts.request",
    ),
    Malformed(
        "driver-sign-not-bool", _obj("Driver", _with(_DRIVER, sign="yes")), "spec.sign", models_reject=False
    ),
    Malformed(
        "driver-tls-ca-and-insecure",
        _obj(
            "Driver",
            _with(_DRIVER, tls={"caBundle": "-----BEGIN CERTIFICATE-----\nx\n", "insecureSkipVerify": True}),
        ),
        "spec.tls",
        "exclude each other",
    ),
    Malformed(
        "driver-private-key-ref-missing-name",
        _obj("Driver", _with(_DRIVER, privateKeySecretRef={})),
        "spec.privateKeySecretRef.name",
    ),
    # --- Resource ---
    Malformed(
        "resource-missing-driver-type", _obj("Resource", _with(_RESOURCE, driverType=None)), "spec.driverType"
    ),
    Malformed("resource-bad-type", _obj("Resource", _with(_RESOURCE, type="Postgres DB")), "spec.type"),
    Malformed(
        "resource-too-many-input-keys",
        _obj("Resource", _with(_RESOURCE, driverInputs={"values": {f"k{i}": i for i in range(257)}})),
        "spec.driverInputs.values",
    ),
    Malformed(
        "resource-too-many-resource-inputs",
        _obj("Resource", _with(_RESOURCE, resourceInputs={f"k{i}": i for i in range(257)})),
        "spec.resourceInputs",
    ),
    Malformed("resource-missing-id", _obj("Resource", _with(_RESOURCE, id=None)), "spec.id"),
    Malformed(
        "resource-bad-guresid", _obj("Resource", _with(_RESOURCE, guresid="Has_Upper")), "spec.guresid"
    ),
    Malformed(
        "resource-bad-driver-type", _obj("Resource", _with(_RESOURCE, driverType="a/b/c")), "spec.driverType"
    ),
    Malformed(
        "resource-values-not-object",
        _obj("Resource", _with(_RESOURCE, driverInputs={"values": "host=db"})),
        "spec.driverInputs.values",
    ),
    Malformed(
        "resource-secret-ref-without-store",
        _obj("Resource", _with(_RESOURCE, driverInputs={"secretRefs": {"password": {"ref": "db/password"}}})),
        "spec.driverInputs.secretRefs[password]",
        "needs both store and ref",
    ),
    Malformed(
        "resource-secret-ref-plain-value",
        _obj("Resource", _with(_RESOURCE, driverInputs={"secretRefs": {"password": "hunter2"}})),
        "spec.driverInputs.secretRefs.password",
    ),
    Malformed(
        "resource-secret-ref-store-not-string",
        _obj(
            "Resource", _with(_RESOURCE, driverInputs={"secretRefs": {"password": {"store": 7, "ref": "x"}}})
        ),
        "spec.driverInputs.secretRefs.password.store",
    ),
    Malformed(
        "resource-secret-ref-version-without-ref",
        _obj("Resource", _with(_RESOURCE, driverInputs={"secretRefs": {"password": {"version": "2"}}})),
        "spec.driverInputs.secretRefs[password]",
        "version is only allowed",
    ),
    # --- Workload ---
    Malformed("workload-no-containers", _obj("Workload", {"containers": {}}), "spec.containers"),
    Malformed(
        "workload-container-without-image",
        _obj("Workload", {"containers": {"main": {"args": ["x"]}}}),
        "spec.containers.main.image",
    ),
    Malformed(
        "workload-bad-container-name",
        _obj("Workload", {"containers": {"Main_Container": _CONTAINER}}),
        "spec.containers",
        "keys must match",
    ),
    Malformed(
        "workload-probe-without-handler",
        _obj("Workload", {"containers": {"main": _with(_CONTAINER, livenessProbe={})}}),
        "spec.containers[main].livenessProbe",
        "httpGet or exec must be set",
    ),
    Malformed(
        "workload-http-probe-without-port",
        _obj(
            "Workload", {"containers": {"main": _with(_CONTAINER, livenessProbe={"httpGet": {"path": "/"}})}}
        ),
        "spec.containers.main.livenessProbe.httpGet.port",
    ),
    Malformed(
        "workload-one-character-container-name",
        _obj("Workload", {"containers": {"m": _CONTAINER}}),
        "spec.containers",
        "keys must match",
    ),
    Malformed(
        "workload-resource-name-with-underscore",
        _obj("Workload", _with(_WORKLOAD, resources={"my_db": {"type": "postgres"}})),
        "spec.resources",
        "keys must match",
    ),
    Malformed(
        "workload-port-as-string",
        _obj("Workload", _with(_WORKLOAD, service={"ports": {"http": {"port": "80"}}})),
        "spec.service.ports.http.port",
    ),
    Malformed(
        "workload-negative-cpu",
        _obj("Workload", {"containers": {"main": _with(_CONTAINER, resources={"limits": {"cpu": "-1"}})}}),
        "spec.containers.main.resources.limits.cpu",
    ),
    Malformed(
        "workload-cpu-with-exponent",
        _obj("Workload", {"containers": {"main": _with(_CONTAINER, resources={"requests": {"cpu": "1e3"}})}}),
        "spec.containers.main.resources.requests.cpu",
    ),
    Malformed(
        "workload-request-above-limit",
        _obj(
            "Workload",
            {
                "containers": {
                    "main": _with(
                        _CONTAINER, resources={"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}
                    )
                }
            },
        ),
        "spec.containers[main].resources",
        "requests.memory must be less than or equal to limits.memory",
    ),
    Malformed(
        "workload-invalid-annotation-key",
        _obj("Workload", _with(_WORKLOAD, metadata={"annotations": {"-bad key": "x"}})),
        "spec.metadata.annotations",
        "keys must match",
    ),
    Malformed(
        "workload-duplicate-service-port",
        _obj(
            "Workload",
            _with(
                _WORKLOAD, service={"ports": {"http": {"port": 80}, "web": {"port": 80, "protocol": "TCP"}}}
            ),
        ),
        "spec.service",
        "two ports expose the same port and protocol",
    ),
    Malformed(
        "workload-volume-path-leaves-the-volume",
        _obj(
            "Workload",
            {
                "containers": {
                    "main": _with(_CONTAINER, volumes={"/data": {"source": "vol", "path": "a/../.."}})
                }
            },
        ),
        "spec.containers.main.volumes./data.path",
    ),
    Malformed(
        "workload-image-with-surrounding-whitespace",
        _obj("Workload", {"containers": {"main": {"image": " nginx:1.27"}}}),
        "spec.containers.main.image",
    ),
    Malformed(
        "workload-no-expand-not-a-boolean",
        _obj(
            "Workload",
            {"containers": {"main": _with(_CONTAINER, files={"/f": {"content": "x", "noExpand": "yes"}})}},
        ),
        "spec.containers.main.files./f.noExpand",
    ),
    Malformed(
        "workload-probe-header-with-underscore",
        _obj(
            "Workload",
            {
                "containers": {
                    "main": _with(
                        _CONTAINER,
                        readinessProbe={
                            "httpGet": {
                                "path": "/",
                                "port": 80,
                                "httpHeaders": [{"name": "X_A", "value": "1"}],
                            }
                        },
                    )
                }
            },
        ),
        "spec.containers.main.readinessProbe.httpGet.httpHeaders[0].name",
    ),
    Malformed(
        "workload-variable-not-string",
        _obj("Workload", {"containers": {"main": _with(_CONTAINER, variables={"PORT": 8080})}}),
        "spec.containers.main.variables.PORT",
    ),
    Malformed(
        "workload-file-without-content",
        _obj("Workload", {"containers": {"main": _with(_CONTAINER, files={"/etc/x": {"mode": "0644"}})}}),
        "spec.containers[main].files[/etc/x]",
        "exactly one of content, binaryContent or source",
    ),
    Malformed(
        "workload-file-empty-target",
        _obj("Workload", {"containers": {"main": _with(_CONTAINER, files={"": {"content": "x"}})}}),
        "spec.containers[main].files",
        "keys must not be empty",
    ),
    Malformed(
        "workload-port-out-of-range",
        _obj("Workload", _with(_WORKLOAD, service={"ports": {"http": {"port": 70000}}})),
        "spec.service.ports.http.port",
    ),
    Malformed(
        "workload-port-protocol-enum",
        _obj("Workload", _with(_WORKLOAD, service={"ports": {"http": {"port": 80, "protocol": "HTTP"}}})),
        "spec.service.ports.http.protocol",
    ),
    # --- WorkloadPatch ---
    Malformed(
        "patch-missing-workload-name",
        _obj("WorkloadPatch", _with(_PATCH, workloadName=None)),
        "spec.workloadName",
    ),
    Malformed(
        "patch-bad-op",
        _obj("WorkloadPatch", _with(_PATCH, patches=[_with(_PATCH_OP, op="move")])),
        "spec.patches[0].op",
    ),
    Malformed(
        "patch-path-not-pointer",
        _obj("WorkloadPatch", _with(_PATCH, patches=[_with(_PATCH_OP, path="spec/containers")])),
        "spec.patches[0].path",
    ),
    Malformed(
        "patch-path-outside-spec",
        _obj("WorkloadPatch", _with(_PATCH, patches=[_with(_PATCH_OP, path="/metadata/labels/x")])),
        "spec.patches[0].path",
    ),
    Malformed("patch-no-operations", _obj("WorkloadPatch", _with(_PATCH, patches=[])), "spec.patches"),
    Malformed(
        "patch-priority-not-integer", _obj("WorkloadPatch", _with(_PATCH, priority="high")), "spec.priority"
    ),
    # --- Any kind ---
    Malformed("missing-spec", {k: v for k, v in _obj("Driver", {}).items() if k != "spec"}, "spec"),
]


def test_at_least_fifteen_cases_with_unique_ids() -> None:
    ids = [case.id for case in MALFORMED]
    assert len(ids) >= 15
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", [case for case in MALFORMED if case.models_reject], ids=lambda case: case.id)
def test_models_reject(case: Malformed) -> None:
    with pytest.raises(pydantic.ValidationError):
        parse_object(case.obj)
