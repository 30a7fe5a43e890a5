"""Small helpers for integration tests that drive the real control plane with kubectl."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

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
