"""Small helpers for integration tests that drive the real control plane with kubectl."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import hvac
import uvicorn
from hvac.exceptions import InvalidPath

from strongroom.drivers.sdk import DriverApp
from strongroom.reconcile.resource import PENDING_ANNOTATION
from testenv.process import LOOPBACK, free_port
from tests.conftest import Cluster

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.2, what: str = ""
) -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or check}; last value: {last!r}")


def apply(cluster: Cluster, *objects: dict[str, Any]) -> None:
    docs = "\n---\n".join(json.dumps(obj) for obj in objects)
    cluster.kubectl_run(
        "apply", "--server-side", "--field-manager=tests", "--force-conflicts", "-f", "-", input=docs
    )


def get(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    result = cluster.kubectl_run("-n", namespace, "get", kind, name, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    obj: dict[str, Any] = json.loads(result.stdout)
    return obj


def condition(obj: dict[str, Any] | None, type_: str = "Ready") -> dict[str, Any] | None:
    if not obj:
        return None
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == type_), None
    )


def secret_data(cluster: Cluster, namespace: str, name: str) -> dict[str, str] | None:
    secret = get(cluster, "secret", namespace, name)
    if secret is None:
        return None
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def ensure_namespace(cluster: Cluster, name: str) -> None:
    apply(cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


def k8s_secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


class HasBao(Protocol):
    """A test environment with a client of the OpenBao server (root token)."""

    @property
    def bao(self) -> hvac.Client: ...


def bao_value(env: HasBao, path: str) -> str | None:
    """The `value` field of the latest version of a KV v2 entry in mount `secret`; None if it is gone."""
    try:
        data = env.bao.secrets.kv.v2.read_secret_version(path=path, raise_on_deleted_version=True)
    except InvalidPath:
        return None
    value: str = data["data"]["data"]["value"]
    return value


def seed(env: HasBao, path: str, value: str) -> None:
    env.bao.secrets.kv.v2.create_or_update_secret(path=path, secret={"value": value})


def settled_resource(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    """The Resource once Ready for its current spec and settled (no driver call pending), else None."""
    obj = get(cluster, "resource", namespace, name)
    cond = condition(obj)
    if not (obj and cond and cond["status"] == "True"):
        return None
    if obj["status"].get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    if PENDING_ANNOTATION in (obj["metadata"].get("annotations") or {}):
        return None
    return obj


class Served:
    """A driver app served by uvicorn on 127.0.0.1 in a thread of its own (own event loop)."""

    def __init__(self, build: Callable[[str], DriverApp], port: int | None = None) -> None:
        """`build(target)`: the app, whose audience is the URL it is served at."""
        self.port = port or free_port()
        app = build(self.target)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=LOOPBACK, port=self.port, lifespan="off", log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True, name=f"driver-{self.port}")

    @property
    def target(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def start(self) -> Served:
        self.thread.start()
        eventually(lambda: self.server.started, timeout=10, what="driver server started")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


# --- manifests ---------------------------------------------------------------------------------------------


def vault_store(name: str, namespace: str, addr: str, token_secret: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": namespace, **extra.pop("metadata", {})},
        "spec": {
            "vault": {
                "url": addr,
                "path": "secret",
                "auth": {"tokenSecretRef": {"name": token_secret, "key": "token"}},
            },
            **extra,
        },
    }


def mapping(
    name: str, namespace: str, secret_name: str, entries: list[dict[str, Any]], **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretMapping",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"secretName": secret_name, "secretData": entries, **spec},
    }


def entry(
    key: str, store: str, ref: str, version: str | None = None, prop: str | None = None
) -> dict[str, Any]:
    remote: dict[str, Any] = {"key": ref}
    if version:
        remote["version"] = version
    if prop:
        remote["property"] = prop
    return {"secretKey": key, "secretStoreName": store, "remoteRef": remote}


def resource(name: str, namespace: str, driver_type: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "Resource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": spec.pop("type", "postgres"),
            "id": spec.pop("id", f"shared.{name}"),
            "driverType": driver_type,
            **spec,
        },
    }


def driver(name: str, namespace: str, target: str, **spec: Any) -> dict[str, Any]:
    """A Driver signing with the namespace's own `strongroom-driver-key` unless `spec` names another key."""
    if spec.get("sign", True):
        spec.setdefault("privateKeySecretRef", {"name": "strongroom-driver-key"})
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "Driver",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"target": target, **spec},
    }
