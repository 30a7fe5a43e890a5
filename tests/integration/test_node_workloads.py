"""The example app's workload running on a real node, deployed by `strongroom deploy --mode operator`.

The operator provisions a PostgreSQL database through the reference driver and renders the `web`
Deployment with DB_PASSWORD as a `secretKeyRef`. The web image (testenv.image.web_image) logs in with
what it was given, and its readiness probe passes only while that login works: a Ready pod proves the
rendered references carry the right password to a real process. Its Service answers from the host.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import psycopg
import pytest
from psycopg import sql

from strongroom.drivers.signing import generate_private_key, private_key_pem, public_key_pem
from strongroom.reconcile.workload import SECRETS_CHECKSUM_ANNOTATION
from testenv import image
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, ManagedProcess, free_port, tcp_open
from tests.conftest import NodeEnvironment
from tests.integration.helpers import apply, condition, ensure_namespace, eventually, k8s_secret

pytestmark = [pytest.mark.integration, pytest.mark.node]

EXAMPLE = REPO_ROOT / "examples" / "app"
DRIVER_SCRIPT = REPO_ROOT / "examples" / "drivers" / "postgres" / "driver.py"
STRONGROOM = str(REPO_ROOT / ".venv" / "bin" / "strongroom")
ORG = "org-node"
APP = "shopnode"
ENV = "dev"
NAMESPACE = f"{APP}-{ENV}"
API_KEY = f"node-api-key-{uuid.uuid4().hex}"


@dataclass
class App:
    node: NodeEnvironment
    operator: OperatorProcess
    score: Path
    definitions: Path
    deploy_args: list[str]

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.node.cluster.kubectl_run(*args, check=check)

    def pods(self) -> list[dict[str, Any]]:
        out = self.kubectl("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=web", "-o", "json")
        items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def ready_pods(self) -> list[dict[str, Any]]:
        return [p for p in self.pods() if (c := condition(p)) and c["status"] == "True"]

    def secret(self, name: str) -> dict[str, str]:
        out = self.kubectl("get", "secret", "-n", NAMESPACE, name, "-o", "json").stdout
        return {k: base64.b64decode(v).decode() for k, v in json.loads(out)["data"].items()}

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.node.env.services["postgres"].env["DATABASE_URL"], autocommit=True)


@pytest.fixture(scope="module")
def app(node_environment: NodeEnvironment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    cluster = node_environment.cluster
    workdir = tmp_path_factory.mktemp("node-app")
    bao = node_environment.env.info("openbao")
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    key = generate_private_key(2048)
    apply(
        cluster,
        k8s_secret(OPERATOR_NAMESPACE, "openbao-token", {"token": bao["root_token"]}),
        k8s_secret(
            OPERATOR_NAMESPACE,
            "strongroom-driver-key",
            {"privateKey": private_key_pem(key).decode(), "organisationID": ORG},
        ),
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "SecretStore",
            "metadata": {
                "name": "openbao",
                "namespace": OPERATOR_NAMESPACE,
                "labels": {"strongroom.dev/default-store": "true"},
            },
            "spec": {
                "vault": {
                    "url": bao["addr"],
                    "path": "secret",
                    "auth": {"tokenSecretRef": {"name": "openbao-token", "key": "token"}},
                },
                "access": [{"namespaces": ["*"], "keyPrefixes": ["strongroom-example/"]}],
            },
        },
    )
    hvac.Client(url=bao["addr"], token=bao["root_token"]).secrets.kv.v2.create_or_update_secret(
        path="strongroom-example/api-key", secret={"value": API_KEY}
    )
    # The reference driver on the node's address: the database host it reports is reachable from pods.
    public = workdir / "operator.pub"
    public.write_bytes(public_key_pem(key))
    port = free_port()
    target = f"http://{LOOPBACK}:{port}/"
    argv = [sys.executable, str(DRIVER_SCRIPT), "--host", LOOPBACK, "--port", str(port)]
    argv += ["--public-key", str(public)]
    argv += ["--org-id", ORG, "--audience", target]
    postgres_env = node_environment.env.services["postgres"].env
    driver = ManagedProcess("postgres-driver", argv, workdir / "driver.log", env=postgres_env, cwd=REPO_ROOT)
    driver.start()
    driver.wait_ready(lambda: tcp_open(port), timeout=30)
    definitions = workdir / "definitions"
    shutil.copytree(EXAMPLE / "definitions", definitions)
    text = (definitions / "postgres.yaml").read_text()
    (definitions / "postgres.yaml").write_text(
        text.replace("http://postgres-driver.strongroom-system.svc:8080/", target)
    )
    # The example's Score file with the web image built here.
    score = workdir / "web.yaml"
    score.write_text(
        (EXAMPLE / "score" / "web.yaml")
        .read_text()
        .replace("ghcr.io/example/web:1.0.0", node_environment.web_image)
    )
    operator = start_operator(cluster.kubeconfig, workdir / "operator.log", ["--refresh-interval=2s"])
    args = ["-f", str(score), "-d", str(definitions), "--values", str(EXAMPLE / "values.yaml")]
    args += ["--app", APP, "--env", ENV]
    example = App(node_environment, operator, score, definitions, args)
    try:
        drivers = subprocess.run(
            [STRONGROOM, "render", "--drivers", *args], capture_output=True, text=True, check=True
        ).stdout
        cluster.kubectl_run("apply", "--server-side", "--field-manager=platform", "-f", "-", input=drivers)
        deployed = cluster.run(
            STRONGROOM, "deploy", "--mode", "operator", *args, "--timeout", "3m", check=False
        )
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        yield example
    finally:
        operator.stop()
        driver.stop()


def test_web_pod_is_ready_only_with_a_working_db_password(app: App) -> None:
    (pod,) = eventually(app.ready_pods, timeout=180, what="web pod Ready (it logged in to PostgreSQL)")
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert "secretKeyRef" in env["DB_PASSWORD"]["valueFrom"]
    user = app.secret("postgres-web-db-outputs")["username"]
    password = app.secret("postgres-web-db-outputs")["password"]
    # Break the password behind the pod's back: it must stop being Ready; restore it: Ready again.
    with app.admin() as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), f"x-{uuid.uuid4().hex}")
        )
    try:
        eventually(lambda: not app.ready_pods(), timeout=60, what="web pod not Ready with a wrong password")
    finally:
        with app.admin() as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), password))
    eventually(app.ready_pods, timeout=60, what="web pod Ready again")


def test_service_answers_from_the_host_shell(app: App) -> None:
    eventually(app.ready_pods, timeout=180, what="web pod Ready")
    service = json.loads(app.kubectl("get", "service", "-n", NAMESPACE, "web", "-o", "json").stdout)
    url = f"http://{service['spec']['clusterIP']}:80/"

    def answer() -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body: dict[str, Any] = json.load(resp)
                return body
        except OSError:
            return None

    body = eventually(answer, timeout=60, what="web answering on its ClusterIP")
    assert body["database"]["connected"] is True
    assert body["database"]["user"] == app.secret("postgres-web-db-outputs")["username"]
    assert "log-level: info" in body["config"]
    assert set(body["variables"]) == {
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_USER",
        "DB_PASSWORD",
        "API_KEY",
        "LOG_LEVEL",
    }
    assert API_KEY not in json.dumps(body)


def test_deploy_table_shows_the_workloads_ready_pods(app: App) -> None:
    eventually(app.ready_pods, timeout=180, what="web pod Ready")
    deployed = app.node.cluster.run(
        STRONGROOM, "deploy", "--mode", "operator", *app.deploy_args, "--timeout", "1m", check=False
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    lines = deployed.stdout.splitlines()
    assert lines[0].split()[:4] == ["KIND", "NAME", "READY", "PODS"]
    rows = {tuple(line.split()[:2]): line.split()[2:4] for line in lines[1:]}
    assert rows[("Workload", "web")] == ["True", "1/1"]
    assert rows[("Resource", "postgres-web-db")] == ["True", "-"]


def test_rotating_the_password_through_the_driver_rolls_the_deployment(app: App) -> None:
    (old_pod,) = eventually(app.ready_pods, timeout=180, what="web pod Ready")
    old_password = app.secret("postgres-web-db-outputs")["password"]
    old_checksum = old_pod["metadata"]["annotations"][SECRETS_CHECKSUM_ANNOTATION]
    # The platform rotates: a new `passwordRotation` input makes the driver set a new password.
    app.kubectl(
        "patch", "resource", "-n", NAMESPACE, "postgres-web-db", "--type=merge",
        "-p", json.dumps({"spec": {"driverInputs": {"values": {"passwordRotation": "2026-12-05"}}}}),
    )  # fmt: skip
    eventually(
        lambda: app.secret("postgres-web-db-outputs")["password"] != old_password,
        timeout=90,
        what="the outputs Secret holds the rotated password",
    )

    def rolled() -> dict[str, Any] | None:
        ready = [p for p in app.ready_pods() if p["metadata"]["name"] != old_pod["metadata"]["name"]]
        return ready[0] if ready and len(app.pods()) == 1 else None

    new_pod = eventually(rolled, timeout=180, what="a new web pod Ready with the new password")
    assert new_pod["metadata"]["annotations"][SECRETS_CHECKSUM_ANNOTATION] != old_checksum


def test_a_sidecar_from_a_resource_manifest_runs_next_to_the_workload(app: App) -> None:
    """A Resource's `containers` manifest becomes a second container of the pod, and it runs: the main
    container reaches it on localhost (one network namespace per pod)."""
    web = app.node.web_image
    python = f"{image.WEB_VENV}/bin/python"
    manifests = (
        "helper:\n"
        "  location: containers\n"
        "  data:\n"
        "    name: helper\n"
        f"    image: {web}\n"
        f"    command: [{python}, -m, http.server, '9090', --directory, /app]\n"
        "    readinessProbe: {tcpSocket: {port: 9090}}\n"
    )
    apply(
        app.node.cluster,
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "Resource",
            "metadata": {"name": "sidecar-helper", "namespace": NAMESPACE},
            "spec": {
                "type": "helper",
                "id": "modules.sidecar.externals.helper",
                "driverType": "strongroom/template",
                "driverInputs": {"values": {"templates": {"manifests": manifests}}},
            },
        },
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "Workload",
            "metadata": {"name": "sidecar", "namespace": NAMESPACE},
            "spec": {
                "containers": {
                    "main": {"image": web, "command": [python, "-c", "import time; time.sleep(3600)"]}
                },
                "resources": {"helper": {"type": "helper"}},
            },
        },
    )

    def ready_pod() -> dict[str, Any] | None:
        out = app.kubectl(
            "get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/name=sidecar", "-o", "json"
        )
        pods = [p for p in json.loads(out.stdout)["items"] if (c := condition(p)) and c["status"] == "True"]
        return pods[0] if pods else None

    pod = eventually(ready_pod, timeout=180, what="sidecar pod Ready")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["main", "helper"]
    fetched = app.kubectl(
        "exec", "-n", NAMESPACE, pod["metadata"]["name"], "-c", "main", "--", python, "-c",
        "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9090/server.py').status)",
    )  # fmt: skip
    assert fetched.stdout.strip() == "200"
