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
from strongroom.api.resource import Resource, inputs_too_large
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
from strongroom.reconcile.ownership import controlled_by
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
#: On objects of `cluster` manifests (which cannot have a namespaced owner): which Resource applied them.
RESOURCE_ANNOTATION = f"{c.GROUP}/resource"

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
_DATA_KEY = re.compile(c.DATA_KEY)
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
# Keys that make a node of a secret reference tree a leaf; an output branch may not use them.
_REFERENCE_KEYS = frozenset({"store", "ref", "version"})


# --- Identity ---------------------------------------------------------------------------------------------


def derive_guresid(namespace: str, resource_type: str, resource_class: str, resource_id: str) -> str:
    """A stable GUResID for a Resource that names none: 40 hex digits of a digest over its identity.

    Deterministic, so a restarted operator (or a re-created Resource) calls the driver with the same id
    and an idempotent driver finds what it made before. The object's uid is left out on purpose: deleting
    and re-creating a Resource must address the same resource, as Humanitec's GUResIDs do for the same
    type and id. Drivers shared by several clusters need ids set explicitly (`spec.guresid`).
    """
    text = "\x00".join(("strongroom.dev/guresid/v1", namespace, resource_type, resource_class, resource_id))
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def guresid_of(resource: Resource) -> str:
    spec = resource.spec
    return spec.guresid or derive_guresid(resource.namespace, spec.type, spec.resource_class, spec.id)


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


@dataclass(frozen=True)
class Pending:
    """A driver PUT that was started and not yet recorded: which driver, which GUResID."""

    driver_type: str
    guresid: str

    def annotation(self) -> str:
        return json.dumps({"driverType": self.driver_type, "guresid": self.guresid}, sort_keys=True)


def pending_of(annotations: Mapping[str, str] | None) -> Pending | None:
    """The pending marker in an object's annotations, if any (a malformed one is ignored)."""
    raw = (annotations or {}).get(PENDING_ANNOTATION)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    driver, guresid = data.get("driverType"), data.get("guresid")
    if not isinstance(driver, str) or not isinstance(guresid, str) or not driver or not guresid:
        return None
    return Pending(driver, guresid)


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
) -> str | None:
    """Why the driver must be called now (a PUT), or None when the last PUT still stands."""
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
    what the object is for is the driver's business, and two Resources may emit the same object)."""
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
    meta.setdefault("annotations", {})[RESOURCE_ANNOTATION] = f"{resource.namespace}/{resource.name}"
    return obj


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
    previous: Mapping[str, SecretReference], outputs: Outputs, store: str
) -> list[SecretReference]:
    """Store entries written before that the new outputs no longer use (dropped keys, or a former default
    store's copies)."""
    return [ref for key, ref in sorted(previous.items()) if key not in outputs.secrets or ref.store != store]


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
    "FINALIZER",
    "MANIFESTS_HASH_ANNOTATION",
    "PENDING_ANNOTATION",
    "RESOURCE_ANNOTATION",
    "VOLUMES_KEY",
    "DependencyView",
    "InputProblem",
    "Outputs",
    "Pending",
    "ResolvedInputs",
    "applied_reference",
    "apply_merge_patch",
    "apply_reason",
    "bare_request",
    "check_outputs",
    "cluster_object",
    "content_hash_of",
    "cookie_store_key",
    "dependencies",
    "dependency_names",
    "dependency_view",
    "derive_guresid",
    "driver_request",
    "drivers_holding",
    "drivers_to_release",
    "find_cycle",
    "flatten_refs",
    "guresid_of",
    "inputs_digest",
    "keys_to_write",
    "manifest_refs",
    "manifests_secret",
    "manifests_secret_name",
    "merge_patch",
    "namespace_object",
    "output_store_key",
    "outputs_secret",
    "outputs_secret_name",
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
    "workload_name",
    "workload_patch",
]
