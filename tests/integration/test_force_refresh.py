"""Force-refresh of a SecretMapping (`strongroom.dev/force-refresh`): real operator, apiserver and OpenBao.

The operator refreshes every hour and reuses store reads for an hour, so anything that reaches a Secret
within the test came from the forced refresh, and a read answered from the cache would be visible.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import hvac
import pytest

import testenv
from strongroom.api.constants import FORCE_REFRESH_ANNOTATION
from testenv.operator import OperatorProcess, start_operator
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


@dataclass
class Env:
    cluster: Cluster
    start_operator: Callable[[], OperatorProcess]
    bao: hvac.Client
    namespace: str
    operator: OperatorProcess | None = None

    def restart_operator(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        self.operator = self.start_operator()

    def store_reads(self) -> float:
        """Requests the operator made to this namespace's store (after coalescing and caching)."""
        assert self.operator is not None
        total = 0.0
        for line in self.operator.metrics().splitlines():
            if (
                line.startswith("strongroom_store_requests_total{")
                and f'store="{self.namespace}/bao"' in line
                and 'operation="read"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def annotate(self, name: str, annotation: str, value: str) -> None:
        self.cluster.kubectl_run(
            "-n", self.namespace, "annotate", "--overwrite", "secretmapping", name, f"{annotation}={value}"
        )

    def force(self, name: str, value: str) -> None:
        self.annotate(name, FORCE_REFRESH_ANNOTATION, value)

    def honoured(self, name: str) -> str | None:
        obj = get(self.cluster, "secretmapping", self.namespace, name)
        return ((obj or {}).get("status") or {}).get("lastForceRefresh")

    def resource_version(self, name: str) -> str:
        obj = get(self.cluster, "secretmapping", self.namespace, name)
        assert obj is not None
        version: str = obj["metadata"]["resourceVersion"]
        return version

    def secret_version(self, name: str) -> str:
        secret = get(self.cluster, "secret", self.namespace, name)
        assert secret is not None
        version: str = secret["metadata"]["resourceVersion"]
        return version


@pytest.fixture(scope="module")
def env(
    cluster: Cluster, stores: testenv.Environment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    cluster.install_crds()
    suffix = uuid.uuid4().hex[:6]
    operator_namespace, namespace = f"force-sys-{suffix}", f"force-{suffix}"
    for name in (operator_namespace, namespace):
        ensure_namespace(cluster, name)
    bao = stores.info("openbao")
    apply(
        cluster,
        k8s_secret(namespace, "bao-token", {"token": bao["root_token"]}),
        vault_store("bao", namespace, bao["addr"], "bao-token"),
    )
    log = tmp_path_factory.mktemp("force") / "operator.log"
    env = Env(
        cluster,
        partial(
            start_operator,
            cluster.kubeconfig,
            log,
            ["-n", namespace, "--refresh-interval=1h", "--store-read-ttl=1h", "--log-level=debug"],
            operator_namespace=operator_namespace,
        ),
        hvac.Client(url=bao["addr"], token=bao["root_token"]),
        namespace,
    )
    env.restart_operator()
    try:
        yield env
    finally:
        if env.operator is not None:
            env.operator.stop()
        for name in (namespace, operator_namespace):
            cluster.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


def _synced(env: Env, name: str, path: str, value: str) -> None:
    """Create mapping `name` (key `v` from `path`) with the store holding `value`; wait until it is Ready."""
    env.bao.secrets.kv.v2.create_or_update_secret(path=path, secret={"value": value})
    apply(env.cluster, mapping(name, env.namespace, name, [entry("v", "bao", path)]))
    eventually(lambda: secret_data(env.cluster, env.namespace, name) == {"v": value}, what=f"{name} synced")
    eventually(
        lambda: (
            (condition(get(env.cluster, "secretmapping", env.namespace, name)) or {}).get("status") == "True"
        ),
        what=f"{name} Ready",
    )


def test_a_new_value_rereads_the_store_at_once_past_the_read_cache(env: Env) -> None:
    _synced(env, "rotated", "force/rotated", "one")
    env.bao.secrets.kv.v2.create_or_update_secret(path="force/rotated", secret={"value": "two"})
    # Without a force-refresh the cached read answers: a second mapping of the same key gets the old value.
    apply(env.cluster, mapping("sibling", env.namespace, "sibling", [entry("v", "bao", "force/rotated")]))
    eventually(lambda: secret_data(env.cluster, env.namespace, "sibling") == {"v": "one"}, what="sibling")
    assert secret_data(env.cluster, env.namespace, "rotated") == {"v": "one"}

    env.force("rotated", "2026-12-05T12:00:00Z")
    eventually(
        lambda: secret_data(env.cluster, env.namespace, "rotated") == {"v": "two"}, timeout=10, what="forced"
    )
    eventually(lambda: env.honoured("rotated") == "2026-12-05T12:00:00Z", what="recorded as honoured")
    assert secret_data(env.cluster, env.namespace, "sibling") == {"v": "one"}  # only the annotated one


def test_the_same_value_again_refreshes_nothing(env: Env) -> None:
    _synced(env, "repeated", "force/repeated", "one")
    env.force("repeated", "first")
    eventually(lambda: env.honoured("repeated") == "first", what="first value honoured")
    env.bao.secrets.kv.v2.create_or_update_secret(path="force/repeated", secret={"value": "two"})
    reads, secret_version = env.store_reads(), env.secret_version("repeated")

    env.force("repeated", "first")  # the same value again
    env.annotate("repeated", "example.com/note", "x")  # and an event that carries it to the operator
    time.sleep(3)
    assert env.store_reads() == reads  # the store holds something new, but nobody asked again
    assert env.secret_version("repeated") == secret_version
    assert secret_data(env.cluster, env.namespace, "repeated") == {"v": "one"}
    assert env.honoured("repeated") == "first"


def test_a_new_value_with_nothing_new_in_the_store_writes_no_secret(env: Env) -> None:
    _synced(env, "unchanged", "force/unchanged", "same")
    reads, secret_version = env.store_reads(), env.secret_version("unchanged")
    env.force("unchanged", "1")
    eventually(lambda: env.honoured("unchanged") == "1", what="value honoured")
    assert env.store_reads() == reads + 1  # the store was read again, not the hour-long cache
    assert env.secret_version("unchanged") == secret_version
    status_version = env.resource_version("unchanged")
    time.sleep(2)  # the status write's own event causes no second forced read and no further write
    assert env.resource_version("unchanged") == status_version
    assert env.store_reads() == reads + 1


def test_a_value_set_while_the_operator_was_down_is_honoured_when_it_starts(env: Env) -> None:
    _synced(env, "restarted", "force/restarted", "one")
    env.force("restarted", "before")
    eventually(lambda: env.honoured("restarted") == "before", what="first value honoured")
    assert env.operator is not None
    env.operator.stop()
    env.operator = None
    env.force("restarted", "while-down")
    env.restart_operator()
    # level-based: the status, not an event the stopped operator missed, says it is still to be done
    eventually(lambda: env.honoured("restarted") == "while-down", what="the value set while down honoured")
