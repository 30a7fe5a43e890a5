"""Forget objects that were deleted while a watch was down.

A watch resumes from the last resourceVersion it saw. When the API server can no longer serve from there
(410 Gone: always after the API server restarted, since its watch cache starts afresh) the watch
(listwatch.py) lists the kind again and watches on from the list. A list carries no DELETED events: an object
deleted during the gap is just absent, and a cache fed by events alone keeps it and goes on acting on
it. Measured (tests/integration/test_faults.py): a SecretMapping deleted while the API server was coming
back had its Secret written again on every refresh, each time the garbage collector removed it.

Every list the watch hands over is complete for its collection (one kind in one namespace, or in all of
them) and newer than any event seen before it (a list without a resourceVersion is a consistent read).
So a cached object of that scope that the list does not hold was deleted during the gap, and one it holds
under another uid was deleted and created again: both are forgotten as if their DELETED event had come,
before the list is told, so that a re-created object is handled as the new object it is. Exact, and
without a request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

ObjectKey = tuple[str, str]  # (namespace, name)

logger = logging.getLogger("strongroom.operator.relist")


def uid_of(body: Mapping[str, Any] | None) -> str | None:
    return ((body or {}).get("metadata") or {}).get("uid")


def key_of(body: Mapping[str, Any]) -> ObjectKey:
    meta = body.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def gone_during_gap(
    cached: Iterable[tuple[ObjectKey, str | None]], listed: Sequence[Mapping[str, Any]], namespace: str
) -> list[ObjectKey]:
    """Keys of the cached (key, uid) pairs that a complete list of `namespace` ("": every namespace) shows
    deleted: absent from it, or present under another uid (a uid of None is not compared)."""
    uids = {key_of(body): uid_of(body) for body in listed}
    return [
        key
        for key, uid in cached
        if (not namespace or key[0] == namespace)
        and (key not in uids or (uid is not None and uids[key] != uid))
    ]


def log_forgotten(kind: str, keys: Iterable[ObjectKey]) -> None:
    for key in keys:
        logger.info("%s %s/%s was deleted while the watch was down: forgotten", kind, *key)
