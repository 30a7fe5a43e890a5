"""The Helm chart on a real node: the operator image built here, installed the way users install it.

The controller-manager pod must start from the image (user 65532, read-only root filesystem), become
Ready, talk to the API server with its mounted ServiceAccount token (in-cluster configuration, no
kubeconfig), reach OpenBao at the same address the host uses, sync a SecretMapping and provision a
Resource; then keep doing so across `helm upgrade` (also into namespaced-RBAC mode) and leave user
Secrets in place on `helm uninstall`. Tests run in order and share one release.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hvac
import pytest

from testenv.paths import REPO_ROOT
from tests.conftest import Cluster, NodeEnvironment
from tests.integration.helpers import (
    apply,
    condition,
    ensure_namespace,
    eventually,
    get,
    k8s_secret,
    secret_data,
    seed,
    settled_resource,
)

pytestmark = [pytest.mark.integration, pytest.mark.node]

CHART = REPO_ROOT / "charts" / "strongroom"
RELEASE = "sr"
OPERATOR_NAMESPACE = "strongroom-system"
TEAM = "team-node"
DEPLOYMENT = f"{RELEASE}-strongroom-controller-manager"
VALUE = f"node-{uuid.uuid4().hex}"


@dataclass
class Release:
    node: NodeEnvironment

    @property
    def cluster(self) -> Cluster:
        return self.node.cluster

    @property
    def bao(self) -> hvac.Client:
        info = self.node.env.info("openbao")
        return hvac.Client(url=info["addr"], token=info["root_token"])

    def helm(self, *args: str) -> subprocess.CompletedProcess[str]:
        repository, _, tag = self.node.image.rpartition(":")
        return self.cluster.run(
            str(self.cluster.helm),
            *args,
            RELEASE,
            *([str(CHART)] if args[0] != "uninstall" else []),
            "--namespace",
            OPERATOR_NAMESPACE,
            *(
                [
                    f"--set=image.repository={repository}",
                    f"--set=image.tag={tag}",
                    "--set=image.pullPolicy=Never",
                    "--wait",
                    "--timeout=180s",
                ]
                if args[0] != "uninstall"
                else []
            ),
        )

    def pods(self) -> list[dict[str, Any]]:
        out = self.cluster.kubectl_run(
            "get", "pods", "-n", OPERATOR_NAMESPACE, "-l", "app.kubernetes.io/instance=sr", "-o", "json"
        ).stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    def ready_pod(self, not_named: str = "") -> dict[str, Any] | None:
        """The one controller-manager pod, once Ready (and, for a rollout, not the old one)."""
        pods = [p for p in self.pods() if not p["metadata"].get("deletionTimestamp")]
        if len(pods) != 1 or pods[0]["metadata"]["name"] == not_named:
            return None
        return pods[0] if condition(pods[0]) and condition(pods[0])["status"] == "True" else None  # type: ignore[index]

    def logs(self) -> str:
        return self.cluster.kubectl_run("logs", "-n", OPERATOR_NAMESPACE, f"deploy/{DEPLOYMENT}").stdout


@pytest.fixture(scope="module")
def release(node_environment: NodeEnvironment) -> Iterator[Release]:
    rel = Release(node_environment)
    cluster = rel.cluster
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    ensure_namespace(cluster, TEAM)
    # Re-read stores every 2s (the default is minutes), so rotations show within the tests' timeouts.
    # One replica: these tests follow "the" pod through upgrades; the chart's default of two (leader
    # election) is covered by tests/integration/test_leader_election.py and test_helm_chart.py.
    rel.helm("install", "--set=extraArgs={--refresh-interval=2s,--store-read-ttl=0s}", "--set=replicaCount=1")
    yield rel
    rel.cluster.run(str(cluster.helm), "uninstall", RELEASE, "-n", OPERATOR_NAMESPACE, check=False)


def test_pod_runs_the_built_image_as_nonroot_with_a_read_only_root(release: Release) -> None:
    pod = eventually(release.ready_pod, timeout=120, what="controller-manager pod Ready")
    container = pod["spec"]["containers"][0]
    assert container["image"] == release.node.image
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    uid = release.cluster.kubectl_run(
        "exec",
        "-n",
        OPERATOR_NAMESPACE,
        pod["metadata"]["name"],
        "--",
        "python",
        "-c",
        "import os; print(os.getuid(), os.getgid()); open('/probe', 'w')",
        check=False,
    )
    assert uid.stdout.split() == ["65532", "65532"]
    assert "Read-only file system" in uid.stderr


def test_operator_uses_in_cluster_config(release: Release) -> None:
    eventually(release.ready_pod, timeout=120, what="controller-manager pod Ready")
    logs = eventually(
        lambda: (lambda text: text if "started: watching" in text else None)(release.logs()),
        timeout=60,
        what="operator started",
    )
    assert "cluster from in-cluster service account" in logs
    pod = release.ready_pod()
    assert pod is not None
    assert not any(e["name"] == "KUBECONFIG" for e in pod["spec"]["containers"][0].get("env", []))


def _store_and_mapping(release: Release) -> None:
    bao = release.node.env.info("openbao")
    apply(
        release.cluster,
        k8s_secret(OPERATOR_NAMESPACE, "bao-token", {"token": bao["root_token"]}),
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "SecretStore",
            "metadata": {"name": "bao", "namespace": OPERATOR_NAMESPACE},
            "spec": {
                # The address the host shell uses too: pods reach the node's bridge address.
                "vault": {
                    "url": bao["addr"],
                    "path": "secret",
                    "auth": {"tokenSecretRef": {"name": "bao-token", "key": "token"}},
                },
                "access": [{"namespaces": [TEAM], "keyPrefixes": ["apps/"]}],
            },
        },
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "SecretMapping",
            "metadata": {"name": "db", "namespace": TEAM},
            "spec": {
                "secretName": "db",
                "secretData": [
                    {"secretKey": "password", "secretStoreName": "bao", "remoteRef": {"key": "apps/db"}}
                ],
            },
        },
    )


def test_syncs_a_secretmapping_from_openbao(release: Release) -> None:
    seed(release, "apps/db", VALUE)
    _store_and_mapping(release)
    eventually(
        lambda: secret_data(release.cluster, TEAM, "db") == {"password": VALUE},
        timeout=90,
        what="Secret synced by the in-cluster operator",
    )


def test_provisions_a_resource(release: Release) -> None:
    apply(
        release.cluster,
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "Resource",
            "metadata": {"name": "echo-db", "namespace": TEAM},
            "spec": {
                "type": "postgres",
                "id": "shared.echo-db",
                "driverType": "humanitec/echo",
                "driverInputs": {"values": {"host": "db.example.com", "port": 5432}},
            },
        },
    )
    obj = eventually(
        lambda: settled_resource(release.cluster, TEAM, "echo-db"), timeout=90, what="Resource Ready"
    )
    assert obj["status"]["outputs"]["values"] == {"host": "db.example.com", "port": 5432}


def test_upgrade_rolls_the_pod_and_keeps_state(release: Release) -> None:
    old = eventually(release.ready_pod, timeout=60, what="pod Ready")["metadata"]["name"]
    release.helm("upgrade", "--reuse-values", "--set=logLevel=debug")
    new = eventually(lambda: release.ready_pod(not_named=old), timeout=120, what="rolled pod Ready")
    assert "--log-level=debug" in new["spec"]["containers"][0]["args"]
    assert secret_data(release.cluster, TEAM, "db") == {"password": VALUE}
    rotated = f"{VALUE}-2"
    seed(release, "apps/db", rotated)
    eventually(
        lambda: secret_data(release.cluster, TEAM, "db") == {"password": rotated},
        timeout=90,
        what="the new pod keeps syncing",
    )


def test_namespaced_rbac_mode(release: Release) -> None:
    old = eventually(release.ready_pod, timeout=60, what="pod Ready")["metadata"]["name"]
    release.helm("upgrade", "--reuse-values", f"--set=watchNamespaces={{{TEAM}}}")
    eventually(lambda: release.ready_pod(not_named=old), timeout=120, what="namespaced pod Ready")
    roles = release.cluster.kubectl_run("get", "role", "-n", TEAM, "-o", "name").stdout
    assert roles.strip(), "namespaced mode grants a Role in the watched namespace"
    value = f"{VALUE}-3"
    seed(release, "apps/db", value)
    eventually(
        lambda: secret_data(release.cluster, TEAM, "db") == {"password": value},
        timeout=90,
        what="sync with namespaced RBAC",
    )


def test_uninstall_leaves_user_secrets(release: Release) -> None:
    release.helm("uninstall")
    eventually(lambda: not release.pods(), timeout=90, what="operator pod gone")
    assert secret_data(release.cluster, TEAM, "db") == {"password": f"{VALUE}-3"}
    assert get(release.cluster, "secretmapping", TEAM, "db") is not None
