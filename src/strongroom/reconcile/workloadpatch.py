"""WorkloadPatches: JSON-Patch operations applied to a Workload's spec before it is rendered. Pure.

Order: patches of one Workload apply by `spec.priority` ascending, then by name (`ordered_patches`), so
the result never depends on the order the API server lists them in. Each patch's operations apply in
the order written.

Semantics are RFC 6902 `add` / `remove` / `replace` on the Workload object (paths start with `/spec`),
with one deliberate extension: `add` creates missing intermediate objects. Workload-type resources emit
`add /spec/containers/<c>/variables/X` without knowing whether the container has any variables yet;
failing such a patch on a workload without variables would make the common case fragile.

A patch is all-or-nothing: if one of its operations fails, or the spec it leaves behind is not a valid
Workload spec, none of its operations count, the problem is reported against that patch, and the
remaining patches still apply on top of the last good spec (so every broken patch is reported at once).
The renderer renders nothing while any patch is broken: the controller keeps the last good rendering.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic

from strongroom.api.common import validation_lines
from strongroom.api.workload import JsonPatchOperation, Workload, WorkloadPatch, WorkloadSpec, ordered_patches


class JsonPatchError(ValueError):
    """An operation that cannot apply; the message names the operation and path, never a value."""


def pointer_tokens(pointer: str) -> list[str]:
    """The reference tokens of an RFC 6901 JSON pointer (`~1` is `/`, `~0` is `~`)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise JsonPatchError(f"path {pointer!r} is not a JSON pointer (it must start with '/')")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _index(part: str, size: int, path: str, *, append_ok: bool) -> int:
    if append_ok and part == "-":
        return size
    # RFC 6901: array indexes are decimal without leading zeros.
    if not part.isascii() or not part.isdigit() or (len(part) > 1 and part.startswith("0")):
        raise JsonPatchError(f"{path}: {part!r} is not an array index")
    index = int(part)
    limit = size if append_ok else size - 1
    if index > limit:
        raise JsonPatchError(f"{path}: index {index} is out of range (array has {size} items)")
    return index


def _parent(document: Any, tokens: list[str], path: str, *, create: bool) -> Any:
    """The container that holds the last token of `path`, creating objects on the way if `create`."""
    node = document
    for depth, token in enumerate(tokens[:-1]):
        where = "/" + "/".join(tokens[: depth + 1])
        if isinstance(node, dict):
            if token not in node:
                if not create:
                    raise JsonPatchError(f"{path}: {where} does not exist")
                node[token] = {}
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(token, len(node), path, append_ok=False)]
        else:
            raise JsonPatchError(f"{path}: {where} is not an object or array")
    return node


def _apply_one(document: Any, op: str, path: str, value: Any) -> Any:
    tokens = pointer_tokens(path)
    if not tokens:
        if op == "remove":
            raise JsonPatchError("cannot remove the whole document")
        return copy.deepcopy(value)
    parent = _parent(document, tokens, path, create=op == "add")
    last = tokens[-1]
    if isinstance(parent, dict):
        if op != "add" and last not in parent:
            raise JsonPatchError(f"{op} {path}: no such member")
        if op == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        index = _index(last, len(parent), path, append_ok=op == "add")
        if op == "add":
            parent.insert(index, copy.deepcopy(value))
        elif op == "remove":
            del parent[index]
        else:
            parent[index] = copy.deepcopy(value)
    else:
        raise JsonPatchError(f"{op} {path}: the parent is not an object or array")
    return document


def _operation_dict(operation: JsonPatchOperation | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(operation, JsonPatchOperation):
        entry: dict[str, Any] = {"op": operation.op, "path": operation.path}
        # An explicit `value: null` is a value; only a missing one is absent.
        if "value" in operation.model_fields_set:
            entry["value"] = operation.value
        return entry
    return dict(operation)


def apply_operations(document: Any, operations: Sequence[JsonPatchOperation | Mapping[str, Any]]) -> Any:
    """A patched deep copy of `document`; raises JsonPatchError naming the first operation that fails."""
    result = copy.deepcopy(document)
    for number, operation in enumerate(operations, start=1):
        entry = _operation_dict(operation)
        op, path = entry.get("op"), entry.get("path")
        if op not in ("add", "remove", "replace") or not isinstance(path, str):
            raise JsonPatchError(f"operation {number}: needs op add, remove or replace and a path")
        if op != "remove" and "value" not in entry:
            raise JsonPatchError(f"operation {number} ({op} {path}): value is required")
        try:
            result = _apply_one(result, op, path, entry.get("value"))
        except JsonPatchError as exc:
            raise JsonPatchError(f"operation {number} ({op} {path}) failed: {exc}") from None
    return result


def describe_validation_error(exc: pydantic.ValidationError, limit: int = 5) -> str:
    """A compact "where: what" summary without the offending input values."""
    parts = [f"{loc or 'spec'}: {message}" for loc, message in validation_lines(exc)]
    more = f" (and {len(parts) - limit} more)" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more


@dataclass(frozen=True)
class PatchOutcome:
    """A Workload's spec after its patches."""

    spec: WorkloadSpec
    """The effective spec: the Workload's spec with every valid patch applied."""
    applied: list[str] = field(default_factory=list)
    """Names of the patches applied, in the order they were applied (for `status.patches`)."""
    problems: dict[str, str] = field(default_factory=dict)
    """Patch name -> why it does not apply (a condition on that WorkloadPatch)."""


def spec_document(spec: WorkloadSpec) -> dict[str, Any]:
    """The spec as JSON data in wire form (camelCase), the shape patch paths address."""
    data: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


def apply_patches(workload: Workload, patches: Sequence[WorkloadPatch]) -> PatchOutcome:
    """Apply the patches that target `workload` (others are ignored) in their stable order."""
    document: dict[str, Any] = {"spec": spec_document(workload.spec)}
    spec = workload.spec
    applied: list[str] = []
    problems: dict[str, str] = {}
    for patch in ordered_patches(p for p in patches if p.spec.workload_name == workload.name):
        try:
            candidate = apply_operations(document, patch.spec.patches)
        except JsonPatchError as exc:
            problems[patch.name] = str(exc)
            continue
        raw_spec = candidate.get("spec") if isinstance(candidate, dict) else None
        if not isinstance(raw_spec, dict):
            problems[patch.name] = "the patch leaves the Workload without a spec object"
            continue
        try:
            patched = WorkloadSpec.model_validate(raw_spec)
        except pydantic.ValidationError as exc:
            problems[patch.name] = f"the patched Workload spec is not valid: {describe_validation_error(exc)}"
            continue
        document, spec = candidate, patched
        applied.append(patch.name)
    return PatchOutcome(spec, applied, problems)


__all__ = [
    "JsonPatchError",
    "PatchOutcome",
    "apply_operations",
    "apply_patches",
    "describe_validation_error",
    "pointer_tokens",
    "spec_document",
]
