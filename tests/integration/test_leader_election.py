"""Leader election between real operator processes: one writes, the standby takes over, and a leader that
was paused past its lease (SIGSTOP) and resumed makes no write after losing it.

The API server's audit log (testenv/controlplane.py) is the witness: every replica's requests carry its
identity in `User-Agent` (`strongroom-operator/<version> (<identity>)`), and the log records when the
API server received each one.

The replicas use the Lease the chart names for release `strongroom` in `strongroom-system`, so their
requests are ones the chart's RBAC allows (tests/integration/test_zz_rbac_audit.py checks every operator
request of the run against it).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, KubeConfig
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.coordination_v1 import Lease
from lightkube.types import PatchType

from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from testenv.process import LOOPBACK
from tests.conftest import Cluster
from tests.integration.helpers import apply, condition, ensure_namespace, eventually, get, k8s_secret

pytestmark = pytest.mark.integration

API = "strongroom.dev/v1alpha1"
LEASE = "strongroom-leader"  # what the chart calls the Lease of release `strongroom`
# Short, so the test takes seconds: a standby may take over 6 s after the Lease last changed; the leader
# stops writing 4 s after its last successful renew started.
LEASE_SECONDS, RENEW_SECONDS = 6, 4
TIMING = [
    "--leader-elect",
    f"--leader-elect-lease-name={LEASE}",
    f"--leader-elect-lease-duration={LEASE_SECONDS}s",
    f"--leader-elect-renew-deadline={RENEW_SECONDS}s",
    "--leader-elect-retry-period=1s",
]
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
MAPPINGS = 20
SecretMappingRes = create_namespaced_resource("strongroom.dev", "v1alpha1", "SecretMapping", "secretmappings")


@dataclass(frozen=True)
class Audited:
    identity: str
    verb: str
    resource: str
    name: str | None
    code: int
    received: float  # epoch seconds


def audited_requests(audit_log: Path) -> list[Audited]:
    found = []
    with audit_log.open() as lines:
        for line in lines:
            event = json.loads(line)
            agent = str(event.get("userAgent", ""))
            if not agent.startswith("strongroom-operator/") or not agent.endswith(")"):
                continue
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "") + ("/" + ref["subresource"] if ref.get("subresource") else "")
            received = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp()
            found.append(
                Audited(
                    identity=agent[agent.rindex("(") + 1 : -1],
                    verb=event["verb"],
                    resource=resource,
                    name=ref.get("name"),
                    code=int((event.get("responseStatus") or {}).get("code", 0)),
                    received=received,
                )
            )
    return found


def holder(client: Client) -> str | None:
    try:
        lease = client.get(Lease, LEASE, namespace=OPERATOR_NAMESPACE)
    except Exception:
        return None
    return lease.spec.holderIdentity if lease.spec else None


def readiness(operator: OperatorProcess) -> tuple[int, str]:
    """/readyz's status and the role its body names."""
    url = f"http://{LOOPBACK}:{operator.health_port}/readyz"
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status), str(json.loads(response.read())["role"])


def mapping(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "SecretMapping",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "secretName": name,
            "refreshInterval": "1h",
            "secretData": [
                {
                    "secretKey": "user",
                    "secretStoreName": "k8s",
                    "remoteRef": {"key": "source", "property": "user"},
                }
            ],
        },
    }


def settled(cluster: Cluster, namespace: str, name: str) -> bool:
    obj = get(cluster, "secretmapping", namespace, name)
    ready = condition(obj)
    return bool(
        obj
        and ready
        and ready.get("status") == "True"
        and (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
    )


class Churn:
    """Changes the mappings' specs without pause, so whoever leads always has writes to make."""

    def __init__(self, client: Client, namespace: str, names: list[str]) -> None:
        self._client, self._namespace, self._names = client, namespace, names
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.patches = 0

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            turn += 1
            for name in self._names:
                interval = f"{60 + turn % 2}m"
                self._client.patch(
                    SecretMappingRes,
                    name,
                    {"spec": {"refreshInterval": interval}},
                    namespace=self._namespace,
                    patch_type=PatchType.MERGE,
                )
                self.patches += 1
            time.sleep(0.2)

    def __enter__(self) -> Churn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def replicas(cluster: Cluster, tmp_path: Path) -> Iterator[tuple[str, list[OperatorProcess]]]:
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    cluster.kubectl_run("-n", OPERATOR_NAMESPACE, "delete", "lease", LEASE, "--ignore-not-found")
    namespace = f"leader-{secrets.token_hex(3)}"
    ensure_namespace(cluster, namespace)
    started: list[OperatorProcess] = []
    try:
        yield namespace, started
    finally:
        for operator in started:
            continue_process(operator.process.pid)
            operator.stop()
        cluster.kubectl_run("delete", "namespace", namespace, "--wait=false", check=False)
        cluster.kubectl_run("-n", OPERATOR_NAMESPACE, "delete", "lease", LEASE, "--ignore-not-found")


def continue_process(pid: int) -> None:
    """A stopped process cannot act on SIGTERM: continue it first (no-op when it runs or is gone)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)


def test_a_paused_leader_makes_no_write_after_losing_the_lease(
    cluster: Cluster, replicas: tuple[str, list[OperatorProcess]], tmp_path: Path
) -> None:
    namespace, started = replicas
    client = Client(KubeConfig.from_file(cluster.kubeconfig), field_manager="tests")
    names = [f"m{i}" for i in range(MAPPINGS)]
    apply(
        cluster,
        k8s_secret(namespace, "source", {"user": "alice"}),
        {
            "apiVersion": API,
            "kind": "SecretStore",
            "metadata": {"name": "k8s", "namespace": namespace},
            "spec": {"kubernetes": {"namespace": namespace}},
        },
        *(mapping(namespace, name) for name in names),
    )
    run = secrets.token_hex(3)
    first, second = f"replica-a-{run}", f"replica-b-{run}"

    def replica(identity: str) -> OperatorProcess:
        operator = start_operator(
            cluster.kubeconfig,
            tmp_path / f"{identity}.log",
            ["-n", namespace, f"--leader-elect-identity={identity}", *TIMING],
        )
        started.append(operator)
        return operator

    leader = replica(first)
    eventually(lambda: holder(client) == first, timeout=30, what="the first replica to lead")
    standby = replica(second)  # start_operator waited for /readyz 200: a standby is Ready
    assert readiness(standby) == (200, "standby")
    assert readiness(leader) == (200, "leader")
    assert "strongroom_leader 0.0" in standby.metrics()
    for name in names:
        eventually(partial(settled, cluster, namespace, name), timeout=60, what=f"mapping {name}")
    assert holder(client) == first

    with Churn(client, namespace, names) as churn:
        time.sleep(2)  # the leader writes
        os.kill(leader.process.pid, signal.SIGSTOP)
        paused_at = time.time()
        eventually(lambda: holder(client) == second, timeout=LEASE_SECONDS + 15, what="the standby to lead")
        time.sleep(3)  # the new leader writes; the old one's queue fills from its (paused) watches
        resumed_at = time.time()
        os.kill(leader.process.pid, signal.SIGCONT)
        # The old leader finds the Lease taken and exits 1, to be restarted as a standby.
        eventually(lambda: not leader.process.alive(), timeout=30, what="the old leader to exit")
        time.sleep(1)
    assert churn.patches > 0
    assert leader.process.exit_code == 1, leader.logs()[-3000:]
    old_log = leader.logs()
    assert "lost the Lease" in old_log
    # Whether its workers get to try a write after the pause before the process stops is a race (the
    # stop is prompt since the watches are the operator's own; kopf used to take seconds to stop, and
    # the workers always tried then): any write tried is refused by the fence. The proof that none
    # reached the API server is the audit log below.
    assert standby.process.alive()
    assert readiness(standby) == (200, "leader")
    # Everything the churn asked for was done (by the new leader): no update was lost in the hand-over.
    for name in names:
        eventually(partial(settled, cluster, namespace, name), timeout=60, what=f"mapping {name}")

    requests = audited_requests(Path(cluster.info["audit_log"]))
    writes = [r for r in requests if r.verb in WRITE_VERBS]
    by_first = [r for r in writes if r.identity == first]
    by_second = [r for r in writes if r.identity == second]
    # The takeover: the new leader's first successful write of the Lease (it writes nothing before).
    takeover = min(r.received for r in by_second if r.resource == "leases" and r.code < 300)
    assert [r for r in by_first if r.resource == "secretmappings/status" and r.received < paused_at]
    assert [r for r in by_second if r.resource == "secretmappings/status" and r.received > takeover]
    assert not [r for r in by_second if r.resource != "leases" and r.received < takeover]
    late = [r for r in by_first if r.received >= takeover]
    assert not late, "the old leader wrote after losing the Lease:\n" + "\n".join(map(str, late))
    # Nothing it sent after it resumed reached the API server as a write (reads only: the Lease, objects).
    assert not [r for r in by_first if r.received >= resumed_at]

    # An orderly stop (SIGTERM, as in a rolling update) releases the Lease: the next replica need not wait
    # out a lease duration.
    standby.stop()
    assert standby.process.exit_code == 0
    assert not holder(client)
