"""The executor of a Resource's provisioning steps. The lifecycle machine (reconcile/lifecycle.py,
`next_step`) decides: release a previous driver, mark pending, PUT, write outputs, apply manifests, prune
the store, record Ready, clear the marker. This module observes what the machine decides on, performs each
step against the API server, the stores and the drivers, and loops until `Wait` (a driver's 202: asked
again on a timer, no worker waits) or `Done`.

Failures never blank anything: outputs, Secrets and refs of the last success stay until a new success
replaces them. Messages are redacted with every secret of the request and the answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from strongroom.api.common import SecretReference
from strongroom.drivers.base import DriverError, OperationInProgress, redact
from strongroom.operator.controllers.base import Controller, ObjectKey
from strongroom.operator.drivercache import DriverCache
from strongroom.operator.drivercalls import NO_DELETE, OVERHEAD_SECONDS, Attempt, DriverCalls, no_delete
from strongroom.operator.inputskey import InputsKey
from strongroom.operator.kube import Kube
from strongroom.operator.resourcegather import ProvisioningPass
from strongroom.operator.resourceindex import ResourceIndex
from strongroom.operator.resourceio import Failed, ResourceIO, conflict
from strongroom.operator.resourcewrites import ResourceWrites, trusted_resource
from strongroom.operator.storecache import StoreCache
from strongroom.operator.workqueue import Priority
from strongroom.reconcile import lifecycle
from strongroom.reconcile import resource as plan
from strongroom.reconcile.ownership import controlled_by
from strongroom.reconcile.secretdata import decode_secret_data
from strongroom.reconcile.stores import Problem, default_store
from strongroom.stores.guard import GuardedStore


class ResourceProvisioner:
    def __init__(
        self,
        controller: Controller,
        *,
        kube: Kube,
        stores: StoreCache,
        drivers: DriverCache,
        calls: DriverCalls,
        index: ResourceIndex,
        io: ResourceIO,
        writes: ResourceWrites,
        inputs: InputsKey,
        operator_namespace: str,
        resync_interval: float,
        manifest_kinds: frozenset[str],
        builtin_cluster_manifests: bool,
    ) -> None:
        # The controller: its cache, queue, log, Events and retry bookkeeping.
        self.controller = controller
        self.bodies = controller.bodies
        self.log = controller.log
        self.kube = kube
        self.stores = stores
        self.drivers = drivers
        self.calls = calls
        self.index = index
        self.io = io
        self.writes = writes
        self.inputs = inputs
        self.operator_namespace = operator_namespace
        self.resync_interval = resync_interval
        self.manifest_kinds = manifest_kinds
        self.builtin_cluster_manifests = builtin_cluster_manifests

    async def provision(self, key: ObjectKey, run: ProvisioningPass, attempt: Attempt) -> str:
        """Execute the lifecycle machine until Wait or Done."""
        memory = lifecycle.Memory()
        while True:
            step = lifecycle.next_step(await self._observe(key, run), memory)
            if isinstance(step, lifecycle.Wait):
                # The driver is working (202/409): ask again on a timer. No worker waits meanwhile, so
                # Resources on a slow driver cannot hold back anyone else's.
                self.controller.queue.add_after(key, step.after, Priority.LOW)
                self.log(logging.DEBUG, key, "%s", run.working)
                return "waiting"
            if isinstance(step, lifecycle.Done):
                return self._provisioned(key, run, attempt, step)
            answer = await self._execute(key, run, step, attempt)
            memory = lifecycle.after(memory, step, answer)

    async def _observe(self, key: ObjectKey, run: ProvisioningPass) -> lifecycle.Observed:
        """What the machine decides on: the Resource as last written (cache), and, once no previous driver
        is left to release, why the driver must be called (decided once per pass)."""
        resource = run.resource
        to_release = tuple(plan.drivers_to_release(resource, run.pending))
        if not to_release and not run.decided:
            run.decided = True
            name = plan.outputs_secret_name(key[1])
            run.observed_outputs = await self.kube.get_secret(key[0], name)
            if run.observed_outputs is not None and not controlled_by(
                run.observed_outputs, resource.metadata.uid or ""
            ):
                raise Failed(conflict("Secret", name))
            run.now = datetime.now(UTC)
            run.drifted = bool(self.controller.take_drifted(key))
            run.why = plan.apply_reason(
                resource,
                run.digest,
                run.pending,
                outputs_secret_present=run.observed_outputs is not None,
                now=run.now,
                resync_seconds=self.resync_interval,
                owned_objects_changed=run.drifted,
            )
        return lifecycle.Observed(
            driver_type=resource.spec.driver_type,
            guresid=run.guresid,
            keeps_external=not run.builtin,
            has_finalizer=plan.FINALIZER in (resource.metadata.finalizers or []),
            pending=run.pending,
            to_release=to_release,
            apply_reason=run.why,
        )

    async def _execute(
        self, key: ObjectKey, run: ProvisioningPass, step: lifecycle.Step, attempt: Attempt
    ) -> lifecycle.DriverAnswer | None:
        """Perform one provisioning step against the API server, the stores and the drivers."""
        try:
            if isinstance(step, lifecycle.ReleasePreviousDriver):
                await self._release(key, run, step.holder, attempt)
            elif isinstance(step, lifecycle.ForgetPreviousDriver):
                await self._forget_previous(key, run, clear_pending=step.clear_pending)
            elif isinstance(step, lifecycle.MarkPending):
                await self._mark_pending(key, run, step)
            elif isinstance(step, lifecycle.CallDriver):
                await self._put(key, run, attempt)
                return lifecycle.Applied()
            elif isinstance(step, lifecycle.WriteOutputs):
                await self._write_outputs(key, run)
            elif isinstance(step, lifecycle.ApplyManifests):
                await self._apply_manifests(key, run)
            elif isinstance(step, lifecycle.PruneStore):
                await self._prune_store(key, run)
            elif isinstance(step, lifecycle.RecordReady):
                await self._record_ready(key, run)
            elif isinstance(step, lifecycle.ClearPending):
                await self.writes.set_annotation(key, plan.PENDING_ANNOTATION, None)
                run.pending = None
            else:
                raise AssertionError(f"not a provisioning step: {step}")
        except OperationInProgress as working:
            run.working = working
            return lifecycle.InProgress(working.retry_after)
        return None

    async def _release(
        self, key: ObjectKey, run: ProvisioningPass, holder: lifecycle.Holder, attempt: Attempt
    ) -> None:
        """DELETE through a driver the Resource no longer uses, before the new one provisions."""
        driver_type, guresid = holder
        old = await self.calls.resolve(driver_type, key[0], deleting=True)
        self.log(logging.INFO, key, "driver changed: deleting through the previous driver %s", driver_type)
        cookie = run.request.cookie
        try:
            await self.calls.delete(
                key, attempt, driver_type, old, plan.bare_request(run.resource, guresid, cookie)
            )
        except DriverError as exc:
            if no_delete(exc):
                self.log(logging.WARNING, key, NO_DELETE, driver_type)
                return
            raise Failed(
                Problem(
                    exc.reason,
                    f"the previous driver {driver_type!r} must delete the resource first "
                    f"(or set inPlaceDriverChange): {redact(str(exc), [cookie] if cookie else [])}",
                    exc.retryable,
                )
            ) from None

    async def _forget_previous(self, key: ObjectKey, run: ProvisioningPass, *, clear_pending: bool) -> None:
        """Every previous driver let go: its cookie (meaningless to the new driver), `status.driverType`,
        a marker naming it."""
        resource = run.resource
        cookie_ref = resource.status.cookie_ref if resource.status else None
        if cookie_ref is not None:
            own = SecretReference(store=cookie_ref.store, ref=plan.cookie_store_key(key[0], key[1]))
            await self.io.store_delete_quietly(key, own)
        await self.writes.write_status(key, {"driverType": None, "cookieRef": None})
        if clear_pending:
            await self.writes.set_annotation(key, plan.PENDING_ANNOTATION, None)
            run.pending = None
        run.resource = trusted_resource(self.bodies[key], await self.inputs.get())
        run.request = replace(run.request, cookie=None)

    async def _mark_pending(self, key: ObjectKey, run: ProvisioningPass, step: lifecycle.MarkPending) -> None:
        run.resource = await self.writes.prepare_put(key, run.resource, step.pending, await self.inputs.get())
        run.pending = step.pending or run.pending
        if step.record is not None:
            await self.writes.write_status(
                key, plan.progress_status(run.resource, step.record.reason, step.record.message, run.now)
            )

    async def _put(self, key: ObjectKey, run: ProvisioningPass, attempt: Attempt) -> None:
        """PUT through the spec's driver and check its answer (refused: the reconcile fails)."""
        resource, spec = run.resource, run.resource.spec
        self.log(logging.DEBUG, key, "calling driver %s (PUT): %s", spec.driver_type, run.why)
        attempt.called_driver = True
        request = run.request
        if not run.driver.in_process:  # a 202 continues on a timer: see DriverCalls.operation
            request = replace(request, operation=self.calls.operation(key, spec.driver_type, "PUT"))
        try:
            async with self.calls.timed(attempt, "apply", run.driver):
                result = await run.driver.apply(request)
        except OperationInProgress:
            raise
        except DriverError as exc:
            self.calls.forget(key)
            raise Failed(Problem(exc.reason, request.redact(str(exc)), exc.retryable)) from None
        self.calls.forget(key)
        run.result = result
        run.secrets_seen = [*request.secret_values(), *result.secret_values()]

        outputs = plan.check_outputs(resource, result)
        if isinstance(outputs, Problem):
            raise Failed(replace(outputs, message=redact(outputs.message, run.secrets_seen)))
        refused = plan.manifest_policy_problem(outputs, self._manifest_policy(spec.driver_type, key[0]))
        refused = refused or plan.outputs_size_problem(resource, outputs)
        if refused is not None:
            raise Failed(replace(refused, message=redact(refused.message, run.secrets_seen)))
        await self.io.check_manifest_owners(resource, outputs)
        run.outputs = outputs

    def _manifest_policy(self, driver_type: str, namespace: str) -> plan.ManifestPolicy:
        builtin = self.drivers.is_builtin(driver_type)
        driver_namespace: str | None = None
        allow = False
        if not builtin:
            (driver_namespace, _), obj = self.drivers.find(driver_type, namespace)
            allow = obj is not None and obj.spec.allow_cluster_manifests
        refusal = plan.cluster_manifest_refusal(
            driver_type,
            builtin=builtin,
            driver_namespace=driver_namespace,
            allow_cluster_manifests=allow,
            operator_namespace=self.operator_namespace,
            builtin_allowed=self.builtin_cluster_manifests,
        )
        return plan.ManifestPolicy(self.manifest_kinds, refusal)

    async def _write_outputs(self, key: ObjectKey, run: ProvisioningPass) -> None:
        """Secret outputs and the cookie into the default store (only what changed: each write is a new
        version), the manifests Secret (when its content changed), the outputs Secret."""
        namespace, name = key
        resource, outputs, result = run.resource, run.answered(), run.result
        assert result is not None
        uid = resource.metadata.uid or ""
        previous_refs = run.previous_refs()
        previous_cookie = resource.status.cookie_ref if resource.status else None
        client: GuardedStore | None = None
        if outputs.secrets or result.cookie is not None:
            store_key = default_store(namespace, self.operator_namespace, self.stores.views.values())
            if isinstance(store_key, Problem):
                self.index.wait_on_any_store(key)
                raise Failed(store_key)
            run.store_name = store_key.name
            client = await self.io.store_client(store_key)
        store_name = run.store_name or ""

        observed_data = decode_secret_data(run.observed_outputs)
        run.new_refs = {
            k: plan.reference(ref.store, ref.ref, ref.version)
            for k, ref in previous_refs.items()
            if k in outputs.secrets and ref.store == store_name
        }
        to_write = plan.keys_to_write(outputs, observed_data, previous_refs, store_name)
        if to_write:
            assert client is not None
            written = await asyncio.gather(
                *(
                    self.io.store_write(client, plan.output_store_key(namespace, name, k), outputs.secrets[k])
                    for k in to_write
                )
            )
            for k, (store_ref, version) in zip(to_write, written, strict=True):
                run.new_refs[k] = plan.reference(store_name, store_ref, version)
        if result.cookie is not None:
            assert client is not None
            unchanged = (
                previous_cookie is not None
                and previous_cookie.store == store_name
                and run.request.cookie is not None
                and run.request.cookie == result.cookie
            )
            if unchanged and previous_cookie is not None:
                run.cookie_ref = plan.reference(
                    previous_cookie.store, previous_cookie.ref, previous_cookie.version
                )
            else:
                store_ref, version = await self.io.store_write(
                    client, plan.cookie_store_key(namespace, name), result.cookie
                )
                run.cookie_ref = plan.reference(store_name, store_ref, version)

        # The manifests Secret is only looked at when its content changes: the outputs Secret records its
        # hash (and is written after it).
        wanted_manifests = plan.manifests_secret(resource, outputs)
        manifests_hash = plan.content_hash_of(wanted_manifests)
        if run.drifted or manifests_hash != plan.recorded_manifests_hash(run.observed_outputs):
            await self.io.apply_manifests_secret(resource, wanted_manifests)
        wanted_secret = plan.outputs_secret(resource, outputs.secrets, manifests_hash)
        if not plan.secret_current(run.observed_outputs, wanted_secret, uid):
            await self.kube.apply_secret(wanted_secret)
            run.outputs_changed = True

    async def _apply_manifests(self, key: ObjectKey, run: ProvisioningPass) -> None:
        resource, outputs = run.resource, run.answered()
        previous = run.previous_manifests()
        grown = plan.stale_manifests(plan.manifest_refs(resource, outputs), previous)
        if grown:
            # Recorded before they exist: a crash between applying an object and the final status must not
            # leave a cluster-scoped object nobody knows to delete.
            await self.writes.write_status(key, {"manifests": [*previous, *grown]})
        run.applied = await self.io.apply_objects(resource, outputs, run.secrets_seen)
        for stale in plan.stale_manifests(previous, run.applied):
            await self.io.delete_owned_object(key, resource, stale, run.secrets_seen)
        await self.io.apply_workload_patch(resource, outputs)

    async def _prune_store(self, key: ObjectKey, run: ProvisioningPass) -> None:
        """Store entries no longer used. A failure here orphans one entry at worst: it is logged, and the
        rest of the outputs (already written) are recorded."""
        namespace, name = key
        resource, outputs = run.resource, run.answered()
        store_name = run.store_name or ""
        stale_store = plan.stale_refs(resource, run.previous_refs(), outputs, store_name)
        previous_cookie = resource.status.cookie_ref if resource.status else None
        if previous_cookie is not None and (run.cookie_ref is None or previous_cookie.store != store_name):
            stale_store.append(
                SecretReference(store=previous_cookie.store, ref=plan.cookie_store_key(namespace, name))
            )
        for ref in stale_store:
            await self.io.store_delete_quietly(key, ref)

    async def _record_ready(self, key: ObjectKey, run: ProvisioningPass) -> None:
        outputs = run.answered()
        status = plan.ready_status(
            run.resource,
            now=datetime.now(UTC),
            driver_type=run.resource.spec.driver_type,
            guresid=run.guresid,
            digest=run.digest,
            outputs=outputs,
            secret_refs=plan.refs_tree(outputs.secret_shape, run.new_refs),
            manifests=run.applied,
            cookie_ref=run.cookie_ref,
            applied_now=True,
        )
        run.status_before = dict((self.bodies.get(key) or {}).get("status") or {})
        await self.writes.write_status(key, status)

    def _provisioned(
        self, key: ObjectKey, run: ProvisioningPass, attempt: Attempt, done: lifecycle.Done
    ) -> str:
        resource, spec = run.resource, run.resource.spec
        if done.outcome == "unchanged":
            self.controller.succeeded(key, plan.seconds_until_resync(resource, run.now, self.resync_interval))
            return "unchanged"
        outputs = run.answered()
        self.controller.report(
            key, "Normal", "Provisioned", f"driver {spec.driver_type!r} provisioned it: {run.why}"
        )
        after = (self.bodies.get(key) or {}).get("status") or {}
        before = run.status_before
        # Dependents re-run when what they read changed: readiness, output values, secret outputs.
        if (
            run.outputs_changed
            or before.get("outputs") != after.get("outputs")
            or not _was_ready(before, resource.metadata.generation)
        ):
            self.index.wake_dependents(key)

        overhead = time.perf_counter() - attempt.started - attempt.driver_seconds
        OVERHEAD_SECONDS.observe(overhead)
        self.controller.succeeded(key, self.resync_interval)
        self.log(
            logging.INFO,
            key,
            "provisioned by %s (%s): %d values, %d secret outputs, %d objects; driver %.3fs, operator %.3fs",
            spec.driver_type,
            run.why,
            len(outputs.values),
            len(outputs.secrets),
            len(run.applied),
            attempt.driver_seconds,
            overhead,
        )
        return "provisioned"


def _was_ready(status: Mapping[str, Any], generation: int | None) -> bool:
    cond = next((x for x in status.get("conditions") or [] if x.get("type") == "Ready"), None)
    return bool(cond and cond.get("status") == "True" and status.get("observedGeneration") == generation)


__all__ = ["ResourceProvisioner"]
