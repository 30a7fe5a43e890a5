"""A tenant's hostile Template-driver Resources and over-the-floor specs, against the real operator.

The tenant acts through impersonation with the wildcard strongroom.dev Role of its own namespace
(tests/integration/tenancy.py). What each hostile object must get: a condition that says which limit it
hit; what everyone else must get: their objects Ready meanwhile, from the same operator process (same PID,
never restarted). Timing is not asserted here (bench/blast_radius.py measures it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from strongroom.api.resource import DRIVER_INPUTS_MAX_BYTES
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from tests.conftest import Cluster
from tests.integration.helpers import condition, ensure_namespace, eventually, get, secret_data
from tests.integration.tenancy import Tenant, make_tenant
from tests.unit.test_drivers_sandbox import ALIAS_BOMB, MEMORY_HOG, REGEX_BOMB

pytestmark = pytest.mark.integration

API = "strongroom.dev/v1alpha1"
#: Seconds a Template-driver call may take here (the operator's --template-timeout).
TEMPLATE_TIMEOUT = 2


@dataclass
class Env:
    cluster: Cluster
    operator: OperatorProcess
    attacker: Tenant
    bystander: Tenant


@pytest.fixture(scope="module")
def env(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    suffix = uuid.uuid4().hex[:6]
    attacker = make_tenant(cluster, f"tpl-attacker-{suffix}")
    bystander = make_tenant(cluster, f"tpl-bystander-{suffix}")
    log: Path = tmp_path_factory.mktemp("operator") / "operator.log"
    operator = start_operator(
        cluster.kubeconfig,
        log,
        [f"--template-timeout={TEMPLATE_TIMEOUT}s", "--template-workers=2", "--log-level=debug"],
    )
    try:
        yield Env(cluster, operator, attacker, bystander)
    finally:
        operator.stop()


def _template_resource(name: str, namespace: str, outputs: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Resource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "config",
            "id": f"shared.{name}",
            "driverType": "humanitec/template",
            "driverInputs": {"values": {"templates": {"outputs": outputs}}},
        },
    }


def _ready_condition(env: Env, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    obj = get(env.cluster, kind, namespace, name)
    cond = condition(obj)
    if cond is None or obj is None:
        return None
    generation = (obj.get("metadata") or {}).get("generation")
    return cond if cond.get("observedGeneration") == generation else None


def _reason(env: Env, kind: str, namespace: str, name: str) -> str | None:
    cond = _ready_condition(env, kind, namespace, name)
    return None if cond is None or cond["status"] == "True" else cond["reason"]


def _ready(env: Env, kind: str, namespace: str, name: str) -> bool:
    cond = _ready_condition(env, kind, namespace, name)
    return cond is not None and cond["status"] == "True"


def _bystander_objects(env: Env, name: str) -> None:
    """An echo Resource and a SecretMapping (from a Kubernetes store of its own namespace)."""
    namespace = env.bystander.namespace
    env.cluster.kubectl_run(
        "-n", namespace, "create", "secret", "generic", f"{name}-source", "--from-literal=value=hello",
    )  # fmt: skip
    env.bystander.apply(
        {
            "apiVersion": API,
            "kind": "Resource",
            "metadata": {"name": f"{name}-echo", "namespace": namespace},
            "spec": {
                "type": "dns",
                "id": f"shared.{name}-echo",
                "driverType": "humanitec/echo",
                "driverInputs": {"values": {"host": f"{name}.example.com"}},
            },
        },
        {
            "apiVersion": API,
            "kind": "SecretStore",
            "metadata": {"name": f"{name}-own", "namespace": namespace},
            "spec": {"kubernetes": {"namespace": namespace}},
        },
        {
            "apiVersion": API,
            "kind": "SecretMapping",
            "metadata": {"name": f"{name}-mapping", "namespace": namespace},
            "spec": {
                "secretName": f"{name}-copied",
                "secretData": [
                    {
                        "secretKey": "greeting",
                        "secretStoreName": f"{name}-own",
                        "remoteRef": {"key": f"{name}-source", "property": "value"},
                    }
                ],
            },
        },
    )


def test_hostile_templates_end_in_template_limit_exceeded_while_others_become_ready(env: Env) -> None:
    pid = env.operator.process.pid
    attacker = env.attacker.namespace
    # More regex bombs than render processes: the pool is busy for several time limits in a row.
    hostile = {
        "alias-bomb": ALIAS_BOMB,
        "memory-hog": MEMORY_HOG,
        **{f"regex-bomb-{i}": REGEX_BOMB for i in range(3)},
    }
    env.attacker.apply(*(_template_resource(name, attacker, text) for name, text in hostile.items()))
    _bystander_objects(env, "during")

    eventually(lambda: _ready(env, "resource", env.bystander.namespace, "during-echo"), what="echo Ready")
    eventually(
        lambda: _ready(env, "secretmapping", env.bystander.namespace, "during-mapping"),
        what="SecretMapping Ready",
    )
    assert secret_data(env.cluster, env.bystander.namespace, "during-copied") == {"greeting": "hello"}

    messages: dict[str, str] = {}
    for name in hostile:
        reason = eventually(partial(_reason, env, "resource", attacker, name), timeout=120, what=name)
        assert reason == "TemplateLimitExceeded", name
        cond = _ready_condition(env, "resource", attacker, name)
        assert cond is not None
        messages[name] = cond["message"]
    assert "excessive aliasing" in messages["alias-bomb"]
    assert "memory" in messages["memory-hog"]
    assert "128Mi" in messages["memory-hog"]
    for i in range(3):
        assert f"limit of {TEMPLATE_TIMEOUT}s" in messages[f"regex-bomb-{i}"]
        assert "--template-timeout" in messages[f"regex-bomb-{i}"]

    # The same operator process throughout: never blocked into a failed probe, never OOM-killed.
    assert env.operator.process.alive()
    assert env.operator.process.pid == pid
    # And it still serves a well-behaved template afterwards.
    env.bystander.apply(_template_resource("after", env.bystander.namespace, "greeting: hello\n"))
    eventually(lambda: _ready(env, "resource", env.bystander.namespace, "after"), what="template Ready")


def test_refresh_interval_below_the_floor_is_rejected_at_apply_time(env: Env) -> None:
    for interval in ("1us", "1ns", "9s"):
        name = f"too-eager-{interval}"
        mapping = {
            "apiVersion": API,
            "kind": "SecretMapping",
            "metadata": {"name": name, "namespace": env.attacker.namespace},
            "spec": {
                "secretName": "too-eager",
                "refreshInterval": interval,
                "secretData": [
                    {"secretKey": "k", "secretStoreName": "any", "remoteRef": {"key": "k"}},
                ],
            },
        }
        result = env.attacker.apply(mapping, check=False)
        assert result.returncode != 0, interval
        assert "spec.refreshInterval" in result.stderr, result.stderr
        assert "must be 0 (never) or between 10s and 168h" in result.stderr, result.stderr
        assert get(env.cluster, "secretmapping", env.attacker.namespace, name) is None


def test_oversized_inputs_get_inputs_too_large(env: Env) -> None:
    attacker = env.attacker.namespace
    big = "x" * (DRIVER_INPUTS_MAX_BYTES + 1)
    env.attacker.apply(
        {
            "apiVersion": API,
            "kind": "Resource",
            "metadata": {"name": "oversized", "namespace": attacker},
            "spec": {
                "type": "config",
                "id": "shared.oversized",
                "driverType": "humanitec/echo",
                "driverInputs": {"values": {"blob": big}},
            },
        }
    )
    assert eventually(lambda: _reason(env, "resource", attacker, "oversized"), what="condition") == (
        "InputsTooLarge"
    )
    cond = _ready_condition(env, "resource", attacker, "oversized")
    assert cond is not None
    assert f"over the limit of {DRIVER_INPUTS_MAX_BYTES} bytes" in cond["message"]
    assert big not in cond["message"]
