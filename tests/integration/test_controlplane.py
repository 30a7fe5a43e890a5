"""The local control plane is a real Kubernetes: RBAC, garbage collection, namespaces, SA tokens."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from tests.conftest import Cluster

pytestmark = pytest.mark.integration


def _eventually(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_server_reports_the_built_release(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl_run("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"] == "v1.37.2"
    assert (version["major"], version["minor"]) == ("1", "37")


def test_garbage_collector_deletes_dependents(cluster: Cluster) -> None:
    cluster.kubectl_run("create", "namespace", "gc-check")
    cluster.kubectl_run("-n", "gc-check", "create", "configmap", "owner")
    uid = cluster.kubectl_run(
        "-n", "gc-check", "get", "configmap", "owner", "-o", "jsonpath={.metadata.uid}"
    ).stdout
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "namespace": "gc-check",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}],
        },
    }
    cluster.kubectl_run("apply", "-f", "-", input=json.dumps(dependent))
    cluster.kubectl_run("-n", "gc-check", "delete", "configmap", "owner")

    def dependent_gone() -> bool:
        got = cluster.kubectl_run("-n", "gc-check", "get", "configmap", "dependent", check=False)
        return got.returncode != 0 and "NotFound" in got.stderr

    assert _eventually(dependent_gone), "kube-controller-manager's garbage collector did not run"


def test_namespace_deletion_completes(cluster: Cluster) -> None:
    cluster.kubectl_run("create", "namespace", "ns-check")
    cluster.kubectl_run("-n", "ns-check", "create", "secret", "generic", "s", "--from-literal=a=b")
    cluster.kubectl_run("delete", "namespace", "ns-check", "--wait=false")

    def namespace_gone() -> bool:
        return cluster.kubectl_run("get", "namespace", "ns-check", check=False).returncode != 0

    assert _eventually(namespace_gone, timeout=60), "namespace controller did not finish the deletion"


def test_service_account_tokens_pass_token_review(cluster: Cluster) -> None:
    cluster.kubectl_run("create", "namespace", "sa-check")
    cluster.kubectl_run("-n", "sa-check", "create", "serviceaccount", "reader")
    token = cluster.kubectl_run("-n", "sa-check", "create", "token", "reader").stdout.strip()
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    result = json.loads(
        cluster.kubectl_run("create", "-o", "json", "-f", "-", input=json.dumps(review)).stdout
    )
    assert result["status"]["authenticated"] is True
    assert result["status"]["user"]["username"] == "system:serviceaccount:sa-check:reader"


def test_rbac_is_enforced(cluster: Cluster) -> None:
    cluster.kubectl_run("create", "namespace", "rbac-check")
    cluster.kubectl_run("-n", "rbac-check", "create", "serviceaccount", "nobody")
    allowed = cluster.kubectl_run(
        "auth",
        "can-i",
        "list",
        "secrets",
        "-n",
        "rbac-check",
        "--as=system:serviceaccount:rbac-check:nobody",
        check=False,
    )
    assert allowed.stdout.strip() == "no"
