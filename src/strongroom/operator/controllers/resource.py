"""Resource controller: gathers what a Resource's driver is called with, then executes the lifecycle machine.

The decisions are pure: *what to do next* in reconcile/lifecycle.py (`next_step`), *what to write* in
reconcile/resource/. This module takes the watch events, checks what it may trust of the Resource and runs
one reconcile: a failure becomes the Ready condition, an Event and a retry. The work is done by parts it
holds, each in its own module:

- operator/resourceindex.py: which Resources depend on which (and are woken when it changes), which hold
  an identity, which wait on a store or a Driver;
- operator/resourcetrust.py: the HMAC key's start-up, the verified status and pending marker, the
  `Tampered` condition;
- operator/resourcegather.py: what the driver is called with (duplicates, the GUResID policy,
  dependencies, the driver, secret references, the cookie, the request's digest);
- operator/resourceprovision.py and operator/resourcedeletion.py: the executors of the provisioning and
  the deletion steps;
- operator/drivercalls.py: driver resolution, the remote operations in flight, driver time metrics;
- operator/resourceio.py and operator/resourcewrites.py: what a reconcile reads and writes outside the
  Resource, and its writes to the Resource itself.

docs/resources.md tells the user-facing story.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from strongroom.api.resource import Resource
from strongroom.operator.controllers.base import Controller, ObjectKey
from strongroom.operator.drivercache import DriverCache
from strongroom.operator.drivercalls import Attempt, DriverCalls
from strongroom.operator.inputskey import InputsKey
from strongroom.operator.kube import Kube, ResourceResource
from strongroom.operator.relist import key_of
from strongroom.operator.resourcedeletion import ResourceDeletion
from strongroom.operator.resourcegather import ResourceGatherer
from strongroom.operator.resourceindex import ResourceIndex
from strongroom.operator.resourceio import Failed, ResourceIO
from strongroom.operator.resourceprovision import ResourceProvisioner
from strongroom.operator.resourcetrust import ResourceTrust
from strongroom.operator.resourcewrites import ResourceWrites
from strongroom.operator.storecache import StoreCache
from strongroom.reconcile import resource as plan
from strongroom.reconcile.conditions import ConditionSpec, merge_conditions, not_ready
from strongroom.reconcile.stores import Problem


@dataclass(frozen=True)
class ResourcePolicy:
    """What the platform admin allows Resources (operator flags, see docs/resources.md)."""

    guresid: plan.GuresidPolicy = field(default_factory=plan.GuresidPolicy)
    """Namespaces whose Resources may set `spec.guresid` (`--explicit-guresid-namespaces`)."""
    manifest_kinds: frozenset[str] = frozenset(plan.DEFAULT_MANIFEST_KINDS)
    """Kinds drivers' manifests may create (`--manifest-kinds`)."""
    builtin_cluster_manifests: bool = False
    """Whether the built-in drivers may create cluster-scoped objects (`--builtin-cluster-manifests`)."""


class ResourceController(Controller):
    kind = "Resource"
    status_resource = ResourceResource

    def __init__(
        self,
        kube: Kube,
        stores: StoreCache,
        drivers: DriverCache,
        operator_namespace: str,
        resync_interval: float,
        policy: ResourcePolicy | None = None,
    ) -> None:
        super().__init__()
        self.kube = kube
        self.stores = stores
        self.drivers = drivers
        self.operator_namespace = operator_namespace
        self.resync_interval = resync_interval
        self.policy = policy or ResourcePolicy()
        self.index = ResourceIndex(self.bodies, self.wake)
        self.calls = DriverCalls(drivers, self.waiting)
        self.inputs = InputsKey(kube, operator_namespace)
        self.io = ResourceIO(kube, stores, operator_namespace, self.log)
        # The Tampered condition of the reconcile under way: set by `trust`, added to every status `writes`
        # writes.
        alerts: dict[ObjectKey, ConditionSpec] = {}
        self.writes = ResourceWrites(kube, self.bodies, self.inputs, alerts)
        self.trust = ResourceTrust(self.inputs, self.writes, self.bodies, alerts, self.log, self.logger)
        self.gatherer = ResourceGatherer(
            kube, drivers, self.calls, self.index, self.io, self.inputs, self.bodies, self.policy.guresid
        )
        self.provisioner = ResourceProvisioner(
            self,
            kube=kube,
            stores=stores,
            drivers=drivers,
            calls=self.calls,
            index=self.index,
            io=self.io,
            writes=self.writes,
            inputs=self.inputs,
            operator_namespace=operator_namespace,
            resync_interval=resync_interval,
            manifest_kinds=self.policy.manifest_kinds,
            builtin_cluster_manifests=self.policy.builtin_cluster_manifests,
        )
        self.deletion = ResourceDeletion(
            self,
            calls=self.calls,
            index=self.index,
            io=self.io,
            writes=self.writes,
            guresid_policy=self.policy.guresid,
        )
        drivers.on_change = self.driver_changed

    async def run(self, workers: int, slots: int) -> None:
        await self.trust.preload()
        await super().run(workers, slots)

    async def inputs_key(self) -> bytes:
        """Load (or make) the inputs HMAC key now; raises what loading it raises (operator start-up check)."""
        return await self.trust.key()

    # --- events ---------------------------------------------------------------------------------------

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key: ObjectKey = key_of(body)
        cached = self.bodies.get(key)
        if event_type != "DELETED" and cached is not None and _older(meta, cached.get("metadata") or {}):
            # The event of an older state than our own last write (which updated the cache): skip it.
            return
        was_deleting = bool(((cached or {}).get("metadata") or {}).get("deletionTimestamp"))
        super().observe(event_type, body)
        if event_type != "DELETED" and meta.get("deletionTimestamp") and not was_deleting:
            self.wake(key)  # deletion does not always bump the generation; it must run now

    def changed(self, key: ObjectKey) -> None:
        try:
            resource = Resource.model_validate(self.bodies[key])
        except ValidationError:
            names: frozenset[str] = frozenset()
            self.index.set_identity(key, None)
        else:
            names = plan.dependency_names(resource)
            self.index.set_identity(key, (key[0], plan.identity_key(resource, self.policy.guresid)))
        self.index.set_deps(key, names)
        # A changed spec may break a cycle its dependents report, or change outputs they wait for.
        self.index.wake_dependents(key)

    def deleted(self, key: ObjectKey) -> None:
        self.calls.forget(key)
        self.deletion.forget(key)
        self.index.forget(key)

    def store_changed(self, store_name: str) -> None:
        self.index.store_changed(store_name)

    def driver_changed(self, driver_name: str) -> None:
        self.index.driver_changed(driver_name)

    # --- reconcile ------------------------------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> str:
        body = self.bodies[key]
        attempt = Attempt(time.perf_counter())
        try:
            resource = Resource.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
            )
            return await self._stop(key, Problem("InvalidSpec", f"the spec is not valid: {problems}", False))
        try:
            resource, marker = await self.trust.trusted(key, resource)
            if resource.metadata.deletion_timestamp is not None:
                return await self.deletion.finalize(key, resource, marker, attempt)
            run = await self.gatherer.gather(key, resource, marker)
            return await self.provisioner.provision(key, run, attempt)
        except Failed as failed:
            return await self._stop(key, failed.problem, failed.retry_after)
        finally:
            self.trust.done(key)

    async def _stop(self, key: ObjectKey, problem: Problem, retry_after: float | None = None) -> str:
        body = self.bodies.get(key)
        if body is None:
            return "gone"
        try:
            resource = Resource.model_validate(body)
        except ValidationError:
            # Not even the status can be computed from the model: write the condition alone.
            generation = (body.get("metadata") or {}).get("generation")
            status = {
                "observedGeneration": generation,
                "conditions": merge_conditions(
                    (body.get("status") or {}).get("conditions"),
                    [not_ready(problem.reason, problem.message)],
                    datetime.now(UTC),
                    generation,
                ),
            }
        else:
            status = plan.problem_status(resource, problem, datetime.now(UTC))
        await self.writes.write_status(key, status)
        self.report(key, "Warning", problem.reason, problem.message)
        if retry_after is not None:
            self.queue.add_after(key, retry_after)
            delay: float | None = retry_after
        else:
            delay = self.failed(key, problem.retryable, self.resync_interval)
        self.log(
            logging.INFO,
            key,
            "not provisioned (%s): %s; next attempt in %.0fs",
            problem.reason,
            problem.message,
            delay or 0,
        )
        return "failed"


def _older(new_meta: Mapping[str, Any], cached_meta: Mapping[str, Any]) -> bool:
    """Whether an event carries an older state than the cache (resourceVersions compared as numbers,
    which they are on etcd; anything else is treated as newer)."""
    new, cached = str(new_meta.get("resourceVersion") or ""), str(cached_meta.get("resourceVersion") or "")
    return new.isdigit() and cached.isdigit() and int(new) < int(cached)


__all__ = ["ResourceController", "ResourcePolicy"]
