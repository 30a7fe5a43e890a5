"""The example app (examples/app) deployed end to end in the three modes on the real control plane.

A web workload with a PostgreSQL database of its own (the reference postgres driver, a real server) and a
shared secret kept in OpenBao. Every mode must yield equivalent Deployments and Secrets; Git must never
hold a secret value; removing the database from the Score file must remove its Resource and, through the
finalizer, the database itself.

The postgres Driver is the platform's: installed once in the operator namespace from
`strongroom render --drivers`, allowing the namespaces that use it. Operator and gitops mode put no Driver
into the app namespace, and operator mode refuses to apply anything while the Driver is missing there.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest

import testenv
from strongroom.drivers.signing import generate_private_key, private_key_pem, public_key_pem
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, ManagedProcess, free_port, tcp_open
from testenv.service import Service
from tests.conftest import Cluster
from tests.integration.helpers import apply, ensure_namespace, eventually, get, k8s_secret

pytestmark = pytest.mark.integration

EXAMPLE = REPO_ROOT / "examples" / "app"
DRIVER_SCRIPT = REPO_ROOT / "examples" / "drivers" / "postgres" / "driver.py"
STRONGROOM = str(REPO_ROOT / ".venv" / "bin" / "strongroom")
ORG = "org-e2e"
API = "strongroom.dev/v1alpha1"
#: The shared secret in OpenBao. Its value must reach the workload's Secret and never Git or a log.
API_KEY_CANARY = "canary-e2e-api-key-7f3a9c"
API_KEY_REF = "strongroom-example/api-key"


@dataclass
class Env:
    cluster: Cluster
    openbao: Service
    postgres: Service
    git: Service
    operator: OperatorProcess
    definitions: Path
    workdir: Path
    app: str

    def namespace(self, env: str) -> str:
        return f"{self.app}-{env}"

    def deploy(
        self,
        env: str,
        *args: str,
        score: Path | None = None,
        check: bool = True,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            STRONGROOM,
            "deploy",
            "-f",
            str(score or EXAMPLE / "score" / "web.yaml"),
            "-d",
            str(self.definitions),
            "--values",
            str(EXAMPLE / "values.yaml"),
            "--app",
            self.app,
            "--env",
            env,
            *args,
        ]
        result = subprocess.run(
            argv,
            env={**self.cluster.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        # Whatever the orchestrator prints never holds the shared secret.
        assert API_KEY_CANARY not in result.stdout + result.stderr
        if check and result.returncode != 0:
            raise AssertionError(f"deploy failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Service, Service]]:
    workdir = tmp_path_factory.mktemp("e2e-services")
    env = testenv.start(workdir, ["openbao", "postgres", "git"])
    try:
        yield env.services["openbao"], env.services["postgres"], env.services["git"]
    finally:
        env.stop()


def _seed_openbao(bao: Service, path: str, value: str) -> None:
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 (loopback URL of the OpenBao we started)
        f"{bao.info['addr']}/v1/secret/data/{path}",
        data=json.dumps({"data": {"value": value}}).encode(),
        headers={"X-Vault-Token": bao.info["root_token"], "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


@pytest.fixture(scope="module")
def e2e(
    cluster: Cluster, services: tuple[Service, Service, Service], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    openbao, postgres, git = services
    workdir = tmp_path_factory.mktemp("e2e")
    app = f"shop{uuid.uuid4().hex[:4]}"
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    key = generate_private_key(2048)
    apply(
        cluster,
        k8s_secret(OPERATOR_NAMESPACE, "openbao-token", {"token": openbao.info["root_token"]}),
        {
            "apiVersion": API,
            "kind": "SecretStore",
            "metadata": {
                "name": "openbao",
                "namespace": OPERATOR_NAMESPACE,
                "labels": {"strongroom.dev/default-store": "true"},
            },
            "spec": {
                "vault": {
                    "url": openbao.info["addr"],
                    "path": "secret",
                    "auth": {"tokenSecretRef": {"name": "openbao-token", "key": "token"}},
                },
                # Every app/env namespace of these tests reads the shared API key; the production
                # environment also the external database's credentials (postgres-external); nothing else.
                "access": [
                    {"namespaces": ["*"], "keyPrefixes": ["strongroom-example/"]},
                    {"namespaces": [f"{app}-gitprod"], "keyPrefixes": [f"databases/{app}/"]},
                ],
            },
        },
        k8s_secret(
            OPERATOR_NAMESPACE,
            "strongroom-driver-key",
            {"privateKey": private_key_pem(key).decode(), "organisationID": ORG},
        ),
    )
    _seed_openbao(openbao, API_KEY_REF, API_KEY_CANARY)

    # The reference driver as its own process, trusting the operator's key.
    public = workdir / "operator.pub"
    public.write_bytes(public_key_pem(key))
    (workdir / "operator.pem").write_bytes(private_key_pem(key))
    port = free_port()
    argv = [
        sys.executable,
        str(DRIVER_SCRIPT),
        "--port",
        str(port),
        "--public-key",
        str(public),
        "--org-id",
        ORG,
        "--audience",
        f"http://{LOOPBACK}:{port}/",
    ]
    driver = ManagedProcess("postgres-driver", argv, workdir / "driver.log", env=postgres.env, cwd=REPO_ROOT)
    driver.start()
    driver.wait_ready(lambda: tcp_open(port), timeout=30)

    # The example's definitions, with the Driver pointed at the driver running here.
    definitions = workdir / "definitions"
    shutil.copytree(EXAMPLE / "definitions", definitions)
    text = (definitions / "postgres.yaml").read_text()
    text = text.replace("http://postgres-driver.strongroom-system.svc:8080/", f"http://{LOOPBACK}:{port}/")
    (definitions / "postgres.yaml").write_text(text)

    operator = start_operator(cluster.kubeconfig, workdir / "operator.log", ["--log-level=debug"])
    try:
        yield Env(cluster, openbao, postgres, git, operator, definitions, workdir, app)
    finally:
        operator.stop()
        driver.stop()


# --- helpers ----------------------------------------------------------------------------------------------


def deployment(env: Env, namespace: str) -> dict[str, Any]:
    obj = get(env.cluster, "deployment", namespace, "web")
    assert obj is not None, f"no Deployment web in {namespace}"
    return obj


def secret(env: Env, namespace: str, name: str) -> dict[str, str]:
    obj = get(env.cluster, "secret", namespace, name)
    assert obj is not None, f"no Secret {name} in {namespace}"
    return {key: base64.b64decode(value).decode() for key, value in (obj.get("data") or {}).items()}


async def _count(env: Env, query: str, arg: str) -> int:
    async with await psycopg.AsyncConnection.connect(
        env.postgres.env["DATABASE_URL"], autocommit=True
    ) as conn:
        cur = await conn.execute(query, (arg,))
        row = await cur.fetchone()
        return int(row[0]) if row else 0


def databases(env: Env, name: str) -> int:
    return asyncio.run(_count(env, "SELECT count(*) FROM pg_database WHERE datname = %s", name))


# --- the three modes --------------------------------------------------------------------------------------
# Each mode gets its own environment (namespace <app>-<mode>) of the same app; the tests run in file order.

SCORE_WITHOUT_DB = """\
apiVersion: score.dev/v1b1
metadata:
  name: web
containers:
  main:
    image: ghcr.io/example/web:1.0.0
    variables:
      API_KEY: ${resources.env.API_KEY}
      LOG_LEVEL: ${resources.env.LOG_LEVEL}
service:
  ports:
    http:
      port: 80
      targetPort: 8080
resources:
  env:
    type: environment
"""


def install_platform_driver(e2e: Env, env: str) -> None:
    """What the platform admin does once per environment: apply `render --drivers` in the operator
    namespace. `allowedNamespaces` is a set, so each environment's apply under its own field manager adds
    its namespace and keeps the others'."""
    score, values = str(EXAMPLE / "score" / "web.yaml"), str(EXAMPLE / "values.yaml")
    argv = [STRONGROOM, "render", "--drivers", "-f", score, "-d", str(e2e.definitions), "--values", values]
    argv += ["--app", e2e.app, "--env", env]
    rendered = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60).stdout
    e2e.cluster.kubectl_run(
        "apply", "--server-side", f"--field-manager=platform-{e2e.namespace(env)}", "-f", "-", input=rendered
    )


def drivers_in(e2e: Env, namespace: str) -> list[str]:
    listing = e2e.cluster.kubectl_run("-n", namespace, "get", "drivers", "-o", "name").stdout
    return listing.split()


def test_operator_mode_applies_nothing_until_the_platform_driver_allows_the_namespace(e2e: Env) -> None:
    namespace = e2e.namespace("op")
    result = e2e.deploy("op", "--mode", "operator", "--timeout", "1m", check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: Driver 'postgres' is not installed in namespace {OPERATOR_NAMESPACE}: apply it there with "
        f"allowedNamespaces [{namespace}] (strongroom render --drivers prints it)",
        "error: nothing was applied",
    ]
    assert get(e2e.cluster, "namespace", "default", namespace) is None
    # Installed for another environment only: still refused, naming the field to change.
    install_platform_driver(e2e, "git")
    result = e2e.deploy("op", "--mode", "operator", "--timeout", "1m", check=False)
    assert result.returncode == 1
    assert (
        f"error: Driver 'postgres' in namespace {OPERATOR_NAMESPACE} does not allow namespace {namespace} "
        f"(allowedNamespaces: {e2e.namespace('git')}): add {namespace} to its spec.allowedNamespaces "
        "(strongroom render --drivers prints it)"
    ) in result.stderr.splitlines()
    assert get(e2e.cluster, "namespace", "default", namespace) is None
    install_platform_driver(e2e, "op")
    driver = get(e2e.cluster, "driver", OPERATOR_NAMESPACE, "postgres")
    assert driver is not None
    assert sorted(driver["spec"]["allowedNamespaces"]) == sorted([namespace, e2e.namespace("git")])


def git_env(e2e: Env) -> dict[str, str]:
    return {
        "STRONGROOM_GIT_TOKEN": e2e.git.info["password"],
        "STRONGROOM_GIT_USERNAME": e2e.git.info["username"],
    }


def sync_from_git(e2e: Env, env: str) -> None:
    """What Argo CD or Flux would do: check out the repository and apply <app>/<env>/ with pruning.

    kubectl's label-based `--prune` refuses server-side apply, so the stand-in uses an ApplySet (the
    server-side pruning kubectl offers): everything applied through the set before and missing now is
    deleted.
    """
    checkout = e2e.workdir / f"checkout-{env}-{uuid.uuid4().hex[:6]}"
    auth = base64.b64encode(f"{e2e.git.info['username']}:{e2e.git.info['password']}".encode()).decode()
    subprocess.run(
        [
            "git",
            "-c",
            f"http.extraHeader=Authorization: Basic {auth}",
            "clone",
            "-q",
            e2e.git.info["url"],
            str(checkout),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    namespace = e2e.namespace(env)
    ensure_namespace(e2e.cluster, namespace)
    argv = [
        str(e2e.cluster.kubectl),
        "apply",
        "--server-side",
        "--field-manager=gitops-sync",
        "--prune",
        f"--applyset={namespace}-sync",
        "-n",
        namespace,
        "-f",
        str(checkout / e2e.app / env),
    ]
    result = subprocess.run(
        argv, env={**e2e.cluster.env, "KUBECTL_APPLYSET": "true"}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def ready(e2e: Env, kind: str, namespace: str, name: str) -> bool:
    obj = get(e2e.cluster, kind, namespace, name)
    if obj is None:
        return False
    status = obj.get("status") or {}
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return bool(
        cond
        and cond.get("status") == "True"
        and status.get("observedGeneration") == obj["metadata"]["generation"]
    )


def db_name(e2e: Env, env: str) -> str:
    return secret(e2e, e2e.namespace(env), "postgres-web-db-outputs")["username"]


def test_operator_mode(e2e: Env) -> None:
    result = e2e.deploy("op", "--mode", "operator", "--timeout", "3m")
    namespace = e2e.namespace("op")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KIND", "NAME", "READY", "PODS", "REASON", "MESSAGE"]
    readiness = {tuple(line.split()[:3]) for line in lines[1:]}
    assert readiness >= {
        ("SecretMapping", "shared-values", "True"),
        ("Resource", "environment-shared-values", "True"),
        ("Resource", "postgres-web-db", "True"),
        ("Workload", "web", "True"),
    }
    assert "ready" in result.stderr  # the progress display
    web = deployment(e2e, namespace)
    env = {item["name"]: item for item in web["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "environment-shared-values-outputs",
        "key": "API_KEY",
    }
    assert secret(e2e, namespace, "environment-shared-values-outputs")["API_KEY"] == API_KEY_CANARY
    assert secret(e2e, namespace, "shared-values")["API_KEY"] == API_KEY_CANARY
    assert databases(e2e, db_name(e2e, "op")) == 1
    # The database came through the platform's Driver: none is in the app namespace for a tenant to edit.
    assert drivers_in(e2e, namespace) == []
    # A second deploy of the same set changes nothing and is Ready at once.
    again = e2e.deploy("op", "--mode", "operator", "--timeout", "1m")
    assert "pruned" not in again.stderr


def test_gitops_mode(e2e: Env) -> None:
    result = e2e.deploy("git", "--mode", "gitops", "--git-url", e2e.git.info["url"], extra_env=git_env(e2e))
    commit = result.stdout.strip()
    assert len(commit) == 40
    assert "committed" in result.stderr
    sync_from_git(e2e, "git")
    namespace = e2e.namespace("git")
    for kind, name in (
        ("resource", "postgres-web-db"),
        ("resource", "environment-shared-values"),
        ("secretmapping", "shared-values"),
        ("workload", "web"),
    ):
        eventually(partial(ready, e2e, kind, namespace, name), timeout=120, what=f"{kind} {name} Ready")
    assert secret(e2e, namespace, "environment-shared-values-outputs")["API_KEY"] == API_KEY_CANARY
    assert databases(e2e, db_name(e2e, "git")) == 1
    deployment(e2e, namespace)
    assert drivers_in(e2e, namespace) == []
    assert "Driver(s) postgres: they must be installed in namespace" in result.stderr


#: Credentials of the existing database the Humanitec-format definition (postgres-external) refers to.
EXTERNAL_DB_CANARIES = {"username": "canary-e2e-ext-user-51c0", "password": "canary-e2e-ext-pw-9be2"}


def test_gitops_mode_with_a_humanitec_format_definition(e2e: Env) -> None:
    """The Git history check below must cover both definition formats: here a Humanitec `Definition`
    (examples/app/definitions/postgres-external.humanitec.yaml, echo driver, secret_refs to OpenBao)
    provisions the database of an environment of type production, committed to Git in GitOps mode."""
    for key, value in EXTERNAL_DB_CANARIES.items():
        _seed_openbao(e2e.openbao, f"databases/{e2e.app}/{key}", value)
    score = e2e.workdir / "web-external.yaml"
    score.write_text(
        SCORE_WITHOUT_DB.replace(
            "      LOG_LEVEL: ${resources.env.LOG_LEVEL}\n",
            "      LOG_LEVEL: ${resources.env.LOG_LEVEL}\n      DB_PASSWORD: ${resources.db.password}\n",
        )
        + "  db:\n    type: postgres\n    class: external\n"
    )
    e2e.deploy(
        "gitprod",
        "--mode",
        "gitops",
        "--git-url",
        e2e.git.info["url"],
        "--env-type",
        "production",
        score=score,
        extra_env=git_env(e2e),
    )
    sync_from_git(e2e, "gitprod")
    namespace = e2e.namespace("gitprod")
    resource = eventually(
        lambda: next(
            (
                obj
                for obj in json.loads(
                    e2e.cluster.kubectl_run("-n", namespace, "get", "resources", "-o", "json").stdout
                )["items"]
                if obj["spec"]["type"] == "postgres"
            ),
            None,
        ),
        what="the postgres Resource",
    )
    assert resource["metadata"]["annotations"]["strongroom.dev/definition"] == "postgres-external"
    name = resource["metadata"]["name"]
    eventually(partial(ready, e2e, "resource", namespace, name), timeout=120, what=f"resource {name} Ready")
    assert secret(e2e, namespace, f"{name}-outputs")["password"] == EXTERNAL_DB_CANARIES["password"]


def test_git_holds_no_secret_value(e2e: Env) -> None:
    """Every object in the server's repository (all history), byte for byte: no canary, no DB password,
    whichever definition format (strongroom's or Humanitec's) the secret's resource came from."""
    passwords = [
        secret(e2e, e2e.namespace(env), "postgres-web-db-outputs")["password"] for env in ("op", "git")
    ]
    canaries = [API_KEY_CANARY, *passwords, *EXTERNAL_DB_CANARIES.values()]
    dump = subprocess.run(
        ["git", "-C", e2e.git.info["repo"], "cat-file", "--batch-all-objects", "--batch"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    assert dump  # the repository is not empty
    for canary in canaries:
        for form in (canary.encode(), base64.b64encode(canary.encode())):
            assert form not in dump
    # Packed or loose, the files on the server's disk too.
    for path in Path(e2e.git.info["repo"]).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for canary in (API_KEY_CANARY, *EXTERNAL_DB_CANARIES.values()):
                assert canary.encode() not in data


def test_direct_mode(e2e: Env) -> None:
    store_file = e2e.workdir / "openbao-store.yaml"
    store_file.write_text(
        json.dumps(
            {
                "apiVersion": API,
                "kind": "SecretStore",
                "metadata": {"name": "openbao", "namespace": OPERATOR_NAMESPACE},
                "spec": {
                    "vault": {
                        "url": e2e.openbao.info["addr"],
                        "path": "secret",
                        "auth": {"tokenSecretRef": {"name": "openbao-token", "key": "token"}},
                    },
                    "access": [{"namespaces": ["*"], "keyPrefixes": ["strongroom-example/"]}],
                },
            }
        )
    )
    store_dir = e2e.workdir / "local-store"
    args = [
        "--mode",
        "direct",
        "--secret-store",
        str(store_file),
        "--store-dir",
        str(store_dir),
        "--signing-key",
        str(e2e.workdir / "operator.pem"),
        "--org-id",
        ORG,
    ]
    result = e2e.deploy("direct", *args)
    namespace = e2e.namespace("direct")
    assert "Resource  postgres-web-db" in result.stdout or "postgres-web-db" in result.stdout
    # No strongroom CRs: the orchestrator did the operator's work itself.
    listing = e2e.cluster.kubectl_run("-n", namespace, "get", "resources,workloads", "-o", "name").stdout
    assert listing.strip() == ""
    assert secret(e2e, namespace, "environment-shared-values-outputs")["API_KEY"] == API_KEY_CANARY
    assert secret(e2e, namespace, "shared-values")["API_KEY"] == API_KEY_CANARY
    assert databases(e2e, db_name(e2e, "direct")) == 1
    # The embedded store is encrypted at rest: neither the password nor the cookie is readable on disk.
    password = secret(e2e, namespace, "postgres-web-db-outputs")["password"]
    data = (store_dir / "store.enc").read_bytes()
    assert password.encode() not in data
    assert oct((store_dir / "store.enc").stat().st_mode & 0o777) == "0o600"
    assert oct((store_dir / "store.key").stat().st_mode & 0o777) == "0o600"
    assert password not in result.stdout + result.stderr
    # Repeating keeps the same database (the cookie carries the password across calls).
    again = e2e.deploy("direct", *args)
    assert password not in again.stdout + again.stderr
    assert secret(e2e, namespace, "postgres-web-db-outputs")["password"] == password
    e2e.workdir.joinpath("direct-args.json").write_text(json.dumps(args))


def _normal(deploy: dict[str, Any], e2e: Env, env: str) -> dict[str, Any]:
    """What must be equal across modes: the pod template, with environment-specific values neutralised."""
    template = json.loads(json.dumps(deploy["spec"]["template"]))
    # Digests over environment-specific content (each environment has its own database and password).
    template["metadata"].get("annotations", {}).pop("strongroom.dev/secrets-checksum", None)
    template["metadata"].get("annotations", {}).pop("strongroom.dev/config-checksum", None)
    name = db_name(e2e, env)
    text = json.dumps(template, sort_keys=True).replace(name, "<database>")
    return {
        "template": json.loads(text),
        "selector": deploy["spec"]["selector"],
        "replicas": deploy["spec"]["replicas"],
    }


def test_modes_yield_equivalent_deployments_and_secrets(e2e: Env) -> None:
    envs = ("op", "git", "direct")
    deployments = {env: _normal(deployment(e2e, e2e.namespace(env)), e2e, env) for env in envs}
    assert deployments["op"] == deployments["git"] == deployments["direct"]
    for name in (
        "environment-shared-values-outputs",
        "shared-values",
        "postgres-web-db-outputs",
        "web-main-files",
    ):
        kind = "configmap" if name.endswith("-files") else "secret"
        keys = {}
        for env in envs:
            obj = get(e2e.cluster, kind, e2e.namespace(env), name)
            assert obj is not None, f"{kind} {name} missing in {env}"
            keys[env] = sorted(obj.get("data") or {})
        assert keys["op"] == keys["git"] == keys["direct"], name
    for env in envs:
        shared = secret(e2e, e2e.namespace(env), "environment-shared-values-outputs")
        assert shared == {"API_KEY": API_KEY_CANARY}
    files = {}
    for env in envs:
        config = get(e2e.cluster, "configmap", e2e.namespace(env), "web-main-files")
        assert config is not None
        files[env] = json.dumps(config["data"], sort_keys=True).replace(db_name(e2e, env), "<database>")
    assert files["op"] == files["git"] == files["direct"]
    assert API_KEY_CANARY not in e2e.operator.logs()


# --- removing a resource from the Score file ---------------------------------------------------------------


def test_removing_the_database_in_operator_mode(e2e: Env) -> None:
    score = e2e.workdir / "web-without-db.yaml"
    score.write_text(SCORE_WITHOUT_DB)
    name = db_name(e2e, "op")
    result = e2e.deploy("op", "--mode", "operator", "--timeout", "3m", score=score)
    assert "pruned Resource/postgres-web-db" in result.stderr
    assert get(e2e.cluster, "resource", e2e.namespace("op"), "postgres-web-db") is None
    assert databases(e2e, name) == 0  # the finalizer deleted it through the driver before the deploy ended
    assert "DB_HOST" not in json.dumps(deployment(e2e, e2e.namespace("op")))


def test_removing_the_database_in_gitops_mode(e2e: Env) -> None:
    score = e2e.workdir / "web-without-db.yaml"
    score.write_text(SCORE_WITHOUT_DB)
    name = db_name(e2e, "git")
    e2e.deploy(
        "git", "--mode", "gitops", "--git-url", e2e.git.info["url"], score=score, extra_env=git_env(e2e)
    )
    sync_from_git(e2e, "git")
    namespace = e2e.namespace("git")
    eventually(
        lambda: get(e2e.cluster, "resource", namespace, "postgres-web-db") is None,
        timeout=120,
        what="Resource gone",
    )
    eventually(lambda: databases(e2e, name) == 0, timeout=60, what="database dropped")


def test_removing_the_database_in_direct_mode(e2e: Env) -> None:
    score = e2e.workdir / "web-without-db.yaml"
    score.write_text(SCORE_WITHOUT_DB)
    name = db_name(e2e, "direct")
    args = json.loads(e2e.workdir.joinpath("direct-args.json").read_text())
    result = e2e.deploy("direct", *args, score=score)
    assert "deprovisioned" in result.stdout
    assert databases(e2e, name) == 0
    assert get(e2e.cluster, "secret", e2e.namespace("direct"), "postgres-web-db-outputs") is None
