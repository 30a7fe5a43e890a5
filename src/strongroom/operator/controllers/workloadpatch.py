"""WorkloadPatch controller: keeps the patches' bodies for the Workload controller and answers for orphans.

A WorkloadPatch is applied, and its status decided, by its Workload's reconcile (operator/controllers/
workload.py, which calls `for_workload` and `write_statuses`); this controller indexes patches by the
Workload they name, wakes that Workload when a patch changes, and reports patches whose Workload does not
exist. A unit of its own: it watches another kind and owns that kind's status writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lightkube.core.exceptions import ApiError

from strongroom.operator.controllers.base import Controller, ObjectKey
from strongroom.operator.kube import Kube, WorkloadPatchResource, WorkloadResource
from strongroom.operator.relist import key_of
from strongroom.reconcile.conditions import ConditionSpec, not_ready
from strongroom.reconcile.secretmapping import status_differs
from strongroom.reconcile.workload import RenderResult
from strongroom.reconcile.workloadapply import patch_conditions, patch_status
from strongroom.reconcile.workloaddeps import update_index
from strongroom.reconcile.workloadgather import patch_target


class WorkloadPatchController(Controller):
    """Keeps WorkloadPatch bodies for the Workload controller and answers for patches without a Workload.

    A patch's status is decided where the patch is applied, by its Workload's reconcile; this controller
    only wakes that Workload when a patch changes (also the Workload a patch no longer names) and reports
    patches whose Workload does not exist.
    """

    kind = "WorkloadPatch"
    status_resource = WorkloadPatchResource

    def __init__(self, kube: Kube, workloads: Controller) -> None:
        super().__init__()
        self.kube = kube
        self.workloads = workloads
        # Workload key -> keys of the patches that name it.
        self._by_target: dict[ObjectKey, set[ObjectKey]] = {}

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key: ObjectKey = key_of(body)
        before = patch_target(self.bodies.get(key) or {})
        super().observe(event_type, body)
        after = None if event_type == "DELETED" else patch_target(body)
        if before != after:
            for target, add in ((before, False), (after, True)):
                if target is not None:
                    update_index(self._by_target, (key[0], target), key, add=add)
                    self.workloads.wake((key[0], target))

    def targeting(self, workload: ObjectKey) -> list[ObjectKey]:
        return sorted(key for key in self._by_target.get(workload, ()) if key in self.bodies)

    async def for_workload(self, workload: ObjectKey) -> dict[str, dict[str, Any]]:
        """The Workload's patches by name, listed from the API server.

        Not from the event cache: just after a start the cache may not hold every patch yet, and a
        rendering without one would roll out a Deployment nobody asked for (and roll it back a moment
        later). The cache only decides whom to wake.
        """
        listed = await self.kube.list_custom(WorkloadPatchResource, workload[0])
        return {
            str((body.get("metadata") or {}).get("name")): body
            for body in listed
            if patch_target(body) == workload[1]
        }

    async def reconcile(self, key: ObjectKey) -> str:
        body = self.bodies[key]
        target = patch_target(body)
        workload = (
            await self.kube.get_custom(WorkloadResource, key[0], target) if target is not None else None
        )
        if workload is not None:
            # Its status is written by the Workload's reconcile, which applies it.
            self.workloads.wake((key[0], target or ""))
            return "delegated"
        condition = not_ready(
            "WorkloadNotFound",
            f"Workload {target!r} does not exist in namespace {key[0]!r}; the patch applies once it does",
        )
        await self._write(key, body, condition)
        return "orphan"

    async def write_statuses(
        self,
        workload: ObjectKey,
        bodies: Mapping[str, dict[str, Any]],
        result: RenderResult,
        broken: Mapping[str, str],
    ) -> None:
        """Write the conditions the Workload's reconcile decided for its patches (`bodies`, by name)."""
        for name, condition in patch_conditions(workload[1], bodies, result, broken).items():
            await self._write((workload[0], name), bodies[name], condition)

    async def _write(self, key: ObjectKey, body: dict[str, Any], condition: ConditionSpec) -> None:
        previous = body.get("status") or {}
        status = patch_status(body, condition, datetime.now(UTC))
        if not status_differs(previous, status):
            return
        try:
            await self.kube.patch_status(WorkloadPatchResource, key[0], key[1], status)
        except ApiError as exc:
            if exc.status.code == 404:
                return  # deleted meanwhile
            raise
        body["status"] = {**previous, **status}
        cached = self.bodies.get(key)
        if cached is not None and cached is not body:
            # Keep the cache current too: the watch event of this write may come after the next reconcile.
            cached["status"] = body["status"]


__all__ = ["WorkloadPatchController"]
