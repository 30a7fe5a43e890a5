"""After the rendering: what the Workload controller applies, prunes and reports, decided without I/O.

- which rendered objects go to the API server again (`rendered_hash_differs`: a no-op reconcile writes
  nothing) and which live objects are pruned (`stale_objects`);
- the Workload's condition when the rendering is applied (`rendered_condition`) or collides with objects
  it does not own (`conflict_condition`), and its status body (`workload_status`);
- each WorkloadPatch's condition (`patch_conditions`) and status body (`patch_status`);
- which Secrets the pods read whose content hash is still unknown (`unknown_consumed_secrets`), so their
  changes roll the pods too.

What comes before (matching Resources, reading what they produced, the condition when nothing applies) is
in reconcile/workloadgather.py; the controller (operator/controllers/workload.py) does the reading and
writing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from strongroom.reconcile.conditions import ConditionSpec, merge_conditions, not_ready, ready
from strongroom.reconcile.workload import RenderResult
from strongroom.reconcile.workloadgather import (
    RENDERED_HASH_ANNOTATION,
    ObjectId,
    clip,
    describe_objects,
    object_id,
    object_ref,
)

# --- What to apply and prune --------------------------------------------------------------------------------


def rendered_hash_differs(current: Mapping[str, Any], manifest: Mapping[str, Any]) -> bool:
    """Whether the live object `current` was applied from another rendering than `manifest` (which carries
    its rendered-hash annotation already)."""
    live_hash = ((current.get("metadata") or {}).get("annotations") or {}).get(RENDERED_HASH_ANNOTATION)
    return bool(live_hash != manifest["metadata"]["annotations"][RENDERED_HASH_ANNOTATION])


def stale_objects(live: Iterable[ObjectId], wanted: Iterable[Mapping[str, Any]]) -> list[ObjectId]:
    """The live objects this Workload applied before that the rendering no longer contains, in order."""
    keep = {object_id(obj) for obj in wanted}
    return sorted(ident for ident in live if ident not in keep)


def unknown_consumed_secrets(result: RenderResult, known: Mapping[str, str]) -> list[str]:
    """Secrets the pods read (named by sidecars and volumes that resources emit) that the Workload does not
    render itself and whose content hash is not in `known`."""
    owned = {obj["metadata"]["name"] for obj in result.objects if obj.get("kind") == "Secret"}
    return [name for name in result.consumed_secrets if name not in owned and name not in known]


# --- The Workload's condition and status --------------------------------------------------------------------


def conflict_condition(conflicts: Iterable[str]) -> ConditionSpec:
    """Objects (`Kind name`) are in the way and not this Workload's: nothing is applied."""
    # Never take over an object someone else made (server-side apply with force would).
    return not_ready(
        "ObjectConflict",
        clip(
            f"{', '.join(conflicts)}: already there and not owned by this Workload; "
            "strongroom never overwrites objects it does not manage: delete or rename them "
            "(nothing was applied)"
        ),
    )


def rendered_condition(result: RenderResult) -> ConditionSpec:
    """The Workload is Ready: its rendering is applied."""
    message = f"rendered {len(result.objects)} objects: {describe_objects(result.objects)}"
    if result.applied_patches:
        message += f"; patches applied: {', '.join(result.applied_patches)}"
    return ready("Rendered", clip(message))


def workload_status(
    body: Mapping[str, Any],
    condition: ConditionSpec,
    objects: list[dict[str, Any]] | None,
    patches: list[str],
    now: datetime,
) -> dict[str, Any]:
    """The Workload's status after a reconcile; `objects` None when it applied nothing."""
    generation = (body.get("metadata") or {}).get("generation")
    previous = body.get("status") or {}
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": merge_conditions(previous.get("conditions"), [condition], now, generation),
        "patches": patches,
    }
    # Objects left in place by a reconcile that rendered nothing are still this Workload's objects.
    status["objects"] = (
        [object_ref(obj) for obj in objects] if objects is not None else previous.get("objects") or []
    )
    return status


# --- WorkloadPatches ----------------------------------------------------------------------------------------


def patch_conditions(
    workload: str, names: Iterable[str], result: RenderResult, broken: Mapping[str, str]
) -> dict[str, ConditionSpec]:
    """The condition of each of Workload `workload`'s patches (`names`) the rendering decided about, by
    name in order: those with a problem, and those applied. Others (not reached) keep their status."""
    problems = {**result.patch_problems, **broken}
    order = {name: index for index, name in enumerate(result.applied_patches, start=1)}
    conditions: dict[str, ConditionSpec] = {}
    for name in sorted(names):
        if name in problems:
            conditions[name] = not_ready(
                "InvalidPatch",
                clip(
                    f"not applied to Workload {workload!r}: {problems[name]}; the Workload keeps its "
                    "last good rendering until this patch is fixed or deleted"
                ),
            )
        elif name in order:
            conditions[name] = ready(
                "Applied",
                f"applied to Workload {workload!r} ({order[name]} of {len(order)} in order)",
            )
    return conditions


def patch_status(body: Mapping[str, Any], condition: ConditionSpec, now: datetime) -> dict[str, Any]:
    """A WorkloadPatch's status with `condition`."""
    generation = (body.get("metadata") or {}).get("generation")
    previous = body.get("status") or {}
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions(previous.get("conditions"), [condition], now, generation),
    }


__all__ = [
    "conflict_condition",
    "patch_conditions",
    "patch_status",
    "rendered_condition",
    "rendered_hash_differs",
    "stale_objects",
    "unknown_consumed_secrets",
    "workload_status",
]
