"""Tenancy and blast radius of the driver channel, attacked as a tenant against the real operator.

Each test acts through `tests/integration/tenancy.py` (a ServiceAccount with the wildcard strongroom.dev Role
of its own namespace), and the drivers are real HTTP servers: SDK apps for the well-behaved ones, raw ASGI
apps for the hostile ones (a trickling body, a 5 MB answer, a gzip bomb, an error body full of junk, a
driver that answers 202 forever). The operator runs with `--worker-limit 2`, so a Resource that held a
worker while it waits on a driver would starve everyone else at once.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.drivers.sdk import DriverApp, DriverResponse, PutRequest
from strongroom.drivers.signing import generate_private_key, private_key_pem
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from testenv.process import LOOPBACK, free_port
from tests.conftest import Cluster
from tests.integration.helpers import apply, condition, ensure_namespace, eventually, get, k8s_secret
from tests.integration.tenancy import Tenant, make_tenant

ORG = "org-tenancy-drivers"
JUNK = "JUNK-\x1b[31m-<script>alert(1)</script>-"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


# --- servers ----------------------------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None


class Served:
    """An ASGI app served by uvicorn on 127.0.0.1 in a thread of its own; records every request."""

    def __init__(self, build: Callable[[str], Asgi]) -> None:
        self.port = free_port()
        self.requests: list[Seen] = []
        self._app = build(self.target)
        config = uvicorn.Config(
            self._record, host=LOOPBACK, port=self.port, lifespan="off", log_level="error", interface="asgi3"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name=f"driver-{self.port}")

    @property
    def target(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    async def _record(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
            self.requests.append(Seen(scope["method"], scope["path"], headers.get("authorization")))
        await self._app(scope, receive, send)

    def start(self) -> Served:
        self.thread.start()
        eventually(lambda: self.server.started, timeout=10, what="driver server started")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


async def _answer(
    send: Send, status: int, body: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


# While set, DELETE of a `slowdelete` resource answers 202 (working on it); cleared, 204 (done).
SLOW_DELETES = {"on": True}


def hostile(target: str) -> Asgi:
    """One server, a misbehaviour per path prefix. DELETE always succeeds, so namespaces can go away."""
    # Valid JSON answers: without a total deadline and a size cap, the old client read them to the end.
    five_mb = json.dumps({"resource": {"values": {"blob": "x" * (5 * 1024 * 1024)}}}).encode()
    bomb = gzip.compress(json.dumps({"resource": {"values": {"blob": "0" * (200 * 1024 * 1024)}}}).encode())
    junk = (JUNK * 100).encode()[:2048]
    json_type = [(b"content-type", b"application/json")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["path"].split("/")[1]
        if scope["method"] == "DELETE":
            if kind == "slowdelete" and SLOW_DELETES["on"]:
                await _answer(send, 202, b'{"status": "deleting"}', [*json_type, (b"retry-after", b"1")])
            else:
                await _answer(send, 204)
        elif kind == "trickle":
            await send({"type": "http.response.start", "status": 200, "headers": json_type})
            for byte in json.dumps({"resource": {"values": {"slow": "y" * 200}}}).encode():
                await send({"type": "http.response.body", "body": bytes([byte]), "more_body": True})
                await asyncio.sleep(0.5)
            await send({"type": "http.response.body", "body": b""})
        elif kind == "big":
            await _answer(send, 200, five_mb, json_type)
        elif kind == "bomb":
            await _answer(send, 200, bomb, [*json_type, (b"content-encoding", b"gzip")])
        elif kind == "junk":
            await _answer(send, 500, junk, [(b"content-type", b"text/html")])
        elif kind == "busy" and scope["method"] == "PUT":
            await _answer(send, 202, b'{"status": "creating"}', [*json_type, (b"retry-after", b"1")])
        else:  # "harvest": a tenant's own server, glad to collect tokens
            await _answer(send, 200, b"{}", json_type)

    return app


@dataclass
class SdkDriver:
    """An SDK driver that answers every PUT at once."""

    puts: list[PutRequest] = field(default_factory=list)

    async def put(self, request: PutRequest) -> DriverResponse:
        self.puts.append(request)
        return DriverResponse(values={"ok": True})


# --- the environment --------------------------------------------------------------------------------------


@dataclass
class Env:
    cluster: Cluster
    tenant: Tenant
    neighbour: Tenant
    operator: OperatorProcess
    operator_key: rsa.RSAPrivateKey
    hostile: Served
    served: list[Served]

    def serve(self, build: Callable[[str], Asgi]) -> Served:
        served = Served(build).start()
        self.served.append(served)
        return served


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir: Path = tmp_path_factory.mktemp("tenancy-drivers")
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    suffix = uuid.uuid4().hex[:6]
    tenant = make_tenant(cluster, f"tdrv-{suffix}")
    neighbour = make_tenant(cluster, f"tdrv-other-{suffix}")
    operator_key = generate_private_key(2048)
    apply(
        cluster,
        k8s_secret(
            OPERATOR_NAMESPACE,
            "strongroom-driver-key",
            {"privateKey": private_key_pem(operator_key).decode(), "organisationID": ORG},
        ),
    )
    hostile_server = Served(hostile).start()
    args = ["--log-level=debug", "--worker-limit=2", "--reconcile-limit=2"]
    operator = start_operator(cluster.kubeconfig, workdir / "operator.log", args)
    environment = Env(cluster, tenant, neighbour, operator, operator_key, hostile_server, [])
    try:
        yield environment
    finally:
        for ns in (tenant.namespace, neighbour.namespace):
            cluster.kubectl_run("delete", "namespace", ns, "--wait=true", "--timeout=100s", check=False)
        cluster.kubectl_run(
            "-n", OPERATOR_NAMESPACE, "delete", "driver", "--all", "--ignore-not-found", check=False
        )  # fmt: skip
        cluster.kubectl_run(
            "-n", OPERATOR_NAMESPACE, "delete", "secret", "strongroom-driver-key", "--ignore-not-found",
            check=False,
        )  # fmt: skip
        operator.stop()
        hostile_server.stop()
        for served in environment.served:
            served.stop()


def driver(name: str, namespace: str, target: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "Driver",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"target": target, **spec},
    }


def resource(name: str, namespace: str, driver_type: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "Resource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "queue", "id": f"shared.{name}", "driverType": driver_type, **spec},
    }


def reason_of(
    env: Env, namespace: str, name: str, *, reason: str | None = None, ready: bool = False
) -> dict[str, Any] | None:
    """The Ready condition of a Resource for its current spec, once it has `reason` (or is True). Other
    reasons may come first: e.g. DriverNotFound while the operator has not seen the Driver yet."""
    obj = get(env.cluster, "resource", namespace, name)
    cond = condition(obj)
    if obj is None or cond is None:
        return None
    if (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    if ready and cond["status"] != "True":
        return None
    if reason is not None and cond.get("reason") != reason:
        return None
    return cond


def echo_becomes_ready(env: Env, name: str) -> None:
    """Another namespace's Echo Resource becomes Ready: the operator still serves everyone."""
    env.neighbour.apply(
        resource(name, env.neighbour.namespace, "humanitec/echo", driverInputs={"values": {"n": name}})
    )
    cond = eventually(
        lambda: reason_of(env, env.neighbour.namespace, name, ready=True),
        timeout=60,
        what=f"Echo Resource {name} in {env.neighbour.namespace} Ready",
    )
    assert cond["status"] == "True"


def requests_to(server: Served, prefix: str) -> list[Seen]:
    return [r for r in server.requests if r.path.startswith(prefix)]


# --- the operator's signing key and Drivers of the operator namespace ------------------------------------


def test_a_tenant_driver_cannot_borrow_the_operator_key(env: Env) -> None:
    # The tenant's own server, registered as a signing Driver that names no key: the operator's key would
    # sign, and the tenant would collect tokens the platform's drivers trust.
    ns = env.tenant.namespace
    env.tenant.apply(
        driver("harvest", ns, f"{env.hostile.target}harvest/"),
        resource("harvested", ns, "harvest"),
    )
    cond = eventually(
        lambda: reason_of(env, ns, "harvested", reason="SigningKeyNotAllowed"), timeout=60, what="refused"
    )
    assert cond["status"] == "False"
    assert cond["reason"] == "SigningKeyNotAllowed"
    assert "privateKeySecretRef" in cond["message"]
    assert "Nothing was sent" in cond["message"]
    assert requests_to(env.hostile, "/harvest/") == []  # no request, so no platform-signed token


def test_operator_namespace_drivers_are_closed_to_tenants_until_the_admin_allows_them(env: Env) -> None:
    ns = env.tenant.namespace
    name = f"platform-{uuid.uuid4().hex[:6]}"
    target = f"{env.hostile.target}platform-{name}/"
    apply(env.cluster, driver(name, OPERATOR_NAMESPACE, target))  # the admin's, no allowedNamespaces
    env.tenant.apply(resource("uses-platform", ns, name))
    cond = eventually(
        lambda: reason_of(env, ns, "uses-platform", reason="DriverNotAllowed"), timeout=60, what="refused"
    )
    assert cond["status"] == "False"
    assert cond["reason"] == "DriverNotAllowed"
    assert f"Driver {OPERATOR_NAMESPACE}/{name}" in cond["message"]
    assert "spec.allowedNamespaces" in cond["message"]
    assert requests_to(env.hostile, f"/platform-{name}/") == []
    # Another namespace listed does not open it either.
    apply(env.cluster, driver(name, OPERATOR_NAMESPACE, target, allowedNamespaces=[env.neighbour.namespace]))
    # The admin allows the tenant's namespace: the Resource proceeds (a Driver change re-runs it).
    apply(env.cluster, driver(name, OPERATOR_NAMESPACE, target, allowedNamespaces=[ns]))
    eventually(lambda: reason_of(env, ns, "uses-platform", ready=True), timeout=60, what="Ready once allowed")
    assert len(requests_to(env.hostile, f"/platform-{name}/")) >= 1


def test_a_token_is_good_for_one_request_to_one_driver(env: Env) -> None:
    ns = env.tenant.namespace
    a, b = SdkDriver(), SdkDriver()
    keys = [env.operator_key.public_key()]
    served_a = env.serve(lambda target: DriverApp(put=a.put, public_keys=keys, audience=target, org_id=ORG))
    served_b = env.serve(lambda target: DriverApp(put=b.put, public_keys=keys, audience=target, org_id=ORG))
    suffix = uuid.uuid4().hex[:6]
    apply(
        env.cluster,
        driver(f"drv-a-{suffix}", OPERATOR_NAMESPACE, served_a.target, allowedNamespaces=[ns]),
        driver(f"drv-b-{suffix}", OPERATOR_NAMESPACE, served_b.target, allowedNamespaces=[ns]),
    )
    env.tenant.apply(resource("bound", ns, f"drv-a-{suffix}"))
    eventually(lambda: reason_of(env, ns, "bound", ready=True), timeout=60, what="Resource on driver A Ready")
    assert [p.claims["sub"] for p in a.puts] == [f"{ns}/shared.bound"]
    captured = next(r for r in served_a.requests if r.method == "PUT")
    assert captured.authorization is not None
    guresid = captured.path.rsplit("/", 1)[1]
    body = {"type": "queue", "resource": {}, "driver": {"values": {}, "secrets": {}}}
    headers = {"Authorization": captured.authorization}
    # The token driver A received, replayed: at driver B (another audience), and twice at A itself.
    at_b = httpx2.put(f"{served_b.target}{guresid}", json=body, headers=headers)
    assert at_b.status_code == 401
    assert "another audience" in at_b.text
    for _ in range(2):
        again = httpx2.put(f"{served_a.target}{guresid}", json=body, headers=headers)
        assert again.status_code == 401
        assert "replayed" in again.text
    assert b.puts == []
    assert len(a.puts) == 1


# --- hostile drivers: each ends in its condition, and the operator keeps serving everyone ----------------


@pytest.mark.parametrize(
    ("kind", "timeouts", "reason", "says"),
    [
        ("trickle", {"request": "3s"}, "DriverUnavailable", "no complete answer within 3s"),
        ("big", None, "DriverAnswerTooLarge", "larger than 1048576 bytes"),
        ("bomb", None, "DriverAnswerTooLarge", "larger than 1048576 bytes once decompressed"),
        ("junk", None, "DriverUnavailable", "500 Internal Server Error: 2048 bytes of text/html"),
    ],
)
def test_hostile_driver_answers_end_in_a_condition(
    env: Env, kind: str, timeouts: dict[str, str] | None, reason: str, says: str
) -> None:
    ns = env.tenant.namespace
    spec: dict[str, Any] = {"sign": False} | ({"timeouts": timeouts} if timeouts else {})
    env.tenant.apply(
        driver(kind, ns, f"{env.hostile.target}{kind}/", **spec), resource(f"hostile-{kind}", ns, kind)
    )
    echo_becomes_ready(env, f"echo-during-{kind}")
    cond = eventually(
        lambda: reason_of(env, ns, f"hostile-{kind}", reason=reason), timeout=90, what=f"{reason} condition"
    )
    assert cond["status"] == "False"
    assert cond["reason"] == reason
    assert says in cond["message"]
    # The status is no channel: nothing of the body, and only printable text.
    assert "JUNK" not in cond["message"]
    assert "script" not in cond["message"]
    assert cond["message"].isprintable()
    assert len(cond["message"]) < 600
    echo_becomes_ready(env, f"echo-after-{kind}")


def test_resources_waiting_on_a_driver_hold_no_worker(env: Env) -> None:
    # Ten Resources on a driver that answers 202 forever, with two workers: each wait is a timer.
    ns = env.tenant.namespace
    env.tenant.apply(
        driver("busy", ns, f"{env.hostile.target}busy/", sign=False, timeouts={"operation": "1h"}),
        *(resource(f"waits-{i}", ns, "busy") for i in range(10)),
    )
    eventually(
        lambda: len({r.path for r in requests_to(env.hostile, "/busy/")}) == 10,
        timeout=60,
        what="all ten Resources sent their PUT",
    )
    echo_becomes_ready(env, "echo-while-busy")
    # They keep polling (the same request again, on their timers), and none of them failed.
    before = len(requests_to(env.hostile, "/busy/"))
    eventually(lambda: len(requests_to(env.hostile, "/busy/")) > before, timeout=60, what="polls go on")
    for i in range(10):
        cond = condition(get(env.cluster, "resource", ns, f"waits-{i}"))
        assert cond is not None
        assert cond["reason"] == "Provisioning"


def test_deletions_waiting_on_a_driver_hold_no_worker(env: Env) -> None:
    # Five Resources whose driver answers DELETE with 202 for as long as the test wants, with two workers:
    # each deletion's wait is a timer too.
    ns = env.tenant.namespace
    names = [f"slow-delete-{i}" for i in range(5)]
    env.tenant.apply(
        driver(
            "slowdelete", ns, f"{env.hostile.target}slowdelete/", sign=False, timeouts={"operation": "1h"}
        ),
        *(resource(name, ns, "slowdelete") for name in names),
    )
    eventually(
        lambda: all(reason_of(env, ns, name, ready=True) for name in names), timeout=60, what="all Ready"
    )
    try:
        env.tenant.kubectl("-n", ns, "delete", "resource", *names, "--wait=false")

        def deletes() -> list[Seen]:
            return [r for r in requests_to(env.hostile, "/slowdelete/") if r.method == "DELETE"]

        eventually(
            lambda: len({r.path for r in deletes()}) == len(names), timeout=60, what="every DELETE sent"
        )
        echo_becomes_ready(env, "echo-while-deleting")
        before = len(deletes())
        eventually(lambda: len(deletes()) > before, timeout=60, what="DELETE polls go on")
        for name in names:
            assert get(env.cluster, "resource", ns, name) is not None  # still being deleted, not dropped
    finally:
        SLOW_DELETES["on"] = False

    def all_gone() -> bool:
        return all(get(env.cluster, "resource", ns, name) is None for name in names)

    eventually(all_gone, timeout=90, what="the Resources deleted once the driver is done")
