"""Drift repair: watch the objects the operator wrote and hand changes made by anyone else to their owner.

Everything the operator writes into a namespace carries `strongroom.dev/managed: "true"` (MANAGED_LABEL;
Secrets and rendered objects also carry `app.kubernetes.io/managed-by: strongroom`, objects of drivers'
namespace manifests only the former, so the watches select on it). One list+watch per watched kind and
namespace (`listwatch.py`) asks the API server for exactly those objects (a label selector), so the process
never receives, let alone keeps, the cluster's other Secrets. Of each object it keeps a fingerprint only (a
digest of labels, annotations, owner references and content, without status or bookkeeping fields) and its
owners, not the object.

Which changes count: the operator records the fingerprint of every object it writes (`wrote`, called by
`Kube` with the API server's answer) and every object it deletes (`removed`). An event whose fingerprint is
the recorded one is the operator's own write coming back and is dropped, so its writes never cause work. Any
other event - an edit, a deletion, a status-only change of a Deployment does not change the fingerprint - is
looked at after a short delay (`DEBOUNCE`, so the answer to a write that raced its own watch event is
recorded first) and reported to the owner named by the object's owner references.

Tenancy: labels and owner references are written by whoever can write the object, so a tenant can forge
both. What a forged object can do: name, through an owner reference, an object of *its own* namespace (owner
references never cross namespaces and the namespace used is the event's own), and only an owner whose uid
matches; the owner's reconcile is level-based and checks ownership of everything it touches, so the most a
forgery can do is make a tenant's own object reconcile again. Objects naming no strongroom owner are not
recorded at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strongroom.api.constants import GROUP, MANAGED_LABEL
from strongroom.net.kubejson import KubeJson
from strongroom.operator.listwatch import Collection, ListWatch, each_in_turns

logger = logging.getLogger("strongroom.operator.owned")

#: The label selector of the watches: what the operator labels as its own.
SELECTOR = f"{MANAGED_LABEL}=true"
#: The namespace of a cluster-wide watch.
ALL_NAMESPACES = ""
# Seconds an event that does not match a recorded write waits before it counts as someone else's change.
DEBOUNCE = 0.5
# Seconds after the operator deleted an object during which events of it that are not its DELETED event are
# taken for states from before the delete (a lagging watch); its DELETED event ends this sooner. Should the
# object be created again by someone else within it, its owner learns of it at the next event after it.
REMOVED_GRACE = 30.0
# Kinds that own what the operator writes (their controllers repair it).
OWNER_KINDS = frozenset({"SecretMapping", "Resource", "Workload"})

ObjectId = tuple[str, str, str, str]  # (apiVersion, kind, namespace, name)
Owners = tuple[tuple[str, str, str], ...]  # (kind, name, uid) of each strongroom owner
# Called with (owner kind, (namespace, name), owner uid, the object that changed).
DriftHandler = Callable[[str, tuple[str, str], str, ObjectId], None]

# The metadata the operator writes and an edit by hand could change (not identity or bookkeeping).
_METADATA_FIELDS = ("labels", "annotations", "ownerReferences")
# Annotations Kubernetes' own controllers write onto objects the operator made (the Deployment controller's
# revision): not a change the owner must repair.
_CONTROLLER_ANNOTATIONS = ("deployment.kubernetes.io/",)


def fingerprint(obj: Mapping[str, Any]) -> str:
    """A digest of what an edit by hand could change and the operator cares about (not status)."""
    meta = obj.get("metadata") or {}
    content = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    content["metadata"] = {k: meta.get(k) for k in _METADATA_FIELDS}
    annotations = meta.get("annotations") or {}
    content["metadata"]["annotations"] = {
        k: v for k, v in annotations.items() if not k.startswith(_CONTROLLER_ANNOTATIONS)
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:32]


def object_id(obj: Mapping[str, Any]) -> ObjectId:
    meta = obj.get("metadata") or {}
    return (
        obj.get("apiVersion") or "",
        obj.get("kind") or "",
        meta.get("namespace") or "",
        meta.get("name") or "",
    )


def owners_of(obj: Mapping[str, Any]) -> Owners:
    """(kind, name, uid) of the strongroom objects named in the object's owner references."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return tuple(
        (ref["kind"], ref["name"], ref.get("uid") or "")
        for ref in refs
        if isinstance(ref, dict)
        and str(ref.get("apiVersion", "")).startswith(f"{GROUP}/")
        and ref.get("kind") in OWNER_KINDS
        and ref.get("name")
    )


@dataclass(frozen=True)
class WatchedKind:
    api_version: str
    kind: str
    plural: str


class OwnedObjects:
    """Fingerprints of the objects the operator owns, fed by its own writes and by label-selected watches."""

    def __init__(
        self,
        client: KubeJson,
        kinds: Iterable[WatchedKind],
        on_drift: DriftHandler,
        *,
        debounce: float = DEBOUNCE,
    ) -> None:
        self.client = client
        self.kinds = {(k.api_version, k.kind): k for k in kinds}
        self.on_drift = on_drift
        self.debounce = debounce
        # The fingerprint of the state the operator wrote or last accepted, and the owners, per owned object.
        self.known: dict[ObjectId, tuple[str, Owners]] = {}
        # Objects whose last event did not match `known`, with that event's fingerprint (None: deleted)
        # and owners, waiting out the debounce.
        self._pending: dict[ObjectId, tuple[str | None, Owners]] = {}
        # Objects the operator deleted, until their DELETED event (at the latest until the monotonic time
        # given): a watch that lags behind may still deliver states from before the delete, and those are
        # the operator's own history, not someone else's change.
        self._removed: dict[ObjectId, float] = {}
        # Objects with a write of the operator's on its way (a count per object): their events wait for its
        # answer, however slow the API server is, rather than for the debounce alone.
        self._writing: dict[ObjectId, int] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # (apiVersion, kind, namespace or ALL_NAMESPACES) whose first list is in `known`.
        self._listed: set[tuple[str, str, str]] = set()
        self.drifts = 0  # changes by someone else handed to owners (tests and metrics read it)

    # --- the operator's own writes ----------------------------------------------------------------------

    def wrote(self, obj: Mapping[str, Any]) -> None:
        """The API server's answer to a write of the operator: its watch event is not a change."""
        ident = object_id(obj)
        owners = owners_of(obj)
        if (ident[0], ident[1]) in self.kinds and owners:
            self.known[ident] = (fingerprint(obj), owners)

    @contextlib.contextmanager
    def writing(self, ident: ObjectId) -> Iterator[None]:
        """Around a write of the operator's: an event of the object meanwhile is judged after the answer."""
        self._writing[ident] = self._writing.get(ident, 0) + 1
        try:
            yield
        finally:
            left = self._writing.pop(ident) - 1
            if left:
                self._writing[ident] = left

    def removed(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """The operator deleted this object: its DELETED event, and any event of a state before it still
        on its way, is not a change."""
        ident = (api_version, kind, namespace, name)
        self.known.pop(ident, None)
        self._pending.pop(ident, None)
        self._removed[ident] = time.monotonic() + REMOVED_GRACE

    # --- what the controllers may ask instead of the API server -----------------------------------------

    def recorded(self, ident: ObjectId) -> str | None:
        """The fingerprint of the object as the operator last wrote or accepted it; None if it is not one of
        the operator's objects as far as the watch knows (absent, or not labelled and owned as its own).

        Ask `listed` first: before the first list of its kind and namespace, None means nothing. A change
        by someone else shows here after the debounce at the latest, and its owner is woken then."""
        return self._fingerprint(ident)

    def listed(self, api_version: str, kind: str, namespace: str) -> bool:
        """Whether the watch of this kind has listed the namespace once (and `recorded` can be believed)."""
        return any((api_version, kind, ns) in self._listed for ns in (namespace, ALL_NAMESPACES))

    # --- events -----------------------------------------------------------------------------------------

    def seen(self, event_type: str, obj: Mapping[str, Any]) -> None:
        """One watch event (or one object of a re-list, as ADDED)."""
        ident = object_id(obj)
        owners = owners_of(obj)
        removed_until = self._removed.get(ident)
        if removed_until is not None:
            if event_type == "DELETED" or time.monotonic() >= removed_until:
                del self._removed[ident]
            if event_type == "DELETED" or time.monotonic() < removed_until:
                return
        if event_type == "DELETED":
            if ident not in self.known:
                return  # deleted by the operator, or never one of its objects
            self._suspect(ident, None, owners or self.known[ident][1])
            return
        if not owners:
            return
        current = fingerprint(obj)
        if self._fingerprint(ident) == current:
            self._pending.pop(ident, None)
            return
        self._suspect(ident, current, owners)

    def _fingerprint(self, ident: ObjectId) -> str | None:
        known = self.known.get(ident)
        return known[0] if known is not None else None

    def _suspect(self, ident: ObjectId, current: str | None, owners: Owners) -> None:
        first = ident not in self._pending
        self._pending[ident] = (current, owners)
        if first:
            asyncio.get_running_loop().call_later(self.debounce, self._settle, ident)

    def _settle(self, ident: ObjectId) -> None:
        if ident in self._writing:
            # The answer to the operator's own write is still on its way: judge the event against it.
            asyncio.get_running_loop().call_later(self.debounce, self._settle, ident)
            return
        pending = self._pending.pop(ident, None)
        if pending is None:
            return
        current, owners = pending
        if current is not None and self._fingerprint(ident) == current:
            return  # the answer to the operator's own write arrived meanwhile
        if current is None:
            if ident not in self.known:
                return  # the operator deleted it meanwhile
            self.known.pop(ident, None)
        else:
            self.known[ident] = (current, owners)
        self.drifts += 1
        for kind, name, uid in owners:
            self.on_drift(kind, (ident[2], name), uid, ident)

    async def _relisted(
        self, api_version: str, kind: str, namespace: str, objects: list[dict[str, Any]]
    ) -> None:
        """A fresh list after a watch broke: what changed or went meanwhile counts as a change."""
        listed = {object_id(obj) for obj in objects}
        for ident in [i for i in self._removed if i[0] == api_version and i[1] == kind]:
            if namespace == ALL_NAMESPACES or ident[2] == namespace:
                del self._removed[ident]  # the list is the truth now: a later object is a new one
        for ident in [
            i
            for i in self.known
            if i[0] == api_version and i[1] == kind and (namespace == ALL_NAMESPACES or i[2] == namespace)
        ]:
            if ident not in listed:
                self._suspect(ident, None, self.known[ident][1])
        await each_in_turns(objects, functools.partial(self.seen, "ADDED"))

    # --- watching ---------------------------------------------------------------------------------------

    def start(self, namespaces: Iterable[str]) -> None:
        """One list+watch per watched kind and namespace (`ALL_NAMESPACES` when cluster-wide)."""
        for namespace in namespaces:
            for watched in self.kinds.values():
                collection = Collection(
                    watched.api_version, watched.plural, watched.kind, namespace, SELECTOR
                )
                watch = ListWatch(
                    self.client,
                    collection,
                    functools.partial(self._on_list, collection),
                    self.seen,
                )
                self._tasks.append(
                    asyncio.create_task(watch.run(), name=f"strongroom owned {collection.describe()}")
                )

    async def _on_list(self, collection: Collection, objects: Sequence[dict[str, Any]]) -> None:
        listed = (collection.api_version, collection.kind, collection.namespace)
        if listed in self._listed:
            await self._relisted(*listed, list(objects))
            return

        # What exists at start is the operator's as it stands: owners are all reconciled at start.
        def accept(obj: dict[str, Any]) -> None:
            owners = owners_of(obj)
            if owners:
                self.known.setdefault(object_id(obj), (fingerprint(obj), owners))

        await each_in_turns(objects, accept)
        self._listed.add(listed)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
