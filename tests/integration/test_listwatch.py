"""The operator's list+watch (operator/listwatch.py) against the real API server: paged lists, label
selection, events in order, a watch the server ends resumed without a new list. A watch that cannot resume
(410 after an API server restart) lists again: tests/integration/test_faults.py restarts the API server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from strongroom.net import AiohttpTransport, kube_transport
from strongroom.net.kubejson import KubeJson
from strongroom.operator import listwatch
from strongroom.operator.kubeconfig import connection_info, load_cluster_access
from strongroom.operator.listwatch import Collection, ListWatch
from tests.conftest import Cluster
from tests.integration.helpers import apply, ensure_namespace

pytestmark = pytest.mark.integration

LABEL = "listwatch-test"


def configmap(namespace: str, name: str, picked: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {LABEL: "yes" if picked else "no"}},
        "data": {"k": name},
    }


class Recorder:
    def __init__(self) -> None:
        self.lists: list[list[str]] = []
        self.events: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    async def on_list(self, objects: Sequence[dict[str, Any]]) -> None:
        assert all(obj["kind"] == "ConfigMap" and obj["apiVersion"] == "v1" for obj in objects)
        self.lists.append(sorted(obj["metadata"]["name"] for obj in objects))
        self.changed.set()

    def on_event(self, event_type: str, obj: dict[str, Any]) -> None:
        self.events.append((event_type, obj["metadata"]["name"]))
        self.changed.set()

    async def until(self, check: Any) -> None:
        async with asyncio.timeout(20):
            while not check():
                self.changed.clear()
                await self.changed.wait()


def json_client(cluster: Cluster, transport: AiohttpTransport) -> KubeJson:
    access = load_cluster_access(str(cluster.kubeconfig))
    return KubeJson(
        transport,
        access.config.cluster.server,
        lambda: connection_info(access).as_http_headers(),
        "strongroom-test",
    )


async def test_pages_selects_and_follows(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = f"lw-{uuid.uuid4().hex[:8]}"
    ensure_namespace(cluster, namespace)
    apply(cluster, *[configmap(namespace, f"picked-{i}", True) for i in range(5)])
    apply(cluster, configmap(namespace, "other", False))
    monkeypatch.setattr(listwatch, "PAGE_SIZE", 2)  # 5 picked objects: three pages
    # The API server ends each watch after a second: resumed from the last version, never listed again.
    monkeypatch.setattr(listwatch, "WATCH_SERVER_TIMEOUT", 1)
    recorder = Recorder()
    transport = kube_transport(load_cluster_access(str(cluster.kubeconfig)).config)
    watch = ListWatch(
        json_client(cluster, transport),
        Collection("v1", "configmaps", "ConfigMap", namespace, f"{LABEL}=yes"),
        recorder.on_list,
        recorder.on_event,
    )
    task = asyncio.create_task(watch.run())
    try:
        await recorder.until(lambda: recorder.lists)
        assert recorder.lists == [[f"picked-{i}" for i in range(5)]]
        assert watch.listed.is_set()
        await asyncio.sleep(2.5)  # at least two watches ended by the server
        apply(cluster, configmap(namespace, "late", True), configmap(namespace, "late-other", False))
        await recorder.until(lambda: ("ADDED", "late") in recorder.events)
        cluster.kubectl_run("-n", namespace, "delete", "configmap", "late", "picked-0")
        await recorder.until(lambda: ("DELETED", "picked-0") in recorder.events)
        assert ("DELETED", "late") in recorder.events
        assert recorder.events.index(("ADDED", "late")) < recorder.events.index(("DELETED", "late"))
        assert all(name not in ("other", "late-other") for _, name in recorder.events)
        assert watch.lists == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await transport.aclose()


async def test_the_operator_lists_stores_and_drivers_before_what_names_them(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a restart no SecretMapping or Resource may be handled before the SecretStores and Drivers of
    its namespace are known (it would flap to StoreNotFound/DriverNotFound): the runtime starts their
    watches first and waits for their first lists, however slow the API server is to answer them."""
    plain_list = ListWatch._list

    async def slow_store_list(self: ListWatch) -> str:
        if self.collection.plural == "secretstores":
            await asyncio.sleep(1.0)
        return await plain_list(self)

    monkeypatch.setattr(ListWatch, "_list", slow_store_list)
    from strongroom.operator.runtime import Runtime
    from tests.unit.test_operator_app import small_settings

    cluster.install_crds()
    namespace = f"lw-{uuid.uuid4().hex[:8]}"
    ensure_namespace(cluster, namespace)
    store = {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretStore",
        "metadata": {"name": "bao", "namespace": namespace},
        "spec": {"kubernetes": {"namespace": namespace}},
    }
    mapping = {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretMapping",
        "metadata": {"name": "m", "namespace": namespace},
        "spec": {
            "secretName": "m",
            "secretData": [{"secretKey": "k", "secretStoreName": "bao", "remoteRef": {"key": "x"}}],
        },
    }
    apply(cluster, store, mapping)
    access = load_cluster_access(str(cluster.kubeconfig))
    runtime = Runtime(access.config, small_settings())
    order: list[str] = []
    original = runtime.secretstores.observe

    def store_seen(event_type: str | None, body: Mapping[str, Any]) -> None:
        order.append(f"{body['kind']}/{body['metadata']['name']}")
        original(event_type, body)

    runtime.secretstores.observe = store_seen  # type: ignore[method-assign]

    def mapping_seen(event_type: str | None, body: Mapping[str, Any]) -> None:
        order.append(f"{body['kind']}/{body['metadata']['name']}")

    runtime.secretmappings.observe = mapping_seen  # type: ignore[method-assign]
    try:
        await runtime.watch((namespace,))
        async with asyncio.timeout(20):
            await asyncio.gather(*(watch.listed.wait() for watch in runtime.watches))
        assert order == ["SecretStore/bao", "SecretMapping/m"]
        assert runtime.stores.views  # the store is known before any mapping is handled
    finally:
        await runtime.stop()
