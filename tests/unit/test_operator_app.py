"""What the operator process serves: every strongroom kind is watched and told to its controllers."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.api.constants import GROUP
from strongroom.api.kinds import ALL_KINDS
from strongroom.operator import runtime as runtime_module
from strongroom.operator.app import FINALIZER, REQUIRED_KINDS
from strongroom.operator.runtime import Runtime, RuntimeSettings
from strongroom.stores.guard import GuardSettings
from tests.unit.test_leader import unreachable_cluster


def test_readiness_waits_for_every_kind_the_crds_define() -> None:
    assert {(GROUP, kind.PLURAL) for kind in ALL_KINDS} == REQUIRED_KINDS
    assert FINALIZER == "strongroom.dev/finalizer"


def small_settings() -> RuntimeSettings:
    """Runtime settings for a test that builds a Runtime and starts no workers."""
    return RuntimeSettings(
        operator_namespace="strongroom-system",
        workers=2,
        slots=2,
        refresh_interval=3600,
        store_check_interval=300,
        store_guard=GuardSettings(),
    )


def runtime() -> Runtime:
    return Runtime(unreachable_cluster(), small_settings())


async def test_every_kind_has_a_watch_per_namespace_and_reaches_its_controllers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A first list that fails is not waited for: with no API server, watch() returns at once, not after
    # the timeout (which would otherwise outlast the test's own).
    monkeypatch.setattr(runtime_module, "PRIME_TIMEOUT", 3600.0)
    rt = runtime()
    seen: list[tuple[str, str | None, str]] = []

    def spy(name: str) -> Any:
        return lambda event_type, body: seen.append((name, event_type, body["metadata"]["name"]))

    rt.resources.observe = spy("resources")  # type: ignore[method-assign]
    rt.workloads.resource_event = spy("workloads")  # type: ignore[method-assign]
    await rt.watch(("team-a", "team-b"))
    try:
        watched = [(w.collection.plural, w.collection.namespace) for w in rt.watches]
        assert set(watched) == {(k.PLURAL, ns) for k in ALL_KINDS for ns in ("team-a", "team-b")}
        # The kinds others name are watched first (their first lists were awaited before the rest began).
        assert {plural for plural, _ in watched[:4]} == {"secretstores", "drivers"}
        assert all(w.tried.is_set() for w in rt.watches[:4])
        assert not rt.scanned()  # no API server: nothing listed
        (resources,) = [
            w for w in rt.watches if w.collection.plural == "resources" and w.collection.namespace == "team-a"
        ]
        body = {"metadata": {"namespace": "team-a", "name": "db"}}
        await resources.on_list([body])
        resources.on_event("MODIFIED", body)
        # A Resource is told to its controller and to the Workloads that read it; a listed one as type None.
        assert seen == [
            ("resources", None, "db"),
            ("workloads", None, "db"),
            ("resources", "MODIFIED", "db"),
            ("workloads", "MODIFIED", "db"),
        ]
    finally:
        await rt.stop()
