"""The executor of a Resource's deletion steps, behind the operator's finalizer. The lifecycle machine
(reconcile/lifecycle.py, `next_step`) decides: DELETE through every driver that may hold the resource,
delete the objects its manifests made and its store entries, drop the finalizer. This module performs them
and remembers which drivers confirmed a DELETE, so a retry of the rest sends no DELETE again.

A driver that cannot delete without a person (400 on DELETE) keeps the finalizer and is asked again slowly;
one that has no DELETE at all (405) has nothing to delete.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from strongroom.api.resource import Resource
from strongroom.drivers.base import DriverError, OperationInProgress, redact
from strongroom.operator.controllers.base import Controller, ObjectKey
from strongroom.operator.drivercalls import NO_DELETE, Attempt, DriverCalls, no_delete
from strongroom.operator.resourceindex import ResourceIndex
from strongroom.operator.resourceio import Failed, ResourceIO
from strongroom.operator.resourcewrites import ResourceWrites
from strongroom.operator.workqueue import Priority
from strongroom.reconcile import lifecycle
from strongroom.reconcile import resource as plan
from strongroom.reconcile.stores import Problem
from strongroom.stores.base import SecretValue

# How long to wait before retrying a deletion that cannot progress without a person (400 on DELETE).
_STUCK_DELETE_RETRY = 300.0


class ResourceDeletion:
    def __init__(
        self,
        controller: Controller,
        *,
        calls: DriverCalls,
        index: ResourceIndex,
        io: ResourceIO,
        writes: ResourceWrites,
        guresid_policy: plan.GuresidPolicy,
    ) -> None:
        # The controller: its queue and log.
        self.controller = controller
        self.log = controller.log
        self.calls = calls
        self.index = index
        self.io = io
        self.writes = writes
        self.guresid_policy = guresid_policy
        # (uid, driver type, GUResID) a driver confirmed deleting, by Resource, while the rest of its deletion
        # (store entries, the finalizer) is still to be done: a retry of that rest sends no DELETE again.
        self._deleted_through: dict[ObjectKey, set[tuple[str, str, str]]] = {}

    def forget(self, key: ObjectKey) -> None:
        """The Resource is gone."""
        self._deleted_through.pop(key, None)

    async def finalize(
        self, key: ObjectKey, resource: Resource, pending: plan.Pending | None, attempt: Attempt
    ) -> str:
        """Execute the machine's deletion steps. Drivers that confirmed a DELETE are remembered (per uid)
        across reconciles, so a retry of the rest (store entries, the finalizer) sends no DELETE again."""
        uid = resource.metadata.uid or ""
        confirmed = self._deleted_through.setdefault(key, set())
        observed = lifecycle.Observed(
            driver_type=resource.spec.driver_type,
            guresid="",
            deleting=True,
            has_finalizer=plan.FINALIZER in (resource.metadata.finalizers or []),
            pending=pending,
            holders=tuple(self._holders(key, resource, pending))
            if plan.FINALIZER in (resource.metadata.finalizers or [])
            else (),
        )
        memory = lifecycle.Memory(released=frozenset((d, g) for u, d, g in confirmed if u == uid))
        cookie: list[SecretValue | None] = []  # read once, on the first DELETE
        working: OperationInProgress | None = None
        while True:
            step = lifecycle.next_step(observed, memory)
            answer: lifecycle.DriverAnswer | None = None
            if isinstance(step, lifecycle.Wait):
                self.controller.queue.add_after(key, step.after, Priority.LOW)
                self.log(logging.DEBUG, key, "%s", working)
                return "waiting"
            if isinstance(step, lifecycle.Done):
                return step.outcome
            if isinstance(step, lifecycle.RecordDeleting):
                await self.writes.write_status(
                    key,
                    plan.progress_status(
                        resource, step.record.reason, step.record.message, datetime.now(UTC)
                    ),
                )
            elif isinstance(step, lifecycle.CallDriver):
                if not cookie:
                    cookie.append(await self.io.read_cookie(resource, lenient=True))
                try:
                    await self._delete_holder(key, resource, step.holder, cookie[0], attempt)
                except OperationInProgress as exc:
                    working, answer = exc, lifecycle.InProgress(exc.retry_after)
                else:
                    confirmed.add((uid, *step.holder))
            elif isinstance(step, lifecycle.DeleteManifests):
                # Objects the drivers' manifests made (namespaced ones would also go with their owner), each
                # only if the live object proves this Resource made it.
                for applied in resource.status.manifests or [] if resource.status else []:
                    record = applied.model_dump(mode="json", by_alias=True, exclude_none=True)
                    await self.io.delete_owned_object(key, resource, record, [])
            elif isinstance(step, lifecycle.DeleteStoreEntries):
                await self.io.delete_store_entries(key, resource)
            elif isinstance(step, lifecycle.RemoveFinalizer):
                await self.writes.remove_finalizer(key)
                self.log(logging.INFO, key, "deprovisioned; finalizer removed")
            else:
                raise AssertionError(f"not a deletion step: {step}")
            memory = lifecycle.after(memory, step, answer)

    async def _delete_holder(
        self,
        key: ObjectKey,
        resource: Resource,
        holder: lifecycle.Holder,
        cookie: SecretValue | None,
        attempt: Attempt,
    ) -> None:
        """DELETE through one driver that may hold the resource (405: it has nothing to delete)."""
        driver_type, guresid = holder
        self.index.wait_on_driver(key, [driver_type])
        driver = await self.calls.resolve(driver_type, key[0], deleting=True)
        try:
            request = plan.bare_request(resource, guresid, cookie)
            await self.calls.delete(key, attempt, driver_type, driver, request)
        except DriverError as exc:
            if no_delete(exc):
                self.log(logging.WARNING, key, NO_DELETE, driver_type)
                return
            message = f"the driver {driver_type!r} did not delete the resource: {exc}"
            problem = Problem(exc.reason, redact(message, [cookie] if cookie else []), True)
            raise Failed(problem, None if exc.retryable else _STUCK_DELETE_RETRY) from None
        self.log(logging.INFO, key, "deleted through driver %s", driver_type)

    def _holders(
        self, key: ObjectKey, resource: Resource, pending: plan.Pending | None
    ) -> list[tuple[str, str]]:
        """(driver type, GUResID) to DELETE through when the Resource goes."""
        if self.index.duplicate_of(key) is not None:
            return []  # a refused duplicate never provisioned: what its identity names is the first one's
        holders = plan.drivers_holding(resource, pending)
        if holders or plan.guresid_problem(resource, self.guresid_policy) is not None:
            return holders
        # Our finalizer is there, so a driver call may have been made, but there is no trusted record of it
        # (an altered status was forgotten): the spec's own identity is the only one it can have used.
        return [(resource.spec.driver_type, plan.guresid_of(resource))]


__all__ = ["ResourceDeletion"]
