"""Resource: the decisions of the Resource controller. Pure: no I/O, no clock, no randomness.

The controller (operator/controllers/resource.py) gathers what these functions need (the Resource, the
Resources it depends on, secret values read from the stores, the driver's answer, the Secrets that
exist) and carries out what they return. Everything that decides something lives here, so it can be
unit-tested without a cluster:

- identity: the GUResID (given, or derived from namespace, type, class and id), the names of the owned
  Secrets, the keys the secret outputs and the cookie get in the default store;
- dependencies: which Resources a Resource's inputs name through `${resources.<name>.outputs.<key>}`,
  cycles among them, and the inputs with those placeholders replaced;
- when to call the driver: inputs changed (an HMAC over the resolved inputs, so secret values are never
  hashed in the clear into the status), an interrupted call to repeat, a driver change, a failed last
  attempt, a missing outputs Secret, the periodic resync;
- what to write from the driver's answer: the outputs Secret, the Secret with container and volume
  manifests, the objects of `namespace`/`cluster` manifests, the WorkloadPatch from `update`, store keys
  to write and to remove, and the status.

Secret values only ever travel as `SecretValue`s or as bytes inside Secret manifests; messages name keys,
resources and placeholders, never values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from strongroom.api import constants as c
from strongroom.api.common import SecretReference, iter_secret_refs
from strongroom.api.resource import MANIFESTS_MAX, Resource, derive_guresid, inputs_too_large
from strongroom.api.workload import WorkloadPatchSpec
from strongroom.drivers.base import DriverRequest, DriverResult, SecretTree, reveal_tree, to_secret_tree
from strongroom.reconcile.conditions import (
    READY,
    RECONCILING,
    STALLED,
    ConditionSpec,
    merge_conditions,
    not_ready,
    ready,
)
from strongroom.reconcile.ownership import controlled_by, owned_by
from strongroom.reconcile.placeholders import (
    Placeholder,
    PlaceholderError,
    ResourceRef,
    lookup,
    resource_ref,
    resource_references,
    substitute_tree,
)
from strongroom.reconcile.secretmapping import CONTENT_HASH_ANNOTATION, MANAGED_BY_LABEL, content_hash
from strongroom.reconcile.stores import Problem
from strongroom.stores.base import SecretValue

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


# --- Dependencies -----------------------------------------------------------------------------------------


def _input_trees(resource: Resource) -> dict[str, Any]:
    inputs = resource.spec.driver_inputs
    return {
        "values": (inputs.values if inputs else None) or {},
        "secrets": (inputs.secrets if inputs else None) or {},
        "resourceInputs": resource.spec.resource_inputs or {},
    }


def dependencies(resource: Resource) -> list[ResourceRef]:
    """The Resource outputs its inputs refer to. Raises PlaceholderError for a malformed placeholder."""
    return resource_references(_input_trees(resource), dotted_names=True)


def dependency_names(resource: Resource) -> frozenset[str]:
    """Names of the Resources this one depends on (empty when a placeholder is malformed)."""
    try:
        return frozenset(ref.resource for ref in dependencies(resource))
    except PlaceholderError:
        return frozenset()


def find_cycle(start: str, edges: Callable[[str], Collection[str]]) -> list[str] | None:
    """A dependency cycle through `start` as `[start, ..., start]`, or None. `edges(name)`: the names
    `name` depends on.

    Only what `start` reaches is visited, so the cost follows the dependency chain, not the namespace.
    """
    parents: dict[str, str] = {}
    stack = [start]
    seen = {start}
    while stack:
        node = stack.pop()
        for nxt in sorted(edges(node)):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [start, *reversed(path[:-1]), start] if node != start else [start, start]
            if nxt not in seen:
                seen.add(nxt)
                parents[nxt] = node
                stack.append(nxt)
    return None


@dataclass(frozen=True)
class DependencyView:
    """What a dependent may use of another Resource."""

    ready: bool
    values: Mapping[str, Any] = field(default_factory=dict)
    secret_keys: frozenset[str] = frozenset()
    """Flat keys (dot-joined) of its secret outputs, from its `status.outputs.secretRefs`."""
    secrets: Mapping[str, SecretValue] | None = None
    """Its secret outputs by flat key, read from its outputs Secret; None when not read."""
    why: str = ""
    """Why it is not ready, for the waiting message."""


def dependency_view(body: Mapping[str, Any]) -> DependencyView:
    """A Resource object (as a dict) seen by its dependents: Ready for its current generation, or not."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return DependencyView(False, why="is being deleted")
    cond = next((x for x in status.get("conditions") or [] if x.get("type") == READY), None)
    if cond is None or cond.get("status") != "True":
        reason = (cond or {}).get("reason")
        return DependencyView(False, why=f"is not Ready ({reason})" if reason else "is not Ready yet")
    if status.get("observedGeneration") != meta.get("generation"):
        return DependencyView(False, why="has a changed spec that is not provisioned yet")
    outputs = status.get("outputs") or {}
    refs = outputs.get("secretRefs") or {}
    return DependencyView(
        True, values=outputs.get("values") or {}, secret_keys=frozenset(_flat_leaf_keys(refs))
    )


def _flat_leaf_keys(tree: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, node in tree.items():
        flat = f"{prefix}{key}"
        if isinstance(node, Mapping) and not _REFERENCE_KEYS.intersection(node):
            yield from _flat_leaf_keys(node, flat + ".")
        else:
            yield flat


def secret_dependencies(refs: Iterable[ResourceRef], views: Mapping[str, DependencyView]) -> set[str]:
    """The dependencies whose outputs Secret must be read: those referenced for a secret output."""
    return {
        ref.resource
        for ref in refs
        if ref.resource in views
        and views[ref.resource].ready
        and ref.key_text in views[ref.resource].secret_keys
    }


@dataclass(frozen=True)
class ResolvedInputs:
    """Driver inputs with `${resources...}` placeholders replaced (secret refs not merged yet)."""

    values: dict[str, Any]
    secrets: dict[str, Any]
    resource_inputs: dict[str, Any]


@dataclass(frozen=True)
class InputProblem(Problem):
    """A problem with the inputs; `waiting_for` names the Resources a dependent waits on."""

    waiting_for: tuple[str, ...] = ()


def _quote(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in sorted(set(names)))


def resolve_placeholders(
    resource: Resource, views: Mapping[str, DependencyView]
) -> ResolvedInputs | InputProblem:
    """Replace `${resources.<name>.outputs.<key>}` in the driver inputs and resource inputs.

    Secret outputs may only be used in `driverInputs.secrets`: in values they would reach the driver as
    plain values and could come back as plain outputs (status). Placeholders with other roots (Humanitec's
    `${context...}`) are the orchestrator's; they are left as written.
    """
    waiting: dict[str, str] = {}
    missing: list[tuple[str, str]] = []
    misplaced: list[str] = []
    invalid: list[str] = []

    def resolver(tree: str) -> Any:
        def resolve(placeholder: Placeholder) -> Any:
            try:
                ref = resource_ref(placeholder, dotted_names=True)
            except PlaceholderError as exc:
                invalid.append(str(exc))
                return ""
            if ref is None:
                return placeholder.source
            if not ref.key:
                invalid.append(f"placeholder {placeholder.source} names no output key")
                return ""
            view = views.get(ref.resource)
            if view is None:
                waiting.setdefault(ref.resource, "does not exist")
                return ""
            if not view.ready:
                waiting.setdefault(ref.resource, view.why or "is not Ready")
                return ""
            if ref.key_text in view.secret_keys:
                if tree != "secrets":
                    misplaced.append(placeholder.source)
                    return ""
                if view.secrets is None or ref.key_text not in view.secrets:
                    waiting.setdefault(ref.resource, f"has secret output {ref.key_text!r} not readable yet")
                    return ""
                return view.secrets[ref.key_text].reveal().decode(errors="replace")
            try:
                return lookup(view.values, ref.key)
            except (KeyError, IndexError):
                missing.append((ref.resource, ref.key_text))
                return ""

        return resolve

    trees = _input_trees(resource)
    try:
        resolved = {name: substitute_tree(tree, resolver(name)) for name, tree in trees.items()}
    except PlaceholderError as exc:
        return InputProblem("InvalidPlaceholder", str(exc), retryable=False)
    if invalid:
        return InputProblem("InvalidPlaceholder", "; ".join(sorted(set(invalid))), retryable=False)
    if misplaced:
        return InputProblem(
            "SecretOutputInValues",
            f"{', '.join(sorted(set(misplaced)))} refer to secret outputs; secret outputs can only be used "
            "in driverInputs.secrets (values and resourceInputs are not secret)",
            retryable=False,
        )
    if waiting or missing:
        parts = [f"{name!r} {why}" for name, why in sorted(waiting.items())]
        parts += [f"{name!r} has no output {key!r}" for name, key in sorted(set(missing))]
        names = set(waiting) | {name for name, _ in missing}
        return InputProblem(
            "WaitingForResources",
            f"waiting for Resources {_quote(names)}: {'; '.join(parts)}",
            retryable=True,
            waiting_for=tuple(sorted(names)),
        )
    oversized = inputs_too_large(resolved)
    if oversized is not None:
        return InputProblem("InputsTooLarge", oversized, retryable=False)
    return ResolvedInputs(resolved["values"], resolved["secrets"], resolved["resourceInputs"])


# --- The driver request -----------------------------------------------------------------------------------


def secret_ref_paths(resource: Resource) -> list[tuple[tuple[str, ...], SecretReference]]:
    """`driverInputs.secretRefs` as (path, reference) pairs, in a stable order."""
    inputs = resource.spec.driver_inputs
    if inputs is None or not inputs.secret_refs:
        return []
    return iter_secret_refs(inputs.secret_refs)


def merge_secrets(
    secrets: Mapping[str, Any], resolved: Sequence[tuple[tuple[str, ...], SecretValue]]
) -> SecretTree:
    """`driverInputs.secrets` (placeholders replaced) with every resolved secret reference set at its path
    (a reference wins over a plain entry at the same path)."""
    tree: dict[str, Any] = _deep_copy(secrets)
    for path, value in resolved:
        node = tree
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    return to_secret_tree(tree)


def _deep_copy(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in value.items()}


def driver_request(
    resource: Resource,
    inputs: ResolvedInputs,
    secret_values: Sequence[tuple[tuple[str, ...], SecretValue]],
    cookie: SecretValue | None,
    guresid: str | None = None,
) -> DriverRequest:
    spec = resource.spec
    return DriverRequest(
        guresid=guresid or guresid_of(resource),
        type=spec.type,
        resource_id=spec.id,
        resource_class=spec.resource_class,
        resource_inputs=inputs.resource_inputs,
        values=inputs.values,
        secrets=merge_secrets(inputs.secrets, secret_values),
        cookie=cookie,
        namespace=resource.namespace,
    )


def bare_request(resource: Resource, guresid: str, cookie: SecretValue | None) -> DriverRequest:
    """A request for DELETE (and for a driver being replaced): identity and cookie, no inputs.

    Inputs may no longer resolve when a Resource is deleted (a dependency or a secret is gone), and the
    Driver API's DELETE carries no body."""
    spec = resource.spec
    return DriverRequest(
        guresid=guresid,
        type=spec.type,
        resource_id=spec.id,
        resource_class=spec.resource_class,
        resource_inputs=spec.resource_inputs or {},
        cookie=cookie,
        namespace=resource.namespace,
    )


def inputs_digest(request: DriverRequest, driver_type: str, key: bytes) -> str:
    """HMAC-SHA256 over everything a PUT sends except the cookie (which the driver itself changes).

    Keyed with a secret the operator keeps, so the digest in the status cannot be used to guess a low-
    entropy secret input by hashing candidates."""
    payload = {
        "driverType": driver_type,
        "guresid": request.guresid,
        "type": request.type,
        "id": request.resource_id,
        "class": request.resource_class,
        "resource": request.resource_inputs,
        "values": request.values,
        "secrets": reveal_tree(request.secrets),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return HMAC_PREFIX + hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _ready_now(resource: Resource) -> bool:
    status = resource.status
    if status is None or status.observed_generation != resource.metadata.generation:
        return False
    cond = status.condition(READY)
    return cond is not None and cond.status == "True"


def apply_reason(
    resource: Resource,
    digest: str,
    pending: Pending | None,
    *,
    outputs_secret_present: bool,
    now: datetime,
    resync_seconds: float,
    owned_objects_changed: bool = False,
) -> str | None:
    """Why the driver must be called now (a PUT), or None when the last PUT still stands.

    `owned_objects_changed`: someone else edited or deleted an object the Resource owns (its outputs or
    manifests Secret, an object of a manifest); the driver's answer is what restores it."""
    status = resource.status
    if pending is not None:
        return "a driver call that did not finish is repeated"
    if status is None or not status.inputs_hash or status.last_applied_time is None:
        return "first provisioning"
    if status.driver_type != resource.spec.driver_type:
        return "the driver changed"
    if not hmac.compare_digest(status.inputs_hash, digest):
        return "the inputs changed"
    if not _ready_now(resource):
        return "the last attempt did not succeed"
    if not outputs_secret_present:
        return "the outputs Secret is missing"
    if owned_objects_changed:
        return "an object it owns was changed or deleted by someone else"
    if (now - status.last_applied_time).total_seconds() >= resync_seconds:
        return "periodic resync"
    return None


def seconds_until_resync(resource: Resource, now: datetime, resync_seconds: float) -> float:
    status = resource.status
    if status is None or status.last_applied_time is None:
        return resync_seconds
    return max(1.0, resync_seconds - (now - status.last_applied_time).total_seconds())


def drivers_to_release(resource: Resource, pending: Pending | None) -> list[tuple[str, str]]:
    """(driver type, GUResID) of drivers other than `spec.driverType` that may hold the resource.

    Empty with `inPlaceDriverChange` (the new driver takes the resource over)."""
    if resource.spec.in_place_driver_change:
        return []
    return [(d, g) for d, g in drivers_holding(resource, pending) if d != resource.spec.driver_type]


def drivers_holding(resource: Resource, pending: Pending | None) -> list[tuple[str, str]]:
    """(driver type, GUResID) of every driver that provisioned, or may have started to provision, the
    resource: the one in the status and the one of an interrupted PUT."""
    found: dict[str, str] = {}
    status = resource.status
    if status is not None and status.driver_type:
        found[status.driver_type] = status.guresid or guresid_of(resource)
    if pending is not None:
        found.setdefault(pending.driver_type, pending.guresid)
    return sorted(found.items())


# --- Outputs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outputs:
    """A driver answer, checked and taken apart."""

    values: dict[str, Any]
    secrets: dict[str, SecretValue]
    """Secret outputs by flat key (nested keys joined with dots): the data keys of the outputs Secret."""
    secret_shape: dict[str, Any]
    """The nesting of the secret outputs: flat keys at the leaves (for `status.outputs.secretRefs`)."""
    containers: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    namespace_objects: list[dict[str, Any]]
    cluster_objects: list[dict[str, Any]]
    update: list[dict[str, Any]] | None


def _flatten(
    tree: Mapping[str, Any], prefix: str, flat: dict[str, SecretValue], problems: list[str]
) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    for key in sorted(tree):
        node = tree[key]
        name = f"{prefix}{key}"
        if isinstance(node, SecretValue):
            if not _DATA_KEY.fullmatch(name) or len(name) > c.DATA_KEY_MAX:
                problems.append(
                    f"secret output {name!r} is not a valid Secret key (letters, digits, '-', '_', '.')"
                )
            flat[name] = node
            shape[key] = name
        elif isinstance(node, Mapping):
            if _REFERENCE_KEYS.intersection(node):
                problems.append(f"secret output {name!r} has a key named store, ref or version inside it")
            shape[key] = _flatten(node, name + ".", flat, problems)
    return shape


def _object_problem(data: Mapping[str, Any], where: str) -> str | None:
    meta = data.get("metadata")
    if not isinstance(data.get("apiVersion"), str) or not isinstance(data.get("kind"), str):
        return f"{where} has no apiVersion or kind"
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        return f"{where} has no metadata.name"
    return None


def check_outputs(resource: Resource, result: DriverResult) -> Outputs | Problem:
    """Take a driver answer apart; a Problem (not retryable: the driver must change) if it is unusable."""
    problems: list[str] = []
    flat: dict[str, SecretValue] = {}
    shape = _flatten(result.secrets, "", flat, problems)
    containers: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    namespaced: list[dict[str, Any]] = []
    cluster: list[dict[str, Any]] = []
    for index, manifest in enumerate(result.manifests):
        where = f"manifest {manifest.name or index!s} ({manifest.location})"
        data = manifest.data
        if manifest.location == "containers":
            if not isinstance(data.get("name"), str):
                problems.append(f"{where} has no container name")
            containers.append(data)
        elif manifest.location == "volumes":
            if not isinstance(data.get("name"), str):
                problems.append(f"{where} has no volume name")
            volumes.append(data)
        else:
            problem = _object_problem(data, where)
            if problem:
                problems.append(problem)
                continue
            namespace = data["metadata"].get("namespace")
            if manifest.location == "namespace":
                if namespace not in (None, "", resource.namespace):
                    problems.append(
                        f"{where} names namespace {namespace!r}; objects of namespace manifests go into the "
                        f"Resource's namespace {resource.namespace!r}"
                    )
                    continue
                namespaced.append(data)
            else:
                if namespace:
                    problems.append(f"{where} is for location cluster but names namespace {namespace!r}")
                    continue
                cluster.append(data)
    update = result.update
    if update:
        try:
            WorkloadPatchSpec.model_validate({"workloadName": "x", "patches": update})
        except ValidationError as exc:
            fields = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors(include_input=False)
            )
            problems.append(f"the update output is not a valid WorkloadPatch ({fields})")
    for kind, objects in (("namespace", namespaced), ("cluster", cluster)):
        seen: set[tuple[str, str, str]] = set()
        for obj in objects:
            ident = (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
            if ident in seen:
                problems.append(f"two {kind} manifests are the same object {ident[1]} {ident[2]!r}")
            seen.add(ident)
    if problems:
        return Problem("InvalidOutputs", "the driver's answer cannot be used: " + "; ".join(problems), False)
    return Outputs(
        values=dict(result.values),
        secrets=flat,
        secret_shape=shape,
        containers=containers,
        volumes=volumes,
        namespace_objects=namespaced,
        cluster_objects=cluster,
        update=update or None,
    )


# --- Desired objects --------------------------------------------------------------------------------------


def owner_reference(resource: Resource, *, controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": "Resource",
        "name": resource.name,
        "uid": resource.metadata.uid or "",
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def _owned_meta(
    resource: Resource, name: str, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": resource.namespace,
        "labels": {c.MANAGED_LABEL: "true", MANAGED_BY_LABEL: "strongroom"},
        "ownerReferences": [owner_reference(resource)],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _secret(resource: Resource, name: str, data: Mapping[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _owned_meta(resource, name, {CONTENT_HASH_ANNOTATION: content_hash(data)}),
        "type": "Opaque",
        "data": {key: base64.b64encode(value).decode() for key, value in sorted(data.items())},
    }


def outputs_secret(
    resource: Resource, secrets: Mapping[str, SecretValue], manifests_hash: str | None = None
) -> dict[str, Any]:
    """The Secret workloads read the secret outputs from: one key per flat output key. It also records
    the hash of the manifests Secret, so that one is only read and written when its content changes."""
    secret = _secret(
        resource, outputs_secret_name(resource.name), {k: v.reveal() for k, v in secrets.items()}
    )
    if manifests_hash:
        secret["metadata"]["annotations"][MANIFESTS_HASH_ANNOTATION] = manifests_hash
    return secret


def content_hash_of(secret: Mapping[str, Any] | None) -> str | None:
    """The content-hash annotation of a Secret manifest (None for no Secret)."""
    if secret is None:
        return None
    value = ((secret.get("metadata") or {}).get("annotations") or {}).get(CONTENT_HASH_ANNOTATION)
    return str(value) if value else None


def recorded_manifests_hash(outputs_secret_observed: Mapping[str, Any] | None) -> str | None:
    """The manifests hash the observed outputs Secret recorded (None: no manifests Secret was written)."""
    annotations = ((outputs_secret_observed or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(MANIFESTS_HASH_ANNOTATION)
    return str(value) if value else None


def manifests_secret(resource: Resource, outputs: Outputs) -> dict[str, Any] | None:
    """The Secret with the `containers` and `volumes` manifests for Workloads; None when there are none.

    A Secret, not the status: a sidecar's env may carry a value the driver considers sensitive."""
    if not outputs.containers and not outputs.volumes:
        return None
    data = {
        CONTAINERS_KEY: _json_bytes(outputs.containers),
        VOLUMES_KEY: _json_bytes(outputs.volumes),
    }
    return _secret(resource, manifests_secret_name(resource.name), data)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def secret_current(observed: Mapping[str, Any] | None, wanted: Mapping[str, Any], uid: str) -> bool:
    """Whether an observed Secret already is what `wanted` describes (then it is not written)."""
    if observed is None:
        return False
    meta = observed.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    owned = controlled_by(observed, uid)
    return (
        owned
        and all(
            annotations.get(name) == wanted["metadata"]["annotations"].get(name)
            for name in (CONTENT_HASH_ANNOTATION, MANIFESTS_HASH_ANNOTATION)
        )
        and all(labels.get(k) == v for k, v in wanted["metadata"]["labels"].items())
        and (observed.get("data") or {}) == wanted["data"]
    )


def namespace_object(resource: Resource, data: Mapping[str, Any]) -> dict[str, Any]:
    """An object of a `namespace` manifest: in the Resource's namespace, owned by it (not as controller:
    what the object is for is the driver's business). The owner reference is also the proof, checked
    before the object is applied over or deleted, that this Resource made it (`manifest_owned`)."""
    obj = _deep_copy(data)
    meta = obj.setdefault("metadata", {})
    meta["namespace"] = resource.namespace
    meta.setdefault("labels", {})[c.MANAGED_LABEL] = "true"
    meta["ownerReferences"] = [owner_reference(resource, controller=False)]
    return obj


def cluster_object(resource: Resource, data: Mapping[str, Any]) -> dict[str, Any]:
    """An object of a `cluster` manifest. Cluster-scoped objects cannot be owned by a namespaced one, so
    the operator deletes them itself (tracked in `status.manifests`); an annotation says whose they are."""
    obj = _deep_copy(data)
    meta = obj.setdefault("metadata", {})
    meta.pop("namespace", None)
    meta.setdefault("labels", {})[c.MANAGED_LABEL] = "true"
    annotations = meta.setdefault("annotations", {})
    annotations[RESOURCE_ANNOTATION] = f"{resource.namespace}/{resource.name}"
    annotations[RESOURCE_UID_ANNOTATION] = resource.metadata.uid or ""
    return obj


def manifest_owned(live: Mapping[str, Any], resource: Resource, location: str | None) -> bool:
    """Whether an existing object proves it was made by this Resource (then it may be applied over and
    deleted): an ownerReference with its uid for a namespaced object, the `strongroom.dev/resource`
    annotation naming it and its uid for a cluster-scoped one. Anything else is someone else's."""
    uid = resource.metadata.uid or ""
    if not uid:
        return False
    if location == "cluster":
        annotations = (live.get("metadata") or {}).get("annotations") or {}
        return (
            annotations.get(RESOURCE_ANNOTATION) == f"{resource.namespace}/{resource.name}"
            and annotations.get(RESOURCE_UID_ANNOTATION) == uid
        )
    return owned_by(live, uid)


def manifest_conflict(ref: Mapping[str, Any]) -> Problem:
    where = f" in namespace {ref['namespace']!r}" if ref.get("namespace") else ""
    return Problem(
        "ManifestConflict",
        f"{ref['kind']} {ref['name']!r}{where} already exists and was not created by this Resource: the "
        "driver's manifests may not take over an object they did not make, so nothing was applied; delete "
        "or rename that object, or change the driver's manifests",
        retryable=False,
    )


# --- Manifest policy --------------------------------------------------------------------------------------

#: Kinds a driver's manifests may create unless the operator says otherwise (`--manifest-kinds`): those the
#: chart's RBAC grants the operator. `Kind` for the core group, `group/Kind` for the others.
DEFAULT_MANIFEST_KINDS = ("ConfigMap", "Secret", "Service", "apps/Deployment")


def kind_name(obj: Mapping[str, Any]) -> str:
    """`Kind` (core group) or `group/Kind`: how `--manifest-kinds` names an object's kind."""
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return f"{group}/{obj.get('kind')}" if group else str(obj.get("kind"))


@dataclass(frozen=True)
class ManifestPolicy:
    """What a Resource's driver may create through `namespace` and `cluster` manifests."""

    kinds: frozenset[str] = frozenset(DEFAULT_MANIFEST_KINDS)
    cluster_refusal: str | None = "cluster manifests are not allowed"
    """Why `cluster` manifests are refused for this driver; None: they are allowed."""


def cluster_manifest_refusal(
    driver_type: str,
    *,
    builtin: bool,
    driver_namespace: str | None,
    allow_cluster_manifests: bool,
    operator_namespace: str,
    builtin_allowed: bool,
) -> str | None:
    """Why a driver may not create cluster-scoped objects (None: it may).

    Cluster-scoped objects belong to no namespace, so only the platform admin can allow them: for a remote
    driver through `spec.allowClusterManifests` on a Driver in the operator namespace, for the built-in
    drivers (whose templates any tenant writes) through the operator's `--builtin-cluster-manifests`."""
    if builtin:
        if builtin_allowed:
            return None
        return (
            f"the built-in driver {driver_type!r} renders what the Resource's author writes, and the "
            "operator runs without --builtin-cluster-manifests"
        )
    if driver_namespace != operator_namespace:
        return (
            f"Driver {driver_namespace}/{driver_type} is not in the operator namespace "
            f"{operator_namespace!r}; only a Driver there can be allowed cluster manifests"
        )
    if not allow_cluster_manifests:
        return f"Driver {driver_namespace}/{driver_type} does not set spec.allowClusterManifests: true"
    return None


#: Secrets of this type are filled by the API server's token controller with a ServiceAccount's token.
SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 (a Secret type)


def _is_token_secret(obj: Mapping[str, Any]) -> bool:
    return (
        obj.get("apiVersion") == "v1"
        and obj.get("kind") == "Secret"
        and obj.get("type") == SERVICE_ACCOUNT_TOKEN_TYPE
    )


def manifest_policy_problem(outputs: Outputs, policy: ManifestPolicy) -> Problem | None:
    """A driver answer whose manifests the policy refuses; nothing of it is applied then."""
    tokens = [o["metadata"]["name"] for o in outputs.namespace_objects if _is_token_secret(o)]
    if tokens:
        # The bug class of External Secrets Operator's GHSA-fq7h-9x26-6j22: whoever may write a Resource
        # would get a long-lived API token of any ServiceAccount of the namespace, minted on our behalf.
        return Problem(
            "ServiceAccountTokenNotAllowed",
            f"the driver's manifests create Secrets of type {SERVICE_ACCOUNT_TOKEN_TYPE} "
            f"({', '.join(repr(n) for n in sorted(tokens))}), which the API server fills with a "
            "ServiceAccount's API token; drivers may not create them",
            retryable=False,
        )
    if outputs.cluster_objects and policy.cluster_refusal is not None:
        names = ", ".join(f"{o['kind']} {o['metadata']['name']!r}" for o in outputs.cluster_objects)
        return Problem(
            "ClusterManifestNotAllowed",
            f"the driver's answer has cluster manifests ({names}), which are refused: "
            f"{policy.cluster_refusal}",
            retryable=False,
        )
    refused = sorted(
        {kind_name(o) for o in [*outputs.namespace_objects, *outputs.cluster_objects]} - policy.kinds
    )
    if refused:
        return Problem(
            "ManifestKindNotAllowed",
            f"the driver's manifests create kinds the operator does not allow: {', '.join(refused)} "
            f"(allowed: {', '.join(sorted(policy.kinds))}; the platform admin sets them with "
            "--manifest-kinds)",
            retryable=False,
        )
    return None


# --- Sizes ------------------------------------------------------------------------------------------------

#: Most bytes the output values may take as JSON: they go into the status, which shares the object's size
#: limit (about 1.5 MiB in etcd) with the spec; an answer beyond this never fits.
STATUS_VALUES_MAX = 256 * 1024
#: Most bytes of keys and values one Secret may hold (the API server's limit is 1 MiB for `data`; the rest
#: is left for the annotations and the manifests-hash the operator adds).
SECRET_DATA_MAX = 1024 * 1024 - 16 * 1024


def outputs_size_problem(resource: Resource, outputs: Outputs) -> Problem | None:
    """An answer that cannot be stored: output values too large for the status, secret outputs or the
    container/volume manifests too large for a Secret. Not retryable: calling the driver again with the
    same inputs would give the same answer."""
    problems = []
    values = len(json.dumps(outputs.values, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if values > STATUS_VALUES_MAX:
        problems.append(
            f"output values take {values} bytes as JSON (limit {STATUS_VALUES_MAX}, for the status)"
        )
    secrets = sum(len(k.encode()) + len(v.reveal()) for k, v in outputs.secrets.items())
    if secrets > SECRET_DATA_MAX:
        problems.append(
            f"secret outputs take {secrets} bytes (limit {SECRET_DATA_MAX}, for the Secret "
            f"{outputs_secret_name(resource.name)!r})"
        )
    manifests = len(_json_bytes(outputs.containers)) + len(_json_bytes(outputs.volumes))
    if manifests > SECRET_DATA_MAX:
        problems.append(
            f"container and volume manifests take {manifests} bytes (limit {SECRET_DATA_MAX}, for one Secret)"
        )
    objects = len(outputs.namespace_objects) + len(outputs.cluster_objects)
    if objects > MANIFESTS_MAX:
        problems.append(f"{objects} namespace and cluster manifests (limit {MANIFESTS_MAX})")
    if not problems:
        return None
    return Problem(
        "OutputsTooLarge",
        "the driver's answer cannot be stored: "
        + "; ".join(problems)
        + "; nothing was written and the driver is not called again until the spec, the inputs or the "
        "driver change",
        retryable=False,
    )


def applied_reference(obj: Mapping[str, Any], location: str) -> dict[str, Any]:
    meta = obj["metadata"]
    ref: dict[str, Any] = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"]}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    ref["location"] = location
    return ref


def manifest_refs(resource: Resource, outputs: Outputs) -> list[dict[str, Any]]:
    """References of the objects the outputs' namespace and cluster manifests make."""
    return [
        applied_reference(namespace_object(resource, o), "namespace") for o in outputs.namespace_objects
    ] + [applied_reference(cluster_object(resource, o), "cluster") for o in outputs.cluster_objects]


def _ident(ref: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (ref.get("apiVersion", ""), ref.get("kind", ""), ref.get("namespace") or "", ref.get("name", ""))


def stale_manifests(
    previous: Sequence[Mapping[str, Any]] | None, current: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Objects applied before and no longer emitted: to delete."""
    keep = {_ident(ref) for ref in current}
    return [dict(ref) for ref in previous or [] if _ident(ref) not in keep]


def workload_name(resource: Resource) -> str:
    """The Workload a workload-type resource's `update` applies to: `resourceInputs.workloadName`, else
    `<name>` from a Humanitec workload id `modules.<name>`, else the Resource's own name."""
    given = (resource.spec.resource_inputs or {}).get(WORKLOAD_NAME_INPUT)
    if isinstance(given, str) and given:
        return given
    match = _WORKLOAD_ID.fullmatch(resource.spec.id)
    if match:
        return match.group(1)
    return resource.name


def workload_patch(resource: Resource, ops: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The WorkloadPatch carrying the `update` output; named like the Resource, owned by it."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": "WorkloadPatch",
        "metadata": _owned_meta(resource, resource.name),
        "spec": {"workloadName": workload_name(resource), "patches": [dict(op) for op in ops]},
    }


# --- Store keys -------------------------------------------------------------------------------------------


def flatten_refs(tree: Mapping[str, Any] | None, prefix: str = "") -> dict[str, SecretReference]:
    """`status.outputs.secretRefs` (nested) by flat output key."""
    flat: dict[str, SecretReference] = {}
    for key, node in (tree or {}).items():
        name = f"{prefix}{key}"
        if isinstance(node, SecretReference):
            flat[name] = node
        elif isinstance(node, Mapping) and _REFERENCE_KEYS.intersection(node):
            flat[name] = SecretReference.model_validate(node)
        elif isinstance(node, Mapping):
            flat.update(flatten_refs(node, name + "."))
    return flat


def keys_to_write(
    outputs: Outputs,
    observed_secret: Mapping[str, bytes],
    previous: Mapping[str, SecretReference],
    store: str,
) -> list[str]:
    """Flat output keys whose value must be written to the default store: new, changed (compared with the
    outputs Secret, which holds exactly what was written last), or recorded for another store."""
    return [
        key
        for key, value in sorted(outputs.secrets.items())
        if key not in previous
        or previous[key].store != store
        or key not in observed_secret
        or not hmac.compare_digest(observed_secret[key], value.reveal())
    ]


def stale_refs(
    resource: Resource, previous: Mapping[str, SecretReference], outputs: Outputs, store: str
) -> list[SecretReference]:
    """Store entries written before that the new outputs no longer use (dropped keys, or a former default
    store's copies), at the keys the operator writes for this Resource (never the recorded key itself)."""
    return [
        SecretReference(store=ref.store, ref=output_store_key(resource.namespace, resource.name, key))
        for key, ref in sorted(previous.items())
        if key not in outputs.secrets or ref.store != store
    ]


def is_output_key(key: str) -> bool:
    """Whether a flat output key is one the operator could have written (a valid Secret data key)."""
    return bool(_DATA_KEY.fullmatch(key)) and len(key) <= c.DATA_KEY_MAX


def is_own_store_key(key: str, namespace: str, name: str) -> bool:
    """Whether `key` is one the operator writes for the Resource `namespace/name` in the default store:
    `strongroom/<namespace>/<name>/outputs/<output key>` or `.../cookie`. Nothing else is ever deleted,
    whatever a status says."""
    if key == cookie_store_key(namespace, name):
        return True
    prefix = output_store_key(namespace, name, "")
    return key.startswith(prefix) and is_output_key(key[len(prefix) :])


def store_entries_to_delete(
    resource: Resource,
    recorded: Mapping[str, SecretReference],
    cookie: SecretReference | None,
    secret_keys: Iterable[str],
    default_store: str | None,
) -> list[SecretReference]:
    """Everything of this Resource in the stores, to delete with it: the outputs the (sealed) status
    records, in the stores it names; output keys the outputs Secret still has (a crash between writing the
    store and the status leaves keys only the Secret knows), in the default store; the cookie. Always at
    the keys the operator writes for this Resource, derived from its namespace and name."""
    namespace, name = resource.namespace, resource.name
    found: set[tuple[str, str]] = set()
    for output_key, ref in recorded.items():
        if is_output_key(output_key):
            found.add((ref.store, output_store_key(namespace, name, output_key)))
    if default_store is not None:
        found.update(
            (default_store, output_store_key(namespace, name, k)) for k in secret_keys if is_output_key(k)
        )
    if cookie is not None:
        found.add((cookie.store, cookie_store_key(namespace, name)))
    return [SecretReference(store=store, ref=key) for store, key in sorted(found)]


def refs_tree(shape: Mapping[str, Any], refs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`status.outputs.secretRefs`: the nesting of the secret outputs, a reference at each leaf."""
    tree: dict[str, Any] = {}
    for key, node in shape.items():
        tree[key] = refs_tree(node, refs) if isinstance(node, Mapping) else dict(refs[node])
    return tree


def reference(store: str, key: str, version: str | None) -> dict[str, Any]:
    ref: dict[str, Any] = {"store": store, "ref": key}
    if version:
        ref["version"] = version
    return ref


# --- Status -----------------------------------------------------------------------------------------------


def _previous(resource: Resource) -> dict[str, Any]:
    if resource.status is None:
        return {}
    dumped: dict[str, Any] = resource.status.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _conditions(resource: Resource, wanted: Sequence[ConditionSpec], now: datetime) -> list[dict[str, Any]]:
    return merge_conditions(_previous(resource).get("conditions"), wanted, now, resource.metadata.generation)


def problem_status(resource: Resource, problem: Problem, now: datetime) -> dict[str, Any]:
    """Ready=False with the problem's reason; Stalled when retrying cannot help. Outputs, refs and manifests
    of the last success stay as they are (a failed attempt never blanks what dependents use)."""
    wanted = [not_ready(problem.reason, problem.message)]
    if not problem.retryable:
        wanted.append(ConditionSpec(STALLED, True, problem.reason, "the spec (or the driver) has to change"))
    return {
        "observedGeneration": resource.metadata.generation,
        "conditions": _conditions(resource, wanted, now),
    }


def progress_status(resource: Resource, reason: str, message: str, now: datetime) -> dict[str, Any]:
    """While a driver call or a deletion is under way: Reconciling=True; Ready stays as it was if the
    resource is provisioned (an update), else False with `reason`."""
    previous = resource.status.condition(READY) if resource.status else None
    if previous is not None and previous.status == "True" and reason != "Deleting":
        ready_spec = ready(previous.reason, previous.message)
    else:
        ready_spec = not_ready(reason, message)
    wanted = [ready_spec, ConditionSpec(RECONCILING, True, reason, message)]
    return {
        "observedGeneration": resource.metadata.generation,
        "conditions": _conditions(resource, wanted, now),
    }


def ready_status(
    resource: Resource,
    *,
    now: datetime,
    driver_type: str,
    guresid: str,
    digest: str,
    outputs: Outputs,
    secret_refs: Mapping[str, Any],
    manifests: Sequence[Mapping[str, Any]],
    cookie_ref: Mapping[str, Any] | None,
    applied_now: bool,
) -> dict[str, Any]:
    """The whole status after a successful PUT (`applied_now`) or a check that found the last one still
    standing. Keys that are None are removed by the merge patch."""
    secret_count = len(outputs.secrets)
    message = (
        f"provisioned by driver {driver_type!r}: {len(outputs.values)} values, {secret_count} secret "
        f"outputs (Secret {outputs_secret_name(resource.name)!r})"
    )
    previous = _previous(resource)
    last_applied = now.strftime(_TIME_FORMAT) if applied_now else previous.get("lastAppliedTime")
    return {
        "observedGeneration": resource.metadata.generation,
        "conditions": _conditions(resource, [ready("Provisioned", message)], now),
        "guresid": guresid,
        "driverType": driver_type,
        "inputsHash": digest,
        "outputs": {"values": outputs.values, "secretRefs": dict(secret_refs) or None},
        "secretName": outputs_secret_name(resource.name),
        "manifests": [dict(m) for m in manifests] or None,
        "cookieRef": dict(cookie_ref) if cookie_ref else None,
        "lastAppliedTime": last_applied,
    }


def merge_patch(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON merge patch (RFC 7386) that turns the fields of `current` named in `wanted` into `wanted`;
    None when nothing changes. A None in `wanted` removes the field; nested objects lose keys they no
    longer have (output keys the driver stopped returning); lists are replaced whole. Fields of `current`
    that `wanted` does not name are left alone."""
    patch = _diff(current or {}, wanted, top=True)
    return patch or None


def _diff(old: Mapping[str, Any], new: Mapping[str, Any], *, top: bool = False) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    if not top:
        for key in old:
            if key not in new:
                patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if value is None:
            if key in old:
                patch[key] = None
        elif isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = _diff(before, value)
            if nested:
                patch[key] = nested
        elif before != value:
            patch[key] = value
    return patch


def apply_merge_patch(current: Mapping[str, Any] | None, patch: Mapping[str, Any]) -> dict[str, Any]:
    """`current` with a merge patch applied (to keep the controller's cache in step with its writes)."""
    result = _deep_copy(current or {})
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping):
            before = result.get(key)
            result[key] = apply_merge_patch(before if isinstance(before, Mapping) else {}, value)
        else:
            result[key] = value
    return result


def deletion_problem(message: str, retryable: bool = True) -> Problem:
    return Problem("DeletionBlocked", message, retryable)


__all__ = [
    "CONTAINERS_KEY",
    "DEFAULT_MANIFEST_KINDS",
    "FINALIZER",
    "MANIFESTS_HASH_ANNOTATION",
    "PENDING_ANNOTATION",
    "RESOURCE_ANNOTATION",
    "RESOURCE_UID_ANNOTATION",
    "SEALED_FIELDS",
    "TAMPERED",
    "VOLUMES_KEY",
    "DependencyView",
    "GuresidPolicy",
    "InputProblem",
    "ManifestPolicy",
    "Outputs",
    "Pending",
    "PendingMarker",
    "ResolvedInputs",
    "applied_reference",
    "apply_merge_patch",
    "apply_reason",
    "bare_request",
    "check_outputs",
    "cluster_manifest_refusal",
    "cluster_object",
    "content_hash_of",
    "cookie_store_key",
    "dependencies",
    "dependency_names",
    "dependency_view",
    "derive_guresid",
    "derived_guresid_of",
    "driver_request",
    "drivers_holding",
    "drivers_to_release",
    "duplicate_problem",
    "duplicate_winner",
    "find_cycle",
    "flatten_refs",
    "guresid_of",
    "guresid_problem",
    "identity_key",
    "inputs_digest",
    "is_own_store_key",
    "keys_to_write",
    "kind_name",
    "manifest_conflict",
    "manifest_owned",
    "manifest_policy_problem",
    "manifest_refs",
    "manifests_secret",
    "manifests_secret_name",
    "merge_patch",
    "namespace_object",
    "output_store_key",
    "outputs_secret",
    "outputs_secret_name",
    "outputs_size_problem",
    "pending_of",
    "problem_status",
    "progress_status",
    "ready_status",
    "recorded_manifests_hash",
    "refs_tree",
    "resolve_placeholders",
    "secret_current",
    "secret_dependencies",
    "stale_manifests",
    "stale_refs",
    "standing_tamper",
    "status_altered",
    "status_seal",
    "store_entries_to_delete",
    "unsealed_fields",
    "workload_name",
    "workload_patch",
]
