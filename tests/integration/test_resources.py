"""Resources end to end: real operator process, real apiserver, real OpenBao (the default store), real
drivers (the postgres reference driver as its own process against a real PostgreSQL; scripted SDK drivers
served over real HTTP), every remote call signed with a JWT.

One operator serves the module (restarted once, by SIGKILL, in the crash test). The last test checks that
no canary value seeded here reached a log line, an Event, a status, an annotation or a condition.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import testenv
from strongroom.drivers.sdk import (
    DriverApp,
    DriverFailure,
    DriverResponse,
    InProgress,
    PutRequest,
    in_progress,
)
from strongroom.drivers.sdk.app import ResourceRequest
from strongroom.drivers.signing import generate_private_key, private_key_pem, public_key_pem
from strongroom.reconcile.resource import PENDING_ANNOTATION, derive_guresid
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, ManagedProcess, free_port, tcp_open
from testenv.service import Service
from tests.conftest import Cluster
from tests.integration.helpers import (
    Served,
    apply,
    bao_value,
    condition,
    driver,
    ensure_namespace,
    eventually,
    get,
    k8s_secret,
    resource,
    secret_data,
    seed,
    settled_resource,
)

pytestmark = pytest.mark.integration

CANARIES = {
    name: f"canary-{name}-{uuid.uuid4().hex}" for name in ("echo", "template", "pack", "chain", "reject")
}
DRIVER_SCRIPT = REPO_ROOT / "examples" / "drivers" / "postgres" / "driver.py"
ORG = "org-resources"


def _load_driver_module() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("postgres_driver_example_resources", DRIVER_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pg_example = _load_driver_module()


# --- SDK drivers served over HTTP from a thread (the tests themselves are synchronous) ----------------------


@dataclass
class Script:
    """A PUT handler answering from a list (the last answer repeats); records every call."""

    answers: list[DriverResponse | InProgress | Exception]
    puts: list[PutRequest] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    async def put(self, request: PutRequest) -> DriverResponse | InProgress:
        self.puts.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def delete(self, request: ResourceRequest) -> None:
        self.deletes.append(request.guresid)


# --- the environment --------------------------------------------------------------------------------------


@dataclass
class Env:
    cluster: Cluster
    stores: testenv.Environment
    postgres: Service
    namespace: str
    operator: OperatorProcess
    logs: list[Path]
    operator_key: rsa.RSAPrivateKey
    pg_target: str
    workdir: Path
    served: list[Served] = field(default_factory=list)

    @property
    def bao(self) -> hvac.Client:
        info = self.stores.info("openbao")
        return hvac.Client(url=info["addr"], token=info["root_token"])

    def start_operator(self) -> None:
        log = self.workdir / f"operator-{len(self.logs)}.log"
        self.logs.append(log)
        self.operator = start_operator(self.cluster.kubeconfig, log, OPERATOR_ARGS)

    def serve(self, build: Callable[[str], DriverApp], port: int | None = None) -> Served:
        served = Served(build, port).start()
        self.served.append(served)
        return served

    def sdk_app(
        self, put: Callable[[PutRequest], Awaitable[Any]], delete: Any = None
    ) -> Callable[[str], DriverApp]:
        """An SDK app trusting the operator's key, for the URL it will be served at."""
        return lambda target: DriverApp(
            put=put, delete=delete, public_keys=[self.operator_key.public_key()], audience=target, org_id=ORG
        )


OPERATOR_ARGS = ["--store-read-ttl=0s", "--store-check-interval=2s", "--log-level=debug"]


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = testenv.starter("postgres")(tmp_path_factory.mktemp("postgres"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def env(
    cluster: Cluster, stores: testenv.Environment, postgres: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("resources")
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    namespace = f"res-{uuid.uuid4().hex[:6]}"
    ensure_namespace(cluster, namespace)

    # Two signing keys: the operator's own (strongroom-driver-key, used by Drivers that name none) and one
    # a Driver names explicitly (the postgres reference driver trusts only that one).
    operator_key = generate_private_key(2048)
    pg_key = generate_private_key(2048)
    bao = stores.info("openbao")
    # The default store lives in the test namespace (a namespace's own default store wins over the operator
    # namespace's), so default stores other test modules leave in the operator namespace do not interfere.
    apply(
        cluster,
        k8s_secret(namespace, "res-bao-token", {"token": bao["root_token"]}),
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "SecretStore",
            "metadata": {
                "name": "res-bao",
                "namespace": namespace,
                "labels": {"strongroom.dev/default-store": "true"},
            },
            "spec": {
                "vault": {
                    "url": bao["addr"],
                    "path": "secret",
                    "auth": {"tokenSecretRef": {"name": "res-bao-token", "key": "token"}},
                }
            },
        },
        k8s_secret(
            OPERATOR_NAMESPACE,
            "strongroom-driver-key",
            {"privateKey": private_key_pem(operator_key).decode(), "organisationID": ORG},
        ),
        # The same key in the test namespace: the operator's own key signs only for Drivers in the operator
        # namespace, so the test namespace's Drivers name this copy (see `driver`).
        k8s_secret(
            namespace,
            "strongroom-driver-key",
            {"privateKey": private_key_pem(operator_key).decode(), "organisationID": ORG},
        ),
        k8s_secret(
            namespace,
            "pg-driver-key",
            {"privateKey": private_key_pem(pg_key).decode(), "organisationID": ORG},
        ),
    )

    public = workdir / "pg-operator.pub"
    public.write_bytes(public_key_pem(pg_key))
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
    pg_driver = ManagedProcess(
        "postgres-driver", argv, workdir / "pg-driver.log", env=postgres.env, cwd=REPO_ROOT
    )
    pg_driver.start()
    pg_driver.wait_ready(lambda: tcp_open(port), timeout=30)
    # The in-process slow variant of the reference driver connects with the same admin URL.
    previous_url = os.environ.get("DATABASE_URL")
    os.environ["DATABASE_URL"] = postgres.env["DATABASE_URL"]

    log = workdir / "operator-0.log"
    operator = start_operator(cluster.kubeconfig, log, OPERATOR_ARGS)
    environment = Env(
        cluster,
        stores,
        postgres,
        namespace,
        operator,
        [log],
        operator_key,
        f"http://{LOOPBACK}:{port}/",
        workdir,
    )
    try:
        yield environment
    finally:
        # Deprovision everything while the operator and the drivers still run: Resources left behind would
        # be picked up by the operators of later test modules.
        cluster.kubectl_run("delete", "namespace", namespace, "--wait=true", "--timeout=100s", check=False)
        cluster.kubectl_run(
            "-n",
            OPERATOR_NAMESPACE,
            "delete",
            "secret",
            "strongroom-driver-key",
            "--ignore-not-found",
            check=False,
        )
        environment.operator.stop()
        for served in environment.served:
            served.stop()
        pg_driver.stop()
        if previous_url is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = previous_url


# --- helpers ----------------------------------------------------------------------------------------------


def ready(env: Env, name: str) -> dict[str, Any] | None:
    """The Resource once Ready for its current spec and settled (no driver call pending)."""
    return settled_resource(env.cluster, env.namespace, name)


def reason(env: Env, name: str) -> str | None:
    """Why the Resource is not Ready, once a driver call (Provisioning) is over."""
    cond = condition(get(env.cluster, "resource", env.namespace, name))
    if cond and cond["status"] == "False" and cond["reason"] != "Provisioning":
        return str(cond["reason"])
    return None


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _pg_count(env: Env, query: str, arg: str) -> int:
    async with await psycopg.AsyncConnection.connect(
        env.postgres.env["DATABASE_URL"], autocommit=True
    ) as conn:
        row = await (await conn.execute(query, (arg,))).fetchone()
        assert row is not None
        return int(row[0])


def databases(env: Env, name: str) -> int:
    return int(run(_pg_count(env, "SELECT count(*) FROM pg_database WHERE datname = %s", name)))


async def _login(env: Env, database: str, user: str, password: str) -> str:
    info = env.postgres.info
    async with await psycopg.AsyncConnection.connect(
        host=info["host"], port=info["port"], dbname=database, user=user, password=password
    ) as conn:
        row = await (await conn.execute("SELECT current_user")).fetchone()
        assert row is not None
        return str(row[0])


def delete(env: Env, kind: str, name: str) -> None:
    env.cluster.kubectl_run("-n", env.namespace, "delete", kind, name, "--wait=false")


# --- built-in drivers -------------------------------------------------------------------------------------


def test_echo_end_to_end(env: Env) -> None:
    seed(env, f"{env.namespace}/echo/password", CANARIES["echo"])
    apply(
        env.cluster,
        resource(
            "echo-db",
            env.namespace,
            "humanitec/echo",
            driverInputs={
                "values": {"host": "db.example.com", "port": 5432},
                "secretRefs": {"password": {"store": "res-bao", "ref": f"{env.namespace}/echo/password"}},
            },
        ),
    )
    obj = eventually(lambda: ready(env, "echo-db"), timeout=60, what="echo Resource Ready")
    status = obj["status"]
    assert status["outputs"]["values"] == {"host": "db.example.com", "port": 5432}
    key = f"strongroom/{env.namespace}/echo-db/outputs/password"
    ref = status["outputs"]["secretRefs"]["password"]
    assert (ref["store"], ref["ref"]) == ("res-bao", key)
    assert ref["version"] == "1"
    assert bao_value(env, key) == CANARIES["echo"]
    assert status["secretName"] == "echo-db-outputs"
    assert status["guresid"] == derive_guresid(env.namespace, "postgres", "default", "shared.echo-db")
    assert status["driverType"] == "humanitec/echo"
    assert status["inputsHash"].startswith("hmac-sha256:")
    assert secret_data(env.cluster, env.namespace, "echo-db-outputs") == {"password": CANARIES["echo"]}
    secret = get(env.cluster, "secret", env.namespace, "echo-db-outputs")
    assert secret is not None
    meta = secret["metadata"]
    assert meta["labels"]["strongroom.dev/managed"] == "true"
    assert meta["annotations"]["strongroom.dev/content-hash"]
    assert meta["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    assert "strongroom.dev/finalizer" in obj["metadata"]["finalizers"]
    assert PENDING_ANNOTATION not in (obj["metadata"].get("annotations") or {})
    assert not [c for c in status["conditions"] if c["type"] in ("Reconciling", "Stalled")]

    # Nothing changed: a re-apply of the same spec and a few seconds write nothing.
    apply(env.cluster, get_spec_only(obj))
    time.sleep(4)
    after = get(env.cluster, "resource", env.namespace, "echo-db")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert bao_value(env, key) == CANARIES["echo"]
    versions = env.bao.secrets.kv.v2.read_secret_metadata(path=key)["data"]["versions"]
    assert len(versions) == 1  # the store was written once

    # A rotated secret reaches the store, the Secret and a new ref version when the inputs change.
    seed(env, f"{env.namespace}/echo/password", "rotated-value")
    apply(env.cluster, get_spec_only(obj, values={"host": "db2.example.com", "port": 5432}))
    eventually(
        lambda: (
            (secret_data(env.cluster, env.namespace, "echo-db-outputs") or {}).get("password")
            == "rotated-value"
        ),
        timeout=60,
        what="rotated output",
    )
    obj = eventually(lambda: ready(env, "echo-db"), timeout=60, what="echo Ready again")
    assert obj["status"]["outputs"]["secretRefs"]["password"]["version"] == "2"
    assert obj["status"]["outputs"]["values"]["host"] == "db2.example.com"


def get_spec_only(obj: dict[str, Any], values: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = json.loads(json.dumps(obj["spec"]))
    if values is not None:
        spec["driverInputs"]["values"] = values
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": "Resource",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": spec,
    }


TEMPLATES = {
    "init": "name: {{ .id | trunc 12 }}-cfg\n",
    "manifests": (
        "cfg:\n"
        "  location: namespace\n"
        "  data:\n"
        "    apiVersion: v1\n"
        "    kind: ConfigMap\n"
        "    metadata: {name: {{ .init.name }}}\n"
        "    data: {HOST: {{ .driver.values.host | quote }}}\n"
        "proxy:\n"
        "  location: containers\n"
        "  data: {name: proxy, image: 'envoy:1.30'}\n"
    ),
    "outputs": "configMap: {{ .init.name }}\nhost: {{ .driver.values.host }}\n",
    "cookie": "renders: {{ if .cookie }}{{ add1 .cookie.renders }}{{ else }}1{{ end }}\n",
}


def test_template_end_to_end(env: Env) -> None:
    seed(env, f"{env.namespace}/template/token", CANARIES["template"])
    spec = {
        "driverInputs": {
            "values": {"host": "cache.internal", "templates": TEMPLATES},
            "secrets": {"templates": {"outputs": "token: {{ .driver.secrets.token | quote }}\n"}},
            "secretRefs": {"token": {"store": "res-bao", "ref": f"{env.namespace}/template/token"}},
        }
    }
    apply(env.cluster, resource("cfg", env.namespace, "strongroom/template", type="config", **spec))
    obj = eventually(lambda: ready(env, "cfg"), timeout=60, what="template Resource Ready")
    guresid = obj["status"]["guresid"]
    cm_name = f"{guresid[:12]}-cfg"
    assert obj["status"]["outputs"]["values"] == {"configMap": cm_name, "host": "cache.internal"}
    assert secret_data(env.cluster, env.namespace, "cfg-outputs") == {"token": CANARIES["template"]}
    assert obj["status"]["manifests"] == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": cm_name,
            "namespace": env.namespace,
            "location": "namespace",
        }
    ]
    configmap = get(env.cluster, "configmap", env.namespace, cm_name)
    assert configmap is not None
    assert configmap["data"] == {"HOST": "cache.internal"}
    assert configmap["metadata"]["ownerReferences"][0]["uid"] == obj["metadata"]["uid"]
    raw = env.cluster.kubectl_run(
        "-n", env.namespace, "get", "configmap", cm_name, "-o", "json", "--show-managed-fields"
    ).stdout
    managers = {m["manager"] for m in json.loads(raw)["metadata"]["managedFields"]}
    assert "strongroom" in managers
    manifests = secret_data(env.cluster, env.namespace, "cfg-manifests")
    assert manifests is not None
    assert json.loads(manifests["containers.json"]) == [{"image": "envoy:1.30", "name": "proxy"}]
    assert json.loads(manifests["volumes.json"]) == []
    cookie_ref = obj["status"]["cookieRef"]
    assert cookie_ref["ref"] == f"strongroom/{env.namespace}/cfg/cookie"
    assert json.loads(bao_value(env, cookie_ref["ref"]) or "{}") == {"renders": 1}

    # A changed input re-renders: the cookie round-trips through the store; a manifest no longer emitted
    # is deleted, and the manifests Secret goes when no container/volume is left.
    templates = dict(TEMPLATES, manifests="{}\n")
    spec["driverInputs"]["values"] = {"host": "cache2.internal", "templates": templates}
    apply(env.cluster, resource("cfg", env.namespace, "strongroom/template", type="config", **spec))
    eventually(
        lambda: get(env.cluster, "configmap", env.namespace, cm_name) is None,
        timeout=60,
        what="ConfigMap pruned",
    )
    obj = eventually(lambda: ready(env, "cfg"), timeout=60, what="template Ready again")
    assert "manifests" not in obj["status"]
    assert obj["status"]["outputs"]["values"]["host"] == "cache2.internal"
    assert get(env.cluster, "secret", env.namespace, "cfg-manifests") is None
    assert json.loads(bao_value(env, cookie_ref["ref"]) or "{}") == {"renders": 2}


# The forms of Humanitec's resource packs and published examples: secret outputs from
# `values.templates.secrets`, manifests as an object whose `data` are template strings (`data: |`).
PACK_TEMPLATES = {
    "init": "name: pack-{{ .id | trunc 8 }}\n",
    "manifests": {
        "config.yaml": {
            "location": "namespace",
            "data": (
                "{{- /* the settings, named after the GUResID */ -}}\n"
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .init.name }}\n"
                "data:\n  user: app\n  tag: {{ .driver.values.tag | quote }}\n"
            ),
        },
        "auth.yaml": {
            "location": "namespace",
            "data": (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .init.name }}-auth\n"
                "stringData:\n  token: {{ .driver.secrets.token | quote }}\n"
            ),
        },
        "agent.yaml": {
            "location": "containers",
            "data": "name: agent\nimage: agent:{{ .driver.values.tag }}\n",
        },
        "cache.yaml": {"location": "volumes", "data": "name: cache\nemptyDir: {}\n"},
    },
    "outputs": "name: {{ .init.name }}\n",
    "secrets": "token: {{ .driver.secrets.token | quote }}\nuser: app\n",
}


def test_template_resource_pack_forms(env: Env) -> None:
    seed(env, f"{env.namespace}/pack/token", CANARIES["pack"])
    spec = {
        "driverInputs": {
            "values": {"tag": "1.2", "templates": PACK_TEMPLATES},
            "secretRefs": {"token": {"store": "res-bao", "ref": f"{env.namespace}/pack/token"}},
        }
    }
    apply(env.cluster, resource("pack", env.namespace, "humanitec/template", type="redis", **spec))
    obj = eventually(lambda: ready(env, "pack"), timeout=60, what="resource-pack Resource Ready")
    name = f"pack-{obj['status']['guresid'][:8]}"
    outputs = obj["status"]["outputs"]
    assert outputs["values"] == {"name": name}
    assert sorted(outputs["secretRefs"]) == ["token", "user"]
    assert secret_data(env.cluster, env.namespace, "pack-outputs") == {
        "token": CANARIES["pack"],
        "user": "app",
    }
    assert bao_value(env, outputs["secretRefs"]["token"]["ref"]) == CANARIES["pack"]

    configmap = get(env.cluster, "configmap", env.namespace, name)
    assert configmap is not None
    assert configmap["data"] == {"user": "app", "tag": "1.2"}
    assert secret_data(env.cluster, env.namespace, f"{name}-auth") == {"token": CANARIES["pack"]}
    assert sorted((m["kind"], m["name"]) for m in obj["status"]["manifests"]) == [
        ("ConfigMap", name),
        ("Secret", f"{name}-auth"),
    ]
    manifests = secret_data(env.cluster, env.namespace, "pack-manifests")
    assert manifests is not None
    assert json.loads(manifests["containers.json"]) == [{"image": "agent:1.2", "name": "agent"}]
    assert json.loads(manifests["volumes.json"]) == [{"emptyDir": {}, "name": "cache"}]


def test_workload_update_becomes_a_workload_patch(env: Env) -> None:
    ops = [{"op": "add", "path": "/spec/containers/main/variables/FROM_RESOURCE", "value": "yes"}]
    apply(
        env.cluster,
        resource(
            "api-workload",
            env.namespace,
            "humanitec/echo",
            type="workload",
            id="modules.api",
            driverInputs={"values": {"update": ops}},
        ),
    )
    eventually(lambda: ready(env, "api-workload"), timeout=60, what="workload Resource Ready")
    patch = eventually(
        lambda: get(env.cluster, "workloadpatch", env.namespace, "api-workload"),
        timeout=30,
        what="WorkloadPatch",
    )
    assert patch["spec"]["workloadName"] == "api"
    assert patch["spec"]["patches"] == ops
    assert patch["metadata"]["ownerReferences"][0]["kind"] == "Resource"


# --- remote drivers ---------------------------------------------------------------------------------------


def test_postgres_driver_with_jwt_and_delete(env: Env) -> None:
    apply(
        env.cluster,
        driver("postgres", env.namespace, env.pg_target, privateKeySecretRef={"name": "pg-driver-key"}),
        resource("orders-db", env.namespace, "postgres", driverInputs={"values": {"size": "small"}}),
    )
    obj = eventually(lambda: ready(env, "orders-db"), timeout=90, what="postgres Resource Ready")
    guresid = obj["status"]["guresid"]
    name = pg_example.object_name(guresid)
    assert obj["status"]["outputs"]["values"] == {
        "host": env.postgres.info["host"],
        "port": env.postgres.info["port"],
        "name": name,
    }
    data = secret_data(env.cluster, env.namespace, "orders-db-outputs")
    assert data is not None
    assert data["username"] == name
    assert run(_login(env, name, name, data["password"])) == name
    assert databases(env, name) == 1
    cookie_key = obj["status"]["cookieRef"]["ref"]
    assert bao_value(env, cookie_key)  # the driver's cookie (it holds the password) is in the store
    password_key = obj["status"]["outputs"]["secretRefs"]["password"]["ref"]
    assert bao_value(env, password_key) == data["password"]

    delete(env, "resource", "orders-db")
    eventually(
        lambda: get(env.cluster, "resource", env.namespace, "orders-db") is None,
        timeout=90,
        what="Resource gone",
    )
    assert databases(env, name) == 0
    assert run(_pg_count(env, "SELECT count(*) FROM pg_roles WHERE rolname = %s", name)) == 0
    assert bao_value(env, password_key) is None
    assert bao_value(env, cookie_key) is None


def test_202_twice_then_200_is_polled(env: Env) -> None:
    script = Script(
        [in_progress("creating"), in_progress("creating"), DriverResponse(values={"endpoint": "q.example"})]
    )
    served = env.serve(env.sdk_app(script.put, script.delete))
    apply(
        env.cluster,
        driver("slow-queue", env.namespace, served.target),
        resource("queue", env.namespace, "slow-queue", type="queue"),
    )
    obj = eventually(lambda: ready(env, "queue"), timeout=60, what="polled Resource Ready")
    assert obj["status"]["outputs"]["values"] == {"endpoint": "q.example"}
    assert len(script.puts) == 3
    assert len({json.dumps([p.values, p.secrets, p.resource]) for p in script.puts}) == 1
    assert all(p.claims.get("orgID") == ORG for p in script.puts)


def test_409_is_polled(env: Env) -> None:
    script = Script([InProgress(conflict=True, retry_after=1), DriverResponse(values={"n": 1})])
    served = env.serve(env.sdk_app(script.put))
    apply(
        env.cluster,
        driver("busy", env.namespace, served.target),
        resource("busy-res", env.namespace, "busy", type="queue"),
    )
    obj = eventually(lambda: ready(env, "busy-res"), timeout=60, what="Resource Ready after 409")
    assert obj["status"]["outputs"]["values"] == {"n": 1}
    assert len(script.puts) == 2


def test_driver_down_is_a_condition_and_recovers(env: Env) -> None:
    port = free_port()
    script = Script([DriverResponse(values={"up": True})])
    apply(
        env.cluster,
        driver("flaky", env.namespace, f"http://{LOOPBACK}:{port}/"),
        resource("flaky-res", env.namespace, "flaky", type="queue"),
    )
    assert (
        eventually(lambda: reason(env, "flaky-res"), timeout=60, what="failure condition")
        == "DriverUnavailable"
    )
    cond = condition(get(env.cluster, "resource", env.namespace, "flaky-res"))
    assert cond is not None
    assert "flaky" in cond["message"]
    time.sleep(3)  # a retry or two with backoff
    env.serve(env.sdk_app(script.put), port=port)
    obj = eventually(lambda: ready(env, "flaky-res"), timeout=90, what="recovery")
    assert obj["status"]["outputs"]["values"] == {"up": True}


def test_400_is_not_retried_until_the_spec_changes(env: Env) -> None:
    def reject(request_count: list[int]) -> Callable[[PutRequest], Awaitable[DriverResponse]]:
        async def put(request: PutRequest) -> DriverResponse:
            request_count.append(1)
            if request.values.get("size") == "huge":
                # A careless driver quotes its inputs: the operator must redact them.
                raise DriverFailure(f"size huge refused for {json.dumps(request.secrets)}")
            return DriverResponse(values={"size": request.values.get("size")})

        return put

    calls: list[int] = []
    served = env.serve(env.sdk_app(reject(calls)))
    seed(env, f"{env.namespace}/reject/token", CANARIES["reject"])
    spec = {
        "driverInputs": {
            "values": {"size": "huge"},
            "secretRefs": {"token": {"store": "res-bao", "ref": f"{env.namespace}/reject/token"}},
        }
    }
    apply(
        env.cluster,
        driver("picky", env.namespace, served.target),
        resource("picky-res", env.namespace, "picky", type="queue", **spec),
    )
    assert eventually(lambda: reason(env, "picky-res"), timeout=60, what="rejection") == "DriverRejected"
    obj = get(env.cluster, "resource", env.namespace, "picky-res")
    assert obj is not None
    assert "<redacted>" in condition(obj)["message"]  # type: ignore[index]
    assert CANARIES["reject"] not in json.dumps(obj)
    assert condition(obj, "Stalled")["status"] == "True"  # type: ignore[index]
    seen = len(calls)
    time.sleep(6)
    assert len(calls) == seen  # not retried with backoff
    spec["driverInputs"]["values"] = {"size": "small"}
    apply(env.cluster, resource("picky-res", env.namespace, "picky", type="queue", **spec))
    obj = eventually(lambda: ready(env, "picky-res"), timeout=60, what="accepted after the spec changed")
    assert condition(obj, "Stalled") is None


def test_driver_change_deletes_through_the_old_driver(env: Env) -> None:
    old, new = Script([DriverResponse(values={"by": "old"})]), Script([DriverResponse(values={"by": "new"})])
    old_served, new_served = (
        env.serve(env.sdk_app(old.put, old.delete)),
        env.serve(env.sdk_app(new.put, new.delete)),
    )
    apply(
        env.cluster,
        driver("drv-old", env.namespace, old_served.target),
        driver("drv-new", env.namespace, new_served.target),
        resource("moving", env.namespace, "drv-old", type="queue"),
    )
    obj = eventually(lambda: ready(env, "moving"), timeout=60, what="Ready with the old driver")
    guresid = obj["status"]["guresid"]
    apply(env.cluster, resource("moving", env.namespace, "drv-new", type="queue"))
    eventually(
        lambda: (o := ready(env, "moving")) and o["status"]["outputs"]["values"] == {"by": "new"},
        timeout=60,
        what="Ready with the new driver",
    )
    assert old.deletes == [guresid]
    assert len(new.puts) == 1
    assert new.deletes == []


def test_deleting_the_namespace_deprovisions_through_its_own_driver(env: Env) -> None:
    # The Driver and its key Secret live in the namespace and are deleted together with the Resource; the
    # Resource must still be deleted at the driver, and the namespace must go away.
    script = Script([DriverResponse(values={"ok": True})])
    key = generate_private_key(2048)
    served = env.serve(
        lambda target: DriverApp(
            put=script.put, delete=script.delete, public_keys=[key.public_key()], audience=target
        )
    )
    namespace = f"{env.namespace}-gone"
    ensure_namespace(env.cluster, namespace)
    apply(
        env.cluster,
        k8s_secret(
            namespace, "own-key", {"privateKey": private_key_pem(key).decode(), "organisationID": ORG}
        ),
        driver("local", namespace, served.target, privateKeySecretRef={"name": "own-key"}),
        resource("doomed", namespace, "local", type="queue"),
    )
    obj = eventually(
        lambda: (
            (o := get(env.cluster, "resource", namespace, "doomed"))
            and (condition(o) or {}).get("status") == "True"
            and o
        ),
        timeout=60,
        what="Ready",
    )
    env.cluster.kubectl_run("delete", "namespace", namespace, "--wait=false")
    eventually(
        lambda: env.cluster.kubectl_run("get", "namespace", namespace, check=False).returncode != 0,
        timeout=120,
        what="namespace gone",
    )
    assert script.deletes == [obj["status"]["guresid"]]


# --- dependencies -----------------------------------------------------------------------------------------


def test_dependency_chain_created_in_reverse_order(env: Env) -> None:
    seed(env, f"{env.namespace}/chain/pw", CANARIES["chain"])
    a = resource(
        "chain-a",
        env.namespace,
        "humanitec/echo",
        driverInputs={
            "values": {"host": "a.internal", "port": 5432},
            "secretRefs": {"pw": {"store": "res-bao", "ref": f"{env.namespace}/chain/pw"}},
        },
    )
    b = resource(
        "chain-b",
        env.namespace,
        "humanitec/echo",
        driverInputs={
            "values": {
                "url": "postgres://${resources.chain-a.outputs.host}:${resources.chain-a.outputs.port}"
            },
            "secrets": {"dsn": "user:${resources.chain-a.outputs.pw}@${resources.chain-a.outputs.host}"},
        },
    )
    c = resource(
        "chain-c",
        env.namespace,
        "humanitec/echo",
        driverInputs={
            "values": {"upstream": "${resources.chain-b.outputs.url}"},
            "secrets": {"dsn": "${resources.chain-b.outputs.dsn}"},
        },
    )
    apply(env.cluster, c)
    assert eventually(lambda: reason(env, "chain-c"), timeout=60, what="C waiting") == "WaitingForResources"
    assert "chain-b" in condition(get(env.cluster, "resource", env.namespace, "chain-c"))["message"]  # type: ignore[index]
    apply(env.cluster, b)
    assert eventually(lambda: reason(env, "chain-b"), timeout=60, what="B waiting") == "WaitingForResources"
    apply(env.cluster, a)
    obj = eventually(lambda: ready(env, "chain-c"), timeout=90, what="C Ready")
    assert obj["status"]["outputs"]["values"] == {"upstream": "postgres://a.internal:5432"}
    assert secret_data(env.cluster, env.namespace, "chain-c-outputs") == {
        "dsn": f"user:{CANARIES['chain']}@a.internal"
    }
    assert ready(env, "chain-a")
    assert ready(env, "chain-b")

    # A changed output of A flows down the chain.
    a["spec"]["driverInputs"]["values"]["host"] = "a2.internal"
    apply(env.cluster, a)
    eventually(
        lambda: (
            (o := ready(env, "chain-c"))
            and o["status"]["outputs"]["values"]["upstream"] == "postgres://a2.internal:5432"
        ),
        timeout=90,
        what="new output propagated to C",
    )


def test_cycles_and_misplaced_secret_outputs_are_conditions(env: Env) -> None:
    apply(
        env.cluster,
        resource(
            "cyc-x",
            env.namespace,
            "humanitec/echo",
            driverInputs={"values": {"v": "${resources.cyc-y.outputs.v}"}},
        ),
        resource(
            "cyc-y",
            env.namespace,
            "humanitec/echo",
            driverInputs={"values": {"v": "${resources.cyc-x.outputs.v}"}},
        ),
    )
    assert eventually(lambda: reason(env, "cyc-x"), timeout=60, what="cycle") == "DependencyCycle"
    message = condition(get(env.cluster, "resource", env.namespace, "cyc-x"))["message"]  # type: ignore[index]
    assert "cyc-x -> cyc-y -> cyc-x" in message
    eventually(lambda: ready(env, "chain-a"), timeout=60, what="chain-a Ready")
    apply(
        env.cluster,
        resource(
            "leaky",
            env.namespace,
            "humanitec/echo",
            driverInputs={"values": {"pw": "${resources.chain-a.outputs.pw}"}},
        ),
    )
    assert eventually(lambda: reason(env, "leaky"), timeout=60, what="refused") == "SecretOutputInValues"


# --- crash safety -----------------------------------------------------------------------------------------


def test_sigkill_during_provisioning_leaves_exactly_one_database(env: Env) -> None:
    started = threading.Event()
    puts: list[str] = []

    async def slow_put(request: PutRequest) -> DriverResponse:
        puts.append(request.guresid)
        started.set()
        await asyncio.sleep(6)  # the operator is killed while this PUT is in flight
        response: DriverResponse = await pg_example.put(request)
        return response

    served = env.serve(
        lambda target: DriverApp(
            put=slow_put,
            delete=pg_example.delete,
            public_keys=[env.operator_key.public_key()],
            audience=target,
            org_id=ORG,
        )
    )
    apply(
        env.cluster,
        driver("pg-slow", env.namespace, served.target),
        resource("crash-db", env.namespace, "pg-slow"),
    )
    assert started.wait(60), "the driver was never called"
    obj = get(env.cluster, "resource", env.namespace, "crash-db")
    assert obj is not None
    assert PENDING_ANNOTATION in obj["metadata"]["annotations"]  # persisted before the PUT
    os.kill(env.operator.process.pid, signal.SIGKILL)
    eventually(lambda: not env.operator.process.alive(), timeout=10, what="operator dead")
    env.start_operator()

    obj = eventually(lambda: ready(env, "crash-db"), timeout=120, what="Ready after the restart")
    guresid = obj["status"]["guresid"]
    name = pg_example.object_name(guresid)
    assert len(puts) >= 2  # the interrupted PUT was repeated
    assert set(puts) == {guresid}
    like = "sr_" + guresid.replace("-", "_")[:40] + "%"
    assert run(_pg_count(env, "SELECT count(*) FROM pg_database WHERE datname LIKE %s", like)) == 1
    assert PENDING_ANNOTATION not in (obj["metadata"].get("annotations") or {})
    data = secret_data(env.cluster, env.namespace, "crash-db-outputs")
    assert data is not None
    time.sleep(7)  # let the killed operator's PUT finish too: it must not change the outcome
    assert run(_pg_count(env, "SELECT count(*) FROM pg_database WHERE datname LIKE %s", like)) == 1
    # The stored password works: the last PUT's outputs are what the Secret holds (the cookie the first PUT
    # returned died with the operator; the repeated PUT set a new password and handed it back).
    data = secret_data(env.cluster, env.namespace, "crash-db-outputs")
    assert data is not None
    assert run(_login(env, name, name, data["password"])) == name

    delete(env, "resource", "crash-db")
    eventually(
        lambda: get(env.cluster, "resource", env.namespace, "crash-db") is None, timeout=90, what="deleted"
    )
    assert (
        run(_pg_count(env, "SELECT count(*) FROM pg_database WHERE datname LIKE %s", like)) == 0
    )  # no orphan


# --- no leaks ---------------------------------------------------------------------------------------------


def test_no_canary_value_leaks(env: Env) -> None:
    texts = {f"log {p.name}": p.read_text(errors="replace") for p in env.logs}
    events = env.cluster.kubectl_run("get", "events", "-A", "-o", "json").stdout
    texts["events"] = events
    objects = json.loads(
        env.cluster.kubectl_run(
            "-n", env.namespace, "get", "resources,drivers,workloadpatches,configmaps", "-o", "json"
        ).stdout
    )
    texts["objects"] = json.dumps(objects)
    secrets = json.loads(env.cluster.kubectl_run("-n", env.namespace, "get", "secrets", "-o", "json").stdout)
    texts["secret metadata"] = json.dumps([s["metadata"] for s in secrets["items"]])
    assert "reconciled" in texts[f"log {env.logs[0].name}"]  # the logs are real and at debug level
    for where, text in texts.items():
        for name, canary in CANARIES.items():
            assert canary not in text, f"canary {name} leaked into {where}"
