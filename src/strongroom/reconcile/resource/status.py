"""A Resource's status: problem, progress and ready statuses, and the merge-patch differ the controller writes
it with.

Pure: no I/O, no clock, no randomness (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from strongroom.api.resource import Resource
from strongroom.reconcile.conditions import (
    READY,
    RECONCILING,
    STALLED,
    ConditionSpec,
    merge_conditions,
    not_ready,
    ready,
)
from strongroom.reconcile.resource.identity import _TIME_FORMAT, outputs_secret_name
from strongroom.reconcile.resource.inputs import _deep_copy
from strongroom.reconcile.resource.outputs import Outputs
from strongroom.reconcile.stores import Problem

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
