"""The operator's list+watch (operator/listwatch.py) against the real API server: paged lists, label
selection, events in order, a watch the server ends resumed without a new list. A watch that cannot resume
(410 after an API server restart) lists again: tests/integration/test_faults.py restarts the API server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
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

    def on_list(self, objects: Sequence[dict[str, Any]]) -> None:
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
