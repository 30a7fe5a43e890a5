"""kopf settings and registry of the operator process, and the SecretStore watch probe's logic."""

from __future__ import annotations

import logging

import kopf

from strongroom.operator import handlers
from strongroom.operator.app import FINALIZER, KOPF_FINALIZER, build_registry, build_settings
from strongroom.operator.config import OperatorConfig


def test_settings() -> None:
    settings = build_settings(OperatorConfig(worker_limit=4))
    # Resources add strongroom.dev/finalizer themselves; kopf's must differ or kopf would strip it.
    assert FINALIZER == "strongroom.dev/finalizer"
    assert settings.persistence.finalizer == KOPF_FINALIZER != FINALIZER
    assert settings.queueing.worker_limit is None  # our controllers' workers bound the real work
    assert settings.watching.server_timeout == 600
    assert settings.watching.client_timeout is not None
    assert settings.watching.client_timeout > settings.watching.server_timeout
    # A watch broken by an API server outage is retried at least every 5 s: it resumes soon after.
    assert isinstance(settings.networking.error_backoffs, tuple)
    assert max(settings.networking.error_backoffs) <= 5
    # No Kubernetes Events at all (the chart grants no `events` verbs); log lines never become Events.
    assert settings.posting.enabled is False
    assert settings.posting.level == logging.WARNING
    assert settings.posting.loggers is False
    assert settings.posting.reporting_component == "strongroom"


def test_persistence_lives_under_our_prefix() -> None:
    settings = build_settings(OperatorConfig())
    body = kopf.Body(
        {"apiVersion": "strongroom.dev/v1alpha1", "kind": "SecretStore", "metadata": {"name": "x"}}
    )
    patch = kopf.Patch()
    settings.persistence.diffbase_storage.store(
        body=body, patch=patch, essence=kopf.BodyEssence(spec={"a": 1})
    )
    settings.persistence.progress_storage.touch(body=body, patch=patch, value="x")
    keys = set(patch["metadata"]["annotations"])
    assert keys
    assert all(key.startswith("strongroom.dev/") for key in keys), keys


def test_registry_has_our_login_and_handlers_only() -> None:
    registry = build_registry(OperatorConfig())
    activity_ids = {h.id for h in registry._activities.get_all_handlers()}
    assert activity_ids == {"strongroom-login"}  # no piggybacking on whatever client is installed
    watching = registry._watching.get_all_handlers()
    assert {h.id for h in watching} == {
        "secretstore-events",
        "secretmapping-events",
        "workload-events",
        "workload-resource-events",
        "workloadpatch-events",
        "driver-events",
        "resource-events",
    }
    assert {(h.selector.group, h.selector.plural) for h in watching if h.selector} == handlers.REQUIRED_KINDS
    assert registry is not kopf.get_default_registry()
    # kopf builds no diff-base for the operator (app._NoDiffBase): right only while nothing needs one.
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
