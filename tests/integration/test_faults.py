"""Faults the operator survives, with every server real and the operator a real process.

The module runs its own control plane (etcd, kube-apiserver, controller manager), its own OpenBao servers
and its own operator, because it stops and restarts them: the session's shared control plane and stores
stay untouched for every other module.

  * kube-apiserver stopped for 30 s (same port, same etcd) while two stores are down: the operator stays
    alive (/healthz 200, /readyz 503 naming the API server), its watches resume, a secret rotated in the
    store and objects created or changed while it had no watch are reconciled, and nothing unchanged is
    written again (counted in the API server's audit log).
  * A store down for a minute, two ways at once: a persistent OpenBao (Raft storage, auto-unseal) stopped —
    connections refused — and started again with its data; a dev OpenBao frozen by SIGSTOP — connections
    accepted, nothing answers, every request times out. The Secrets made from them keep their data and
    are not even rewritten; the mappings and stores say StoreUnavailable; both recover by themselves.
  * etcd stopped and started again on its data directory: the same checks.
  * SIGKILL of the operator while a remote driver deletes a Resource: the restarted operator finishes the
    deletion, the finalizer stays until the driver answered 204, and the driver deprovisions once and gets
    no DELETE after it confirmed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import hvac
import pytest

import testenv
from strongroom.drivers.sdk import DriverApp, DriverResponse, InProgress, PutRequest, in_progress
from strongroom.drivers.sdk.app import ResourceRequest
from strongroom.drivers.signing import generate_private_key, private_key_pem
from strongroom.reconcile.resource import FINALIZER
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from testenv.process import LOOPBACK, ManagedProcess
from testenv.service import Service
from testenv.stores import openbao
from tests.conftest import Cluster
from tests.integration.helpers import (
    Served,
    apply,
    condition,
    driver,
    ensure_namespace,
    entry,
    eventually,
    get,
    k8s_secret,
    mapping,
    resource,
    secret_data,
    settled_resource,
    vault_store,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

ORG = "org-faults"
APISERVER_OUTAGE = 30.0
STORE_OUTAGE = 60.0
OPERATOR_ARGS = [
    "--refresh-interval=2s",
    "--store-read-ttl=0s",
    "--store-check-interval=2s",
    "--log-level=debug",
]
WRITE_VERBS = {"create", "update", "patch", "delete"}


@dataclass
class Env:
    cluster: Cluster
    control_plane: Service
    namespace: str
    stable: Service  # dev OpenBao, up all the time; the namespace's default store
    persistent: Service  # OpenBao with Raft storage: stopped and started again
    frozen: Service  # dev OpenBao: SIGSTOPped and resumed
    operator_key: Any
    workdir: Path
    operator: OperatorProcess | None = None
    logs: list[Path] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)

    def process(self, name: str) -> ManagedProcess:
        return next(p for p in self.control_plane.processes if p.name == name)

    @staticmethod
    def bao(service: Service) -> hvac.Client:
        return hvac.Client(url=service.info["addr"], token=service.info["root_token"])

    def put(self, service: Service, path: str, value: str) -> None:
        self.bao(service).secrets.kv.v2.create_or_update_secret(path=path, secret={"value": value})

    def start_operator(self) -> OperatorProcess:
        log = self.workdir / f"operator-{len(self.logs)}.log"
        self.logs.append(log)
        self.operator = start_operator(self.cluster.kubeconfig, log, OPERATOR_ARGS)
        return self.operator

    @property
    def audit_log(self) -> Path:
        return Path(self.cluster.info["audit_log"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("faults")
    starters: dict[str, Callable[[Path], Service]] = {
        "kubernetes": testenv.starter("kubernetes"),
        "bao-stable": openbao.start,
        "bao-frozen": openbao.start,
        "bao-persistent": openbao.start_persistent,
    }
    with ThreadPoolExecutor(len(starters)) as pool:
        futures = {name: pool.submit(start, workdir / name) for name, start in starters.items()}
    services = {name: future.result() for name, future in futures.items() if not future.exception()}
    if len(services) < len(starters):
        for service in services.values():
            service.stop()
        failed = {name: f.exception() for name, f in futures.items() if f.exception()}
        raise RuntimeError("; ".join(f"{name}: {type(exc).__name__}: {exc}" for name, exc in failed.items()))
    stable, frozen, persistent = services["bao-stable"], services["bao-frozen"], services["bao-persistent"]
    cluster = Cluster.from_info(services["kubernetes"].info)
    environment = Env(
        cluster,
        services["kubernetes"],
        f"faults-{uuid.uuid4().hex[:6]}",
        stable,
        persistent,
        frozen,
        generate_private_key(2048),
        workdir,
    )
    try:
        cluster.install_crds()
        ensure_namespace(cluster, OPERATOR_NAMESPACE)
        ensure_namespace(cluster, environment.namespace)
        ns = environment.namespace
        stores = {"stable": stable, "persistent": persistent, "frozen": frozen}
        apply(
            cluster,
            *[k8s_secret(ns, f"{name}-token", {"token": s.info["root_token"]}) for name, s in stores.items()],
            *[
                vault_store(
                    name,
                    ns,
                    s.info["addr"],
                    f"{name}-token",
                    **(
                        {"metadata": {"labels": {"strongroom.dev/default-store": "true"}}}
                        if s is stable
                        else {}
                    ),
                )
                for name, s in stores.items()
            ],
            k8s_secret(
                ns,
                "strongroom-driver-key",
                {"privateKey": private_key_pem(environment.operator_key).decode(), "organisationID": ORG},
            ),
        )
        environment.start_operator()
        yield environment
    finally:
        if environment.operator is not None:
            environment.operator.stop()
        for served in environment.served:
            served.stop()
        for service in services.values():
            service.stop()


# --- observations -----------------------------------------------------------------------------------------


def reason(env: Env, kind: str, name: str) -> str | None:
    cond = condition(get(env.cluster, kind, env.namespace, name))
    return str(cond["reason"]) if cond and cond["status"] == "False" else None


def ready(env: Env, kind: str, name: str) -> dict[str, Any] | None:
    obj = get(env.cluster, kind, env.namespace, name)
    cond = condition(obj)
    return obj if cond and cond["status"] == "True" else None


def holds(env: Env, name: str, data: dict[str, str]) -> bool:
    """The Secret `name` holds exactly `data`."""
    return secret_data(env.cluster, env.namespace, name) == data


def resource_version(env: Env, kind: str, name: str) -> str:
    obj = get(env.cluster, kind, env.namespace, name)
    assert obj is not None, f"{kind} {name} is gone"
    return str(obj["metadata"]["resourceVersion"])


def audit_offset(env: Env) -> int:
    return env.audit_log.stat().st_size


def operator_writes(env: Env, since: int) -> list[tuple[str, str, str]]:
    """(verb, resource[/subresource], name) of every successful write by the operator in the test
    namespace, from the audit log bytes after `since`."""
    writes = []
    with env.audit_log.open("rb") as log:
        log.seek(since)
        for raw in log:
            event = json.loads(raw)
            ref = event.get("objectRef") or {}
            code = int((event.get("responseStatus") or {}).get("code", 0))
            if (
                str(event.get("userAgent", "")).startswith("strongroom-operator/")
                and event["verb"] in WRITE_VERBS
                and ref.get("namespace") == env.namespace
                and 200 <= code < 300
            ):
                kind = ref.get("resource", "") + ("/" + ref["subresource"] if ref.get("subresource") else "")
                writes.append((event["verb"], kind, str(ref.get("name"))))
    return writes


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


# --- outages of the API server and of two stores, overlapping ---------------------------------------------


def test_apiserver_down_30s_while_two_stores_are_down_a_minute(env: Env) -> None:
    ns, stable = env.namespace, env.stable
    values = {
        "steady": "steady-1",
        "rotated": "rotated-1",
        "changed-1": "changed-1",
        "changed-2": "changed-2",
        "new": "new-1",
        "deleted": "deleted-1",
        "res-password": "res-1",
    }
    for key, value in values.items():
        env.put(stable, key, value)
    env.put(env.persistent, "on-persistent", "kept-persistent")
    env.put(env.frozen, "on-frozen", "kept-frozen")
    apply(
        env.cluster,
        mapping("steady", ns, "steady", [entry("v", "stable", "steady")]),
        mapping("rotated", ns, "rotated", [entry("v", "stable", "rotated")]),
        mapping("changed", ns, "changed", [entry("v", "stable", "changed-1")]),
        mapping("deleted", ns, "deleted", [entry("v", "stable", "deleted")]),
        mapping("on-persistent", ns, "on-persistent", [entry("v", "persistent", "on-persistent")]),
        mapping("on-frozen", ns, "on-frozen", [entry("v", "frozen", "on-frozen")]),
        resource(
            "steady-res",
            ns,
            "humanitec/echo",
            type="queue",
            driverInputs={
                "values": {"host": "q.example"},
                "secretRefs": {"password": {"store": "stable", "ref": "res-password"}},
            },
        ),
    )
    expected = {
        "steady": {"v": "steady-1"},
        "rotated": {"v": "rotated-1"},
        "changed": {"v": "changed-1"},
        "deleted": {"v": "deleted-1"},
        "on-persistent": {"v": "kept-persistent"},
        "on-frozen": {"v": "kept-frozen"},
    }
    for name, data in expected.items():
        eventually(partial(holds, env, name, data), timeout=60, what=f"{name} synced")
        eventually(partial(ready, env, "secretmapping", name), timeout=30, what=f"{name} Ready")
    eventually(lambda: settled_resource(env.cluster, ns, "steady-res"), timeout=60, what="steady-res Ready")
    eventually(lambda: secret_data(env.cluster, ns, "steady-res-outputs"), what="outputs Secret")
    time.sleep(3)  # one refresh more: whatever the first sync left to write is written now
    unchanged = [
        ("secret", "steady"),
        ("secretmapping", "steady"),
        ("secret", "on-persistent"),
        ("secret", "on-frozen"),
        ("resource", "steady-res"),
        ("secret", "steady-res-outputs"),
    ]
    versions = {obj: resource_version(env, *obj) for obj in unchanged}
    since = audit_offset(env)
    operator = env.operator
    assert operator is not None

    # The stores go down: one refuses connections, one accepts and never answers.
    store_down_at = time.monotonic()
    bao = env.persistent.processes[0]
    bao.stop()
    env.frozen.processes[0].pause()
    try:
        for name in ("on-persistent", "on-frozen"):
            assert (
                eventually(partial(reason, env, "secretmapping", name), timeout=30, what=f"{name} outage")
                == "StoreUnavailable"
            )
        for name in ("persistent", "frozen"):
            assert (
                eventually(partial(reason, env, "secretstore", name), timeout=30, what=f"store {name} outage")
                == "StoreUnavailable"
            )
        message = condition(get(env.cluster, "secretmapping", ns, "on-frozen"))["message"]  # type: ignore[index]
        assert "frozen" in message, message
        assert secret_data(env.cluster, ns, "on-persistent") == {"v": "kept-persistent"}
        assert secret_data(env.cluster, ns, "on-frozen") == {"v": "kept-frozen"}

        # The API server goes down too, for 30 s; meanwhile a secret changes in the store.
        apiserver = env.process("kube-apiserver")
        apiserver.stop(timeout=2)  # SIGTERM; it would hold its watch connections open for seconds more
        env.put(stable, "rotated", "rotated-2")
        deadline = time.monotonic() + APISERVER_OUTAGE
        checked = False
        while time.monotonic() < deadline:
            if not checked and time.monotonic() > deadline - APISERVER_OUTAGE + 10:
                # Alive (the kubelet must not restart it) but not ready (it cannot do its job).
                assert operator.process.alive(), operator.logs()[-4000:]
                assert http_status(operator.health_port, "/healthz") == 200
                assert http_status(operator.health_port, "/readyz") == 503
                checked = True
            time.sleep(0.5)
        assert checked
        assert operator.process.alive(), operator.logs()[-4000:]

        # Changes made while the operator has no watch: frozen for the few seconds the API server takes to
        # come back, so that its watches resume only after the changes, however fast it reconnects.
        operator.process.pause()
        try:
            apiserver.restart()
            apply(
                env.cluster,
                mapping("changed", ns, "changed", [entry("v", "stable", "changed-2")]),
                mapping("new", ns, "new", [entry("v", "stable", "new")]),
            )
            env.cluster.kubectl_run("-n", ns, "delete", "secretmapping", "deleted", "--wait=false")
        finally:
            operator.process.resume()
        for name, value in {"rotated": "rotated-2", "changed": "changed-2", "new": "new-1"}.items():
            eventually(
                partial(holds, env, name, {"v": value}),
                timeout=60,
                what=f"{name} reconciled after the API server came back",
            )
        eventually(
            lambda: http_status(operator.health_port, "/readyz") == 200, timeout=30, what="ready again"
        )
        # The deleted mapping's Secret goes with it (garbage collection) and is not made again.
        eventually(
            lambda: get(env.cluster, "secret", ns, "deleted") is None, timeout=60, what="Secret collected"
        )
        # Still down: still said so, and the Secrets still hold what they held.
        assert reason(env, "secretmapping", "on-persistent") == "StoreUnavailable"
        assert reason(env, "secretmapping", "on-frozen") == "StoreUnavailable"
        assert secret_data(env.cluster, ns, "on-persistent") == {"v": "kept-persistent"}
        assert secret_data(env.cluster, ns, "on-frozen") == {"v": "kept-frozen"}

        time.sleep(max(0.0, store_down_at + STORE_OUTAGE - time.monotonic()))
    finally:
        env.frozen.processes[0].resume()
        if not bao.alive():
            bao.restart()

    # Back by themselves: no one touched the operator or the objects.
    for kind, name in (
        ("secretstore", "persistent"),
        ("secretstore", "frozen"),
        ("secretmapping", "on-persistent"),
        ("secretmapping", "on-frozen"),
    ):
        eventually(partial(ready, env, kind, name), timeout=60, what=f"{kind} {name} Ready again")
    time.sleep(5)  # a few refreshes after recovery

    for obj, version in versions.items():
        assert resource_version(env, *obj) == version, f"{obj} was rewritten"
    writes = operator_writes(env, since)
    written = {(kind, name) for _, kind, name in writes}
    for kind, name in unchanged:
        plural = {"secret": "secrets", "secretmapping": "secretmappings", "resource": "resources"}[kind]
        assert not {(k, n) for k, n in written if k.split("/")[0] == plural and n == name}, (
            f"{kind} {name} written: {writes}"
        )
    # The Secrets that did change were written exactly once each, in the end state.
    secret_writes = [(verb, name) for verb, kind, name in writes if kind == "secrets"]
    assert sorted(name for _, name in secret_writes) == ["changed", "new", "rotated"], secret_writes
    assert secret_data(env.cluster, ns, "rotated") == {"v": "rotated-2"}
    assert get(env.cluster, "secret", ns, "deleted") is None
    # The watch could not resume after the restart (410): the operator listed again and learnt of the
    # deletion from the list alone (operator/relist.py).
    assert f"SecretMapping {ns}/deleted was deleted while the watch was down" in operator.logs()


# --- etcd -------------------------------------------------------------------------------------------------


def test_etcd_restarted(env: Env) -> None:
    ns, stable = env.namespace, env.stable
    env.put(stable, "etcd-steady", "etcd-steady-1")
    env.put(stable, "etcd-rotated", "etcd-rotated-1")
    env.put(stable, "etcd-new", "etcd-new-1")
    apply(
        env.cluster,
        mapping("etcd-steady", ns, "etcd-steady", [entry("v", "stable", "etcd-steady")]),
        mapping("etcd-rotated", ns, "etcd-rotated", [entry("v", "stable", "etcd-rotated")]),
    )
    for name in ("etcd-steady", "etcd-rotated"):
        eventually(partial(ready, env, "secretmapping", name), timeout=60, what=f"{name} Ready")
    time.sleep(3)
    unchanged = [("secret", "etcd-steady"), ("secretmapping", "etcd-steady")]
    versions = {obj: resource_version(env, *obj) for obj in unchanged}
    since = audit_offset(env)

    etcd = env.process("etcd")
    etcd.stop()
    env.put(stable, "etcd-rotated", "etcd-rotated-2")
    time.sleep(10)
    assert env.operator is not None
    assert env.operator.process.alive(), env.operator.logs()[-4000:]
    etcd.restart()
    apply(env.cluster, mapping("etcd-new", ns, "etcd-new", [entry("v", "stable", "etcd-new")]))
    for name, value in {"etcd-rotated": "etcd-rotated-2", "etcd-new": "etcd-new-1"}.items():
        eventually(
            partial(holds, env, name, {"v": value}),
            timeout=60,
            what=f"{name} reconciled after etcd came back",
        )
    time.sleep(5)
    for obj, version in versions.items():
        assert resource_version(env, *obj) == version, f"{obj} was rewritten"
    secret_writes = sorted(name for _, kind, name in operator_writes(env, since) if kind == "secrets")
    assert secret_writes == ["etcd-new", "etcd-rotated"], secret_writes


# --- SIGKILL during a deletion ----------------------------------------------------------------------------


@dataclass
class DeletingDriver:
    """A remote driver that keeps what it provisioned and records every DELETE and its answer (204 and
    answers already gone alike: repeated DELETEs are safe, but deprovisioning happens once).

    `hold_first`: the first DELETE of a resource takes `hold_first` seconds and then deprovisions, even if
    the caller is gone by then (the operator is killed meanwhile). `pending`: DELETE answers 202 while the
    event is clear, then deprovisions."""

    hold_first: float = 0.0
    release: threading.Event | None = None
    secrets: dict[str, str] = field(default_factory=dict)  # secret outputs: stored by the operator
    provisioned: set[str] = field(default_factory=set)
    deletes: list[tuple[str, str]] = field(default_factory=list)  # (guresid, "202" | "204")
    deprovisioned: list[str] = field(default_factory=list)
    first_delete: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def put(self, request: PutRequest) -> DriverResponse:
        self.provisioned.add(request.guresid)
        return DriverResponse(values={"endpoint": f"{request.guresid}.example"}, secrets=self.secrets)

    async def delete(self, request: ResourceRequest) -> InProgress | None:
        guresid = request.guresid
        first = not any(g == guresid for g, _ in self.deletes)
        if self.release is not None and not self.release.is_set():
            self.deletes.append((guresid, "202"))
            self.first_delete.set()
            return in_progress("deleting", retry_after=1)
        self.deletes.append((guresid, "204"))
        if first and self.hold_first:
            self.first_delete.set()
            await asyncio.sleep(self.hold_first)
        if guresid in self.provisioned:
            self.provisioned.discard(guresid)
            self.deprovisioned.append(guresid)
        return None

    def app(self, key: Any) -> Callable[[str], DriverApp]:
        return lambda target: DriverApp(
            put=self.put, delete=self.delete, public_keys=[key.public_key()], audience=target, org_id=ORG
        )


def test_sigkill_during_deletion_finishes_once(env: Env) -> None:
    ns = env.namespace
    slow = DeletingDriver(hold_first=4.0)
    pending = DeletingDriver(release=threading.Event())
    for name, script in (("slow-delete", slow), ("pending-delete", pending)):
        served = Served(script.app(env.operator_key)).start()
        env.served.append(served)
        apply(env.cluster, driver(name, ns, served.target))
    apply(
        env.cluster,
        resource("gone-slowly", ns, "slow-delete", type="queue"),
        resource("gone-later", ns, "pending-delete", type="queue"),
    )
    guresids = {}
    for name in ("gone-slowly", "gone-later"):
        obj = eventually(partial(settled_resource, env.cluster, ns, name), timeout=60, what=f"{name} Ready")
        guresids[name] = obj["status"]["guresid"]
    assert slow.provisioned == {guresids["gone-slowly"]}
    assert pending.provisioned == {guresids["gone-later"]}

    for name in ("gone-slowly", "gone-later"):
        env.cluster.kubectl_run("-n", ns, "delete", "resource", name, "--wait=false")
    assert slow.first_delete.wait(30), "the slow driver got no DELETE"
    assert pending.first_delete.wait(30), "the pending driver got no DELETE"
    operator = env.operator
    assert operator is not None
    os.kill(operator.process.pid, signal.SIGKILL)
    eventually(lambda: not operator.process.alive(), timeout=10, what="operator dead")
    polled_before_kill = len(pending.deletes)

    # Nobody confirmed to a living operator: both Resources wait, finalizer on.
    time.sleep(slow.hold_first)  # the slow DELETE finishes at the driver; its 204 reaches no one
    for name in ("gone-slowly", "gone-later"):
        live = get(env.cluster, "resource", ns, name)
        assert live is not None, f"{name} went without a living operator"
        assert live["metadata"].get("deletionTimestamp")
        assert FINALIZER in live["metadata"]["finalizers"]
    assert slow.deprovisioned == [guresids["gone-slowly"]]

    env.start_operator()
    # The slow one: the restarted operator repeats the DELETE (it cannot know the first one finished); the
    # driver answers 204 without deprovisioning twice, and the Resource goes.
    eventually(
        lambda: get(env.cluster, "resource", ns, "gone-slowly") is None, timeout=60, what="gone-slowly"
    )
    # The pending one: DELETE answered 202 again and again, so the finalizer stays however long that takes.
    eventually(
        lambda: len(pending.deletes) >= polled_before_kill + 3,
        timeout=30,
        what="DELETE polled after restart",
    )
    waiting = get(env.cluster, "resource", ns, "gone-later")
    assert waiting is not None
    assert FINALIZER in waiting["metadata"]["finalizers"]
    assert condition(waiting, "Reconciling")["reason"] == "Deleting"  # type: ignore[index]
    assert pending.deprovisioned == []
    pending.release.set()  # type: ignore[union-attr]
    eventually(lambda: get(env.cluster, "resource", ns, "gone-later") is None, timeout=60, what="gone-later")
    time.sleep(3)  # any DELETE after the confirmation would arrive now

    assert slow.deprovisioned == [guresids["gone-slowly"]]
    assert pending.deprovisioned == [guresids["gone-later"]]
    # The killed operator's DELETE, then exactly one from the restarted one, answered 204: nothing after it.
    assert slow.deletes == [(guresids["gone-slowly"], "204")] * 2, slow.deletes
    assert {g for g, _ in pending.deletes} == {guresids["gone-later"]}
    assert [answer for _, answer in pending.deletes].count("204") == 1, pending.deletes
    assert pending.deletes[-1][1] == "204", pending.deletes


def test_store_down_during_deletion_sends_no_second_delete(env: Env) -> None:
    """The driver confirmed; removing the outputs from the store fails. The deletion waits for the store
    (finalizer kept, condition says why) and, when it is back, finishes without asking the driver again."""
    ns = env.namespace
    script = DeletingDriver(secrets={"token": "t-" + uuid.uuid4().hex})
    served = Served(script.app(env.operator_key)).start()
    env.served.append(served)
    apply(
        env.cluster,
        driver("once-delete", ns, served.target),
        resource("gone-once", ns, "once-delete", type="queue"),
    )
    obj = eventually(partial(settled_resource, env.cluster, ns, "gone-once"), timeout=60, what="Ready")
    guresid = obj["status"]["guresid"]
    assert secret_data(env.cluster, ns, "gone-once-outputs") == script.secrets

    store = env.stable.processes[0]  # the default store, where the outputs are
    store.stop()
    try:
        env.cluster.kubectl_run("-n", ns, "delete", "resource", "gone-once", "--wait=false")
        assert (
            eventually(partial(reason, env, "resource", "gone-once"), timeout=30, what="store failure")
            == "StoreUnavailable"
        )
        time.sleep(7)  # retries after 2 and 4 s
        waiting = get(env.cluster, "resource", ns, "gone-once")
        assert waiting is not None
        assert FINALIZER in waiting["metadata"]["finalizers"]
        assert script.deletes == [(guresid, "204")]
    finally:
        store.restart()  # dev mode: its data is gone, which a delete of the outputs does not mind
    eventually(lambda: get(env.cluster, "resource", ns, "gone-once") is None, timeout=60, what="deleted")
    assert script.deletes == [(guresid, "204")]
    assert script.deprovisioned == [guresid]
