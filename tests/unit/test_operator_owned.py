"""Drift detection of owned objects (operator/owned.py): which watch events count as someone else's change."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from strongroom.operator.owned import OwnedObjects, WatchedKind, fingerprint

OWNER_UID = "uid-1"


def secret(data: str = "dmFsdWU=", *, owner: str = "m", uid: str = OWNER_UID, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "s",
            "namespace": "team-a",
            "resourceVersion": meta.pop("rv", "1"),
            "labels": {"strongroom.dev/managed": "true"},
            "ownerReferences": [
                {"apiVersion": "strongroom.dev/v1alpha1", "kind": "SecretMapping", "name": owner, "uid": uid}
            ],
            **meta,
        },
        "data": {"k": data},
    }


def recorder() -> tuple[OwnedObjects, list[tuple[str, tuple[str, str], str, tuple[str, str, str, str]]]]:
    calls: list[tuple[str, tuple[str, str], str, tuple[str, str, str, str]]] = []
    owned = OwnedObjects(
        None,  # type: ignore[arg-type]  # no watch runs: events are fed by hand
        [WatchedKind("v1", "Secret", "secrets")],
        lambda *args: calls.append(args),
        debounce=0.01,
    )
    return owned, calls


async def settle() -> None:
    await asyncio.sleep(0.05)


def test_fingerprint_ignores_status_and_bookkeeping_but_not_content() -> None:
    base = secret()
    assert fingerprint(base) == fingerprint(secret(rv="7", managedFields=[{"manager": "x"}]))
    assert fingerprint(base) != fingerprint(secret("b3RoZXI="))
    relabelled = secret()
    relabelled["metadata"]["labels"]["extra"] = "1"
    assert fingerprint(base) != fingerprint(relabelled)


@pytest.mark.asyncio
async def test_own_writes_are_not_changes_but_edits_and_deletions_are() -> None:
    owned, calls = recorder()
    owned.wrote(secret())
    owned.seen("MODIFIED", secret(rv="2"))  # the operator's write coming back
    await settle()
    assert calls == []

    owned.seen("MODIFIED", secret("ZWRpdGVk", rv="3"))  # edited by hand
    await settle()
    assert calls == [("SecretMapping", ("team-a", "m"), OWNER_UID, ("v1", "Secret", "team-a", "s"))]

    owned.seen("DELETED", secret("ZWRpdGVk", rv="4"))
    await settle()
    assert len(calls) == 2


@pytest.mark.asyncio
async def test_a_write_answer_arriving_after_its_event_is_not_a_change() -> None:
    owned, calls = recorder()
    owned.seen("MODIFIED", secret("bmV3"))
    owned.wrote(secret("bmV3"))  # within the debounce
    await settle()
    assert calls == []


@pytest.mark.asyncio
async def test_deletions_by_the_operator_and_objects_without_strongroom_owner_are_ignored() -> None:
    owned, calls = recorder()
    owned.wrote(secret())
    owned.removed("v1", "Secret", "team-a", "s")
    owned.seen("DELETED", secret())
    forged = secret()
    not_ours = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "u"}
    forged["metadata"]["ownerReferences"] = [not_ours]
    owned.seen("ADDED", forged)
    await settle()
    assert calls == []
    assert owned.known == {}


@pytest.mark.asyncio
async def test_late_events_of_an_object_the_operator_deleted_are_not_changes() -> None:
    # A lagging watch delivers an older state of an object after the operator deleted it (a prune right
    # after an update): that is the operator's own history, and waking the owner would repeat its work.
    owned, calls = recorder()
    owned.wrote(secret())
    owned.removed("v1", "Secret", "team-a", "s")
    owned.seen("MODIFIED", secret(data="b2xk"))
    owned.seen("DELETED", secret(data="b2xk"))
    await settle()
    assert calls == []
    assert owned.known == {}
    # Once its DELETED event has passed, an object of that name made again by someone else is a change.
    owned.seen("ADDED", secret(data="bmV3"))
    await settle()
    assert [call[0] for call in calls] == ["SecretMapping"]


@pytest.mark.asyncio
async def test_an_event_during_a_slow_write_waits_for_its_answer() -> None:
    # Under load the answer to a write can come long after the debounce: the event it caused is still the
    # operator's own, and waking the owner for it would repeat the work (a second driver call).
    owned, calls = recorder()
    owned.wrote(secret())
    with owned.writing(("v1", "Secret", "team-a", "s")):
        owned.seen("MODIFIED", secret(data="bmV3"))
        await settle()  # several debounce periods
        assert calls == []
        owned.wrote(secret(data="bmV3"))
    await settle()
    assert calls == []
    # Without a write on its way the same kind of event is someone else's change.
    owned.seen("MODIFIED", secret(data="b3RoZXI="))
    await settle()
    assert [call[0] for call in calls] == ["SecretMapping"]


@pytest.mark.asyncio
async def test_objects_gone_while_the_watch_was_down_count_as_deleted() -> None:
    owned, calls = recorder()
    owned.wrote(secret())
    await owned._relisted("v1", "Secret", "team-a", [])
    await settle()
    assert [call[1] for call in calls] == [("team-a", "m")]


@pytest.mark.asyncio
async def test_recorded_is_what_the_operator_wrote_until_a_change_settles() -> None:
    owned, _ = recorder()
    ident = ("v1", "Secret", "team-a", "s")
    assert owned.recorded(ident) is None
    owned.wrote(secret())
    assert owned.recorded(ident) == fingerprint(secret())
    owned.seen("MODIFIED", secret("ZWRpdGVk", rv="2"))
    await settle()
    assert owned.recorded(ident) == fingerprint(secret("ZWRpdGVk"))
    owned.seen("DELETED", secret("ZWRpdGVk", rv="3"))
    await settle()
    assert owned.recorded(ident) is None
    assert not owned.listed("v1", "Secret", "team-a")  # no watch ran: nothing may be concluded from absence
