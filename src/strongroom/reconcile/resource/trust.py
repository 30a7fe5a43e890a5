"""What the operator trusts from a tenant-writable Resource: the pending marker and the status seal (HMACs
with the operator's key).

Pure: no I/O, no clock, no randomness (see the package docstring)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.reconcile.conditions import (
    ConditionSpec,
)
from strongroom.reconcile.resource.identity import HMAC_PREFIX, PENDING_ANNOTATION, TAMPERED

# --- The pending marker -----------------------------------------------------------------------------------


def _mac(key: bytes, *parts: str) -> str:
    text = "\x00".join(parts)
    return HMAC_PREFIX + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Pending:
    """A driver PUT that was started and not yet recorded: which driver, which GUResID."""

    driver_type: str
    guresid: str

    def annotation(self, uid: str, key: bytes) -> str:
        """The marker's annotation: the driver and GUResID with an HMAC (the operator's key) over them and
        the Resource's uid, so a marker written by anyone else, or copied from another Resource, is not
        trusted."""
        return json.dumps(
            {"driverType": self.driver_type, "guresid": self.guresid, "mac": _pending_mac(self, uid, key)},
            sort_keys=True,
        )


def _pending_mac(pending: Pending, uid: str, key: bytes) -> str:
    return _mac(key, "strongroom.dev/pending/v1", uid, pending.driver_type, pending.guresid)


@dataclass(frozen=True)
class PendingMarker:
    """The pending marker as found: the verified Pending (or None), and whether an annotation was ignored."""

    pending: Pending | None
    ignored: bool = False


def pending_of(annotations: Mapping[str, str] | None, uid: str, key: bytes) -> PendingMarker:
    """The pending marker in a Resource's annotations. One that is malformed, or whose MAC does not verify
    for this Resource, is ignored (`ignored`): it never picks a driver or a GUResID to PUT or DELETE."""
    raw = (annotations or {}).get(PENDING_ANNOTATION)
    if not raw:
        return PendingMarker(None)
    try:
        data = json.loads(raw)
    except ValueError:
        return PendingMarker(None, ignored=True)
    if not isinstance(data, dict):
        return PendingMarker(None, ignored=True)
    driver, guresid, mac = data.get("driverType"), data.get("guresid"), data.get("mac")
    if not all(isinstance(x, str) and x for x in (driver, guresid, mac)):
        return PendingMarker(None, ignored=True)
    pending = Pending(str(driver), str(guresid))
    if not hmac.compare_digest(_pending_mac(pending, uid, key), str(mac)):
        return PendingMarker(None, ignored=True)
    return PendingMarker(pending)


# --- The status seal --------------------------------------------------------------------------------------

#: Status fields the operator acts on later (which driver and GUResID to DELETE, which store keys and
#: objects to remove, where the cookie is): trusted only under a valid `status.seal`.
SEALED_FIELDS = (
    "guresid",
    "driverType",
    "inputsHash",
    "outputs.secretRefs",
    "cookieRef",
    "manifests",
    "secretName",
)


def _sealed_values(status: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in SEALED_FIELDS:
        node: Any = status
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            values[path] = node
    return values


def status_seal(uid: str, status: Mapping[str, Any], key: bytes) -> str | None:
    """The seal of a status (as JSON): an HMAC over the uid and the sealed fields; None when it has none."""
    values = _sealed_values(status)
    if not values:
        return None
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _mac(key, "strongroom.dev/status/v1", uid, text)


def status_altered(uid: str, status: Mapping[str, Any] | None, key: bytes) -> bool:
    """Whether a status carries sealed fields that its seal does not cover (someone else wrote them)."""
    wanted = status_seal(uid, status or {}, key)
    if wanted is None:
        return False
    found = (status or {}).get("seal")
    return not isinstance(found, str) or not hmac.compare_digest(found, wanted)


def unsealed_fields(status: Mapping[str, Any]) -> dict[str, Any]:
    """A status patch removing every sealed field (the outputs with their refs) and the seal: an altered
    status is forgotten, as if the operator had never provisioned anything."""
    patch: dict[str, Any] = {"seal": None}
    for path in _sealed_values(status):
        patch[path.split(".", 1)[0]] = None
    return patch


def tamper_condition(*, status_altered: bool, marker_ignored: bool) -> ConditionSpec | None:
    """The `Tampered` condition: something only the operator writes was altered, and was ignored."""
    what = []
    if status_altered:
        what.append(f"the status fields {', '.join(SEALED_FIELDS)} were altered")
    if marker_ignored:
        what.append(f"the annotation {PENDING_ANNOTATION} was not written by the operator")
    if not what:
        return None
    return ConditionSpec(
        TAMPERED,
        True,
        "StatusAltered" if status_altered else "PendingMarkerIgnored",
        "; ".join(what) + " (no valid HMAC of the operator: written by someone else, or by an operator "
        "version before statuses were sealed): ignored, nothing was PUT, DELETEd or removed on its word; "
        "only the operator may write them",
    )


def standing_tamper(status: Mapping[str, Any] | None, generation: int | None) -> ConditionSpec | None:
    """A `Tampered` condition written for this generation stays until the spec changes, so the owner sees
    it after the reconcile that repaired the status (which would otherwise drop it at once)."""
    for cond in (status or {}).get("conditions") or []:
        if (
            cond.get("type") == TAMPERED
            and cond.get("status") == "True"
            and cond.get("observedGeneration") == generation
        ):
            reason, message = str(cond.get("reason") or ""), str(cond.get("message") or "")
            return ConditionSpec(TAMPERED, True, reason, message)
    return None
