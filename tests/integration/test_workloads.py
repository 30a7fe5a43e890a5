"""Workloads and WorkloadPatches end to end: the real operator process renders Workloads against real
Resources (built-in echo and template drivers) on the real control plane.

Each workload's rendered objects are compared field by field with what docs/workloads.md promises. The
Resources' secret outputs come from a `kubernetes` SecretStore holding canary values; the last tests check
that no canary reached a Deployment, ConfigMap, Service, annotation, status, Event or the operator's log.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strongroom.reconcile.workload import file_key
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from tests.conftest import Cluster
from tests.integration.helpers import apply, condition, ensure_namespace, eventually, get, k8s_secret

pytestmark = pytest.mark.integration

NAMESPACE = "wl-tests"
STORE = "k8s"
API = "strongroom.dev/v1alpha1"
CHECKSUM = "strongroom.dev/secrets-checksum"
CONFIG_CHECKSUM = "strongroom.dev/config-checksum"

# Secret values that must only ever be referenced: never in a Deployment, ConfigMap, annotation, status,
# Event or log line.
CANARY = {name: f"canary-{name}-{uuid.uuid4().hex}" for name in ("db", "token", "rotated", "api")}


def pod_labels(workload: str) -> dict[str, str]:
    """The labels of the pod template."""
    return {
        "app.kubernetes.io/name": workload,
        "app.kubernetes.io/instance": workload,
        "app.kubernetes.io/managed-by": "strongroom",
    }


def labels(workload: str) -> dict[str, str]:
    """The labels every rendered object carries (docs/workloads.md "What gets rendered")."""
    return pod_labels(workload) | {"strongroom.dev/managed": "true"}


def selector(workload: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": workload, "app.kubernetes.io/instance": workload}


@dataclass
class Env:
    cluster: Cluster
    operator: OperatorProcess
    logs: list[str]
    """Logs of operator processes that were stopped (a test restarts the operator)."""
    directory: Path

    def restart_operator(self) -> None:
        self.operator.stop()
        self.logs.append(self.operator.logs())
        self.operator = _start(self.cluster, self.directory / f"operator-{len(self.logs)}.log")


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    ensure_namespace(cluster, NAMESPACE)
    # The store Resources read their secret inputs from, and the default store that receives their
    # secret outputs: Kubernetes Secrets of the test namespace.
    apply(
        cluster,
        k8s_secret(NAMESPACE, "db-password", {"value": CANARY["db"]}),
        k8s_secret(NAMESPACE, "api-token", {"value": CANARY["token"]}),
        k8s_secret(NAMESPACE, "api-key", {"value": CANARY["api"]}),
        {
            "apiVersion": API,
            "kind": "SecretStore",
            "metadata": {
                "name": STORE,
                "namespace": NAMESPACE,
                "labels": {"strongroom.dev/default-store": "true"},
            },
            "spec": {"kubernetes": {"namespace": NAMESPACE}},
        },
    )
    directory = tmp_path_factory.mktemp("operator")
    env = Env(cluster, _start(cluster, directory / "operator.log"), [], directory)
    try:
        yield env
    finally:
        env.operator.stop()


def _start(cluster: Cluster, log: Path) -> OperatorProcess:
    return start_operator(
        cluster.kubeconfig,
        log,
        # Resyncs every few seconds: a Resource re-reads its secret references (rotation), a Workload
        # re-checks its objects; both must write nothing when nothing changed.
        ["--refresh-interval=3s", "--resource-resync-interval=3s", "--log-level=debug"],
    )


# --- objects ------------------------------------------------------------------------------------------------


def workload(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Workload",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def patch(name: str, target: str, operations: list[dict[str, Any]], priority: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "WorkloadPatch",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"workloadName": target, "priority": priority, "patches": operations},
    }


def echo(
    name: str,
    type_: str,
    id_: str,
    values: dict[str, Any] | None = None,
    secret_refs: dict[str, Any] | None = None,
    class_: str | None = None,
) -> dict[str, Any]:
    """An echo Resource: its driver values come back as outputs, its secret references as secret outputs."""
    inputs: dict[str, Any] = {}
    if values is not None:
        inputs["values"] = values
    if secret_refs is not None:
        inputs["secretRefs"] = {key: {"store": STORE, "ref": ref} for key, ref in secret_refs.items()}
    spec: dict[str, Any] = {"type": type_, "id": id_, "driverType": "strongroom/echo", "driverInputs": inputs}
    if class_ is not None:
        spec["class"] = class_
    return {
        "apiVersion": API,
        "kind": "Resource",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def template(name: str, type_: str, id_: str, templates: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Resource",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": type_,
            "id": id_,
            "driverType": "strongroom/template",
            "driverInputs": {"values": {"templates": templates}},
        },
    }


def private_id(workload_name: str, resource: str) -> str:
    return f"modules.{workload_name}.externals.{resource}"


# --- reading back -------------------------------------------------------------------------------------------


def obj(env: Env, kind: str, name: str) -> dict[str, Any] | None:
    return get(env.cluster, kind, NAMESPACE, name)


def must(env: Env, kind: str, name: str) -> dict[str, Any]:
    found = obj(env, kind, name)
    assert found is not None, f"{kind} {name} does not exist"
    return found


def ready_condition(env: Env, kind: str, name: str) -> dict[str, Any] | None:
    return condition(obj(env, kind, name))


def wait_ready(env: Env, kind: str, name: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        found = obj(env, kind, name)
        cond = condition(found)
        current = found and (found.get("status") or {}).get("observedGeneration") == found["metadata"].get(
            "generation"
        )
        return found if current and cond and cond["status"] == "True" else None

    try:
        return eventually(check, timeout=timeout, what=f"{kind} {name} Ready")
    except AssertionError:
        raise AssertionError(f"{kind} {name} not Ready: {ready_condition(env, kind, name)}") from None


def wait_reason(env: Env, kind: str, name: str, reason: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        cond = ready_condition(env, kind, name)
        return cond if cond and cond["reason"] == reason else None

    try:
        return eventually(check, timeout=timeout, what=f"{kind} {name} {reason}")
    except AssertionError:
        raise AssertionError(f"{kind} {name}: {ready_condition(env, kind, name)}, not {reason}") from None


def rendered(env: Env, name: str, resources: tuple[str, ...] = ()) -> dict[str, Any]:
    """Wait until the Workload (and the Resources it needs) are Ready; return its Deployment."""
    for resource in resources:
        wait_ready(env, "resource", resource)
    wait_ready(env, "workload", name)
    return must(env, "deployment", name)


def assert_fields(actual: Any, expected: Any, where: str = "") -> None:
    """Every field of `expected` is in `actual` with the same value; lists must match item by item.

    Fields the API server adds (defaults such as `terminationMessagePath`) are not compared.
    """
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{where}.{key}: missing (have {sorted(actual)})"
            assert_fields(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        assert len(actual) == len(expected), (
            f"{where}: {len(actual)} items, expected {len(expected)}: {actual!r}"
        )
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_fields(got, want, f"{where}[{index}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def assert_owned(env: Env, kind: str, name: str, workload_name: str) -> dict[str, Any]:
    found = must(env, kind, name)
    owner = must(env, "workload", workload_name)
    assert_fields(found["metadata"], {"labels": labels(workload_name)}, f"{kind} {name}.metadata")
    assert found["metadata"]["ownerReferences"] == [
        {
            "apiVersion": API,
            "kind": "Workload",
            "name": workload_name,
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    shown = env.cluster.kubectl_run("-n", NAMESPACE, "get", kind, name, "-o", "json", "--show-managed-fields")
    managers = {entry["manager"] for entry in json.loads(shown.stdout)["metadata"]["managedFields"]}
    assert managers == {"strongroom"}, managers  # written by server-side apply as field manager strongroom
    return found


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def pod_annotations(deployment: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = deployment["spec"]["template"]["metadata"].get("annotations") or {}
    return found


def secret_ref(name: str, key: str) -> dict[str, Any]:
    return {"secretKeyRef": {"name": name, "key": key}}


def decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}


def status_objects(env: Env, name: str) -> list[tuple[str, str]]:
    return sorted((ref["kind"], ref["name"]) for ref in must(env, "workload", name)["status"]["objects"])


# --- rendered workloads, field by field ----------------------------------------------------------------


def test_multiple_containers(env: Env) -> None:
    apply(
        env.cluster,
        workload(
            "multi",
            {
                "containers": {
                    "worker": {
                        "image": "ghcr.io/example/worker:2",
                        "command": ["/bin/worker"],
                        "args": ["--queue", "$(QUEUE)", "${not.expanded}"],
                        "variables": {"QUEUE": "jobs", "WORKLOAD": "${metadata.name}"},
                        "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
                    },
                    "main": {
                        "image": "ghcr.io/example/api:1",
                        "variables": {"QUEUE": "jobs"},
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "100m", "memory": "64Mi"},
                        },
                    },
                }
            },
        ),
    )
    deployment = rendered(env, "multi")
    assert_owned(env, "deployment", "multi", "multi")
    assert_fields(
        deployment["spec"],
        {
            "replicas": 1,
            "selector": {"matchLabels": selector("multi")},
            "template": {
                "metadata": {"labels": pod_labels("multi")},
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "ghcr.io/example/api:1",
                            "env": [{"name": "QUEUE", "value": "jobs"}],
                            "resources": {
                                "limits": {"cpu": "500m", "memory": "128Mi"},
                                "requests": {"cpu": "100m", "memory": "64Mi"},
                            },
                        },
                        {
                            "name": "worker",
                            "image": "ghcr.io/example/worker:2",
                            "command": ["/bin/worker"],
                            # Placeholders are not expanded in args; Kubernetes' $(VAR) is the way.
                            "args": ["--queue", "$(QUEUE)", "${not.expanded}"],
                            "env": [
                                {"name": "QUEUE", "value": "jobs"},
                                {"name": "WORKLOAD", "value": "multi"},
                            ],
                            "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
                        },
                    ]
                },
            },
        },
    )
    for container in pod(deployment)["containers"]:
        assert "volumeMounts" not in container
        assert "livenessProbe" not in container
    # Nothing is consumed: the checksum is the digest of the empty set, and there is no config checksum.
    assert set(pod_annotations(deployment)) == {CHECKSUM}
    assert status_objects(env, "multi") == [("Deployment", "multi")]


def test_service_ports(env: Env) -> None:
    apply(
        env.cluster,
        workload(
            "web",
            {
                "metadata": {"annotations": {"example.com/owner": "team-web"}},
                "containers": {"main": {"image": "nginx:1.27"}},
                "service": {
                    "ports": {
                        "http": {"port": 80, "targetPort": 8080},
                        "metrics": {"port": 9090},
                        "dns": {"port": 53, "protocol": "UDP"},
                    }
                },
            },
        ),
    )
    rendered(env, "web")
    service = assert_owned(env, "service", "web", "web")
    assert_fields(
        service,
        {
            "metadata": {"name": "web", "annotations": {"example.com/owner": "team-web"}},
            "spec": {
                "selector": selector("web"),
                "ports": [
                    {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
                    {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                    {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
                ],
            },
        },
    )
    deployment = must(env, "deployment", "web")
    assert pod_annotations(deployment)["example.com/owner"] == "team-web"
    assert deployment["metadata"]["annotations"]["example.com/owner"] == "team-web"
    assert status_objects(env, "web") == [("Deployment", "web"), ("Service", "web")]


def test_probes(env: Env) -> None:
    apply(
        env.cluster,
        workload(
            "probes",
            {
                "containers": {
                    "main": {
                        "image": "ghcr.io/example/api:1",
                        "livenessProbe": {
                            "httpGet": {
                                "path": "/healthz",
                                "port": 8080,
                                "scheme": "HTTPS",
                                "host": "localhost",
                                "httpHeaders": [{"name": "X-Probe", "value": "liveness"}],
                            }
                        },
                        "readinessProbe": {"exec": {"command": ["/bin/ready", "--strict"]}},
                    }
                }
            },
        ),
    )
    deployment = rendered(env, "probes")
    assert_fields(
        pod(deployment)["containers"],
        [
            {
                "name": "main",
                "image": "ghcr.io/example/api:1",
                "livenessProbe": {
                    "httpGet": {
                        "path": "/healthz",
                        "port": 8080,
                        "scheme": "HTTPS",
                        "host": "localhost",
                        "httpHeaders": [{"name": "X-Probe", "value": "liveness"}],
                    }
                },
                "readinessProbe": {"exec": {"command": ["/bin/ready", "--strict"]}},
            }
        ],
    )


def test_plain_files_go_to_a_config_map(env: Env) -> None:
    apply(
        env.cluster,
        workload(
            "conf",
            {
                "metadata": {"annotations": {"region": "eu-1"}},
                "containers": {
                    "main": {
                        "image": "ghcr.io/example/api:1",
                        "files": {
                            "/etc/app/app.yaml": {
                                "content": "region: ${metadata.annotations.region}\n",
                                "mode": "0640",
                            },
                            "/etc/app/raw.tpl": {"content": "keep ${this}\n", "noExpand": True},
                            "/etc/app/logo.png": {"binaryContent": base64.b64encode(b"\x89PNG\x00").decode()},
                        },
                    }
                },
            },
        ),
    )
    deployment = rendered(env, "conf")
    yaml_key = file_key("main", "/etc/app/app.yaml")
    raw_key = file_key("main", "/etc/app/raw.tpl")
    logo_key = file_key("main", "/etc/app/logo.png")
    config_map = assert_owned(env, "configmap", "conf-main-files", "conf")
    assert config_map["data"] == {yaml_key: "region: eu-1\n", raw_key: "keep ${this}\n"}
    assert config_map["binaryData"] == {logo_key: base64.b64encode(b"\x89PNG\x00").decode()}
    assert_fields(
        pod(deployment),
        {
            "containers": [
                {
                    "name": "main",
                    "volumeMounts": [
                        {"name": "files-main", "mountPath": "/etc/app/app.yaml", "subPath": yaml_key},
                        {"name": "files-main", "mountPath": "/etc/app/logo.png", "subPath": logo_key},
                        {"name": "files-main", "mountPath": "/etc/app/raw.tpl", "subPath": raw_key},
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "files-main",
                    "configMap": {
                        "name": "conf-main-files",
                        # In the order of the files' target paths.
                        "items": [
                            {"key": yaml_key, "path": yaml_key, "mode": 0o640},
                            {"key": logo_key, "path": logo_key},
                            {"key": raw_key, "path": raw_key},
                        ],
                    },
                }
            ],
        },
    )
    assert set(pod_annotations(deployment)) == {"region", CHECKSUM, CONFIG_CHECKSUM}


def test_variables_inline_values_and_reference_secrets(env: Env) -> None:
    apply(
        env.cluster,
        echo(
            "vars-db",
            "postgres",
            private_id("vars", "db"),
            values={"host": "db.internal", "port": 5432, "name": "orders"},
            secret_refs={"password": "db-password"},
        ),
        workload(
            "vars",
            {
                "metadata": {"annotations": {"team": "payments"}},
                "containers": {
                    "main": {
                        "image": "ghcr.io/example/api:1.0",
                        "variables": {
                            "DB_HOST": "${resources.db.host}",
                            "DB_PORT": "${resources.db.outputs.port}",
                            "DB_PASSWORD": "${resources.db.password}",
                            "DSN": "postgres://app:${resources.db.password}@${resources.db.host}/${resources.db.name}",
                            "NAME": "${metadata.name}",
                            "TEAM": "${metadata.annotations.team}",
                            "PLAIN": "just $text",
                        },
                    }
                },
                "resources": {"db": {"type": "postgres"}},
            },
        ),
    )
    deployment = rendered(env, "vars", ("vars-db",))
    assert must(env, "resource", "vars-db")["status"]["secretName"] == "vars-db-outputs"
    assert_owned(env, "deployment", "vars", "vars")
    assert_fields(
        deployment,
        {
            "metadata": {"name": "vars", "namespace": NAMESPACE, "annotations": {"team": "payments"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector("vars")},
                "template": {
                    "metadata": {"labels": pod_labels("vars")},
                    "spec": {
                        "containers": [
                            {
                                "name": "main",
                                "image": "ghcr.io/example/api:1.0",
                                "env": [
                                    {"name": "DB_HOST", "value": "db.internal"},
                                    {
                                        "name": "DB_PASSWORD",
                                        "valueFrom": secret_ref("vars-db-outputs", "password"),
                                    },
                                    {"name": "DB_PORT", "value": "5432"},
                                    {"name": "DSN", "valueFrom": secret_ref("vars-env", "DSN")},
                                    {"name": "NAME", "value": "vars"},
                                    {"name": "PLAIN", "value": "just $text"},
                                    {"name": "TEAM", "value": "payments"},
                                ],
                            }
                        ]
                    },
                },
            },
        },
    )
    assert "volumes" not in pod(deployment)
    assert set(pod_annotations(deployment)) == {"team", CHECKSUM}
    # The composed DSN lives in a Secret the Workload owns, never in the Deployment.
    env_secret = assert_owned(env, "secret", "vars-env", "vars")
    assert decoded(env_secret) == {"DSN": f"postgres://app:{CANARY['db']}@db.internal/orders"}
    assert env_secret["metadata"]["annotations"]["strongroom.dev/content-hash"]
    assert obj(env, "service", "vars") is None  # no ports, no Service
    assert status_objects(env, "vars") == [("Deployment", "vars"), ("Secret", "vars-env")]
    cond = ready_condition(env, "workload", "vars")
    assert cond is not None
    assert (cond["status"], cond["reason"]) == ("True", "Rendered")
    assert cond["message"] == "rendered 2 objects: Secret vars-env, Deployment vars"


def test_files_with_secrets_are_mounted_from_secrets(env: Env) -> None:
    apply(
        env.cluster,
        echo(
            "files-api",
            "api-credentials",
            "shared.api",
            values={"url": "https://api.example.com"},
            secret_refs={"token": "api-token", "key": "api-key"},
        ),
        workload(
            "files",
            {
                "containers": {
                    "main": {
                        "image": "ghcr.io/example/api:1",
                        "files": {
                            "/etc/api/url": {"content": "${resources.api.url}"},
                            "/run/secrets/token": {"content": "${resources.api.token}", "mode": "0400"},
                            "/etc/api/client.ini": {
                                "content": "[api]\nurl = ${resources.api.url}\nkey = ${resources.api.key}\n"
                            },
                        },
                    }
                },
                "resources": {"api": {"type": "api-credentials", "id": "shared.api"}},
            },
        ),
    )
    deployment = rendered(env, "files", ("files-api",))
    url_key = file_key("main", "/etc/api/url")
    token_key = file_key("main", "/run/secrets/token")
    ini_key = file_key("main", "/etc/api/client.ini")
    config_map = assert_owned(env, "configmap", "files-main-files", "files")
    assert config_map["data"] == {url_key: "https://api.example.com"}
    composed = assert_owned(env, "secret", "files-main-files", "files")
    assert decoded(composed) == {ini_key: f"[api]\nurl = https://api.example.com\nkey = {CANARY['api']}\n"}
    assert_fields(
        pod(deployment),
        {
            "containers": [
                {
                    "name": "main",
                    "volumeMounts": [
                        {"name": "secret-files-main", "mountPath": "/etc/api/client.ini", "subPath": ini_key},
                        {"name": "files-main", "mountPath": "/etc/api/url", "subPath": url_key},
                        {
                            "name": "secret-files-api-outputs",
                            "mountPath": "/run/secrets/token",
                            "subPath": token_key,
                        },
                    ],
                }
            ],
            "volumes": [
                {
                    "name": "files-main",
                    "configMap": {"name": "files-main-files", "items": [{"key": url_key, "path": url_key}]},
                },
                {
                    "name": "secret-files-api-outputs",
                    # The token is mounted straight from the Resource's Secret: no copy is made.
                    "secret": {
                        "secretName": "files-api-outputs",
                        "items": [{"key": "token", "path": token_key, "mode": 0o400}],
                    },
                },
                {
                    "name": "secret-files-main",
                    "secret": {
                        "secretName": "files-main-files",
                        "items": [{"key": ini_key, "path": ini_key}],
                    },
                },
            ],
        },
    )
    assert set(pod_annotations(deployment)) == {CHECKSUM, CONFIG_CHECKSUM}
    assert status_objects(env, "files") == [
        ("ConfigMap", "files-main-files"),
        ("Deployment", "files"),
        ("Secret", "files-main-files"),
    ]


def test_volumes_from_a_resource(env: Env) -> None:
    apply(
        env.cluster,
        echo(
            "volumes-data",
            "volume",
            private_id("volumes", "data"),
            values={"source": {"persistentVolumeClaim": {"claimName": "shared-data"}}},
        ),
        workload(
            "volumes",
            {
                "containers": {
                    "main": {
                        "image": "ghcr.io/example/api:1",
                        "volumes": {
                            "/data": {"source": "${resources.data}", "path": "api", "readOnly": True}
                        },
                    },
                    "backup": {
                        "image": "ghcr.io/example/backup:1",
                        "volumes": {"/backup/data": {"source": "${resources.data}"}},
                    },
                },
                "resources": {"data": {"type": "volume"}},
            },
        ),
    )
    deployment = rendered(env, "volumes", ("volumes-data",))
    assert_fields(
        pod(deployment),
        {
            "containers": [
                {"name": "backup", "volumeMounts": [{"name": "vol-data", "mountPath": "/backup/data"}]},
                {
                    "name": "main",
                    "volumeMounts": [
                        {"name": "vol-data", "mountPath": "/data", "subPath": "api", "readOnly": True}
                    ],
                },
            ],
            # Both containers share one pod volume.
            "volumes": [{"name": "vol-data", "persistentVolumeClaim": {"claimName": "shared-data"}}],
        },
    )
    assert "subPath" not in pod(deployment)["containers"][0]["volumeMounts"][0]


OTEL_TEMPLATES = {
    "manifests": """
collector:
  location: containers
  data:
    name: otel-collector
    image: otel/opentelemetry-collector:0.110.0
    args: ["--config=/etc/otel/config.yaml"]
    volumeMounts:
      - name: otel-config
        mountPath: /etc/otel
config:
  location: volumes
  data:
    name: otel-config
    configMap:
      name: otel-config
""",
    "outputs": "endpoint: http://localhost:4317\n",
}


def test_sidecar_and_volume_from_a_resource_manifest(env: Env) -> None:
    apply(
        env.cluster,
        template("sidecar-otel", "otel", private_id("sidecar", "otel"), OTEL_TEMPLATES),
        workload(
            "sidecar",
            {
                "containers": {
                    "main": {
                        "image": "ghcr.io/example/api:1",
                        "variables": {"OTEL_EXPORTER_OTLP_ENDPOINT": "${resources.otel.endpoint}"},
                        "volumes": {"/etc/otel": {"source": "otel-config", "readOnly": True}},
                    }
                },
                "resources": {"otel": {"type": "otel"}},
            },
        ),
    )
    deployment = rendered(env, "sidecar", ("sidecar-otel",))
    assert must(env, "secret", "sidecar-otel-manifests")  # where the Resource keeps them for workloads
    assert_fields(
        pod(deployment),
        {
            "containers": [
                {
                    "name": "main",
                    "env": [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://localhost:4317"}],
                    "volumeMounts": [{"name": "otel-config", "mountPath": "/etc/otel", "readOnly": True}],
                },
                # The sidecar comes after the workload's own containers, as the driver emitted it.
                {
                    "name": "otel-collector",
                    "image": "otel/opentelemetry-collector:0.110.0",
                    "args": ["--config=/etc/otel/config.yaml"],
                    "volumeMounts": [{"name": "otel-config", "mountPath": "/etc/otel"}],
                },
            ],
            "volumes": [{"name": "otel-config", "configMap": {"name": "otel-config"}}],
        },
    )


def test_workload_resource_update_becomes_a_patch(env: Env) -> None:
    apply(
        env.cluster,
        echo(
            "wlres",
            "workload",
            "modules.wlres",
            values={
                "update": [
                    {"op": "add", "path": "/spec/containers/main/variables/REGION", "value": "eu-1"},
                    {"op": "add", "path": "/spec/service", "value": {"ports": {"http": {"port": 8080}}}},
                ]
            },
        ),
        workload("wlres", {"containers": {"main": {"image": "ghcr.io/example/api:1"}}}),
    )
    wait_ready(env, "resource", "wlres")
    created = must(env, "workloadpatch", "wlres")
    assert created["spec"]["workloadName"] == "wlres"
    assert created["metadata"]["ownerReferences"][0]["kind"] == "Resource"
    # The Workload may have rendered before the patch existed: wait until it renders with it.
    eventually(
        lambda: (must(env, "workload", "wlres").get("status") or {}).get("patches") == ["wlres"],
        what="the Workload to apply WorkloadPatch wlres",
    )
    deployment = rendered(env, "wlres")
    assert_fields(
        pod(deployment)["containers"], [{"name": "main", "env": [{"name": "REGION", "value": "eu-1"}]}]
    )
    assert_fields(must(env, "service", "wlres")["spec"], {"ports": [{"name": "http", "port": 8080}]})
    assert must(env, "workload", "wlres")["status"]["patches"] == ["wlres"]
    assert wait_reason(env, "workloadpatch", "wlres", "Applied")["status"] == "True"


def test_waits_for_a_missing_resource_and_proceeds_when_it_is_ready(env: Env) -> None:
    apply(env.cluster, echo("late-cache", "redis", "shared.cache", values={"host": "redis"}))
    wait_ready(env, "resource", "late-cache")
    apply(
        env.cluster,
        workload(
            "late",
            {
                "containers": {"main": {"image": "a:1", "variables": {"Q": "${resources.queue.url}"}}},
                "resources": {
                    "queue": {"type": "amqp", "class": "large"},
                    "cache": {"type": "redis", "id": "shared.cache"},
                },
            },
        ),
    )
    cond = wait_reason(env, "workload", "late", "WaitingForResources")
    assert cond["status"] == "False"
    assert cond["message"] == (
        "waiting for resources: queue (no Resource with type 'amqp', class 'large', id "
        f"'modules.late.externals.queue' in namespace '{NAMESPACE}')"
    )
    assert obj(env, "deployment", "late") is None
    # A Resource of the right type and id but another class is not the one.
    apply(
        env.cluster,
        echo("late-queue-small", "amqp", private_id("late", "queue"), values={"url": "amqp://small"}),
    )
    wait_ready(env, "resource", "late-queue-small")
    assert wait_reason(env, "workload", "late", "WaitingForResources")
    # Creating the right one is all it takes: the Workload is woken when the Resource becomes Ready.
    apply(
        env.cluster,
        echo(
            "late-queue", "amqp", private_id("late", "queue"), values={"url": "amqp://large"}, class_="large"
        ),
    )
    deployment = rendered(env, "late", ("late-queue",))
    assert pod(deployment)["containers"][0]["env"] == [{"name": "Q", "value": "amqp://large"}]


def test_rotation_of_a_consumed_secret_rolls_the_deployment(env: Env) -> None:
    apply(
        env.cluster,
        k8s_secret(NAMESPACE, "rotating-password", {"value": "first"}),
        k8s_secret(NAMESPACE, "unused-password", {"value": "first"}),
        echo(
            "rotating-db",
            "postgres",
            private_id("rotating", "db"),
            secret_refs={"password": "rotating-password"},
        ),
        echo("rotating-other", "postgres", "shared.other", secret_refs={"password": "unused-password"}),
        workload(
            "rotating",
            {
                "containers": {
                    "main": {
                        "image": "a:1",
                        "variables": {"PASSWORD": "${resources.db.password}", "OTHER": "x"},
                    }
                },
                # Declared but not read by the pod: its Secret is not part of the checksum.
                "resources": {
                    "db": {"type": "postgres"},
                    "other": {"type": "postgres", "id": "shared.other"},
                },
            },
        ),
    )
    first = rendered(env, "rotating", ("rotating-db", "rotating-other"))
    checksum = pod_annotations(first)[CHECKSUM]

    # A change of a Secret the pod does not read changes nothing.
    apply(env.cluster, k8s_secret(NAMESPACE, "unused-password", {"value": "second"}))
    eventually(
        lambda: decoded(must(env, "secret", "rotating-other-outputs")) == {"password": "second"},
        what="the other Resource picked up its new value",
    )
    time.sleep(4)  # a Workload resync and the Resource's status event
    assert (
        must(env, "deployment", "rotating")["metadata"]["resourceVersion"]
        == first["metadata"]["resourceVersion"]
    )

    # Rotating the consumed secret in its store: the Resource re-reads it on its resync, rewrites its
    # outputs Secret, and the Workload's pod template gets a new checksum (the Deployment rolls).
    apply(env.cluster, k8s_secret(NAMESPACE, "rotating-password", {"value": CANARY["rotated"]}))

    def new_checksum() -> dict[str, Any] | None:
        deployment = must(env, "deployment", "rotating")
        return deployment if pod_annotations(deployment)[CHECKSUM] != checksum else None

    rolled = eventually(new_checksum, what="new checksum")
    assert decoded(must(env, "secret", "rotating-db-outputs")) == {"password": CANARY["rotated"]}
    # Only the annotation moved: the env still refers to the Secret by name and key.
    assert pod(rolled)["containers"][0]["env"] == pod(first)["containers"][0]["env"]
    assert int(rolled["metadata"]["generation"]) == int(first["metadata"]["generation"]) + 1


def test_an_object_the_api_server_refuses_is_reported(env: Env) -> None:
    broken_sidecar = {"manifests": "sidecar:\n  location: containers\n  data:\n    name: no-image\n"}
    apply(
        env.cluster,
        template("refused-extra", "extra", private_id("refused", "extra"), broken_sidecar),
        workload(
            "refused",
            {"containers": {"main": {"image": "a:1"}}, "resources": {"extra": {"type": "extra"}}},
        ),
    )
    wait_ready(env, "resource", "refused-extra")
    cond = wait_reason(env, "workload", "refused", "ApplyFailed")
    assert cond["status"] == "False"
    assert "Invalid (422)" in cond["message"]
    assert "spec.template.spec.containers[1].image: Required value" in cond["message"]
    assert obj(env, "deployment", "refused") is None


def test_rollout_on_secret_change_can_be_turned_off(env: Env) -> None:
    apply(
        env.cluster,
        echo("quiet-db", "postgres", private_id("quiet", "db"), secret_refs={"password": "db-password"}),
        workload(
            "quiet",
            {
                "rolloutOnSecretChange": False,
                "containers": {
                    "main": {"image": "a:1", "variables": {"PASSWORD": "${resources.db.password}"}}
                },
                "resources": {"db": {"type": "postgres"}},
            },
        ),
    )
    deployment = rendered(env, "quiet", ("quiet-db",))
    assert CHECKSUM not in pod_annotations(deployment)
    assert pod(deployment)["containers"][0]["env"] == [
        {"name": "PASSWORD", "valueFrom": secret_ref("quiet-db-outputs", "password")}
    ]


# --- WorkloadPatches ----------------------------------------------------------------------------------------


def test_workload_patches_apply_in_priority_then_name_order(env: Env) -> None:
    apply(
        env.cluster,
        # Applied last (priority 10): depends on nothing.
        patch(
            "patched-otel",
            "patched",
            [
                {
                    "op": "add",
                    "path": "/spec/containers/main/variables/OTEL_EXPORTER_OTLP_ENDPOINT",
                    "value": "http://localhost:4317",
                },
                {"op": "replace", "path": "/spec/containers/main/resources/limits/memory", "value": "256Mi"},
            ],
            priority=10,
        ),
        # Same priority, ordered by name: `patched-a-debug` adds the container `patched-b-env` then changes.
        patch(
            "patched-a-debug",
            "patched",
            [{"op": "add", "path": "/spec/containers/debug", "value": {"image": "busybox:1.36"}}],
        ),
        patch(
            "patched-b-env",
            "patched",
            [
                {"op": "add", "path": "/spec/containers/debug/variables/MODE", "value": "verbose"},
                {"op": "remove", "path": "/spec/containers/main/variables/OLD"},
            ],
        ),
        workload(
            "patched",
            {
                "containers": {
                    "main": {
                        "image": "ghcr.io/example/api:1",
                        "variables": {"KEEP": "yes", "OLD": "gone"},
                        "resources": {"limits": {"memory": "128Mi"}},
                    }
                }
            },
        ),
    )
    deployment = rendered(env, "patched")
    assert_fields(
        pod(deployment)["containers"],
        [
            {"name": "debug", "image": "busybox:1.36", "env": [{"name": "MODE", "value": "verbose"}]},
            {
                "name": "main",
                "image": "ghcr.io/example/api:1",
                "env": [
                    {"name": "KEEP", "value": "yes"},
                    {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://localhost:4317"},
                ],
                "resources": {"limits": {"memory": "256Mi"}},
            },
        ],
    )
    status = must(env, "workload", "patched")["status"]
    assert status["patches"] == ["patched-a-debug", "patched-b-env", "patched-otel"]
    for position, name in enumerate(status["patches"], start=1):
        cond = wait_reason(env, "workloadpatch", name, "Applied")
        assert cond["status"] == "True"
        assert cond["message"] == f"applied to Workload 'patched' ({position} of 3 in order)"
    # The Workload object itself is never changed by its patches.
    assert "debug" not in must(env, "workload", "patched")["spec"]["containers"]


def test_invalid_patch_is_reported_on_the_patch_and_the_last_good_rendering_stays(env: Env) -> None:
    apply(env.cluster, workload("guarded", {"containers": {"main": {"image": "ghcr.io/example/api:1"}}}))
    before = rendered(env, "guarded")
    apply(
        env.cluster,
        patch("guarded-bad", "guarded", [{"op": "remove", "path": "/spec/containers/main/variables/NOPE"}]),
        # Applies cleanly, but leaves a spec that is not a valid Workload (an image must be a string).
        patch(
            "guarded-invalid",
            "guarded",
            [{"op": "replace", "path": "/spec/containers/main/image", "value": 5}],
        ),
    )
    bad = wait_reason(env, "workloadpatch", "guarded-bad", "InvalidPatch")
    assert bad["status"] == "False"
    assert "operation 1 (remove /spec/containers/main/variables/NOPE) failed" in bad["message"]
    assert "keeps its last good rendering" in bad["message"]
    invalid = wait_reason(env, "workloadpatch", "guarded-invalid", "InvalidPatch")
    assert "the patched Workload spec is not valid: containers.main.image" in invalid["message"]
    cond = wait_reason(env, "workload", "guarded", "InvalidPatch")
    assert cond["status"] == "False"
    assert "guarded-bad" in cond["message"]
    assert "guarded-invalid" in cond["message"]

    # While a patch is broken, even a change of the Workload itself is held back.
    apply(env.cluster, workload("guarded", {"containers": {"main": {"image": "ghcr.io/example/api:2"}}}))
    eventually(
        lambda: must(env, "workload", "guarded")["status"]["observedGeneration"] == 2,
        what="generation 2 seen",
    )
    after = must(env, "deployment", "guarded")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert pod(after)["containers"][0]["image"] == "ghcr.io/example/api:1"
    assert status_objects(env, "guarded") == [("Deployment", "guarded")]  # still listed: still there

    # Fixing one patch and deleting the other lets the held-back change through.
    apply(
        env.cluster,
        patch(
            "guarded-bad",
            "guarded",
            [{"op": "add", "path": "/spec/containers/main/variables/FIXED", "value": "1"}],
        ),
    )
    env.cluster.kubectl_run("-n", NAMESPACE, "delete", "workloadpatch", "guarded-invalid")
    deployment = rendered(env, "guarded")
    assert_fields(
        pod(deployment)["containers"],
        [{"name": "main", "image": "ghcr.io/example/api:2", "env": [{"name": "FIXED", "value": "1"}]}],
    )
    assert wait_reason(env, "workloadpatch", "guarded-bad", "Applied")["status"] == "True"


def test_patch_for_a_missing_workload_waits_for_it(env: Env) -> None:
    apply(
        env.cluster,
        patch("early-patch", "early", [{"op": "add", "path": "/spec/containers/main/args", "value": ["-v"]}]),
    )
    cond = wait_reason(env, "workloadpatch", "early-patch", "WorkloadNotFound")
    assert cond["message"] == (
        f"Workload 'early' does not exist in namespace '{NAMESPACE}'; the patch applies once it does"
    )
    apply(env.cluster, workload("early", {"containers": {"main": {"image": "ghcr.io/example/api:1"}}}))
    deployment = rendered(env, "early")
    assert pod(deployment)["containers"][0]["args"] == ["-v"]
    wait_reason(env, "workloadpatch", "early-patch", "Applied")


# --- lifecycle ----------------------------------------------------------------------------------------------


def test_a_reconcile_that_changes_nothing_writes_nothing(env: Env) -> None:
    rendered(env, "web")
    before = {
        kind: must(env, kind, "web")["metadata"]["resourceVersion"]
        for kind in ("workload", "deployment", "service")
    }
    time.sleep(8)  # more than two resyncs (--refresh-interval=3s)
    after = {
        kind: must(env, kind, "web")["metadata"]["resourceVersion"]
        for kind in ("workload", "deployment", "service")
    }
    assert after == before
    reconciles = [
        line
        for line in env.operator.metrics().splitlines()
        if line.startswith("strongroom_reconciles_total") and 'kind="Workload"' in line
    ]
    assert any('result="unchanged"' in line for line in reconciles), reconciles


def test_objects_no_longer_rendered_are_pruned(env: Env) -> None:
    spec: dict[str, Any] = {
        "containers": {"main": {"image": "nginx:1.27", "files": {"/etc/motd": {"content": "hello\n"}}}},
        "service": {"ports": {"http": {"port": 80}}},
    }
    apply(env.cluster, workload("shrink", spec))
    rendered(env, "shrink")
    assert status_objects(env, "shrink") == [
        ("ConfigMap", "shrink-main-files"),
        ("Deployment", "shrink"),
        ("Service", "shrink"),
    ]
    # An object of another workload with the same labels would be left alone: pruning also checks the owner.
    apply(env.cluster, workload("shrink", {"containers": {"main": {"image": "nginx:1.27"}}}))
    eventually(lambda: obj(env, "service", "shrink") is None, what="Service pruned")
    eventually(lambda: obj(env, "configmap", "shrink-main-files") is None, what="ConfigMap pruned")
    deployment = rendered(env, "shrink")
    assert "volumes" not in pod(deployment)
    assert CONFIG_CHECKSUM not in pod_annotations(deployment)
    assert status_objects(env, "shrink") == [("Deployment", "shrink")]


def test_an_object_someone_else_owns_is_never_taken_over(env: Env) -> None:
    foreign = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "taken-main-files", "namespace": NAMESPACE},
        "data": {"mine": "keep"},
    }
    apply(env.cluster, foreign)
    apply(
        env.cluster,
        workload("taken", {"containers": {"main": {"image": "a:1", "files": {"/x": {"content": "y"}}}}}),
    )
    cond = wait_reason(env, "workload", "taken", "ObjectConflict")
    assert cond["message"].startswith(
        "ConfigMap taken-main-files: already there and not owned by this Workload"
    )
    assert must(env, "configmap", "taken-main-files")["data"] == {"mine": "keep"}
    assert obj(env, "deployment", "taken") is None  # nothing at all is applied
    env.cluster.kubectl_run("-n", NAMESPACE, "delete", "configmap", "taken-main-files")
    rendered(env, "taken")  # the retry finds the way clear
    assert must(env, "configmap", "taken-main-files")["data"] == {file_key("main", "/x"): "y"}


def test_a_deleted_rendered_object_is_restored_by_the_resync(env: Env) -> None:
    rendered(env, "probes")
    env.cluster.kubectl_run("-n", NAMESPACE, "delete", "deployment", "probes")
    eventually(lambda: obj(env, "deployment", "probes"), timeout=30, what="Deployment restored")


def test_a_restarted_operator_changes_nothing(env: Env) -> None:
    """Level-based: a new operator process finds every Workload rendered and writes nothing, not even a
    passing WaitingForResources while its caches fill (Resources and patches are listed from the API
    server when the caches do not have them yet).

    Only Workloads whose Resources read no secret store are watched here: just after a start, the Resource
    controller may try a Resource before its store cache holds the SecretStore, report StoreNotFound for a
    moment, and so make the Workloads that use it wait for a moment too (reported to the lead).
    """
    names = ("sidecar", "patched", "wlres", "volumes", "late", "conf", "multi", "guarded", "early")
    watched = [("workload", name) for name in names] + [("deployment", name) for name in names]
    watched += [
        ("workloadpatch", "patched-otel"),
        ("workloadpatch", "wlres"),
        ("workloadpatch", "early-patch"),
    ]
    for name in names:
        wait_ready(env, "workload", name)
    before = {item: must(env, *item)["metadata"]["resourceVersion"] for item in watched}
    env.restart_operator()
    time.sleep(8)  # the initial reconciles plus two resyncs
    after = {item: must(env, *item)["metadata"]["resourceVersion"] for item in watched}
    changed = {"/".join(item): must(env, *item) for item in watched if after[item] != before[item]}
    assert not changed, json.dumps(changed, indent=1)[:20000]


def gone(env: Env, kind: str, name: str) -> None:
    eventually(lambda: obj(env, kind, name) is None, timeout=60, what=f"{kind} {name} collected")


def test_deleting_a_workload_garbage_collects_everything_it_rendered(env: Env) -> None:
    rendered(env, "files")
    owned = [("configmap", "files-main-files"), ("secret", "files-main-files"), ("deployment", "files")]
    assert all(obj(env, kind, name) for kind, name in owned)
    env.cluster.kubectl_run("-n", NAMESPACE, "delete", "workload", "files")
    for kind, name in owned:
        gone(env, kind, name)
    # What the Resource owns is not the Workload's: it stays.
    assert obj(env, "secret", "files-api-outputs") is not None

    rendered(env, "web")
    env.cluster.kubectl_run("-n", NAMESPACE, "delete", "workload", "web")
    for kind in ("deployment", "service"):
        gone(env, kind, "web")


# --- secrets never leak ------------------------------------------------------------------------------------


def test_no_secret_value_outside_secrets(env: Env) -> None:
    """Runs last: every canary must be absent from every object except Secrets, and from the log."""
    dumps = {
        kind: env.cluster.kubectl_run("-n", NAMESPACE, "get", kind, "-o", "json").stdout
        for kind in (
            "deployments",
            "replicasets",
            "configmaps",
            "services",
            "events",
            "workloads",
            "workloadpatches",
            "resources",
        )
    }
    secrets = json.loads(env.cluster.kubectl_run("-n", NAMESPACE, "get", "secrets", "-o", "json").stdout)
    secret_metadata = json.dumps([item["metadata"] for item in secrets["items"]])
    log = "\n".join([*env.logs, env.operator.logs()])
    for name, canary in CANARY.items():
        for kind, dump in dumps.items():
            assert canary not in dump, f"canary {name} found in {kind}"
        assert canary not in secret_metadata, f"canary {name} in a Secret's labels or annotations"
        assert canary not in log, f"canary {name} in the operator log"
    # The canaries did reach the pods' Secrets, so the check above looked at real data.
    assert any(
        CANARY["db"] in base64.b64decode(v).decode(errors="replace")
        for item in secrets["items"]
        for v in (item.get("data") or {}).values()
    )
