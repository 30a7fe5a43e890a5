"""Fairness: one tenant changing specs without pause cannot hold back another namespace's work.

The tenant (acting through `tests/integration/tenancy.py`) churns SecretMappings whose store answers
slowly, so every one of its reconciles holds a worker for seconds and its keys are always queued again
as new work (a changed spec is high priority). Before the fair queue, its keys took every worker and
high-priority work always went first: the other namespace's first sync waited behind the whole backlog
and its retries (low priority) never ran while the churn lasted. Now a namespace holds at most half the
workers, namespaces take turns, and every fifth key taken is a low-priority one
(`operator/workqueue.py`).

Behaviour, not timing: the other namespace's SecretMapping (which needs a retry: its Secret appears only
after the first attempt) and its Echo Resource become Ready while the churn is still going, and the
tenant's own mappings are processed too.
"""

from __future__ import annotations

import functools
import socketserver
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from testenv.process import LOOPBACK
from tests.conftest import Cluster
from tests.integration.helpers import (
    apply,
    condition,
    ensure_namespace,
    eventually,
    get,
    k8s_secret,
    secret_data,
)
from tests.integration.tenancy import Tenant, make_tenant

pytestmark = pytest.mark.integration

API = "strongroom.dev/v1alpha1"
CHURNED = 20
WORKERS = 4
SLOW_ANSWER_SECONDS = 2.0
CHURN_SECONDS = 120.0  # an upper bound: the churn stops as soon as the checks made during it are done


class _SlowStoreHandler(socketserver.BaseRequestHandler):
    """Reads one request, waits, answers 503: a store that is slow and unwell, never a fast failure."""

    def handle(self) -> None:
        self.request.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                data += chunk
            time.sleep(SLOW_ANSWER_SECONDS)
            self.request.sendall(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        except OSError:
            return


class _SlowStore(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def slow_store() -> Iterator[str]:
    server = _SlowStore((LOOPBACK, 0), _SlowStoreHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="slow-store")
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def operator(cluster: Cluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    process = start_operator(
        cluster.kubeconfig,
        tmp_path / "operator.log",
        [f"--worker-limit={WORKERS}", f"--reconcile-limit={WORKERS}", "--store-read-ttl=0s"],
    )
    try:
        yield process
    finally:
        process.stop()


def _mapping(namespace: str, name: str, store: str, key: str, refresh: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "secretName": name,
        "secretData": [{"secretKey": "value", "secretStoreName": store, "remoteRef": {"key": key}}],
    }
    if refresh is not None:
        spec["refreshInterval"] = refresh
    return {
        "apiVersion": API,
        "kind": "SecretMapping",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


class Churn:
    """Re-applies the tenant's mappings with a new spec, over and over, until stopped."""

    def __init__(self, tenant: Tenant, store: str) -> None:
        self.tenant = tenant
        self.store = store
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="churn")

    def objects(self, round_: int) -> list[dict[str, Any]]:
        # A new refreshInterval is a new spec: a new generation, queued as new work.
        return [
            _mapping(self.tenant.namespace, f"churn-{i}", self.store, "churn", refresh=f"{3600 + round_}s")
            for i in range(CHURNED)
        ]

    def _run(self) -> None:
        deadline = time.monotonic() + CHURN_SECONDS
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.tenant.apply(*self.objects(self.rounds))
            self.rounds += 1

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> Churn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _ready(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    obj = get(cluster, kind, namespace, name)
    ready = condition(obj)
    return obj if ready and ready["status"] == "True" else None


def _caught_up(cluster: Cluster, namespace: str) -> bool:
    """Every churned mapping has a status for its latest spec (the slow store makes it not Ready)."""
    for i in range(CHURNED):
        obj = get(cluster, "secretmapping", namespace, f"churn-{i}")
        if not obj or (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
            return False
        if not condition(obj):
            return False
    return True


def test_a_churning_namespace_cannot_hold_back_another(
    cluster: Cluster, operator: OperatorProcess, slow_store: str
) -> None:
    suffix = uuid.uuid4().hex[:6]
    tenant = make_tenant(cluster, f"churn-{suffix}")
    calm = f"calm-{suffix}"
    ensure_namespace(cluster, calm)
    tenant.apply(
        k8s_secret(tenant.namespace, "slow-token", {"token": "t"}),
        {
            "apiVersion": API,
            "kind": "SecretStore",
            "metadata": {"name": "slow", "namespace": tenant.namespace},
            "spec": {
                "vault": {
                    "url": slow_store,
                    "path": "secret",
                    "auth": {"tokenSecretRef": {"name": "slow-token", "key": "token"}},
                }
            },
        },
    )
    # The other namespace's store: its own Secrets (a store that answers at once).
    apply(
        cluster,
        {
            "apiVersion": API,
            "kind": "SecretStore",
            "metadata": {"name": "own", "namespace": calm},
            "spec": {"kubernetes": {"namespace": calm}},
        },
    )
    eventually(lambda: _ready(cluster, "secretstore", calm, "own"), timeout=60, what="the calm store Ready")

    churn = Churn(tenant, "slow").start()
    try:
        eventually(lambda: churn.rounds >= 3, timeout=60, what="the churn under way")
        # A first sync that fails (the Secret it reads does not exist yet) and needs a retry, which is
        # low-priority work; and a Resource of another controller.
        apply(
            cluster,
            _mapping(calm, "late", "own", "late-source"),
            {
                "apiVersion": API,
                "kind": "Resource",
                "metadata": {"name": "echo", "namespace": calm},
                "spec": {
                    "type": "config",
                    "id": "shared.echo",
                    "driverType": "strongroom/echo",
                    "driverInputs": {"values": {"host": "calm.example"}},
                },
            },
        )
        first = eventually(
            lambda: condition(get(cluster, "secretmapping", calm, "late")),
            timeout=60,
            what="the first attempt of the calm namespace's mapping",
        )
        assert first["reason"] == "SecretNotFound", first
        apply(cluster, k8s_secret(calm, "late-source", {"value": "arrived"}))
        eventually(
            lambda: _ready(cluster, "secretmapping", calm, "late") or not churn.running,
            timeout=CHURN_SECONDS,
            what="the calm mapping retried and Ready",
        )
        assert churn.running, "the calm namespace's mapping was not retried while the churn lasted"
        eventually(
            lambda: _ready(cluster, "resource", calm, "echo") or not churn.running,
            timeout=CHURN_SECONDS,
            what="the calm Echo Resource Ready",
        )
        assert churn.running, "the calm namespace's Resource was not Ready while the churn lasted"
        rounds = churn.rounds
    finally:
        churn.stop()

    assert rounds >= 3
    # The tenant's own work is served too: every churned mapping ends with a status for its last spec.
    eventually(
        lambda: _caught_up(cluster, tenant.namespace), timeout=180, what="the churned mappings processed"
    )
    reason = (condition(get(cluster, "secretmapping", tenant.namespace, "churn-0")) or {}).get("reason")
    assert reason == "StoreUnavailable", reason
    cluster.kubectl_run("delete", "namespace", tenant.namespace, calm, "--wait=false", check=False)


PACED = 10
PACE_RATE = 2


@pytest.fixture
def paced_operator(cluster: Cluster, tmp_path: Path) -> Iterator[OperatorProcess]:
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    process = start_operator(
        cluster.kubeconfig,
        tmp_path / "operator.log",
        [f"--namespace-reconcile-rate={PACE_RATE}", "--namespace-reconcile-burst=5"],
    )
    try:
        yield process
    finally:
        process.stop()


def _counter(metrics: str, name: str, kind: str) -> float:
    prefix = f'{name}{{kind="{kind}"'
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix))


@pytest.mark.parametrize("neighbour", ["working", "quiet"])
def test_a_namespace_changing_specs_without_pause_is_paced_and_its_changes_coalesce(
    cluster: Cluster, paced_operator: OperatorProcess, neighbour: str
) -> None:
    """The tenant's changes outrun `--namespace-reconcile-rate`: the operator answers with fewer
    reconciles than changes, the other namespace (when it works) is served meanwhile, and every churned
    mapping ends with the Secret of its last spec (coalesced, never a stale one). Whether or not another
    namespace works at that moment: a quiet one may deploy the next second, and must not find the API
    server busy with the operator's answers to every one of the tenant's edits."""
    suffix = uuid.uuid4().hex[:6]
    tenant = make_tenant(cluster, f"pace-{suffix}")
    calm = f"calm-{suffix}"
    # Quiet: no other namespace has anything for the operator (not even a store to check).
    namespaces = [tenant.namespace, calm] if neighbour == "working" else [tenant.namespace]
    stores = []
    for namespace in namespaces:
        stores.append(
            {
                "apiVersion": API,
                "kind": "SecretStore",
                "metadata": {"name": "own", "namespace": namespace},
                "spec": {"kubernetes": {"namespace": namespace}},
            }
        )
    tenant.apply(stores[0], k8s_secret(tenant.namespace, "source", {"value": "tenant"}))
    if neighbour == "working":
        ensure_namespace(cluster, calm)
        apply(cluster, stores[1], k8s_secret(calm, "source", {"value": "calm"}))
    for namespace in namespaces:
        eventually(
            functools.partial(_ready, cluster, "secretstore", namespace, "own"), timeout=60, what="store"
        )

    def churned(round_: int) -> list[dict[str, Any]]:
        objects = []
        for i in range(PACED):
            mapping = _mapping(tenant.namespace, f"churn-{i}", "own", "source")
            # A new spec that shows in the Secret: its key is the round's.
            mapping["spec"]["secretData"][0]["secretKey"] = f"round-{round_}"
            objects.append(mapping)
        return objects

    rounds = 12
    for round_ in range(rounds):
        tenant.apply(*churned(round_))
        if neighbour == "working":
            apply(cluster, _mapping(calm, f"calm-{round_}", "own", "source"))  # the other namespace works
    changes = rounds * (PACED + 1 if neighbour == "working" else PACED)  # the mappings' syncs asked for

    if neighbour == "working":
        for round_ in range(rounds):
            eventually(
                functools.partial(_ready, cluster, "secretmapping", calm, f"calm-{round_}"),
                timeout=60,
                what="calm",
            )

    def last_spec_written(name: str) -> bool:
        return (secret_data(cluster, tenant.namespace, name) or {}).keys() == {f"round-{rounds - 1}"}

    for i in range(PACED):
        eventually(
            functools.partial(last_spec_written, f"churn-{i}"), timeout=120, what="the last spec's Secret"
        )
    metrics = paced_operator.metrics()
    assert _counter(metrics, "strongroom_namespace_paused_total", "SecretMapping") > 0
    reconciles = _counter(metrics, "strongroom_reconciles_total", "SecretMapping")
    assert 0 < reconciles < changes, (reconciles, changes)
    cluster.kubectl_run("delete", "namespace", *namespaces, "--wait=false", check=False)
