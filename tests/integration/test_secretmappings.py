"""SecretStores and SecretMappings end to end: real operator process, real apiserver, real OpenBao.

One operator runs for the whole module with short intervals, so refreshes and retries happen within
seconds. The last test checks that no canary value seeded here leaked anywhere the operator writes.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import hvac
import pytest

import testenv
from strongroom.api.secretstore import SecretStore
from strongroom.stores.base import SecretValue
from strongroom.stores.registry import build_store_client
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from testenv.service import Service
from testenv.stores import moto
from tests.conftest import Cluster
from tests.integration.helpers import (
    apply,
    condition,
    ensure_namespace,
    entry,
    eventually,
    get,
    k8s_secret,
    mapping,
    secret_data,
    vault_store,
)

pytestmark = pytest.mark.integration

# Distinctive values that must never show up in logs, events, status or annotations.
CANARIES = [f"canary-{uuid.uuid4().hex}" for _ in range(4)]


@dataclass
class Env:
    cluster: Cluster
    stores: testenv.Environment
    operator: OperatorProcess
    namespace: str

    @property
    def bao(self) -> hvac.Client:
        info = self.stores.info("openbao")
        return hvac.Client(url=info["addr"], token=info["root_token"])


@pytest.fixture(scope="module")
def env(
    cluster: Cluster, stores: testenv.Environment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    namespace = "sm-tests"
    ensure_namespace(cluster, namespace)
    bao = stores.info("openbao")
    apply(
        cluster,
        k8s_secret(OPERATOR_NAMESPACE, "bao-token", {"token": bao["root_token"]}),
        vault_store(
            "bao",
            OPERATOR_NAMESPACE,
            bao["addr"],
            "bao-token",
            access=[{"namespaces": [namespace], "keyPrefixes": ["apps/", "multi/"]}],
        ),
    )
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    operator = start_operator(
        cluster.kubeconfig,
        log,
        ["--refresh-interval=2s", "--store-read-ttl=0s", "--store-check-interval=2s", "--log-level=debug"],
    )
    try:
        yield Env(cluster, stores, operator, namespace)
    finally:
        operator.stop()


def ready(env: Env, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
    obj = get(env.cluster, kind, namespace or env.namespace, name)
    cond = condition(obj)
    return obj if cond and cond["status"] == "True" else None


def reason(env: Env, kind: str, name: str, namespace: str | None = None) -> str | None:
    cond = condition(get(env.cluster, kind, namespace or env.namespace, name))
    return cond["reason"] if cond and cond["status"] == "False" else None


def metric(env: Env, name: str, labels: str) -> float:
    """The sum of one metric's samples whose labels contain `labels`."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in env.operator.metrics().splitlines()
        if line.startswith(name + "{") and labels in line
    )


def test_store_becomes_ready_after_a_real_check(env: Env) -> None:
    store = eventually(lambda: ready(env, "secretstore", "bao", OPERATOR_NAMESPACE), what="store Ready")
    assert store["status"]["storeType"] == "vault"
    assert set(store["status"]["capabilities"]) >= {"read"}
    assert store["status"]["observedGeneration"] == store["metadata"]["generation"]


def test_latest_pinned_version_and_property(env: Env) -> None:
    kv = env.bao.secrets.kv.v2
    kv.create_or_update_secret(path="apps/web/db", secret={"username": "web", "password": CANARIES[0]})
    kv.create_or_update_secret(path="apps/web/db", secret={"username": "web", "password": CANARIES[1]})
    apply(
        env.cluster,
        mapping(
            "web-db",
            env.namespace,
            "web-db",
            [
                entry("user", "bao", "apps/web/db", prop="username"),
                entry("password", "bao", "apps/web/db", prop="password"),
                entry("old-password", "bao", "apps/web/db", version="1", prop="password"),
            ],
        ),
    )
    data = eventually(lambda: secret_data(env.cluster, env.namespace, "web-db"), what="Secret web-db")
    assert data == {"user": "web", "password": CANARIES[1], "old-password": CANARIES[0]}
    obj = eventually(lambda: ready(env, "secretmapping", "web-db"), what="mapping Ready")
    assert condition(obj)["reason"] == "Synced"  # type: ignore[index]
    secret = get(env.cluster, "secret", env.namespace, "web-db")
    assert secret is not None
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("SecretMapping", "web-db", obj["metadata"]["uid"])
    assert secret["metadata"]["labels"]["strongroom.dev/managed"] == "true"


def test_refresh_that_finds_nothing_new_writes_nothing(env: Env) -> None:
    eventually(lambda: ready(env, "secretmapping", "web-db"), what="mapping Ready")
    before = (
        get(env.cluster, "secret", env.namespace, "web-db"),
        get(env.cluster, "secretmapping", env.namespace, "web-db"),
    )
    time.sleep(6)  # three refresh intervals of 2s
    after = (
        get(env.cluster, "secret", env.namespace, "web-db"),
        get(env.cluster, "secretmapping", env.namespace, "web-db"),
    )
    assert before[0]["metadata"]["resourceVersion"] == after[0]["metadata"]["resourceVersion"]  # type: ignore[index]
    assert before[1]["metadata"]["resourceVersion"] == after[1]["metadata"]["resourceVersion"]  # type: ignore[index]
    reads = [
        line
        for line in env.operator.metrics().splitlines()
        if line.startswith("strongroom_store_requests_total")
    ]
    assert any('operation="read"' in line and 'status="ok"' in line for line in reads)


def operator_requests(env: Env, resource: str, name: str, since: float) -> list[str]:
    """Verbs of the operator's requests about one object of this module's namespace since `since` (epoch
    seconds), from the API server's audit log."""
    verbs = []
    with Path(env.cluster.info["audit_log"]).open() as lines:
        for line in lines:
            event = json.loads(line)
            ref = event.get("objectRef") or {}
            if (
                str(event.get("userAgent", "")).startswith("strongroom-operator/")
                and (ref.get("resource"), ref.get("namespace"), ref.get("name"))
                == (resource, env.namespace, name)
                and datetime.fromisoformat(event["requestReceivedTimestamp"]).timestamp() >= since
            ):
                verbs.append(event["verb"])
    return verbs


def test_refresh_that_finds_nothing_new_asks_nothing_about_the_secret(env: Env) -> None:
    """The watch of owned objects knows the Secret holds what a refresh would write: no GET, no write."""
    eventually(lambda: ready(env, "secretmapping", "web-db"), what="mapping Ready")
    since = time.time()
    reconciles = metric(env, "strongroom_reconciles_total", 'kind="SecretMapping"')
    time.sleep(5)  # two refresh intervals of 2s
    assert metric(env, "strongroom_reconciles_total", 'kind="SecretMapping"') >= reconciles + 2
    assert operator_requests(env, "secrets", "web-db", since) == []


def test_a_key_removed_from_the_spec_is_removed_from_the_secret(env: Env) -> None:
    """The first sync creates the Secret with a plain create, whose fields server-side apply alone would
    never remove: a key dropped from the spec must still go, and one renamed must not stay behind."""
    kv = env.bao.secrets.kv.v2
    kv.create_or_update_secret(path="apps/shrinking", secret={"a": "1", "b": "2", "c": "3"})
    entries = [entry(k, "bao", "apps/shrinking", prop=k) for k in "abc"]
    apply(env.cluster, mapping("shrinking", env.namespace, "shrinking", entries))
    eventually(
        lambda: secret_data(env.cluster, env.namespace, "shrinking") == {"a": "1", "b": "2", "c": "3"},
        what="the first sync",
    )
    apply(env.cluster, mapping("shrinking", env.namespace, "shrinking", entries[:2]))
    eventually(
        lambda: secret_data(env.cluster, env.namespace, "shrinking") == {"a": "1", "b": "2"},
        what="key c removed",
    )
    renamed = [entries[0], entry("b2", "bao", "apps/shrinking", prop="b")]
    apply(env.cluster, mapping("shrinking", env.namespace, "shrinking", renamed))
    eventually(
        lambda: secret_data(env.cluster, env.namespace, "shrinking") == {"a": "1", "b2": "2"},
        what="key b renamed to b2",
    )
    eventually(lambda: ready(env, "secretmapping", "shrinking"), what="mapping Ready")


def test_rotation_is_picked_up_by_refresh(env: Env) -> None:
    kv = env.bao.secrets.kv.v2
    kv.create_or_update_secret(path="apps/rotating", secret={"value": "first"})
    apply(
        env.cluster,
        # No refreshInterval: the operator's --refresh-interval=2s (an admin's choice, below the 10s floor
        # a tenant's spec.refreshInterval has) keeps the test short.
        mapping("rotating", env.namespace, "rotating", [entry("v", "bao", "apps/rotating")]),
    )
    eventually(
        lambda: secret_data(env.cluster, env.namespace, "rotating") == {"v": "first"}, what="first value"
    )
    kv.create_or_update_secret(path="apps/rotating", secret={"value": CANARIES[2]})
    eventually(
        lambda: secret_data(env.cluster, env.namespace, "rotating") == {"v": CANARIES[2]}, what="rotated"
    )


def test_missing_secret_is_a_condition_and_resolves_when_created(env: Env) -> None:
    apply(
        env.cluster, mapping("late-secret", env.namespace, "late-secret", [entry("k", "bao", "apps/not-yet")])
    )
    assert (
        eventually(lambda: reason(env, "secretmapping", "late-secret"), what="failure reason")
        == "SecretNotFound"
    )
    assert get(env.cluster, "secret", env.namespace, "late-secret") is None
    message = condition(get(env.cluster, "secretmapping", env.namespace, "late-secret"))["message"]  # type: ignore[index]
    assert "apps/not-yet" in message
    env.bao.secrets.kv.v2.create_or_update_secret(path="apps/not-yet", secret={"value": "here"})
    eventually(
        lambda: secret_data(env.cluster, env.namespace, "late-secret") == {"k": "here"},
        timeout=60,
        what="Secret after the secret appeared",
    )


def test_store_created_later_is_used_without_redeploying(env: Env) -> None:
    env.bao.secrets.kv.v2.create_or_update_secret(path="apps/late-store", secret={"value": "ok"})
    apply(
        env.cluster,
        mapping("late-store", env.namespace, "late-store", [entry("k", "late-bao", "apps/late-store")]),
    )
    assert (
        eventually(lambda: reason(env, "secretmapping", "late-store"), what="failure reason")
        == "StoreNotFound"
    )
    bao = env.stores.info("openbao")
    apply(
        env.cluster,
        k8s_secret(env.namespace, "late-bao-token", {"token": bao["root_token"]}),
        vault_store("late-bao", env.namespace, bao["addr"], "late-bao-token"),
    )
    eventually(
        lambda: secret_data(env.cluster, env.namespace, "late-store") == {"k": "ok"}, what="resolved mapping"
    )


def test_wrong_credentials_are_reported_on_the_store(env: Env) -> None:
    bao = env.stores.info("openbao")
    apply(
        env.cluster,
        k8s_secret(env.namespace, "bad-token", {"token": CANARIES[3]}),
        vault_store("bad-bao", env.namespace, bao["addr"], "bad-token"),
    )
    assert (
        eventually(lambda: reason(env, "secretstore", "bad-bao"), what="store failure")
        == "AuthenticationFailed"
    )
    apply(
        env.cluster, mapping("bad-creds", env.namespace, "bad-creds", [entry("k", "bad-bao", "apps/web/db")])
    )
    assert (
        eventually(lambda: reason(env, "secretmapping", "bad-creds"), what="mapping failure")
        == "AuthenticationFailed"
    )


def test_operator_namespace_store_enforces_access(env: Env) -> None:
    bao = env.stores.info("openbao")
    apply(
        env.cluster,
        vault_store(
            "team-only",
            OPERATOR_NAMESPACE,
            bao["addr"],
            "bao-token",
            access=[{"namespaces": ["team-a"], "keyPrefixes": ["apps/"]}],
        ),
    )
    apply(
        env.cluster,
        mapping("not-allowed", env.namespace, "not-allowed", [entry("k", "team-only", "apps/web/db")]),
    )
    assert (
        eventually(lambda: reason(env, "secretmapping", "not-allowed"), what="refusal") == "StoreNotAllowed"
    )
    assert get(env.cluster, "secret", env.namespace, "not-allowed") is None


def test_foreign_secret_is_never_overwritten(env: Env) -> None:
    apply(env.cluster, k8s_secret(env.namespace, "hand-made", {"mine": "keep"}))
    apply(
        env.cluster,
        mapping("hand-made", env.namespace, "hand-made", [entry("k", "bao", "apps/web/db", prop="username")]),
    )
    assert eventually(lambda: reason(env, "secretmapping", "hand-made"), what="conflict") == "SecretConflict"
    assert secret_data(env.cluster, env.namespace, "hand-made") == {"mine": "keep"}


def test_two_default_stores_are_a_condition(env: Env) -> None:
    bao = env.stores.info("openbao")
    labels = {"metadata": {"labels": {"strongroom.dev/default-store": "true"}}}
    apply(
        env.cluster,
        k8s_secret(env.namespace, "bao-token", {"token": bao["root_token"]}),
        vault_store("default-a", env.namespace, bao["addr"], "bao-token", **json.loads(json.dumps(labels))),
        vault_store("default-b", env.namespace, bao["addr"], "bao-token", **json.loads(json.dumps(labels))),
    )

    def conflict() -> bool:
        conds = [
            condition(get(env.cluster, "secretstore", env.namespace, n), "DefaultStore")
            for n in ("default-a", "default-b")
        ]
        return all(c is not None and c["reason"] == "DefaultStoreConflict" for c in conds)

    eventually(conflict, what="DefaultStoreConflict on both stores")
    env.cluster.kubectl_run("-n", env.namespace, "delete", "secretstore", "default-b")
    eventually(
        lambda: (
            condition(get(env.cluster, "secretstore", env.namespace, "default-a"), "DefaultStore") is None
        ),
        what="conflict cleared",
    )


def test_store_stopped_and_restarted(env: Env, tmp_path: Path) -> None:
    flaky: Service = testenv.starter("openbao")(tmp_path / "flaky-bao")
    try:
        info = flaky.info
        client = hvac.Client(url=info["addr"], token=info["root_token"])
        client.secrets.kv.v2.create_or_update_secret(path="flaky", secret={"value": "survives"})
        apply(
            env.cluster,
            k8s_secret(env.namespace, "flaky-token", {"token": info["root_token"]}),
            vault_store("flaky", env.namespace, info["addr"], "flaky-token"),
            mapping("flaky", env.namespace, "flaky", [entry("k", "flaky", "flaky")]),  # the operator's 2s
        )
        eventually(
            lambda: secret_data(env.cluster, env.namespace, "flaky") == {"k": "survives"}, what="first sync"
        )

        flaky.processes[0].stop()
        assert (
            eventually(lambda: reason(env, "secretmapping", "flaky"), what="outage condition")
            == "StoreUnavailable"
        )
        assert (
            eventually(lambda: reason(env, "secretstore", "flaky"), what="store outage") == "StoreUnavailable"
        )
        assert secret_data(env.cluster, env.namespace, "flaky") == {"k": "survives"}  # kept, never blanked

        flaky.processes[0].start()  # same port and root token; dev storage is in memory, so seed again
        flaky.processes[0].wait_ready(lambda: _healthy(info["addr"]))
        client.secrets.kv.v2.create_or_update_secret(path="flaky", secret={"value": "recovered"})
        eventually(
            lambda: secret_data(env.cluster, env.namespace, "flaky") == {"k": "recovered"},
            timeout=90,
            what="recovery",
        )
        eventually(lambda: ready(env, "secretmapping", "flaky"), what="Ready again")
    finally:
        flaky.stop()


def _healthy(addr: str) -> bool:
    from testenv.process import http_ok

    return http_ok(f"{addr}/v1/sys/health")


def test_deleting_the_mapping_collects_its_secret(env: Env) -> None:
    env.bao.secrets.kv.v2.create_or_update_secret(path="apps/short-lived", secret={"value": "x"})
    apply(
        env.cluster,
        mapping("short-lived", env.namespace, "short-lived", [entry("k", "bao", "apps/short-lived")]),
    )
    eventually(lambda: secret_data(env.cluster, env.namespace, "short-lived"), what="Secret")
    env.cluster.kubectl_run("-n", env.namespace, "delete", "secretmapping", "short-lived")
    eventually(
        lambda: get(env.cluster, "secret", env.namespace, "short-lived") is None,
        what="Secret garbage-collected",
    )


class _Keys:
    """Credentials for seeding through our own store clients (the backends are SDK-tested elsewhere)."""

    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values

    async def secret_key(self, name: str, key: str) -> SecretValue:
        return SecretValue(self.values[(name, key)])

    async def service_account_token(self, service_account: str | None, audience: str | None) -> str:
        raise AssertionError("not used")


def _store_object(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": OPERATOR_NAMESPACE},
        "spec": {**spec, "access": [{"namespaces": ["sm-tests"], "keyPrefixes": ["multi-", "plain-"]}]},
    }


def test_one_mapping_reads_from_five_kinds_of_store(env: Env) -> None:
    aws, gcp, azure = env.stores.info("moto"), env.stores.info("gcp"), env.stores.info("azure")
    specs = {
        "aws": {
            "awssm": {
                "region": aws["region"],
                "endpoint": aws["endpoint"],
                "auth": {
                    "accessKeyIDSecretRef": {"name": "aws-keys", "key": "id"},
                    "secretAccessKeySecretRef": {"name": "aws-keys", "key": "secret"},
                },
            }
        },
        "gcp": {"gcpsm": {"projectID": gcp["project"], "endpoint": f"http://{gcp['target']}"}},
        "azure": {
            "azurekv": {
                "url": azure["url"],
                "tenantID": azure["tenant_id"],
                "endpoint": azure["authority"],
                "caBundle": Path(azure["ca_bundle"]).read_text(),
                "auth": {
                    "clientID": azure["client_id"],
                    "clientSecretSecretRef": {"name": "azure-sp", "key": "secret"},
                },
            }
        },
        "k8s": {"kubernetes": {"namespace": env.namespace}},
    }
    keys = {
        ("aws-keys", "id"): moto.ACCESS_KEY_ID,
        ("aws-keys", "secret"): moto.SECRET_ACCESS_KEY,
        ("azure-sp", "secret"): azure["client_secret"],
    }

    async def seed() -> None:
        values = {"aws": json.dumps({"token": CANARIES[0]}), "gcp": CANARIES[1], "azure": CANARIES[2]}
        for name, value in values.items():
            store = SecretStore.model_validate(_store_object(name, specs[name]))
            client = await build_store_client(store, _Keys(keys), operator_namespace=OPERATOR_NAMESPACE)
            try:
                await client.write(f"multi-{name}", SecretValue(value))
            finally:
                await client.close()

    asyncio.run(seed())
    apply(
        env.cluster,
        k8s_secret(
            OPERATOR_NAMESPACE, "aws-keys", {"id": moto.ACCESS_KEY_ID, "secret": moto.SECRET_ACCESS_KEY}
        ),
        k8s_secret(OPERATOR_NAMESPACE, "azure-sp", {"secret": azure["client_secret"]}),
        k8s_secret(env.namespace, "plain-source", {"api-key": CANARIES[3]}),
        *(_store_object(name, spec) for name, spec in specs.items()),
    )
    for name in specs:
        eventually(partial(ready, env, "secretstore", name, OPERATOR_NAMESPACE), what=f"store {name} Ready")
    env.bao.secrets.kv.v2.create_or_update_secret(path="multi/vault", secret={"value": "from-vault"})
    apply(
        env.cluster,
        mapping(
            "multi",
            env.namespace,
            "multi",
            [
                entry("vault", "bao", "multi/vault"),
                entry("aws", "aws", "multi-aws", prop="token"),
                entry("aws-current", "aws", "multi-aws", version="AWSCURRENT", prop="token"),
                entry("gcp", "gcp", "multi-gcp", version="1"),
                entry("azure", "azure", "multi-azure"),
                entry("k8s", "k8s", "plain-source", prop="api-key"),
            ],
        ),
    )
    data = eventually(lambda: secret_data(env.cluster, env.namespace, "multi"), what="multi-store Secret")
    assert data == {
        "vault": "from-vault",
        "aws": CANARIES[0],
        "aws-current": CANARIES[0],
        "gcp": CANARIES[1],
        "azure": CANARIES[2],
        "k8s": CANARIES[3],
    }


def test_no_canary_value_leaks(env: Env) -> None:
    """Runs last: logs, Events, CR status and annotations never contain a seeded secret value."""
    places = {
        "operator log": env.operator.logs(),
        "events": env.cluster.kubectl_run("get", "events", "-A", "-o", "json").stdout,
        "strongroom objects": env.cluster.kubectl_run(
            "get", "secretstores,secretmappings", "-A", "-o", "json"
        ).stdout,
        "secret metadata": json.dumps(
            [
                s["metadata"]
                for s in json.loads(env.cluster.kubectl_run("get", "secrets", "-A", "-o", "json").stdout)[
                    "items"
                ]
            ]
        ),
    }
    assert places["operator log"].count("\n") > 10, "operator wrote (almost) no log: the check proves nothing"
    for where, text in places.items():
        for canary in CANARIES:
            assert canary not in text, f"canary value leaked into {where}"
