"""The Workload controller's pure part: which Resource an entry of `spec.resources` means, what it may be
used for, the rendered-hash of applied objects, the WorkloadPatches that parse, and the condition when
nothing is applied. The controller (operator/controllers/workload.py) gathers and applies."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from strongroom.api.resource import DEFAULT_CLASS
from strongroom.api.resource import private_resource_id as default_resource_id
from strongroom.api.workload import ScoreResource, WorkloadPatch, WorkloadSpec
from strongroom.reconcile.conditions import ConditionSpec, not_ready
from strongroom.reconcile.placeholders import Placeholder, PlaceholderError, parse, resource_ref
from strongroom.reconcile.workload import (
    RenderResult,
    ResourceOutputs,
)
from strongroom.reconcile.workloadpatch import describe_validation_error

#: Annotation on every applied object: digest of the manifest as rendered. Equal digest = nothing to apply.
RENDERED_HASH_ANNOTATION = "strongroom.dev/rendered-hash"
#: Longest condition message written; a workload with hundreds of problems still gets a readable status.
MESSAGE_MAX = 4000

# --- Matching a workload's resources to Resource objects ----------------------------------------------------


@dataclass(frozen=True, order=True)
class ResourceIdentity:
    """What makes a Resource the one a workload means: namespace, type, class and id."""

    namespace: str
    type: str
    class_: str
    id: str

    def describe(self) -> str:
        return f"type {self.type!r}, class {self.class_!r}, id {self.id!r}"


def match_identity(namespace: str, workload: str, name: str, resource: ScoreResource) -> ResourceIdentity:
    """The identity of the Resource that provides the workload's resource `name`."""
    return ResourceIdentity(
        namespace,
        resource.type,
        resource.class_ or DEFAULT_CLASS,
        resource.id or default_resource_id(workload, name),
    )


def resource_identity(body: Mapping[str, Any]) -> ResourceIdentity | None:
    """The identity of a Resource object, read leniently (an invalid spec simply matches nothing)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    type_, id_, class_ = spec.get("type"), spec.get("id"), spec.get("class") or DEFAULT_CLASS
    if not (isinstance(type_, str) and isinstance(id_, str) and isinstance(class_, str)):
        return None
    return ResourceIdentity(meta.get("namespace") or "", type_, class_, id_)


def resource_not_ready(body: Mapping[str, Any]) -> str | None:
    """Why a Resource cannot be used yet, or None when it is Ready for its current spec."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "it is being deleted"
    cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if cond is None:
        return "it has not been provisioned yet"
    if cond.get("status") != "True":
        return f"it is not Ready ({cond.get('reason') or 'no reason'})"
    observed, generation = status.get("observedGeneration"), meta.get("generation")
    if observed is not None and generation is not None and observed != generation:
        return "its latest spec has not been provisioned yet"
    return None


def composed_keys(spec: WorkloadSpec) -> dict[str, set[str]]:
    """Resource name -> output keys used inside text that mixes placeholders with other text.

    Only such a secret output has to be read as a value (to compose a workload-owned Secret); one used on
    its own is wired by reference, so its value never needs to leave the resource's Secret.
    """
    found: dict[str, set[str]] = {}
    texts: list[str] = []
    for container in spec.containers.values():
        texts.extend((container.variables or {}).values())
        texts.extend(
            file.content
            for file in (container.files or {}).values()
            if file.content is not None and not file.no_expand
        )
    for text in texts:
        try:
            segments = parse(text, score=True)
        except PlaceholderError:
            continue  # the renderer reports it
        if len(segments) == 1:
            continue  # exactly one placeholder (or plain text): nothing to compose
        for segment in segments:
            if not isinstance(segment, Placeholder):
                continue
            try:
                ref = resource_ref(segment)
            except PlaceholderError:
                continue
            if ref is not None and ref.key:
                found.setdefault(ref.resource, set()).add(ref.key_text)
    return found


def matching(identity: ResourceIdentity, resources: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The Resources (bodies) that have `identity`, by name."""
    return sorted(
        (body for body in resources if resource_identity(body) == identity),
        key=lambda body: str((body.get("metadata") or {}).get("name")),
    )


def parse_manifest_list(raw: bytes, what: str) -> list[dict[str, Any]]:
    """A JSON list of objects from the manifests Secret; ValueError names `what`, never the content."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{what} is not valid JSON") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError(f"{what} is not a JSON list of objects")
    return data


# --- Applied objects ----------------------------------------------------------------------------------------

ObjectId = tuple[str, str, str]  # (apiVersion, kind, name)


def object_id(obj: Mapping[str, Any]) -> ObjectId:
    return (str(obj.get("apiVersion")), str(obj.get("kind")), str((obj.get("metadata") or {}).get("name")))


def rendered_hash(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def with_rendered_hash(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest plus the annotation that lets the next reconcile skip it when nothing changed."""
    meta = dict(manifest["metadata"])
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        RENDERED_HASH_ANNOTATION: rendered_hash(manifest),
    }
    return {**manifest, "metadata": meta}


def object_ref(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
    }


def describe_objects(objects: Iterable[Mapping[str, Any]]) -> str:
    return ", ".join(f"{obj.get('kind')} {(obj.get('metadata') or {}).get('name')}" for obj in objects)


def clip(message: str, limit: int = MESSAGE_MAX) -> str:
    return message if len(message) <= limit else message[: limit - 14] + " ... (cut)"


# --- What one reconcile gathered ----------------------------------------------------------------------------


@dataclass
class Gathered:
    """The renderer's inputs as observed, and why resources could not be used."""

    outputs: dict[str, ResourceOutputs] = field(default_factory=dict)
    secret_hashes: dict[str, str] = field(default_factory=dict)
    waiting_notes: dict[str, str] = field(default_factory=dict)
    """Resource name -> why it cannot be used yet (missing, not Ready)."""
    problems: list[str] = field(default_factory=list)
    """Problems only a person can fix (two Resources match, unreadable manifests)."""
    identities: set[ResourceIdentity] = field(default_factory=set)


@dataclass(frozen=True)
class Decision:
    """What the reconcile concluded, before objects are applied."""

    condition: ConditionSpec
    retry: bool
    """Whether retrying soon can help (True) or only a change of some object will (False)."""


def decide(
    result: RenderResult,
    gathered: Gathered,
    broken_patches: Mapping[str, str],
) -> Decision | None:
    """The Workload's condition when nothing is applied; None when the rendering is complete and applies."""
    patch_problems = {**result.patch_problems, **broken_patches}
    if patch_problems:
        details = "; ".join(f"{name}: {why}" for name, why in sorted(patch_problems.items()))
        return Decision(
            not_ready(
                "InvalidPatch",
                clip(
                    f"{len(patch_problems)} WorkloadPatch(es) do not apply, so nothing is rendered and the "
                    f"last good rendering is kept; fix or delete them: {details}"
                ),
            ),
            retry=False,
        )
    problems = gathered.problems + result.problems
    if problems:
        waiting = ""
        if result.waiting_for:
            waiting = f" (also waiting for resources: {', '.join(result.waiting_for)})"
        return Decision(not_ready("RenderFailed", clip(f"{'; '.join(problems)}{waiting}")), retry=False)
    if result.waiting_for:
        details = ", ".join(
            f"{name} ({gathered.waiting_notes.get(name, 'not Ready')})" for name in result.waiting_for
        )
        return Decision(
            not_ready("WaitingForResources", clip(f"waiting for resources: {details}")), retry=False
        )
    return None


def patch_target(body: Mapping[str, Any]) -> str | None:
    name = (body.get("spec") or {}).get("workloadName")
    return name if isinstance(name, str) else None


def parse_patches(bodies: Iterable[Mapping[str, Any]]) -> tuple[list[WorkloadPatch], dict[str, str]]:
    """The patches that parse, and the names of those that do not, with why (without their values)."""
    patches: list[WorkloadPatch] = []
    broken: dict[str, str] = {}
    for body in bodies:
        try:
            patches.append(WorkloadPatch.model_validate(body))
        except ValidationError as exc:
            name = str((body.get("metadata") or {}).get("name"))
            broken[name] = f"the spec is not valid: {describe_validation_error(exc)}"
    return patches, broken


__all__ = [
    "MESSAGE_MAX",
    "RENDERED_HASH_ANNOTATION",
    "Decision",
    "Gathered",
    "ObjectId",
    "ResourceIdentity",
    "clip",
    "composed_keys",
    "decide",
    "describe_objects",
    "match_identity",
    "matching",
    "object_id",
    "object_ref",
    "parse_manifest_list",
    "parse_patches",
    "patch_target",
    "rendered_hash",
    "resource_identity",
    "resource_not_ready",
    "with_rendered_hash",
]
