"""SecretMapping: from what the stores returned and the Secret that exists, what to write.

Pure: no I/O, no clock, no randomness. The controller gathers the inputs (store reads, the
observed Secret) and carries out the plan.

Rules that make it safe and cheap:
- any failed entry: the Secret is left exactly as it is (never blanked, never half-updated) and the
  failure becomes a condition naming the keys and reasons, never values;
- the Secret is written only when its content, labels or ownership differ from what is wanted,
  so a refresh that finds nothing new writes nothing;
- a Secret of the same name that the mapping does not own is never overwritten;
- a key the mapping no longer has is removed, also when the Secret was first made by a plain create
  (`stale_keys`: server-side apply removes only what an earlier apply set).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from strongroom.api.constants import (
    API_VERSION,
    FIELD_MANAGER,
    FORCE_REFRESH_ANNOTATION,
    FORCE_REFRESH_RECORDED_MAX,
    MANAGED_LABEL,
)
from strongroom.api.secretmapping import SecretMapping
from strongroom.reconcile.conditions import READY, ConditionSpec, merge_conditions, not_ready, ready
from strongroom.reconcile.ownership import controlled_by
from strongroom.reconcile.secretdata import CONTENT_HASH_ANNOTATION as CONTENT_HASH_ANNOTATION
from strongroom.reconcile.secretdata import MANAGED_BY_LABEL as MANAGED_BY_LABEL
from strongroom.reconcile.secretdata import content_hash as content_hash
from strongroom.reconcile.secretdata import decode_secret_data as decode_secret_data
from strongroom.reconcile.stores import Problem
from strongroom.stores.base import SecretValue


@dataclass(frozen=True)
class EntryOutcome:
    """The result of reading one `secretData` entry: a value or a problem."""

    secret_key: str
    value: SecretValue | None = None
    problem: Problem | None = None


@dataclass(frozen=True)
class Plan:
    secret: dict[str, Any] | None
    """The whole Secret to server-side apply, or None when nothing needs writing."""
    status: dict[str, Any]
    """The status the mapping should have (the controller writes it only if it differs)."""
    healthy: bool
    """True when every entry resolved; the controller then schedules a refresh, else a retry."""
    retryable: bool = True
    """False when retrying cannot help until the object or the Secret changes."""


def desired_secret(mapping: SecretMapping, data: Mapping[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": mapping.spec.secret_name,
            "namespace": mapping.namespace,
            "labels": {MANAGED_LABEL: "true", MANAGED_BY_LABEL: "strongroom"},
            "annotations": {CONTENT_HASH_ANNOTATION: content_hash(data)},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "SecretMapping",
                    "name": mapping.name,
                    "uid": mapping.metadata.uid or "",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "type": "Opaque",
        "data": {key: base64.b64encode(value).decode() for key, value in sorted(data.items())},
    }


def _secret_current(observed: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    meta, want_meta = observed.get("metadata") or {}, wanted["metadata"]
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    return (
        decode_secret_data(observed) == decode_secret_data(wanted)
        and all(labels.get(k) == v for k, v in want_meta["labels"].items())
        and annotations.get(CONTENT_HASH_ANNOTATION) == want_meta["annotations"][CONTENT_HASH_ANNOTATION]
    )


def recorded_force_refresh(value: str) -> str:
    """How a force-refresh value is recorded in status: as it is, or its SHA-256 when long (bounded)."""
    if len(value) <= FORCE_REFRESH_RECORDED_MAX:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def pending_force_refresh(mapping: SecretMapping) -> str | None:
    """The force-refresh to honour (as it will be recorded), or None: the annotation's value when it is
    not the one last honoured. Level-based: status, not memory, says what was honoured, so a restart or a
    new leader neither repeats nor loses one."""
    value = (mapping.metadata.annotations or {}).get(FORCE_REFRESH_ANNOTATION)
    if value is None:
        return None
    recorded = recorded_force_refresh(value)
    honoured = mapping.status.last_force_refresh if mapping.status else None
    return None if recorded == honoured else recorded


def _status(
    mapping: SecretMapping,
    conditions: Sequence[ConditionSpec],
    now: datetime,
    synced_now: bool,
    force_refresh: str | None = None,
) -> dict[str, Any]:
    previous = (
        mapping.status.model_dump(mode="json", by_alias=True, exclude_none=True) if mapping.status else {}
    )
    status: dict[str, Any] = {
        "observedGeneration": mapping.metadata.generation,
        "conditions": merge_conditions(
            previous.get("conditions"), conditions, now, mapping.metadata.generation
        ),
    }
    # Only a real change moves lastSyncTime: a timestamp bumped on every refresh would turn each
    # no-op refresh into a status write.
    last_sync = now.strftime("%Y-%m-%dT%H:%M:%SZ") if synced_now else previous.get("lastSyncTime")
    if last_sync:
        status["lastSyncTime"] = last_sync
    last_force = force_refresh or previous.get("lastForceRefresh")
    if last_force:
        status["lastForceRefresh"] = last_force
    return status


def wanted_secret(mapping: SecretMapping, outcomes: Sequence[EntryOutcome]) -> dict[str, Any] | None:
    """The Secret the mapping's outcomes make, or None while any entry failed (nothing is written then)."""
    if any(o.problem is not None for o in outcomes):
        return None
    return desired_secret(mapping, {o.secret_key: o.value.reveal() for o in outcomes if o.value is not None})


def stale_keys(written: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """Keys the Secret still holds after an apply of `wanted` that the operator wrote and no longer wants.

    A Secret made by a plain create (the first sync's) records its fields under the operator's Update
    operation, not its apply; server-side apply never removes fields it did not apply itself, so a key
    dropped from the mapping would stay. These are the keys to remove explicitly: written by the operator
    (any operation) and by no one else, exactly what an apply would have removed had it made the Secret."""
    extra = set(written.get("data") or {}) - set(wanted.get("data") or {})
    if not extra:
        return []
    ours: set[str] = set()
    others: set[str] = set()
    for entry in (written.get("metadata") or {}).get("managedFields") or []:
        fields = ((entry.get("fieldsV1") or {}).get("f:data") or {}).keys()
        keys = {f[2:] for f in fields if f.startswith("f:")}
        (ours if entry.get("manager") == FIELD_MANAGER else others).update(keys)
    return sorted((extra & ours) - others)


def plan(
    mapping: SecretMapping,
    outcomes: Sequence[EntryOutcome],
    observed_secret: Mapping[str, Any] | None,
    now: datetime,
    force_refresh: str | None = None,
) -> Plan:
    """`force_refresh`: the pending force-refresh the `outcomes` were read for (`pending_force_refresh`);
    recorded as honoured only when every entry resolved, so a failed one is tried again."""
    secret_name = mapping.spec.secret_name
    if observed_secret is not None and not controlled_by(observed_secret, mapping.metadata.uid or ""):
        condition = not_ready(
            "SecretConflict",
            f"Secret {secret_name!r} already exists and is not owned by this SecretMapping; strongroom never "
            "overwrites a Secret it does not manage: delete that Secret or choose another spec.secretName",
        )
        return Plan(None, _status(mapping, [condition], now, False), healthy=False, retryable=False)

    failed = [o for o in outcomes if o.problem is not None]
    wanted = wanted_secret(mapping, outcomes)
    if wanted is None:
        details = "; ".join(f"{o.secret_key}: {o.problem.message}" for o in failed if o.problem)
        keep = (
            f"the existing Secret {secret_name!r} is kept unchanged"
            if observed_secret is not None
            else f"Secret {secret_name!r} is not created until every key resolves"
        )
        first = failed[0].problem
        assert first is not None
        condition = not_ready(
            first.reason, f"{len(failed)} of {len(outcomes)} keys failed ({keep}): {details}"
        )
        retryable = all(o.problem.retryable for o in failed if o.problem)
        return Plan(None, _status(mapping, [condition], now, False), healthy=False, retryable=retryable)

    write = observed_secret is None or not _secret_current(observed_secret, wanted)
    condition = ready("Synced", f"Secret {secret_name!r} holds {len(wanted['data'])} keys from the stores")
    status = _status(mapping, [condition], now, write, force_refresh)
    return Plan(wanted if write else None, status, healthy=True)


def status_differs(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """Whether writing `wanted` would change the observed status (only the fields we own count)."""
    current = current or {}
    return any(current.get(key) != value for key, value in wanted.items())


__all__ = [
    "CONTENT_HASH_ANNOTATION",
    "READY",
    "EntryOutcome",
    "Plan",
    "content_hash",
    "pending_force_refresh",
    "plan",
    "recorded_force_refresh",
    "stale_keys",
    "status_differs",
    "wanted_secret",
]
