"""Workload rendering: Score workloads + patches + resource outputs -> Kubernetes manifests.

Each rendering test compares whole manifests (or whole sub-trees) with what the rules in
docs/workloads.md say they must be.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pydantic
import pytest
from kubernetes_validate import validate
from kubernetes_validate.utils import latest_version

from strongroom.api.workload import Workload, WorkloadPatch
from strongroom.reconcile.secretdata import content_hash
from strongroom.reconcile.workload import (
    CONFIG_CHECKSUM_ANNOTATION,
    SECRETS_CHECKSUM_ANNOTATION,
    RenderResult,
    ResourceOutputs,
    file_key,
    render,
    required_resources,
)
from strongroom.stores.base import SecretValue

NS = "shop"
UID = "uid-workload-1"
CANARY = "canary-5e1f-never-inline-me"

OWNER = [
    {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "Workload",
        "name": "api",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }
]
SELECTOR = {"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api"}
POD_LABELS = {**SELECTOR, "app.kubernetes.io/managed-by": "strongroom"}
LABELS = {**POD_LABELS, "strongroom.dev/managed": "true"}


def meta(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "namespace": NS, "labels": LABELS, "ownerReferences": OWNER}
    if annotations:
        out["annotations"] = annotations
    return out


def make_workload(spec: dict[str, Any], name: str = "api") -> Workload:
    return Workload.model_validate(
        {"kind": "Workload", "metadata": {"name": name, "namespace": NS, "uid": UID}, "spec": spec}
    )


def make_patch(name: str, ops: list[dict[str, Any]], priority: int = 0) -> WorkloadPatch:
    return WorkloadPatch.model_validate(
        {
            "kind": "WorkloadPatch",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"workloadName": "api", "priority": priority, "patches": ops},
        }
    )


def db_outputs(password: str = CANARY, outputs_hash: str = "db-hash-1") -> ResourceOutputs:
    values = {"host": "db.internal", "port": 5432, "name": "orders", "user": "app"}
    return ResourceOutputs(
        ready=True,
        values=values,
        secret_name="db-outputs",
        secrets={"password": SecretValue(password)},
        content_hash=outputs_hash,
    )


DB = {"db": {"type": "postgres"}}


def ok(result: RenderResult) -> RenderResult:
    assert result.problems == []
    assert result.waiting_for == []
    assert result.patch_problems == {}
    assert result.complete
    assert result.objects
    return result


def get(result: RenderResult, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o for o in result.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod(result: RenderResult) -> dict[str, Any]:
    spec: dict[str, Any] = get(result, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(result: RenderResult, name: str = "main") -> dict[str, Any]:
    return next(c for c in pod(result)["containers"] if c["name"] == name)


def pod_annotations(result: RenderResult) -> dict[str, str]:
    annotations: dict[str, str] = get(result, "Deployment")["spec"]["template"]["metadata"].get(
        "annotations", {}
    )
    return annotations


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


# --- 1. the minimal workload ------------------------------------------------------------------------------


def test_minimal_workload_is_one_deployment() -> None:
    result = ok(render(make_workload({"containers": {"main": {"image": "nginx:1.27"}}}), [], {}, {}))
    deployment = result.objects[0]
    checksum = deployment["spec"]["template"]["metadata"]["annotations"][SECRETS_CHECKSUM_ANNOTATION]
    assert len(checksum) == 64
    assert result.objects == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta("api"),
            "spec": {
                "selector": {"matchLabels": SELECTOR},
                "template": {
                    "metadata": {
                        "labels": POD_LABELS,
                        "annotations": {SECRETS_CHECKSUM_ANNOTATION: checksum},
                    },
                    "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]},
                },
            },
        }
    ]
    assert result.consumed_secrets == []


# --- 2. variables -----------------------------------------------------------------------------------------


def test_variables_inline_non_secret_outputs_and_metadata() -> None:
    spec = {
        "metadata": {"name": "orders-api", "annotations": {"team": "orders"}, "tier": {"level": "gold"}},
        "containers": {
            "main": {
                "image": "app:1",
                "variables": {
                    "PLAIN": "info",
                    "HOST": "${resources.db.host}",
                    "HOST_H": "${resources.db.outputs.host}",
                    "URL": "postgres://${resources.db.user}@${resources.db.host}:${resources.db.port}/${resources.db.name}",
                    "PORT": "${resources.db.port}",
                    "NESTED": "${resources.db.conn.replica}",
                    "OBJECT": "${resources.db.conn}",
                    "CERT": "${resources.db.tls.crt}",
                    "SELF": "${metadata.name}",
                    "TEAM": "${metadata.annotations.team}",
                    "TIER": "${metadata.tier.level}",
                    "ESCAPED": "$${resources.db.host} costs $5",
                },
            }
        },
        "resources": DB,
    }
    db = ResourceOutputs(
        True,
        values={
            "host": "db.internal",
            "user": "app",
            "port": 5432,
            "name": "orders",
            "conn": {"replica": "db-ro.internal"},
            "tls.crt": "PEM",
        },
    )
    result = ok(render(make_workload(spec), [], {"db": db}, {}))
    assert container(result)["env"] == [
        {"name": "CERT", "value": "PEM"},
        {"name": "ESCAPED", "value": "${resources.db.host} costs $5"},
        {"name": "HOST", "value": "db.internal"},
        {"name": "HOST_H", "value": "db.internal"},
        {"name": "NESTED", "value": "db-ro.internal"},
        {"name": "OBJECT", "value": '{"replica":"db-ro.internal"}'},
        {"name": "PLAIN", "value": "info"},
        {"name": "PORT", "value": "5432"},
        {"name": "SELF", "value": "orders-api"},
        {"name": "TEAM", "value": "orders"},
        {"name": "TIER", "value": "gold"},
        {"name": "URL", "value": "postgres://app@db.internal:5432/orders"},
    ]
    assert result.consumed_secrets == []


def test_metadata_name_defaults_to_the_object_name() -> None:
    spec = {"containers": {"main": {"image": "app:1", "variables": {"NAME": "${metadata.name}"}}}}
    result = ok(render(make_workload(spec), [], {}, {}))
    assert container(result)["env"] == [{"name": "NAME", "value": "api"}]


def test_a_lone_secret_output_becomes_a_secret_key_ref() -> None:
    spec = {
        "containers": {
            "main": {
                "image": "app:1",
                "variables": {
                    "DB_PASSWORD": "${resources.db.password}",
                    "DB_PW2": "${resources.db.outputs.password}",
                },
            }
        },
        "resources": DB,
    }
    result = ok(render(make_workload(spec), [], {"db": db_outputs()}, {}))
    ref = {"secretKeyRef": {"name": "db-outputs", "key": "password"}}
    assert container(result)["env"] == [
        {"name": "DB_PASSWORD", "valueFrom": ref},
        {"name": "DB_PW2", "valueFrom": ref},
    ]
    assert [o["kind"] for o in result.objects] == ["Deployment"]  # nothing owned needed
    assert result.consumed_secrets == ["db-outputs"]


def test_secret_keys_without_values_are_still_wired_by_reference() -> None:
    db = ResourceOutputs(True, values={}, secret_name="db-outputs", secret_keys=["password"])
    spec = {
        "containers": {"main": {"image": "a", "variables": {"P": "${resources.db.password}"}}},
        "resources": DB,
    }
    result = ok(render(make_workload(spec), [], {"db": db}, {}))
    assert container(result)["env"] == [
        {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db-outputs", "key": "password"}}}
    ]


def test_secret_mixed_with_text_is_composed_into_the_owned_env_secret() -> None:
    spec = {
        "containers": {
            "main": {
                "image": "app:1",
                "variables": {
                    "DSN": "postgres://${resources.db.user}:${resources.db.password}@${resources.db.host}/x"
                },
            }
        },
        "resources": DB,
    }
    result = ok(render(make_workload(spec), [], {"db": db_outputs()}, {}))
    composed = f"postgres://app:{CANARY}@db.internal/x".encode()
    secret = get(result, "Secret", "api-env")
    assert secret == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta("api", {"strongroom.dev/content-hash": content_hash({"DSN": composed})})
        | {"name": "api-env"},
        "type": "Opaque",
        "data": {"DSN": base64.b64encode(composed).decode()},
    }
    assert container(result)["env"] == [
        {"name": "DSN", "valueFrom": {"secretKeyRef": {"name": "api-env", "key": "DSN"}}}
    ]
    assert result.consumed_secrets == ["api-env"]
    assert [o["kind"] for o in result.objects] == ["Secret", "Deployment"]  # dependencies first


def test_two_containers_share_a_key_only_when_their_composed_values_agree() -> None:
    def variables(prefix: str) -> dict[str, str]:
        return {"SAME": "x-${resources.db.password}", "DIFF": prefix + "${resources.db.password}"}

    spec = {
        "containers": {
            "ca": {"image": "a", "variables": variables("a:")},
            "cb": {"image": "b", "variables": variables("b:")},
        },
        "resources": DB,
    }
    result = ok(render(make_workload(spec), [], {"db": db_outputs(password="pw")}, {}))
    data = {k: base64.b64decode(v).decode() for k, v in get(result, "Secret", "api-env")["data"].items()}
    assert data == {"SAME": "x-pw", "ca.DIFF": "a:pw", "cb.DIFF": "b:pw"}
    assert container(result, "ca")["env"] == [
        {"name": "DIFF", "valueFrom": {"secretKeyRef": {"name": "api-env", "key": "ca.DIFF"}}},
        {"name": "SAME", "valueFrom": {"secretKeyRef": {"name": "api-env", "key": "SAME"}}},
    ]
    assert container(result, "cb")["env"][0]["valueFrom"]["secretKeyRef"]["key"] == "cb.DIFF"


# --- 3. files ---------------------------------------------------------------------------------------------


def test_files_become_a_configmap_mounted_with_subpath_and_mode() -> None:
    spec = {
        "containers": {
            "main": {
                "image": "app:1",
                "files": {
                    "/etc/app/config.yaml": {"mode": "0640", "content": "db: ${resources.db.host}\n"},
                    "/etc/app/raw.tpl": {"content": "keep ${resources.db.host} as is", "noExpand": True},
                    "/etc/app/logo.png": {"binaryContent": "iVBORw0KGgo="},
                },
            }
        },
        "resources": DB,
    }
    result = ok(render(make_workload(spec), [], {"db": db_outputs()}, {}))
    config, raw, logo = (
        file_key("main", t) for t in ("/etc/app/config.yaml", "/etc/app/raw.tpl", "/etc/app/logo.png")
    )
    assert config.startswith("config.yaml-")
    assert raw.startswith("raw.tpl-")
    assert logo.startswith("logo.png-")
    assert get(result, "ConfigMap") == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("api-main-files"),
        "data": {config: "db: db.internal\n", raw: "keep ${resources.db.host} as is"},
        "binaryData": {logo: "iVBORw0KGgo="},
    }
    assert pod(result)["volumes"] == [
        {
            "name": "files-main",
            "configMap": {
                "name": "api-main-files",
                "items": [
                    {"key": config, "path": config, "mode": 0o640},
                    {"key": logo, "path": logo},
                    {"key": raw, "path": raw},
                ],
            },
        }
    ]
    assert container(result)["volumeMounts"] == [
        {"name": "files-main", "mountPath": "/etc/app/config.yaml", "subPath": config},
        {"name": "files-main", "mountPath": "/etc/app/logo.png", "subPath": logo},
        {"name": "files-main", "mountPath": "/etc/app/raw.tpl", "subPath": raw},
    ]
    assert CONFIG_CHECKSUM_ANNOTATION in pod_annotations(result)
    assert [o["kind"] for o in result.objects] == ["ConfigMap", "Deployment"]


def test_a_file_that_is_one_secret_output_mounts_the_resource_secret() -> None:
    spec = {
        "containers": {
            "main": {
                "image": "app:1",
                "files": {"/run/secrets/db": {"mode": "0400", "content": "${resources.db.password}"}},
            },
            "side": {"image": "side:1", "files": {"/pw": {"content": "${resources.db.password}"}}},
        },
        "resources": DB,
    }
    result = ok(render(make_workload(spec), [], {"db": db_outputs()}, {}))
    main_key, side_key = file_key("main", "/run/secrets/db"), file_key("side", "/pw")
    items: list[dict[str, Any]] = [
        {"key": "password", "path": main_key, "mode": 0o400},
        {"key": "password", "path": side_key},
    ]
    assert [o["kind"] for o in result.objects] == ["Deployment"]
    assert pod(result)["volumes"] == [
        {
            "name": "secret-db-outputs",
            "secret": {
                "secretName": "db-outputs",
                "items": sorted(items, key=lambda item: str(item["path"])),
            },
        }
    ]
    assert container(result)["volumeMounts"] == [
        {"name": "secret-db-outputs", "mountPath": "/run/secrets/db", "subPath": main_key}
    ]
    assert container(result, "side")["volumeMounts"] == [
        {"name": "secret-db-outputs", "mountPath": "/pw", "subPath": side_key}
    ]
    assert result.consumed_secrets == ["db-outputs"]


def test_a_file_mixing_text_and_secrets_goes_to_an_owned_secret() -> None:
    spec = {
        "containers": {
            "main": {
                "image": "app:1",
                "files": {
                    "/etc/app/db.ini": {
                        "content": "host=${resources.db.host}\npassword=${resources.db.password}\n"
                    },
                    "/etc/app/plain.txt": {"content": "hello"},
                },
            }
        },
        "resources": DB,
    }
    result = ok(render(make_workload(spec), [], {"db": db_outputs(password="pw")}, {}))
    ini, plain = file_key("main", "/etc/app/db.ini"), file_key("main", "/etc/app/plain.txt")
    secret = get(result, "Secret", "api-main-files")
    assert base64.b64decode(secret["data"][ini]) == b"host=db.internal\npassword=pw\n"
    assert list(secret["data"]) == [ini]
    assert get(result, "ConfigMap", "api-main-files")["data"] == {plain: "hello"}
    assert pod(result)["volumes"] == [
        {
            "name": "files-main",
            "configMap": {"name": "api-main-files", "items": [{"key": plain, "path": plain}]},
        },
        {
            "name": "secret-files-main",
            "secret": {"secretName": "api-main-files", "items": [{"key": ini, "path": ini}]},
        },
    ]
    assert result.consumed_secrets == ["api-main-files"]
    assert [o["kind"] for o in result.objects] == ["ConfigMap", "Secret", "Deployment"]


def test_file_source_cannot_be_read_in_the_cluster() -> None:
    spec = {"containers": {"main": {"image": "a", "files": {"/etc/x": {"source": "./x.conf"}}}}}
    result = render(make_workload(spec), [], {}, {})
    assert result.objects == []
    assert len(result.problems) == 1
    assert result.problems[0].startswith("containers.main.files./etc/x: source './x.conf' is a path")


def test_invalid_binary_content_is_refused_by_the_model() -> None:
    spec = {"containers": {"main": {"image": "a", "files": {"/b": {"binaryContent": "%%%"}}}}}
    with pytest.raises(pydantic.ValidationError, match="is not valid standard base64"):
        make_workload(spec)


# --- 4. volumes -------------------------------------------------------------------------------------------


def test_volume_from_a_resource_volume_manifest() -> None:
    spec = {
        "containers": {
            "main": {
                "image": "app:1",
                "volumes": {
                    "/data": {"source": "${resources.data}", "path": "app", "readOnly": True},
                    "/cache": {"source": "cache"},
                },
            }
        },
        "resources": {"data": {"type": "volume"}, "cache": {"type": "volume"}},
    }
    resources = {
        "data": ResourceOutputs(
            True, volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "orders-data"}}]
        ),
        "cache": ResourceOutputs(True, volumes=[{"name": "cache", "emptyDir": {}}]),
    }
    result = ok(render(make_workload(spec), [], resources, {}))
    assert pod(result)["volumes"] == [
        {"name": "cache", "emptyDir": {}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "orders-data"}},
    ]
    assert container(result)["volumeMounts"] == [
        {"name": "cache", "mountPath": "/cache"},
        {"name": "data", "mountPath": "/data", "subPath": "app", "readOnly": True},
    ]


def test_volume_from_a_score_k8s_style_source_output() -> None:
    spec = {
        "containers": {
            "ca": {"image": "a", "volumes": {"/shared": {"source": "${resources.scratch}"}}},
            "cb": {"image": "b", "volumes": {"/mnt/s": {"source": "${resources.scratch}", "readOnly": True}}},
        },
        "resources": {"scratch": {"type": "volume"}},
    }
    resources = {"scratch": ResourceOutputs(True, values={"source": {"emptyDir": {"medium": "Memory"}}})}
    result = ok(render(make_workload(spec), [], resources, {}))
    assert pod(result)["volumes"] == [{"name": "vol-scratch", "emptyDir": {"medium": "Memory"}}]
    assert container(result, "ca")["volumeMounts"] == [{"name": "vol-scratch", "mountPath": "/shared"}]
    assert container(result, "cb")["volumeMounts"] == [
        {"name": "vol-scratch", "mountPath": "/mnt/s", "readOnly": True}
    ]


@pytest.mark.parametrize(
    ("source", "outputs", "message"),
    [
        (
            "${resources.data}",
            ResourceOutputs(True, volumes=[{"name": "x", "emptyDir": {}}, {"name": "y", "emptyDir": {}}]),
            "emits 2 volumes (x, y)",
        ),
        ("${resources.data}", ResourceOutputs(True), "provides no volume"),
        ("${resources.data}", ResourceOutputs(True, values={"claimSpec": {}}), "needs a StatefulSet"),
        (
            "nope",
            ResourceOutputs(True, volumes=[{"name": "x", "emptyDir": {}}]),
            "no pod volume is named 'nope'",
        ),
        (
            "${resources.data.password}",
            ResourceOutputs(True, secret_name="s", secret_keys=["password"]),
            "secret",
        ),
    ],
)
def test_volume_problems(source: str, outputs: ResourceOutputs, message: str) -> None:
    spec = {
        "containers": {"main": {"image": "a", "volumes": {"/data": {"source": source}}}},
        "resources": {"data": {"type": "volume"}},
    }
    result = render(make_workload(spec), [], {"data": outputs}, {})
    assert result.objects == []
    assert len(result.problems) == 1
    assert result.problems[0].startswith("containers.main.volumes./data: ")
    assert message in result.problems[0]


# --- 5. several containers, service, probes ---------------------------------------------------------------


def test_multiple_containers_in_name_order_with_their_own_settings() -> None:
    spec = {
        "containers": {
            "web": {
                "image": "web:2",
                "command": ["/bin/web"],
                "args": ["--port", "8080", "${not-expanded}"],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            },
            "app": {"image": "app:1", "variables": {"ROLE": "worker"}},
        }
    }
    result = ok(render(make_workload(spec), [], {}, {}))
    assert pod(result)["containers"] == [
        {"name": "app", "image": "app:1", "env": [{"name": "ROLE", "value": "worker"}]},
        {
            "name": "web",
            "image": "web:2",
            "command": ["/bin/web"],
            "args": ["--port", "8080", "${not-expanded}"],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        },
    ]


def test_service_ports_with_defaults() -> None:
    spec = {
        "metadata": {"annotations": {"team": "orders"}},
        "containers": {"main": {"image": "a"}},
        "service": {
            "ports": {
                "www": {"port": 80, "targetPort": 8080},
                "metrics": {"port": 9090},
                "dns": {"port": 53, "protocol": "UDP"},
            }
        },
    }
    result = ok(render(make_workload(spec), [], {}, {}))
    assert get(result, "Service") == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta("api", {"team": "orders"}),
        "spec": {
            "selector": SELECTOR,
            "ports": [
                {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
                {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
                {"name": "www", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            ],
        },
    }
    assert get(result, "Deployment")["metadata"]["annotations"] == {"team": "orders"}
    assert pod_annotations(result)["team"] == "orders"
    assert [o["kind"] for o in result.objects] == ["Deployment", "Service"]


def test_no_service_without_ports() -> None:
    result = ok(render(make_workload({"containers": {"main": {"image": "a"}}}), [], {}, {}))
    assert [o["kind"] for o in result.objects] == ["Deployment"]


def test_probes_map_to_kubernetes_probes() -> None:
    spec = {
        "containers": {
            "main": {
                "image": "a",
                "livenessProbe": {"exec": {"command": ["/bin/check", "--live"]}},
                "readinessProbe": {
                    "httpGet": {
                        "path": "/ready",
                        "port": 8080,
                        "host": "localhost",
                        "scheme": "HTTPS",
                        "httpHeaders": [{"name": "X-Probe", "value": "1"}],
                    }
                },
            }
        }
    }
    result = ok(render(make_workload(spec), [], {}, {}))
    assert container(result)["livenessProbe"] == {"exec": {"command": ["/bin/check", "--live"]}}
    assert container(result)["readinessProbe"] == {
        "httpGet": {
            "path": "/ready",
            "port": 8080,
            "host": "localhost",
            "scheme": "HTTPS",
            "httpHeaders": [{"name": "X-Probe", "value": "1"}],
        }
    }


def test_http_probe_without_port_is_refused_by_the_model() -> None:
    spec = {"containers": {"main": {"image": "a", "livenessProbe": {"httpGet": {"path": "/"}}}}}
    with pytest.raises(pydantic.ValidationError, match=r"livenessProbe\.httpGet\.port\n  Field required"):
        make_workload(spec)


# --- 6. sidecars and volumes from resources ---------------------------------------------------------------

OTEL_SIDECAR = {
    "name": "otel-collector",
    "image": "otel/opentelemetry-collector:0.110.0",
    "args": ["--config=/conf/otel.yaml"],
    "env": [
        {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "otel-credentials", "key": "apiKey"}}}
    ],
    "volumeMounts": [{"name": "otel-config", "mountPath": "/conf"}],
}
OTEL_VOLUME = {"name": "otel-config", "configMap": {"name": "otel-config"}}


def test_sidecar_and_volume_from_a_resource_are_merged_into_the_pod() -> None:
    spec = {
        "containers": {"main": {"image": "app:1", "variables": {"OTEL": "${resources.otel.endpoint}"}}},
        "resources": {"otel": {"type": "workload"}},
    }
    otel = ResourceOutputs(
        True, values={"endpoint": "http://localhost:4317"}, containers=[OTEL_SIDECAR], volumes=[OTEL_VOLUME]
    )
    result = ok(render(make_workload(spec), [], {"otel": otel}, {"otel-credentials": "c1"}))
    assert pod(result) == {
        "containers": [
            {"name": "main", "image": "app:1", "env": [{"name": "OTEL", "value": "http://localhost:4317"}]},
            OTEL_SIDECAR,
        ],
        "volumes": [OTEL_VOLUME],
    }
    # The sidecar reads a Secret: it counts for watching and for the rollout checksum.
    assert result.consumed_secrets == ["otel-credentials"]
    changed = ok(render(make_workload(spec), [], {"otel": otel}, {"otel-credentials": "c2"}))
    assert (
        pod_annotations(changed)[SECRETS_CHECKSUM_ANNOTATION]
        != pod_annotations(result)[SECRETS_CHECKSUM_ANNOTATION]
    )


def test_sidecar_name_clashes_are_problems() -> None:
    spec = {
        "containers": {"main": {"image": "app:1"}},
        "resources": {"ra": {"type": "workload"}, "rb": {"type": "workload"}, "rc": {"type": "workload"}},
    }
    resources = {
        "ra": ResourceOutputs(
            True, containers=[{"name": "main", "image": "x"}, {"name": "side", "image": "s:1"}]
        ),
        "rb": ResourceOutputs(
            True, containers=[{"name": "side", "image": "s:2"}], volumes=[{"name": "v", "emptyDir": {}}]
        ),
        "rc": ResourceOutputs(True, volumes=[{"name": "v", "hostPath": {"path": "/x"}}]),
    }
    result = render(make_workload(spec), [], resources, {})
    assert result.objects == []
    assert sorted(result.problems) == [
        "container name 'side' is emitted by both resource 'ra' and resource 'rb'",
        "pod volume name 'v' is used by both resource 'rb' and resource 'rc'",
        "resource 'ra' emits a container 'main', but the workload has a container of that name",
    ]


def test_identical_manifests_from_two_resources_are_merged_once() -> None:
    spec = {
        "containers": {"main": {"image": "app:1"}},
        "resources": {"ra": {"type": "xx"}, "rb": {"type": "xx"}},
    }
    same = ResourceOutputs(True, containers=[OTEL_SIDECAR], volumes=[OTEL_VOLUME])
    result = ok(render(make_workload(spec), [], {"ra": same, "rb": same}, {}))
    assert [c["name"] for c in pod(result)["containers"]] == ["main", "otel-collector"]
    assert pod(result)["volumes"] == [OTEL_VOLUME]


# --- 7. WorkloadPatches -----------------------------------------------------------------------------------

BASE = {
    "containers": {
        "main": {"image": "app:1", "variables": {"A": "1"}, "resources": {"limits": {"memory": "256Mi"}}},
        "debug": {"image": "busybox"},
    }
}


def test_patches_are_applied_before_rendering() -> None:
    patch = make_patch(
        "otel",
        [
            {
                "op": "add",
                "path": "/spec/containers/main/variables/OTEL_EXPORTER_OTLP_ENDPOINT",
                "value": "http://localhost:4317",
            },
            {"op": "replace", "path": "/spec/containers/main/resources/limits/memory", "value": "512Mi"},
            {"op": "remove", "path": "/spec/containers/debug"},
        ],
    )
    result = ok(render(make_workload(BASE), [patch], {}, {}))
    assert pod(result)["containers"] == [
        {
            "name": "main",
            "image": "app:1",
            "env": [
                {"name": "A", "value": "1"},
                {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://localhost:4317"},
            ],
            "resources": {"limits": {"memory": "512Mi"}},
        }
    ]
    assert result.applied_patches == ["otel"]


def test_patch_order_is_priority_then_name() -> None:
    def set_a(name: str, priority: int) -> WorkloadPatch:
        return make_patch(
            name, [{"op": "replace", "path": "/spec/containers/main/variables/A", "value": name}], priority
        )

    patches = [set_a("zeta", 0), set_a("alpha", 0), set_a("early", -5)]
    for ordering in (patches, patches[::-1]):
        result = ok(render(make_workload(BASE), ordering, {}, {}))
        assert result.applied_patches == ["early", "alpha", "zeta"]
        assert container(result)["env"] == [{"name": "A", "value": "zeta"}]


def test_patch_adding_a_resource_makes_the_workload_wait_for_it() -> None:
    patch = make_patch(
        "add-db",
        [
            {"op": "add", "path": "/spec/resources", "value": {"db": {"type": "postgres"}}},
            {"op": "add", "path": "/spec/containers/main/variables/DB", "value": "${resources.db.host}"},
        ],
    )
    assert required_resources(make_workload(BASE), [patch]) == ["db"]
    waiting = render(make_workload(BASE), [patch], {}, {})
    assert waiting.waiting_for == ["db"]
    assert waiting.objects == []
    result = ok(render(make_workload(BASE), [patch], {"db": db_outputs()}, {}))
    assert {"name": "DB", "value": "db.internal"} in container(result)["env"]


def test_an_invalid_patch_is_reported_and_nothing_is_rendered() -> None:
    good = make_patch("good", [{"op": "add", "path": "/spec/containers/main/variables/B", "value": "2"}])
    bad = make_patch("bad", [{"op": "remove", "path": "/spec/containers/missing"}], priority=5)
    result = render(make_workload(BASE), [bad, good], {}, {})
    assert result.objects == []
    assert list(result.patch_problems) == ["bad"]
    assert "remove /spec/containers/missing" in result.patch_problems["bad"]
    assert result.problems == []
    assert result.applied_patches == ["good"]
    assert not result.complete


def test_patch_paths_escape_slashes_in_file_targets() -> None:
    patch = make_patch(
        "add-file",
        [{"op": "add", "path": "/spec/containers/main/files/~1etc~1app.conf", "value": {"content": "x=1"}}],
    )
    result = ok(render(make_workload(BASE), [patch], {}, {}))
    key = file_key("main", "/etc/app.conf")
    assert get(result, "ConfigMap")["data"] == {key: "x=1"}
    assert container(result)["volumeMounts"] == [
        {"name": "files-main", "mountPath": "/etc/app.conf", "subPath": key}
    ]


# --- 8. waiting and problems ------------------------------------------------------------------------------


def test_missing_or_unready_resources_are_waited_for() -> None:
    spec = {
        "containers": {"main": {"image": "a", "variables": {"H": "${resources.db.host}"}}},
        "resources": {"db": {"type": "postgres"}, "cache": {"type": "redis"}, "dns": {"type": "dns"}},
    }
    result = render(make_workload(spec), [], {"db": ResourceOutputs(False), "dns": ResourceOutputs(True)}, {})
    assert result.waiting_for == ["cache", "db"]
    assert result.objects == []
    assert result.problems == []


def test_typos_are_reported_even_while_waiting() -> None:
    spec = {
        "containers": {"main": {"image": "a", "variables": {"H": "${resources.dbb.host}"}}},
        "resources": {"db": {"type": "postgres"}},
    }
    result = render(make_workload(spec), [], {}, {})
    assert result.waiting_for == ["db"]
    assert result.problems == [
        "containers.main.variables.H: placeholder ${resources.dbb.host} refers to resource 'dbb', "
        "which is not declared in spec.resources (declared: db)"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "${context.app.id}",
            "unknown placeholder ${context.app.id}: placeholders start with metadata. or resources.",
        ),
        ("${resources.db}", "placeholder ${resources.db} needs an output key, e.g. ${resources.db.<key>}"),
        ("${resources.db", "malformed placeholder '${resources.db': missing closing '}'"),
        ("${metadata.nope}", "placeholder ${metadata.nope}: the workload metadata has no such key"),
        (
            "${resources.db.hots}",
            "placeholder ${resources.db.hots}: resource 'db' has no output 'hots' "
            "(outputs: host, name, port, user; secret outputs: password)",
        ),
    ],
)
def test_placeholder_problems_are_actionable(value: str, message: str) -> None:
    spec = {"containers": {"main": {"image": "a", "variables": {"V": value}}}, "resources": DB}
    result = render(make_workload(spec), [], {"db": db_outputs()}, {})
    assert result.objects == []
    assert result.problems == [f"containers.main.variables.V: {message}"]
    assert CANARY not in repr(result)


def test_secret_output_without_a_secret_name_is_a_problem() -> None:
    db = ResourceOutputs(True, secrets={"password": SecretValue("x")})
    spec = {
        "containers": {"main": {"image": "a", "variables": {"P": "${resources.db.password}"}}},
        "resources": DB,
    }
    result = render(make_workload(spec), [], {"db": db}, {})
    assert result.problems == [
        "containers.main.variables.P: resource 'db' has the secret output 'password' but names no "
        "Secret holding it"
    ]


def test_composing_needs_the_secret_value() -> None:
    db = ResourceOutputs(True, secret_name="db-outputs", secret_keys=["password"])
    spec = {
        "containers": {"main": {"image": "a", "variables": {"P": "pw=${resources.db.password}"}}},
        "resources": DB,
    }
    result = render(make_workload(spec), [], {"db": db}, {})
    assert len(result.problems) == 1
    assert "was not provided" in result.problems[0]


def test_binary_secret_cannot_be_composed_with_text() -> None:
    db = ResourceOutputs(True, secret_name="s", secrets={"key": SecretValue(b"\xff\xfe")})
    spec = {
        "containers": {"main": {"image": "a", "variables": {"K": "k=${resources.db.key}"}}},
        "resources": DB,
    }
    result = render(make_workload(spec), [], {"db": db}, {})
    assert "is not UTF-8 text" in result.problems[0]


def test_a_path_used_as_file_and_volume_is_a_problem() -> None:
    spec = {
        "containers": {
            "main": {
                "image": "a",
                "files": {"/x": {"content": "1"}},
                "volumes": {"/x": {"source": "${resources.vol}"}},
            }
        },
        "resources": {"vol": {"type": "volume"}},
    }
    result = render(
        make_workload(spec), [], {"vol": ResourceOutputs(True, volumes=[{"name": "v", "emptyDir": {}}])}, {}
    )
    assert result.problems == ["containers.main.volumes./x: the same path is also a file of this container"]


# --- 9. secrets are never inlined -------------------------------------------------------------------------


def canary_workload() -> Workload:
    return make_workload(
        {
            "metadata": {"annotations": {"note": "secrets by reference"}},
            "containers": {
                "main": {
                    "image": "app:1",
                    "variables": {
                        "DB_PASSWORD": "${resources.db.password}",
                        "DSN": "postgres://${resources.db.user}:${resources.db.password}@${resources.db.host}/db",
                        "HOST": "${resources.db.host}",
                    },
                    "files": {
                        "/etc/app/db.ini": {"content": "password=${resources.db.password}\n"},
                        "/run/secrets/pw": {"content": "${resources.db.password}"},
                        "/etc/app/plain": {"content": "host=${resources.db.host}"},
                    },
                }
            },
            "service": {"ports": {"http": {"port": 80}}},
            "resources": DB,
        }
    )


def test_secret_values_appear_only_base64_encoded_in_owned_secret_data() -> None:
    result = ok(render(canary_workload(), [], {"db": db_outputs()}, {"db-outputs": "h1"}))
    owned = {o["metadata"]["name"] for o in result.objects if o["kind"] == "Secret"}
    assert owned == {"api-env", "api-main-files"}
    found_in: list[str] = []
    for obj in result.objects:
        text = json.dumps(obj)
        assert CANARY not in text, f"{obj['kind']} {obj['metadata']['name']} holds the secret in clear"
        for value in strings({k: v for k, v in obj.items() if not (obj["kind"] == "Secret" and k == "data")}):
            try:
                decoded = base64.b64decode(value, validate=True)
            except ValueError:
                continue
            assert CANARY.encode() not in decoded, (
                f"{obj['kind']} holds the secret base64-encoded outside data"
            )
        if obj["kind"] == "Secret":
            for key, value in obj["data"].items():
                if CANARY.encode() in base64.b64decode(value):
                    found_in.append(f"{obj['metadata']['name']}/{key}")
    assert sorted(found_in) == ["api-env/DSN", f"api-main-files/{file_key('main', '/etc/app/db.ini')}"]
    assert CANARY not in repr(result)


def test_resource_outputs_never_show_secret_values() -> None:
    assert CANARY not in repr(db_outputs())
    assert CANARY not in str(db_outputs())


def test_problems_never_contain_secret_values() -> None:
    spec = canary_workload().spec.model_dump(by_alias=True, exclude_none=True)
    spec["containers"]["main"]["variables"]["BROKEN"] = "${resources.db.nope}"
    result = render(make_workload(spec), [], {"db": db_outputs()}, {})
    assert result.objects == []
    assert result.problems
    assert CANARY not in repr(result)


# --- 10. rollout on secret change -------------------------------------------------------------------------


def checksum(result: RenderResult) -> str:
    return pod_annotations(result)[SECRETS_CHECKSUM_ANNOTATION]


def test_checksum_changes_with_a_consumed_secret_and_only_then() -> None:
    spec = {
        "containers": {
            "main": {
                "image": "a",
                "variables": {"P": "${resources.db.password}", "H": "${resources.db.host}"},
            }
        },
        "resources": DB,
    }
    workload = make_workload(spec)
    base = checksum(ok(render(workload, [], {"db": db_outputs()}, {"db-outputs": "h1"})))
    assert checksum(ok(render(workload, [], {"db": db_outputs()}, {"db-outputs": "h1"}))) == base
    assert (
        checksum(ok(render(workload, [], {"db": db_outputs()}, {"db-outputs": "h1", "unrelated": "x"})))
        == base
    )
    assert checksum(ok(render(workload, [], {"db": db_outputs()}, {"db-outputs": "h2"}))) != base
    # A new value of a non-secret output changes the env, not the secrets checksum.
    moved = ResourceOutputs(
        True, {"host": "db2"}, "db-outputs", {"password": SecretValue(CANARY)}, content_hash="db-hash-1"
    )
    assert checksum(ok(render(workload, [], {"db": moved}, {"db-outputs": "h1"}))) == base


def test_checksum_falls_back_to_the_resource_content_hash() -> None:
    spec = {
        "containers": {"main": {"image": "a", "variables": {"P": "${resources.db.password}"}}},
        "resources": DB,
    }
    first = ok(render(make_workload(spec), [], {"db": db_outputs(outputs_hash="c1")}, {}))
    second = ok(render(make_workload(spec), [], {"db": db_outputs(outputs_hash="c2")}, {}))
    assert checksum(first) != checksum(second)


def test_checksum_follows_composed_secret_content() -> None:
    spec = {
        "containers": {"main": {"image": "a", "variables": {"DSN": "u:${resources.db.password}"}}},
        "resources": DB,
    }
    first = ok(render(make_workload(spec), [], {"db": db_outputs(password="one")}, {}))
    second = ok(render(make_workload(spec), [], {"db": db_outputs(password="two")}, {}))
    assert checksum(first) != checksum(second)


def test_no_checksum_when_rollout_on_secret_change_is_off() -> None:
    spec = {
        "containers": {"main": {"image": "a", "variables": {"P": "${resources.db.password}"}}},
        "resources": DB,
        "rolloutOnSecretChange": False,
    }
    result = ok(render(make_workload(spec), [], {"db": db_outputs()}, {"db-outputs": "h1"}))
    assert SECRETS_CHECKSUM_ANNOTATION not in pod_annotations(result)
    assert result.consumed_secrets == ["db-outputs"]  # still watched


def test_users_cannot_override_the_checksum_annotation() -> None:
    spec = {
        "metadata": {"annotations": {SECRETS_CHECKSUM_ANNOTATION: "pinned"}},
        "containers": {"main": {"image": "a"}},
    }
    result = ok(render(make_workload(spec), [], {}, {}))
    assert checksum(result) != "pinned"
    assert SECRETS_CHECKSUM_ANNOTATION not in get(result, "Deployment")["metadata"].get("annotations", {})


def test_config_checksum_follows_file_content() -> None:
    def rendered(content: str) -> str:
        spec = {"containers": {"main": {"image": "a", "files": {"/c": {"content": content}}}}}
        return pod_annotations(ok(render(make_workload(spec), [], {}, {})))[CONFIG_CHECKSUM_ANNOTATION]

    assert rendered("a") == rendered("a")
    assert rendered("a") != rendered("b")


# --- 11. determinism and object hygiene -------------------------------------------------------------------


def rich_inputs() -> tuple[Workload, list[WorkloadPatch], dict[str, ResourceOutputs]]:
    workload = canary_workload()
    spec = workload.spec.model_dump(by_alias=True, exclude_none=True)
    spec["resources"] = {**DB, "otel": {"type": "workload"}, "data": {"type": "volume"}}
    spec["containers"]["main"]["volumes"] = {"/data": {"source": "${resources.data}"}}
    spec["containers"]["main"]["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    spec["containers"]["worker"] = {"image": "worker:1", "variables": {"Q": "${resources.db.name}"}}
    patches = [
        make_patch("p2", [{"op": "add", "path": "/spec/containers/worker/args", "value": ["--fast"]}], 1),
        make_patch("p1", [{"op": "add", "path": "/spec/containers/main/variables/EXTRA", "value": "1"}], 1),
    ]
    resources = {
        "otel": ResourceOutputs(True, containers=[OTEL_SIDECAR], volumes=[OTEL_VOLUME]),
        "db": db_outputs(),
        "data": ResourceOutputs(
            True, volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "d"}}]
        ),
    }
    return make_workload(spec), patches, resources


def test_rendering_is_deterministic() -> None:
    workload, patches, resources = rich_inputs()
    first = ok(render(workload, patches, resources, {"db-outputs": "h"}))
    again = ok(
        render(
            workload, list(reversed(patches)), dict(reversed(list(resources.items()))), {"db-outputs": "h"}
        )
    )
    assert first == again
    assert json.dumps(first.objects) == json.dumps(again.objects)
    for obj in first.objects:  # keys are sorted at every level
        assert json.dumps(obj) == json.dumps(obj, sort_keys=True)


def test_every_object_is_namespaced_labelled_and_owned_by_the_workload() -> None:
    workload, patches, resources = rich_inputs()
    result = ok(render(workload, patches, resources, {}))
    assert sorted((o["kind"], o["metadata"]["name"]) for o in result.objects) == [
        ("ConfigMap", "api-main-files"),
        ("Deployment", "api"),
        ("Secret", "api-env"),
        ("Secret", "api-main-files"),
        ("Service", "api"),
    ]
    for obj in result.objects:
        assert obj["metadata"]["namespace"] == NS
        assert obj["metadata"]["ownerReferences"] == OWNER
        assert obj["metadata"]["labels"] == LABELS
    assert result.consumed_secrets == ["api-env", "api-main-files", "db-outputs", "otel-credentials"]


def test_rendered_objects_pass_kubernetes_schema_validation() -> None:
    workload, patches, resources = rich_inputs()
    result = ok(render(workload, patches, resources, {}))
    for obj in result.objects:
        validate(obj, latest_version(), strict=True)


def test_long_names_are_shortened_to_valid_kubernetes_names() -> None:
    name = "a" * 60 + "." + "b" * 100
    workload = Workload.model_validate(
        {
            "kind": "Workload",
            "metadata": {"name": name, "namespace": NS, "uid": UID},
            "spec": {
                "containers": {"c" * 63: {"image": "a", "files": {"/f": {"content": "x"}}}},
                "service": {"ports": {"http": {"port": 80}}},
            },
        }
    )
    result = ok(render(workload, [], {}, {}))
    for obj in result.objects:
        validate(obj, latest_version(), strict=True)
        assert len(obj["metadata"]["labels"]["app.kubernetes.io/name"]) <= 63
    service = get(result, "Service")["metadata"]["name"]
    assert len(service) <= 63
    assert service[0].isalpha()
    assert "." not in service
    assert all(len(v["name"]) <= 63 for v in pod(result)["volumes"])
