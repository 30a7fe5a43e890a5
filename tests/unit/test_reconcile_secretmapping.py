"""The SecretMapping plan: write only on change, never blank, never overwrite a foreign Secret."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from strongroom.api.secretmapping import SecretMapping
from strongroom.reconcile.secretmapping import (
    CONTENT_HASH_ANNOTATION,
    EntryOutcome,
    pending_force_refresh,
    plan,
    stale_keys,
    status_differs,
    wanted_secret,
)
from strongroom.reconcile.stores import Problem
from strongroom.stores.base import SecretValue

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
CANARY = "canary-7f3a-do-not-leak"


def mapping(status: dict[str, Any] | None = None, force: str | None = None) -> SecretMapping:
    annotations = {} if force is None else {"strongroom.dev/force-refresh": force}
    obj: dict[str, Any] = {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretMapping",
        "metadata": {
            "name": "m",
            "namespace": "app",
            "uid": "uid-1",
            "generation": 3,
            "annotations": annotations,
        },
        "spec": {
            "secretName": "app-secrets",
            "secretData": [
                {"secretKey": "a", "secretStoreName": "vault", "remoteRef": {"key": "x"}},
                {"secretKey": "b", "secretStoreName": "aws", "remoteRef": {"key": "y", "version": "v1"}},
            ],
        },
    }
    if status is not None:
        obj["status"] = status
    return SecretMapping.model_validate(obj)


def ok_outcomes(a: str = CANARY, b: str = "bee") -> list[EntryOutcome]:
    return [EntryOutcome("a", SecretValue(a)), EntryOutcome("b", SecretValue(b))]


def test_first_sync_writes_an_owned_secret_with_every_key() -> None:
    result = plan(mapping(), ok_outcomes(), None, NOW)
    assert result.healthy
    assert result.secret is not None
    meta = result.secret["metadata"]
    assert meta["ownerReferences"][0]["uid"] == "uid-1"
    assert meta["ownerReferences"][0]["controller"] is True
    assert meta["labels"]["strongroom.dev/managed"] == "true"
    assert sorted(result.secret["data"]) == ["a", "b"]
    ready = result.status["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "True", "Synced")
    assert result.status["observedGeneration"] == 3


def test_refresh_that_finds_nothing_new_writes_nothing() -> None:
    first = plan(mapping(), ok_outcomes(), None, NOW)
    assert first.secret is not None
    again = plan(mapping(first.status), ok_outcomes(), first.secret, LATER)
    assert again.secret is None
    assert not status_differs(first.status, again.status)


def test_rotation_rewrites_the_secret() -> None:
    first = plan(mapping(), ok_outcomes(), None, NOW)
    assert first.secret is not None
    rotated = plan(mapping(first.status), ok_outcomes(a="rotated"), first.secret, LATER)
    assert rotated.secret is not None
    assert (
        rotated.secret["metadata"]["annotations"][CONTENT_HASH_ANNOTATION]
        != (first.secret["metadata"]["annotations"][CONTENT_HASH_ANNOTATION])
    )


def test_store_failure_keeps_the_last_good_secret_and_never_leaks() -> None:
    first = plan(mapping(), ok_outcomes(), None, NOW)
    failed = plan(
        mapping(first.status),
        [
            EntryOutcome("a", problem=Problem("StoreUnavailable", "store 'vault' is unreachable")),
            EntryOutcome("b", SecretValue("bee")),
        ],
        first.secret,
        LATER,
    )
    assert failed.secret is None
    assert not failed.healthy
    ready = failed.status["conditions"][0]
    assert ready["status"] == "False"
    assert ready["reason"] == "StoreUnavailable"
    assert "kept unchanged" in ready["message"]
    assert "a: store 'vault' is unreachable" in ready["message"]
    assert CANARY not in repr(failed)


def test_foreign_secret_is_never_overwritten() -> None:
    foreign = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-secrets"}, "data": {}}
    result = plan(mapping(), ok_outcomes(), foreign, NOW)
    assert result.secret is None
    assert result.status["conditions"][0]["reason"] == "SecretConflict"
    assert not result.retryable


def test_transition_time_moves_only_when_status_flips() -> None:
    first = plan(mapping(), ok_outcomes(), None, NOW)
    same = plan(mapping(first.status), ok_outcomes(), first.secret, LATER)
    assert same.status["conditions"][0]["lastTransitionTime"] == "2026-11-25T12:00:00Z"
    broken = plan(
        mapping(first.status),
        [EntryOutcome("a", problem=Problem("SecretNotFound", "gone")), EntryOutcome("b", SecretValue("bee"))],
        first.secret,
        LATER,
    )
    assert broken.status["conditions"][0]["lastTransitionTime"] == "2026-11-25T13:00:00Z"


def test_edited_secret_data_is_restored() -> None:
    first = plan(mapping(), ok_outcomes(), None, NOW)
    assert first.secret is not None
    tampered = {**first.secret, "data": {**first.secret["data"], "a": "dGFtcGVyZWQ="}}
    result = plan(mapping(first.status), ok_outcomes(), tampered, LATER)
    assert result.secret is not None


def test_a_force_refresh_is_pending_until_its_value_is_recorded_as_honoured() -> None:
    assert pending_force_refresh(mapping()) is None
    first = plan(mapping(), ok_outcomes(), None, NOW)
    assert pending_force_refresh(mapping(first.status, force="t1")) == "t1"
    forced = plan(mapping(first.status, force="t1"), ok_outcomes(), first.secret, LATER, "t1")
    assert forced.secret is None  # the stores hold nothing new: only the status records the request
    assert forced.status["lastForceRefresh"] == "t1"
    assert status_differs(first.status, forced.status)
    assert pending_force_refresh(mapping(forced.status, force="t1")) is None
    assert pending_force_refresh(mapping(forced.status, force="t2")) == "t2"
    # a later refresh keeps the record, so it writes no status
    again = plan(mapping(forced.status, force="t1"), ok_outcomes(), first.secret, LATER)
    assert not status_differs(forced.status, again.status)


def test_a_forced_refresh_that_fails_is_not_recorded_and_stays_pending() -> None:
    first = plan(mapping(), ok_outcomes(), None, NOW)
    honoured = plan(mapping(first.status, force="t1"), ok_outcomes(), first.secret, NOW, "t1")
    failed = plan(
        mapping(honoured.status, force="t2"),
        [EntryOutcome("a", problem=Problem("StoreUnavailable", "down")), EntryOutcome("b", SecretValue("b"))],
        first.secret,
        LATER,
        "t2",
    )
    assert not failed.healthy
    assert failed.status["lastForceRefresh"] == "t1"
    assert pending_force_refresh(mapping(failed.status, force="t2")) == "t2"


def test_a_long_force_refresh_value_is_recorded_as_its_hash() -> None:
    value = "x" * 300
    first = plan(mapping(), ok_outcomes(), None, NOW)
    pending = pending_force_refresh(mapping(first.status, force=value))
    assert pending is not None
    assert pending.startswith("sha256:")
    assert len(pending) <= 256
    forced = plan(mapping(first.status, force=value), ok_outcomes(), first.secret, LATER, pending)
    assert pending_force_refresh(mapping(forced.status, force=value)) is None


def test_nothing_is_wanted_while_an_entry_fails() -> None:
    failing = [
        EntryOutcome("a", problem=Problem("SecretNotFound", "gone")),
        EntryOutcome("b", SecretValue("bee")),
    ]
    assert wanted_secret(mapping(), failing) is None
    assert wanted_secret(mapping(), ok_outcomes()) == plan(mapping(), ok_outcomes(), None, NOW).secret


def managed(manager: str, operation: str, *keys: str) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "fieldsV1": {"f:data": {".": {}, **{f"f:{k}": {} for k in keys}}},
    }


def test_keys_only_the_operator_wrote_are_stale_once_unwanted() -> None:
    """After an apply, keys the create (an Update of `strongroom`) set and the mapping dropped are removed;
    keys someone else also wrote are theirs, as server-side apply would judge."""
    wanted = {"data": {"a": "MQ=="}}
    written = {
        "metadata": {
            "managedFields": [
                managed("strongroom", "Apply", "a"),
                managed("strongroom", "Update", "a", "b", "c", "d"),
                managed("kubectl-edit", "Update", "c"),
            ]
        },
        "data": {"a": "MQ==", "b": "Mg==", "c": "Mw==", "d": "NA==", "e": "NQ=="},
    }
    assert stale_keys(written, wanted) == ["b", "d"]
    assert stale_keys({"metadata": {}, "data": {"a": "MQ=="}}, wanted) == []
