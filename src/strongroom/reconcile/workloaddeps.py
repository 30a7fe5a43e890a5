"""Which Workloads a Resource matters to: the index the Workload controller wakes workloads from.

A Workload reads the Resources its `spec.resources` match (reconcile/workloadgather.py); when one of them
changes, that Workload and no other must be woken, however many Resources and Workloads a namespace holds.
`WorkloadDependencies` keeps, from Resource watch events, each Resource reduced to what matching and
readiness need (so an event that changes nothing else wakes nobody), the Resources by identity, and which
Workloads need which identity (set by each Workload's reconcile). It decides whom to wake; the controller
(operator/controllers/workload.py) wakes them. Keys are `(namespace, name)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from strongroom.reconcile.workloadgather import ResourceIdentity, resource_identity

Key = tuple[str, str]  # (namespace, name)
_Entry = TypeVar("_Entry")


def update_index(index: dict[_Entry, set[Key]], entry: _Entry, key: Key, *, add: bool) -> None:
    """Add `key` under `entry` of a reverse index, or remove it (dropping entries that become empty)."""
    if add:
        index.setdefault(entry, set()).add(key)
        return
    keys = index.get(entry)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[entry]


def resource_summary(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Resource reduced to what matching and readiness need."""
    meta = body.get("metadata") or {}
    return {
        "metadata": {
            name: meta.get(name) for name in ("name", "namespace", "uid", "generation", "deletionTimestamp")
        },
        "spec": {name: (body.get("spec") or {}).get(name) for name in ("type", "class", "id")},
        "status": body.get("status") or {},
    }


class WorkloadDependencies:
    """The Resources seen (by key and by identity) and the identities each Workload needs."""

    def __init__(self) -> None:
        # Resource events, reduced to what matching and readiness need (Resource key -> body), and the
        # Resources by identity, so matching costs the same however many Resources a namespace holds.
        self.resources: dict[Key, dict[str, Any]] = {}
        self._by_identity: dict[ResourceIdentity, set[Key]] = {}
        # Which workloads a Resource identity matters to, to wake exactly those when it changes.
        self._dependents: dict[ResourceIdentity, set[Key]] = {}
        self._needs: dict[Key, set[ResourceIdentity]] = {}

    def resource_event(self, event_type: str | None, body: Mapping[str, Any]) -> list[Key]:
        """Record one Resource watch event; the workloads to wake (those that use it, when what they read
        changed)."""
        meta = body.get("metadata") or {}
        key: Key = (meta.get("namespace") or "", meta.get("name") or "")
        before = self.resources.get(key)
        if event_type == "DELETED":
            self.resources.pop(key, None)
            after = None
        else:
            after = resource_summary(body)
            self.resources[key] = after
            if before == after:
                return []
        current = resource_identity(after) if after is not None else None
        previous = resource_identity(before) if before is not None else None
        wake: list[Key] = []
        for identity in {previous, current}:
            if identity is None:
                continue
            update_index(self._by_identity, identity, key, add=identity == current)
            wake.extend(self._dependents.get(identity, ()))
        return wake

    def cached(self, identity: ResourceIdentity) -> list[dict[str, Any]]:
        """The Resources seen with `identity`."""
        return [self.resources[key] for key in self._by_identity.get(identity, ()) if key in self.resources]

    def set_needs(self, key: Key, identities: set[ResourceIdentity]) -> None:
        """Workload `key` now reads the Resources of `identities` (and no others)."""
        for identity in self._needs.pop(key, set()) - identities:
            dependents = self._dependents.get(identity)
            if dependents is not None:
                dependents.discard(key)
                if not dependents:
                    del self._dependents[identity]
        if identities:
            self._needs[key] = identities
            for identity in identities:
                self._dependents.setdefault(identity, set()).add(key)


__all__ = ["Key", "WorkloadDependencies", "resource_summary", "update_index"]
