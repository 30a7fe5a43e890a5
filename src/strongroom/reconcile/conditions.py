"""kstatus-style conditions, computed so that an unchanged state yields byte-identical status.

`lastTransitionTime` moves only when a condition's status flips; a new reason or message keeps the
old time. That makes "compute the status, compare with what is there, write only if different"
produce no write on a no-op reconcile.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"


@dataclass(frozen=True)
class ConditionSpec:
    """A condition as a reconciler decides it, before transition times are settled."""

    type: str
    status: bool | None  # None = Unknown
    reason: str
    message: str = ""

    @property
    def status_word(self) -> str:
        return "Unknown" if self.status is None else ("True" if self.status else "False")


def _format_time(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    previous: Sequence[dict[str, Any]] | None,
    wanted: Iterable[ConditionSpec],
    now: datetime,
    generation: int | None,
) -> list[dict[str, Any]]:
    """The conditions to write: `wanted` in order, keeping transition times of unchanged statuses.

    Condition types not in `wanted` are dropped (kstatus: Reconciling/Stalled appear only while true).
    """
    old = {c.get("type"): c for c in previous or []}
    result: list[dict[str, Any]] = []
    for spec in wanted:
        before = old.get(spec.type)
        changed = before is None or before.get("status") != spec.status_word
        entry: dict[str, Any] = {
            "type": spec.type,
            "status": spec.status_word,
            "reason": spec.reason,
            "message": spec.message,
            "lastTransitionTime": _format_time(now)
            if changed or before is None
            else before.get("lastTransitionTime", _format_time(now)),
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        result.append(entry)
    return result


def ready(reason: str, message: str = "") -> ConditionSpec:
    return ConditionSpec(READY, True, reason, message)


def not_ready(reason: str, message: str) -> ConditionSpec:
    return ConditionSpec(READY, False, reason, message)
