"""The identity of a Resource and the names it owns: GUResID, duplicates, Secret names, store keys' prefix,
annotations.

Pure: no I/O, no clock, no randomness (see the package docstring)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.api import constants as c
from strongroom.api.resource import Resource, derive_guresid
from strongroom.reconcile.stores import Problem

#: Added on the first reconcile, removed once the driver deleted the resource and the store keys are gone.
FINALIZER = f"{c.GROUP}/finalizer"
#: Set (to the driver type and GUResID) before every driver PUT and removed after its outputs are stored:
#: after a crash the operator sees it and repeats the PUT, or deletes through that driver.
PENDING_ANNOTATION = f"{c.GROUP}/pending-apply"
#: On the outputs Secret: content hash of the manifests Secret written with it (absent: there is none).
MANIFESTS_HASH_ANNOTATION = f"{c.GROUP}/manifests-hash"
#: On objects of `cluster` manifests (which cannot have a namespaced owner): which Resource applied them
#: (`<namespace>/<name>`, and its uid), the proof of ownership checked before they are changed or deleted.
RESOURCE_ANNOTATION = f"{c.GROUP}/resource"
RESOURCE_UID_ANNOTATION = f"{c.GROUP}/resource-uid"

#: Keys in the default store: `strongroom/<namespace>/<resource>/outputs/<output key>` and `.../cookie`.
STORE_PREFIX = "strongroom"
OUTPUTS_SECRET_SUFFIX = "-outputs"  # noqa: S105 (a name suffix)
MANIFESTS_SECRET_SUFFIX = "-manifests"  # noqa: S105 (a name suffix)
CONTAINERS_KEY = "containers.json"
VOLUMES_KEY = "volumes.json"
#: `resourceInputs.workloadName` names the Workload a workload-type resource's `update` patches.
WORKLOAD_NAME_INPUT = "workloadName"
#: Humanitec's id of a workload resource: `modules.<workload>`.
_WORKLOAD_ID = re.compile(r"^modules\.([^.]+)$")

HMAC_PREFIX = "hmac-sha256:"
#: Condition type, True while the Resource carries something the operator did not write and ignored.
TAMPERED = "Tampered"
_DATA_KEY = re.compile(c.DATA_KEY)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Keys that make a node of a secret reference tree a leaf; an output branch may not use them.
_REFERENCE_KEYS = frozenset({"store", "ref", "version"})


# --- Identity ---------------------------------------------------------------------------------------------


def derived_guresid_of(resource: Resource) -> str:
    spec = resource.spec
    return derive_guresid(resource.namespace, spec.type, spec.resource_class, spec.id)


def guresid_of(resource: Resource) -> str:
    """`spec.guresid` if set, else the derived one (whether a set one is allowed: `guresid_problem`)."""
    return resource.spec.guresid or derived_guresid_of(resource)


@dataclass(frozen=True)
class GuresidPolicy:
    """Where a hand-set `spec.guresid` is honoured: the operator's `--explicit-guresid-namespaces`."""

    namespaces: frozenset[str] = frozenset()
    """Namespaces allowed to set `spec.guresid`; `*` allows every namespace."""

    def allows(self, namespace: str) -> bool:
        return "*" in self.namespaces or namespace in self.namespaces


def guresid_problem(resource: Resource, policy: GuresidPolicy) -> Problem | None:
    """Why the Resource may not use its `spec.guresid` (None: it sets none, or may).

    A GUResID is the driver's name for a resource: one a tenant could choose freely would let it PUT to,
    or DELETE, the driver resource of another namespace. Setting the derived one is harmless."""
    given = resource.spec.guresid
    if not given or given == derived_guresid_of(resource) or policy.allows(resource.namespace):
        return None
    return Problem(
        "GuresidNotAllowed",
        f"spec.guresid {given!r} is refused: namespace {resource.namespace!r} is not allowed to choose "
        "GUResIDs (the platform admin lists such namespaces in the operator's "
        "--explicit-guresid-namespaces); remove spec.guresid to use the one derived from namespace, type, "
        "class and id",
        retryable=False,
    )


def identity_key(resource: Resource, policy: GuresidPolicy) -> str:
    """What makes two Resources of a namespace the same driver resource: the GUResID they would use."""
    return guresid_of(resource) if guresid_problem(resource, policy) is None else derived_guresid_of(resource)


def _created(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))


def duplicate_winner(body: Mapping[str, Any], same_identity: Iterable[Mapping[str, Any]]) -> str | None:
    """The name of the Resource that holds this identity when it is not `body` itself, else None.

    `same_identity`: every Resource of the namespace with the same identity (`body` may be among them).
    The oldest (creationTimestamp, then name) holds it; the others are refused with `DuplicateResource`
    and never call the driver, so deleting one of them never deprovisions what the first one uses."""
    mine = _created(body)
    first = min((_created(other) for other in same_identity), default=mine)
    return None if min(first, mine) == mine else first[1]


def duplicate_problem(resource: Resource, winner: str) -> Problem:
    return Problem(
        "DuplicateResource",
        f"Resource {winner!r} of this namespace already has the same type {resource.spec.type!r}, class "
        f"{resource.spec.resource_class!r} and id {resource.spec.id!r} (the same driver resource); this one "
        "is not provisioned and deleting it deprovisions nothing: delete it, or change its id",
        retryable=False,
    )


def derived_name(base: str, suffix: str) -> str:
    """`<base><suffix>` within the 253 characters of an object name (cut, with a digest, when longer)."""
    name = base + suffix
    if len(name) <= c.DNS1123_SUBDOMAIN_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    keep = c.DNS1123_SUBDOMAIN_MAX - len(suffix) - len(digest) - 1
    return f"{base[:keep].rstrip('-.')}-{digest}{suffix}"


def outputs_secret_name(resource_name: str) -> str:
    return derived_name(resource_name, OUTPUTS_SECRET_SUFFIX)


def manifests_secret_name(resource_name: str) -> str:
    return derived_name(resource_name, MANIFESTS_SECRET_SUFFIX)


def output_store_key(namespace: str, name: str, output_key: str) -> str:
    return f"{STORE_PREFIX}/{namespace}/{name}/outputs/{output_key}"


def cookie_store_key(namespace: str, name: str) -> str:
    return f"{STORE_PREFIX}/{namespace}/{name}/cookie"
