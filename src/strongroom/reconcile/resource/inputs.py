"""What a Resource's driver is called with and when: dependencies and placeholders, the request, its digest,
the apply decision, the drivers that may hold it.

Pure: no I/O, no clock, no randomness (see the package docstring)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from strongroom.api.common import SecretReference, iter_secret_refs
from strongroom.api.resource import Resource, inputs_too_large
from strongroom.drivers.base import DriverRequest, SecretTree, reveal_tree, to_secret_tree
from strongroom.reconcile.conditions import (
    READY,
)
from strongroom.reconcile.placeholders import (
    Placeholder,
    PlaceholderError,
    ResourceRef,
    lookup,
    resource_ref,
    resource_references,
    substitute_tree,
)
from strongroom.reconcile.resource.identity import _REFERENCE_KEYS, HMAC_PREFIX, guresid_of
from strongroom.reconcile.resource.trust import Pending
from strongroom.reconcile.stores import Problem
from strongroom.stores.base import SecretValue

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
