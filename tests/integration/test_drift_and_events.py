"""Drift repair, visible failures and Events, end to end: real operator process, real apiserver, real OpenBao.

The operator runs with the default refresh and resync intervals (an hour), so whatever is repaired here
within the poll timeout was repaired because the operator watches what it owns, not by a refresh. It has
an operator namespace of its own, so default stores other modules leave in the shared one do not interfere.
The last test checks that no canary value seeded here reached an Event, a log line or a status.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import pytest

import testenv
from testenv.operator import OperatorProcess, start_operator
from testenv.process import LOOPBACK, free_port
from tests.conftest import Cluster
from tests.integration.helpers import (
    apply,
    condition,
    ensure_namespace,
    eventually,
    get,
    k8s_secret,
    secret_data,
    seed,
    settled_resource,
)
from tests.integration.tenancy import make_tenant

pytestmark = pytest.mark.integration

API = "strongroom.dev/v1alpha1"
CANARIES = {name: f"canary-{name}-{uuid.uuid4().hex}" for name in ("mapping", "echo", "late", "tenant")}
# Generous: the repair takes well under a second; the poll only bounds a broken implementation.
REPAIR_TIMEOUT = 30


@dataclass
class Env:
    cluster: Cluster
    stores: testenv.Environment
    operator: OperatorProcess
    namespace: str
    operator_namespace: str
    tenant_namespace: str
    logs: list[Path]

    @property
    def bao(self) -> hvac.Client:
        info = self.stores.info("openbao")
        return hvac.Client(url=info["addr"], token=info["root_token"])


def vault_store(name: str, namespace: str, addr: str, token_secret: str, *, default: bool) -> dict[str, Any]:
    labels = {"strongroom.dev/default-store": "true"} if default else {}
    return {
        "apiVersion": API,
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "vault": {
                "url": addr,
                "path": "secret",
                "auth": {"tokenSecretRef": {"name": token_secret, "key": "token"}},
            }
        },
    }


def mapping(name: str, namespace: str, secret_name: str, store: str, key: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "SecretMapping",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "secretName": secret_name,
            "secretData": [{"secretKey": "value", "secretStoreName": store, "remoteRef": {"key": key}}],
        },
    }


def echo(name: str, namespace: str, **inputs: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Resource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "postgres",
            "id": f"shared.{name}",
            "driverType": "humanitec/echo",
            "driverInputs": inputs,
        },
    }


@pytest.fixture(scope="module")
def env(
    cluster: Cluster, stores: testenv.Environment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    workdir = tmp_path_factory.mktemp("drift")
    cluster.install_crds()
    suffix = uuid.uuid4().hex[:6]
    operator_namespace, namespace = f"drift-sys-{suffix}", f"drift-{suffix}"
    tenant_namespace = f"drift-tenant-{suffix}"
    for name in (operator_namespace, namespace):
        ensure_namespace(cluster, name)
    make_tenant(cluster, tenant_namespace)
    bao = stores.info("openbao")
    apply(
        cluster,
        k8s_secret(namespace, "bao-token", {"token": bao["root_token"]}),
        vault_store("bao", namespace, bao["addr"], "bao-token", default=False),
    )
    log = workdir / "operator.log"
    operator = start_operator(
        cluster.kubeconfig,
        log,
        ["-n", namespace, "-n", tenant_namespace, "--store-check-interval=2s", "--store-read-ttl=0s",
         "--log-level=debug"],
        operator_namespace=operator_namespace,
    )  # fmt: skip
    try:
        yield Env(cluster, stores, operator, namespace, operator_namespace, tenant_namespace, [log])
    finally:
        operator.stop()
        for name in (namespace, operator_namespace, tenant_namespace):
            cluster.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


def ready(env: Env, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    obj = get(env.cluster, kind, namespace or env.namespace, name)
    cond = condition(obj)
    if obj and cond and cond["status"] == "True":
        return obj
    return None


def events_of(cluster: Cluster, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
    result = cluster.kubectl_run("-n", namespace, "get", "events", "-o", "json")
    return [
        event
        for event in json.loads(result.stdout)["items"]
        if event["involvedObject"].get("kind") == kind and event["involvedObject"].get("name") == name
    ]


def event(env: Env, kind: str, name: str, reason: str) -> dict[str, Any] | None:
    return next((e for e in events_of(env.cluster, env.namespace, kind, name) if e["reason"] == reason), None)


def edit_secret(cluster: Cluster, namespace: str, name: str, data: dict[str, str]) -> None:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    cluster.kubectl_run(
        "-n", namespace, "patch", "secret", name, "--type=merge", "-p", json.dumps({"data": encoded})
    )


# --- drift -----------------------------------------------------------------------------------------------


def test_a_mapping_secret_edited_by_hand_is_restored(env: Env) -> None:
    seed(env, "drift/mapping", CANARIES["mapping"])
    apply(env.cluster, mapping("m", env.namespace, "m-secret", "bao", "drift/mapping"))
    eventually(lambda: ready(env, "secretmapping", "m"), timeout=60, what="mapping Ready")
    assert secret_data(env.cluster, env.namespace, "m-secret") == {"value": CANARIES["mapping"]}

    edit_secret(env.cluster, env.namespace, "m-secret", {"value": "edited by hand"})
    eventually(
        lambda: secret_data(env.cluster, env.namespace, "m-secret") == {"value": CANARIES["mapping"]},
        timeout=REPAIR_TIMEOUT,
        what="the edited Secret restored",
    )
    eventually(lambda: event(env, "SecretMapping", "m", "Restored"), timeout=REPAIR_TIMEOUT, what="Event")


def test_a_mapping_secret_deleted_by_hand_is_recreated(env: Env) -> None:
    eventually(lambda: ready(env, "secretmapping", "m"), timeout=60, what="mapping Ready")
    before = get(env.cluster, "secret", env.namespace, "m-secret")
    assert before is not None
    env.cluster.kubectl_run("-n", env.namespace, "delete", "secret", "m-secret")
    recreated = eventually(
        lambda: (
            (s := get(env.cluster, "secret", env.namespace, "m-secret"))
            and s["metadata"]["uid"] != before["metadata"]["uid"]
            and s
        ),
        timeout=REPAIR_TIMEOUT,
        what="the deleted Secret recreated",
    )
    assert recreated["metadata"]["ownerReferences"][0]["kind"] == "SecretMapping"
    assert secret_data(env.cluster, env.namespace, "m-secret") == {"value": CANARIES["mapping"]}


def test_a_settled_mapping_writes_nothing(env: Env) -> None:
    """The operator's own writes come back through its watch and must not cause more writes."""
    secret = get(env.cluster, "secret", env.namespace, "m-secret")
    obj = get(env.cluster, "secretmapping", env.namespace, "m")
    assert secret is not None
    assert obj is not None
    # A few seconds in which a loop (write -> event -> reconcile -> write) would have bumped both.
    eventually(lambda: event(env, "SecretMapping", "m", "Synced"), timeout=10, what="Synced Event")
    time.sleep(3)
    still = get(env.cluster, "secret", env.namespace, "m-secret")
    assert still is not None
    assert still["metadata"]["resourceVersion"] == secret["metadata"]["resourceVersion"]
    after = get(env.cluster, "secretmapping", env.namespace, "m")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_default_store_label_on_an_existing_store_takes_effect_without_restart(env: Env) -> None:
    seed(env, f"{env.namespace}/late", CANARIES["late"])
    apply(
        env.cluster,
        echo(
            "late", env.namespace, secretRefs={"password": {"store": "bao", "ref": f"{env.namespace}/late"}}
        ),
    )
    waiting = eventually(
        lambda: (
            (c := condition(get(env.cluster, "resource", env.namespace, "late")))
            and c["status"] == "False"
            and c
        ),
        timeout=60,
        what="Resource waiting for a default store",
    )
    assert "default" in waiting["message"].lower()

    env.cluster.kubectl_run(
        "-n", env.namespace, "label", "secretstore", "bao", "strongroom.dev/default-store=true"
    )
    eventually(
        lambda: settled_resource(env.cluster, env.namespace, "late"), timeout=60, what="Resource Ready"
    )
    assert secret_data(env.cluster, env.namespace, "late-outputs") == {"password": CANARIES["late"]}


def test_a_resource_outputs_secret_edited_or_deleted_is_restored(env: Env) -> None:
    eventually(
        lambda: settled_resource(env.cluster, env.namespace, "late"), timeout=60, what="Resource Ready"
    )
    edit_secret(env.cluster, env.namespace, "late-outputs", {"password": "edited by hand"})
    eventually(
        lambda: secret_data(env.cluster, env.namespace, "late-outputs") == {"password": CANARIES["late"]},
        timeout=REPAIR_TIMEOUT,
        what="the outputs Secret restored",
    )
    env.cluster.kubectl_run("-n", env.namespace, "delete", "secret", "late-outputs")
    eventually(
        lambda: secret_data(env.cluster, env.namespace, "late-outputs") == {"password": CANARIES["late"]},
        timeout=REPAIR_TIMEOUT,
        what="the outputs Secret recreated",
    )
    eventually(lambda: event(env, "Resource", "late", "Provisioned"), timeout=10, what="Provisioned Event")


# --- failures are visible --------------------------------------------------------------------------------


def test_a_failed_sync_is_a_condition_and_a_warning_event(env: Env) -> None:
    apply(env.cluster, mapping("missing", env.namespace, "missing-secret", "bao", "drift/not-there"))
    cond = eventually(
        lambda: (
            (c := condition(get(env.cluster, "secretmapping", env.namespace, "missing")))
            and c["status"] == "False"
            and c
        ),
        timeout=60,
        what="not Ready",
    )
    warning = eventually(
        lambda: event(env, "SecretMapping", "missing", cond["reason"]), timeout=30, what="Warning Event"
    )
    assert warning["type"] == "Warning"
    assert warning["source"]["component"] == "strongroom"
    # Retries (backoff 2 s, 4 s, ...) fail the same way: one Event, counted, not one Event per attempt.
    counted = eventually(
        lambda: (
            (e := event(env, "SecretMapping", "missing", cond["reason"])) and e.get("count", 1) >= 2 and e
        ),
        timeout=60,
        what="the Warning counted again",
    )
    same = [
        e
        for e in events_of(env.cluster, env.namespace, "SecretMapping", "missing")
        if e["reason"] == cond["reason"]
    ]
    assert [e["metadata"]["name"] for e in same] == [counted["metadata"]["name"]]


def test_missing_operator_namespace_is_a_condition_on_the_resource(
    env: Env, tmp_path_factory: pytest.TempPathFactory
) -> None:
    missing = f"drift-missing-{uuid.uuid4().hex[:6]}"
    namespace = f"drift-orphan-{uuid.uuid4().hex[:6]}"
    ensure_namespace(env.cluster, namespace)
    log = tmp_path_factory.mktemp("drift-missing") / "operator.log"
    env.logs.append(log)
    operator = start_operator(
        env.cluster.kubeconfig, log, ["-n", namespace, "--log-level=debug"], operator_namespace=missing
    )
    try:
        apply(env.cluster, echo("db", namespace, values={"host": "db"}))
        cond = eventually(
            lambda: condition(get(env.cluster, "resource", namespace, "db")), timeout=60, what="a condition"
        )
        assert cond["status"] == "False"
        assert cond["reason"] == "OperatorNamespaceMissing"
        assert f"kubectl create namespace {missing}" in cond["message"]
        output = operator.logs()
        assert "needs its operator namespace" in output
        assert "lacks" in output
    finally:
        operator.stop()
        env.cluster.kubectl_run("delete", "namespace", namespace, "--wait=false", check=False)


# --- Drivers ---------------------------------------------------------------------------------------------


def test_driver_status_follows_reachability_and_key(env: Env) -> None:
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen()
    closed = free_port()
    try:
        apply(
            env.cluster,
            {
                "apiVersion": API,
                "kind": "Driver",
                "metadata": {"name": "up", "namespace": env.namespace},
                "spec": {"target": f"http://{LOOPBACK}:{listener.getsockname()[1]}/", "sign": False},
            },
            {
                "apiVersion": API,
                "kind": "Driver",
                "metadata": {"name": "down", "namespace": env.namespace},
                "spec": {"target": f"http://{LOOPBACK}:{closed}/", "sign": False},
            },
            {
                "apiVersion": API,
                "kind": "Driver",
                "metadata": {"name": "keyless", "namespace": env.namespace},
                "spec": {
                    "target": f"http://{LOOPBACK}:{listener.getsockname()[1]}/",
                    "privateKeySecretRef": {"name": "no-such-key"},
                },
            },
        )
        eventually(lambda: ready(env, "driver", "up"), timeout=30, what="reachable Driver Ready")
        for name, reason in (("down", "Unreachable"), ("keyless", "SigningKeyMissing")):
            cond = eventually(
                lambda name=name: (
                    (c := condition(get(env.cluster, "driver", env.namespace, name)))  # type: ignore[misc]
                    and c["status"] == "False"
                    and c
                ),
                timeout=30,
                what=f"Driver {name} not Ready",
            )
            assert cond["reason"] == reason
        # The printer columns read the same condition.
        table = env.cluster.kubectl_run("-n", env.namespace, "get", "drivers").stdout
        assert "Unreachable" in table
        assert "SigningKeyMissing" in table
    finally:
        listener.close()


# --- tenancy ---------------------------------------------------------------------------------------------


def test_a_forged_managed_label_reaches_no_other_namespace(env: Env) -> None:
    """A tenant of a namespace the operator serves labels a Secret of its own as the operator's and names,
    by ownerReference, another namespace's SecretMapping (its name and uid are no secret). It also has a
    mapping of that same name itself.

    Owner references never cross namespaces and the informer looks the owner up in the event's own
    namespace, uid-checked: the victim's mapping is not reconciled (its Secret is not written), the tenant's
    own mapping of that name has another uid and is not woken either, and the forged Secret is neither
    adopted nor changed."""
    victim = eventually(lambda: ready(env, "secretmapping", "m"), timeout=60, what="victim mapping Ready")
    victim_secret = get(env.cluster, "secret", env.namespace, "m-secret")
    assert victim_secret is not None
    tenant = make_tenant(env.cluster, env.tenant_namespace)
    tenant.apply(mapping("m", tenant.namespace, "tenant-secret", "bao", "drift/tenant"))
    forged = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "claims-victim",
            "namespace": tenant.namespace,
            "labels": {"strongroom.dev/managed": "true", "app.kubernetes.io/managed-by": "strongroom"},
            "ownerReferences": [
                {"apiVersion": API, "kind": "SecretMapping", "name": "m", "uid": victim["metadata"]["uid"]}
            ],
        },
        "stringData": {"value": "forged"},
    }
    tenant.apply(forged)
    # The garbage collector may delete the Secret at any moment (its owner is not in its namespace): the
    # edit and the delete may find it gone already, which the operator sees as a deletion just the same.
    tenant.kubectl("-n", tenant.namespace, "patch", "secret", "claims-victim", "--type=merge",
                   "-p", json.dumps({"stringData": {"value": "forged again"}}), check=False)  # fmt: skip
    tenant.kubectl("-n", tenant.namespace, "delete", "secret", "claims-victim", check=False)
    time.sleep(3)

    after = get(env.cluster, "secret", env.namespace, "m-secret")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == victim_secret["metadata"]["resourceVersion"]
    assert get(env.cluster, "secret", tenant.namespace, "claims-victim") is None  # not recreated
    assert get(env.cluster, "secret", tenant.namespace, "tenant-secret") is None  # its store is not its own
    logs = env.operator.logs()
    assert "changed or deleted by someone else" not in "\n".join(
        line for line in logs.splitlines() if "claims-victim" in line
    )


def test_a_tenant_secret_claiming_its_own_mapping_is_not_taken_over(env: Env) -> None:
    """The tenant's Secret, labelled as managed, claims (with the right uid) the tenant's own mapping, which
    writes another Secret. Waking that mapping is harmless: it writes its own spec.secretName only, and
    the claiming Secret is neither changed nor deleted."""
    tenant = make_tenant(env.cluster, env.tenant_namespace)
    owner = eventually(
        lambda: get(env.cluster, "secretmapping", tenant.namespace, "m"), timeout=30, what="tenant mapping"
    )
    forged = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "not-the-mappings",
            "namespace": tenant.namespace,
            "labels": {"strongroom.dev/managed": "true"},
            "ownerReferences": [
                {"apiVersion": API, "kind": "SecretMapping", "name": "m", "uid": owner["metadata"]["uid"]}
            ],
        },
        "stringData": {"value": "tenant data"},
    }
    tenant.apply(forged)
    tenant.kubectl("-n", tenant.namespace, "patch", "secret", "not-the-mappings", "--type=merge",
                   "-p", json.dumps({"stringData": {"value": "tenant data 2"}}))  # fmt: skip
    time.sleep(3)
    assert secret_data(env.cluster, tenant.namespace, "not-the-mappings") == {"value": "tenant data 2"}
    claimed = get(env.cluster, "secret", tenant.namespace, "not-the-mappings")
    assert claimed is not None
    assert not any(f["manager"] == "strongroom" for f in claimed["metadata"].get("managedFields") or [])


# --- no leaks --------------------------------------------------------------------------------------------


def test_no_canary_value_leaks_into_events_logs_or_status(env: Env) -> None:
    events = env.cluster.kubectl_run("get", "events", "-A", "-o", "json").stdout
    assert '"strongroom"' in events  # the operator did post Events
    objects = env.cluster.kubectl_run(
        "-n", env.namespace, "get", "secretmappings,resources,secretstores,drivers", "-o", "json"
    ).stdout
    logs = "".join(path.read_text() for path in env.logs if path.exists())
    for name, value in CANARIES.items():
        assert value not in events, f"canary {name} in an Event"
        assert value not in objects, f"canary {name} in a status"
        assert value not in logs, f"canary {name} in the operator log"
