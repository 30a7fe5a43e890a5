"""Operator mode's apply / prune / wait logic against an in-memory stand-in for the API server."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

from strongroom.api import constants as c
from strongroom.orchestrator.emit import CRSet
from strongroom.orchestrator.kube import ClusterError
from strongroom.orchestrator.operator_mode import DeployOutcome, check_drivers, deploy, with_pods
from strongroom.orchestrator.render import Rendered, render
from strongroom.orchestrator.status import ObjectState, Pods

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "app"


class FakeCluster:
    """Objects of the app namespace by (kind, name); a Resource being deleted lingers for `finalizer_polls`
    observations. Objects of other namespaces (the operator's Drivers) by (kind, namespace, name)."""

    def __init__(self, finalizer_polls: int = 2) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.elsewhere: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.log: list[str] = []
        self.finalizer_polls = finalizer_polls
        self.deleting: dict[tuple[str, str], int] = {}
        self.ready = True

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        key = (manifest["kind"], manifest["metadata"]["name"])
        obj = copy.deepcopy(manifest)
        previous = self.objects.get(key)
        generation = (previous or {}).get("metadata", {}).get("generation", 0) + 1
        obj["metadata"]["generation"] = generation
        if self.ready:
            obj["status"] = {
                "observedGeneration": generation,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Done", "message": ""}],
            }
        self.objects[key] = obj
        self.log.append(f"apply {key[0]}/{key[1]}")
        return obj

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        if namespace not in (None, "shop-dev"):
            return copy.deepcopy(self.elsewhere.get((kind, namespace, name)))
        key = (kind, name)
        if key in self.deleting:
            self.deleting[key] -= 1
            if self.deleting[key] <= 0:
                del self.deleting[key]
                self.objects.pop(key, None)
                self.log.append(f"gone {kind}/{name}")
        return copy.deepcopy(self.objects.get(key))

    async def list(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str]
    ) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(obj)
            for (k, _), obj in sorted(self.objects.items())
            if k == kind and all(obj["metadata"].get("labels", {}).get(a) == b for a, b in labels.items())
        ]

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        key = (kind, name)
        if key not in self.objects:
            return False
        self.log.append(f"delete {kind}/{name}")
        if kind == "Resource":
            self.deleting[key] = self.finalizer_polls
        else:
            del self.objects[key]
        return True


def rendered_example(score: Path | None = None, definitions: Path = EXAMPLE / "definitions") -> Rendered:
    return render(
        [score or EXAMPLE / "score" / "web.yaml"],
        [definitions],
        EXAMPLE / "values.yaml",
        app="shop",
        env="dev",
    )


def example(score: Path | None = None) -> CRSet:
    return rendered_example(score).crset


def run(
    cluster: FakeCluster, crset: CRSet, wait: float = 5.0
) -> tuple[DeployOutcome, list[list[ObjectState]]]:
    seen: list[list[ObjectState]] = []
    outcome = asyncio.run(
        deploy(cluster, crset, wait_seconds=wait, on_progress=lambda s, _: seen.append(s), interval=0.001)  # type: ignore[arg-type]
    )
    return outcome, seen


def test_applies_in_order_and_is_ready() -> None:
    cluster = FakeCluster()
    outcome, _ = run(cluster, example())
    assert outcome.ok
    assert not outcome.pruned
    assert [line for line in cluster.log if line.startswith("apply")] == [
        "apply Namespace/shop-dev",
        "apply SecretMapping/shared-values",
        "apply Resource/environment-shared-values",
        "apply Resource/postgres-web-db",
        "apply Workload/web",
    ]
    assert {(s.kind, s.name) for s in outcome.states} == {
        ("SecretMapping", "shared-values"),
        ("Resource", "environment-shared-values"),
        ("Resource", "postgres-web-db"),
        ("Workload", "web"),
    }


def test_prunes_the_removed_resource_and_waits_until_it_is_gone(tmp_path: Path) -> None:
    cluster = FakeCluster(finalizer_polls=3)
    run(cluster, example())
    # Something with the labels that the set never had, and something without them.
    stray = {
        "apiVersion": c.API_VERSION,
        "kind": "Workload",
        "metadata": {"name": "old", "labels": {"strongroom.dev/app": "shop", "strongroom.dev/env": "dev"}},
    }
    mine = {"apiVersion": c.API_VERSION, "kind": "Workload", "metadata": {"name": "by-hand", "labels": {}}}
    asyncio.run(cluster.apply(stray))
    asyncio.run(cluster.apply(mine))
    score = tmp_path / "web.yaml"
    score.write_text(
        (EXAMPLE / "score" / "web.yaml").read_text().split("containers:")[0]
        + "containers:\n  main:\n    image: x\nresources:\n  env:\n    type: environment\n"
    )
    cluster.log.clear()
    outcome, seen = run(cluster, example(score))
    assert outcome.ok
    assert outcome.pruned == ["Workload/old", "Resource/postgres-web-db"]
    assert ("Workload", "by-hand") in cluster.objects
    assert any(s.deleting and not s.ready for states in seen for s in states)  # it was waited for
    assert "gone Resource/postgres-web-db" in cluster.log
    assert not any(kind == "Driver" for kind, _ in cluster.objects)


def test_prunes_driver_copies_that_earlier_versions_put_into_the_app_namespace() -> None:
    """A copy would be found before the platform's Driver, and the operator refuses to sign for it."""
    cluster = FakeCluster()
    labels = {"strongroom.dev/app": "shop", "strongroom.dev/env": "dev"}
    copied = {
        "apiVersion": c.API_VERSION,
        "kind": "Driver",
        "metadata": {"name": "postgres", "labels": labels},
    }
    by_hand = {"apiVersion": c.API_VERSION, "kind": "Driver", "metadata": {"name": "mine", "labels": {}}}
    asyncio.run(cluster.apply(copied))
    asyncio.run(cluster.apply(by_hand))
    outcome, _ = run(cluster, example())
    assert outcome.ok
    assert outcome.pruned == ["Driver/postgres"]
    assert ("Driver", "mine") in cluster.objects


def platform_driver(allowed: list[str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"target": "http://postgres-driver.strongroom-system.svc:8080/"}
    if allowed is not None:
        spec["allowedNamespaces"] = allowed
    meta = {"name": "postgres", "namespace": "strongroom-system", "generation": 1}
    return {"apiVersion": c.API_VERSION, "kind": "Driver", "metadata": meta, "spec": spec}


def test_the_deploy_checks_that_the_platform_driver_is_installed_and_allows_the_namespace() -> None:
    plan = rendered_example().plan
    cluster = FakeCluster()

    def problems() -> list[str]:
        return asyncio.run(check_drivers(cluster, plan, "strongroom-system"))  # type: ignore[arg-type]

    assert problems() == [
        "Driver 'postgres' is not installed in namespace strongroom-system: apply it there with "
        "allowedNamespaces [shop-dev] (strongroom render --drivers prints it)"
    ]
    for closed in (None, [], ["shop-prod"]):
        cluster.elsewhere[("Driver", "strongroom-system", "postgres")] = platform_driver(closed)
        [line] = problems()
        assert line.startswith("Driver 'postgres' in namespace strongroom-system does not allow namespace ")
        assert "add shop-dev to its spec.allowedNamespaces (strongroom render --drivers prints it)" in line
    for allowed in (["shop-dev"], ["other", "shop-dev"], ["*"]):
        cluster.elsewhere[("Driver", "strongroom-system", "postgres")] = platform_driver(allowed)
        assert problems() == []
    # Another operator namespace: the Driver there is what counts.
    assert asyncio.run(check_drivers(cluster, plan, "platform")) == [  # type: ignore[arg-type]
        "Driver 'postgres' is not installed in namespace platform: apply it there with allowedNamespaces "
        "[shop-dev] (strongroom render --drivers prints it)"
    ]


def test_a_driver_type_without_a_driver_object_in_the_definitions_is_checked_too(tmp_path: Path) -> None:
    definitions = tmp_path / "definitions"
    definitions.mkdir()
    text = (EXAMPLE / "definitions" / "postgres.yaml").read_text().split("---")[0]
    (definitions / "postgres.yaml").write_text(text)
    plan = rendered_example(definitions=definitions).plan
    assert plan.drivers == {}
    assert plan.remote_driver_types() == ["postgres"]
    [line] = asyncio.run(check_drivers(FakeCluster(), plan, "strongroom-system"))  # type: ignore[arg-type]
    assert line == (
        "Driver 'postgres' is not installed in namespace strongroom-system: apply it there with "
        "allowedNamespaces [shop-dev] (it is not among the definition files: get it from the driver's author)"
    )


def test_timeout_and_stalled() -> None:
    cluster = FakeCluster()
    cluster.ready = False
    outcome, _ = run(cluster, example(), wait=0.05)
    assert outcome.timed_out
    assert not outcome.ok
    stalled = FakeCluster()
    asyncio.run(
        stalled.apply(
            {"apiVersion": c.API_VERSION, "kind": "Resource", "metadata": {"name": "postgres-web-db"}}
        )
    )
    stalled.objects[("Resource", "postgres-web-db")]["status"] = {}

    async def stuck(manifest: dict[str, Any]) -> dict[str, Any]:
        obj = await FakeCluster.apply(stalled, manifest)
        if manifest["kind"] == "Resource":
            obj["status"]["conditions"] = [
                {"type": "Ready", "status": "False", "reason": "DriverRejected", "message": "400"},
                {"type": "Stalled", "status": "True", "reason": "DriverRejected", "message": "fix the spec"},
            ]
            stalled.objects[(obj["kind"], obj["metadata"]["name"])] = obj
        return obj

    stalled.apply = stuck  # type: ignore[method-assign]
    outcome, _ = run(stalled, example(), wait=30)
    assert not outcome.timed_out
    assert not outcome.ok
    assert any(state.stalled for state in outcome.states)


def test_the_outcome_has_each_workloads_pods_from_its_listed_deployment() -> None:
    cluster = FakeCluster()
    outcome, seen = run(cluster, example())
    (web,) = [state for state in outcome.states if state.kind == "Workload"]
    assert web.pods is None  # the stand-in renders no Deployment: none listed in the status
    assert all(state.pods is None for states in seen for state in states)  # read once, at the end
    cluster.objects[("Workload", "web")]["status"]["objects"] = [
        {"apiVersion": "v1", "kind": "Service", "name": "web"},
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
    ]
    cluster.objects[("Deployment", "web")] = {"spec": {"replicas": 2}, "status": {"readyReplicas": 1}}
    (web,) = [s for s in asyncio.run(with_pods(cluster, "shop-dev", outcome.states)) if s.kind == "Workload"]  # type: ignore[arg-type]
    assert web.pods == Pods(ready=1, desired=2)


def test_unreadable_pods_are_noted_not_fatal() -> None:
    class Forbidden(FakeCluster):
        async def get(
            self, api_version: str, kind: str, namespace: str | None, name: str
        ) -> dict[str, Any] | None:
            if kind == "Deployment":
                raise ClusterError("reading Deployment web: forbidden (HTTP 403)")
            return await super().get(api_version, kind, namespace, name)

    cluster = Forbidden()
    outcome, _ = run(cluster, example())
    cluster.objects[("Workload", "web")]["status"]["objects"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    ]
    states = asyncio.run(with_pods(cluster, "shop-dev", outcome.states))  # type: ignore[arg-type]
    (web,) = [state for state in states if state.kind == "Workload"]
    assert (web.pods, web.pods_text) == (None, "?")
    assert web.pods_error == "reading Deployment web: forbidden (HTTP 403)"
    assert [s.ready for s in states] == [s.ready for s in outcome.states]
