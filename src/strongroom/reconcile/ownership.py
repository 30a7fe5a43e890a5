"""Who owns an object: the ownerReference tests every controller makes before it writes or prunes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _owner_refs(obj: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    refs: list[Mapping[str, Any]] = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return refs


def controlled_by(obj: Mapping[str, Any] | None, uid: str) -> bool:
    """Whether the object's controlling owner is the object with `uid` (what may overwrite or prune it)."""
    return any(ref.get("uid") == uid and ref.get("controller") for ref in _owner_refs(obj))


def owned_by(obj: Mapping[str, Any] | None, uid: str) -> bool:
    """Whether the object with `uid` is any of its owners (controller or not)."""
    return any(ref.get("uid") == uid for ref in _owner_refs(obj))
