"""A tenant's namespace has an Event budget (operator/events.py): however many of its objects change, the
operator writes a bounded number of Events there, and other namespaces keep theirs (issue 11). Against the
real API server: the Events counted are the ones it stored."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from strongroom.net import kube_transport
from strongroom.net.kubejson import KubeJson
from strongroom.operator.events import EventRecorder
from strongroom.operator.kubeconfig import connection_info, load_cluster_access
from tests.conftest import Cluster
from tests.integration.helpers import ensure_namespace

pytestmark = pytest.mark.integration


def mapping(namespace: str, name: str) -> dict[str, Any]:
    # An Event may name any object; the API server does not look it up.
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretMapping",
        "metadata": {"namespace": namespace, "name": name, "uid": str(uuid.uuid4())},
    }


def stored_events(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    found = cluster.kubectl_run("-n", namespace, "get", "events", "-o", "json")
    items: list[dict[str, Any]] = json.loads(found.stdout)["items"]
    return [e for e in items if (e.get("source") or {}).get("component") == "strongroom"]


async def test_a_namespace_of_many_changing_objects_gets_its_event_budget_and_no_more(
    cluster: Cluster,
) -> None:
    tenant, other = f"ev-tenant-{uuid.uuid4().hex[:6]}", f"ev-other-{uuid.uuid4().hex[:6]}"
    ensure_namespace(cluster, tenant)
    ensure_namespace(cluster, other)
    access = load_cluster_access(str(cluster.kubeconfig))
    transport = kube_transport(access.config)
    client = KubeJson(
        transport,
        access.config.cluster.server,
        lambda: connection_info(access).as_http_headers(),
        "strongroom",
    )
    # A budget that does not refill during the test: what is written is the burst, exactly.
    recorder = EventRecorder(client, namespace_burst=5, namespace_refill_seconds=3600)
    try:
        churned = [mapping(tenant, f"churn-{i}") for i in range(20)]
        for _ in range(3):  # each object changes three times
            for obj in churned:
                recorder.record(obj, "Normal", "Rotated", "Secret updated")
        quiet = [mapping(other, f"calm-{i}") for i in range(3)]
        for obj in quiet:
            recorder.record(obj, "Normal", "Synced", "created Secret")
        await recorder.close()
        await asyncio.sleep(0)

        tenant_events = stored_events(cluster, tenant)
        # Five Events for five objects; the other fifteen objects' Events waited for a token (counted).
        assert len(tenant_events) == 5
        assert len({e["involvedObject"]["uid"] for e in tenant_events}) == 5
        # The tenant spent its own budget, not the other namespace's.
        assert sorted(e["involvedObject"]["name"] for e in stored_events(cluster, other)) == [
            "calm-0",
            "calm-1",
            "calm-2",
        ]
    finally:
        await transport.aclose()
