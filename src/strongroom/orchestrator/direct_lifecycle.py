"""Direct mode's executor of the Resource lifecycle (`reconcile/lifecycle.py`).

The same machine as the operator's Resource controller, over direct mode's state: the record of each
resource in the `strongroom-direct` ConfigMap stands for the Resource's status *and* its finalizer (direct
mode deletes what it recorded), and carries the pending marker — written before every PUT to a driver that
keeps something outside the cluster, removed in the same write that records the driver's answer. So a
deploy that dies mid-call PUTs again (same GUResID) on the next deploy, and a resource that left the set
is deleted through every driver that may hold it.

Ownership: an outputs Secret or a manifest object that exists without the app/env labels of this deploy
was not made by it, and is refused rather than overwritten. Secret outputs are written to the default
store only when they changed (compared with the outputs Secret, which holds what was written last).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from strongroom.api.driver import BUILTIN_DRIVER_TYPES
from strongroom.api.resource import Resource
from strongroom.api.workload import WorkloadPatch
from strongroom.drivers.base import DriverError, DriverRequest, DriverResult
from strongroom.orchestrator import naming
from strongroom.reconcile import lifecycle
from strongroom.reconcile import resource as rr
from strongroom.reconcile.secretdata import decode_secret_data
from strongroom.reconcile.stores import Problem
from strongroom.stores.base import SecretNotFound, SecretRef, SecretValue, StoreClient

if TYPE_CHECKING:
    from strongroom.orchestrator.direct import DirectRun


class DirectError(ValueError):
    """Direct mode cannot go on; the message names the object and the reason, never a secret value."""


async def read_optional(client: StoreClient, key: str) -> SecretValue | None:
    try:
        return await client.read(SecretRef(key))
    except SecretNotFound:
        return None


def recorded_resource(namespace: str, name: str, record: Mapping[str, Any]) -> Resource:
    """The Resource a record describes (identity only): what a DELETE is sent for."""
    return Resource.model_validate(
        {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "type": record["type"],
                "id": record["id"],
                "class": record.get("class") or naming.DEFAULT_CLASS,
                "driverType": record.get("driverType") or (record.get("pending") or {}).get("driverType"),
            },
        }
    )


def _holding(record: Mapping[str, Any]) -> list[lifecycle.Holder]:
    """(driver, GUResID) the record says provisioned, or may have started to provision, the resource."""
    found: set[lifecycle.Holder] = set()
    if record.get("driverType"):
        found.add((record["driverType"], record["guresid"]))
    pending = record.get("pending")
    if pending:
        found.add((pending["driverType"], pending["guresid"]))
    return sorted(found)


def _pending(record: Mapping[str, Any]) -> rr.Pending | None:
    pending = record.get("pending")
    return rr.Pending(pending["driverType"], pending["guresid"]) if pending else None


class ResourceExecutor:
    """Provision one resource of the set, or deprovision one that left it, step by step."""

    def __init__(self, run: DirectRun, name: str) -> None:
        self.run = run
        self.name = name
        self.namespace = run.namespace

    @property
    def record(self) -> dict[str, Any]:
        return self.run.records.get(self.name) or {}

    async def _save(self, record: Mapping[str, Any] | None) -> None:
        if record is None:
            self.run.records.pop(self.name, None)
        else:
            self.run.records[self.name] = dict(record)
        await self.run.save_state(self.run.records)

    def _driver_spec(self, holder: lifecycle.Holder) -> Mapping[str, Any] | None:
        record = self.record
        pending = record.get("pending") or {}
        if (pending.get("driverType"), pending.get("guresid")) == holder:
            return pending.get("driver")
        return record.get("driver")

    async def _delete_through(self, holder: lifecycle.Holder, cookie: SecretValue | None) -> None:
        driver_type, guresid = holder
        resource = recorded_resource(self.namespace, self.name, self.record)
        driver = self.run.driver(driver_type, self._driver_spec(holder))
        try:
            await driver.delete(rr.bare_request(resource, guresid, cookie))
        except DriverError as exc:
            raise DirectError(
                f"Resource {self.name}: deleting through driver {driver_type!r}: {exc}"
            ) from None

    async def _owned(self, obj: Mapping[str, Any], *, namespaced: bool) -> None:
        """Refuse to overwrite an object this app/env did not make."""
        meta = obj["metadata"]
        live = await self.run.cluster.get(
            obj["apiVersion"], obj["kind"], self.namespace if namespaced else None, meta["name"]
        )
        if live is None:
            return
        labels = (live.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in self.run.labels.items()):
            raise DirectError(
                f"Resource {self.name}: {obj['kind']} {meta['name']!r} already exists and was not made by "
                "this app and environment; strongroom never overwrites an object it does not manage"
            )

    # --- provisioning ---------------------------------------------------------------------------------

    async def provision(self, resource: Resource, driver_spec: Mapping[str, Any] | None) -> rr.Outputs:
        run, name = self.run, self.name
        resolved = rr.resolve_placeholders(resource, run.views)
        if isinstance(resolved, rr.InputProblem):
            raise DirectError(f"Resource {name}: {resolved.message}")
        secret_values: list[tuple[tuple[str, ...], SecretValue]] = []
        for path, ref in rr.secret_ref_paths(resource):
            secret_values.append((path, await run.stores.read(ref.store, ref.ref, ref.version)))
        default = await run.stores.client(run.settings.default_store)
        cookie = await read_optional(default, rr.cookie_store_key(self.namespace, name))
        # The operator's own GUResID for this Resource: after a switch to operator mode (or back), both
        # address the same driver resource.
        guresid = rr.guresid_of(resource)
        request = rr.driver_request(resource, resolved, secret_values, cookie, guresid=guresid)
        spec = resource.spec
        result: DriverResult | None = None
        outputs: rr.Outputs | None = None
        memory = lifecycle.Memory()
        while True:
            record = self.record
            holding = _holding(record)
            observed = lifecycle.Observed(
                driver_type=spec.driver_type,
                guresid=guresid,
                keeps_external=spec.driver_type not in BUILTIN_DRIVER_TYPES,
                has_finalizer=True,  # the record is direct mode's finalizer
                pending=_pending(record),
                to_release=()
                if spec.in_place_driver_change
                else tuple(h for h in holding if h[0] != spec.driver_type),
                apply_reason="deploy",  # direct mode provisions at every deploy
            )
            step = lifecycle.next_step(observed, memory)
            if isinstance(step, lifecycle.Done):
                assert outputs is not None
                run.outcome.add("Resource", name, f"provisioned ({spec.driver_type})")
                return outputs
            if isinstance(step, lifecycle.ReleasePreviousDriver):
                # As the operator does: the old driver lets go of the resource before the new one takes it.
                await self._delete_through(step.holder, request.cookie)
            elif isinstance(step, lifecycle.ForgetPreviousDriver):
                await default.delete(rr.cookie_store_key(self.namespace, name))
                request = replace(request, cookie=None)
                forgotten = {k: v for k, v in record.items() if k not in ("driverType", "driver")}
                if step.clear_pending:
                    forgotten.pop("pending", None)
                await self._save(forgotten)
            elif isinstance(step, lifecycle.MarkPending):
                if step.pending is not None:
                    marker = {"driverType": spec.driver_type, "guresid": guresid, "driver": driver_spec}
                    identity = {"type": spec.type, "id": spec.id, "class": spec.resource_class}
                    await self._save({**identity, **record, "pending": marker})
            elif isinstance(step, lifecycle.CallDriver):
                result, outputs = await self._put(resource, request, driver_spec)
            elif isinstance(step, lifecycle.WriteOutputs):
                assert result is not None
                assert outputs is not None
                await self._write_outputs(resource, request, result, outputs, default)
            elif isinstance(step, lifecycle.ApplyManifests):
                assert outputs is not None
                await self._apply_manifests(resource, outputs)
            elif isinstance(step, lifecycle.PruneStore):
                assert outputs is not None
                for key in sorted(set(record.get("secretKeys") or []) - set(outputs.secrets)):
                    await default.delete(rr.output_store_key(self.namespace, name, key))
            elif isinstance(step, lifecycle.RecordReady):
                assert outputs is not None
                # One write records the answer and drops the marker: ClearPending has nothing left to do.
                await self._save(
                    {
                        "type": spec.type,
                        "id": spec.id,
                        "class": spec.resource_class,
                        "guresid": guresid,
                        "driverType": spec.driver_type,
                        "driver": driver_spec,
                        "secretKeys": sorted(outputs.secrets),
                    }
                )
            else:  # Wait: direct mode's driver calls poll within the call; ClearPending: see RecordReady
                raise AssertionError(f"direct mode cannot execute {step}")
            memory = lifecycle.after(memory, step)

    async def _put(
        self, resource: Resource, request: DriverRequest, driver_spec: Mapping[str, Any] | None
    ) -> tuple[DriverResult, rr.Outputs]:
        driver = self.run.driver(resource.spec.driver_type, driver_spec)
        try:
            result = await driver.apply(request)
        except DriverError as exc:
            raise DirectError(f"Resource {self.name}: driver {resource.spec.driver_type!r}: {exc}") from None
        outputs = rr.check_outputs(resource, result)
        if isinstance(outputs, Problem):
            raise DirectError(f"Resource {self.name}: {outputs.message}")
        return result, outputs

    async def _write_outputs(
        self,
        resource: Resource,
        request: DriverRequest,
        result: DriverResult,
        outputs: rr.Outputs,
        default: StoreClient,
    ) -> None:
        secret = rr.outputs_secret(resource, outputs.secrets)
        await self._owned(secret, namespaced=True)
        observed = await self.run.cluster.get("v1", "Secret", self.namespace, secret["metadata"]["name"])
        written = decode_secret_data(observed)
        recorded = set(self.record.get("secretKeys") or [])
        for key, value in sorted(outputs.secrets.items()):
            if key in recorded and key in written and hmac.compare_digest(written[key], value.reveal()):
                continue  # unchanged: no new store version
            await default.write(rr.output_store_key(self.namespace, self.name, key), value)
        cookie_key = rr.cookie_store_key(self.namespace, self.name)
        if result.cookie is not None and len(result.cookie):
            if request.cookie is None or request.cookie.reveal() != result.cookie.reveal():
                await default.write(cookie_key, result.cookie)
        elif request.cookie is not None:
            await default.delete(cookie_key)
        await self.run.apply(secret)

    async def _apply_manifests(self, resource: Resource, outputs: rr.Outputs) -> None:
        for data in outputs.namespace_objects:
            obj = rr.namespace_object(resource, data)
            await self._owned(obj, namespaced=True)
            await self.run.apply(obj)
        for data in outputs.cluster_objects:
            obj = rr.cluster_object(resource, data)
            await self._owned(obj, namespaced=False)
            await self.run.apply(obj, namespaced=False)
        if outputs.update:
            patch = WorkloadPatch.model_validate(
                {
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": {"workloadName": rr.workload_name(resource), "patches": outputs.update},
                }
            )
            self.run.update_patches.append(patch)

    # --- deletion -------------------------------------------------------------------------------------

    async def deprovision(self) -> None:
        """Delete a resource that left the set through every driver that may hold it, then its store
        entries; the record goes last."""
        default = await self.run.stores.client(self.run.settings.default_store)
        cookie_key = rr.cookie_store_key(self.namespace, self.name)
        cookie = await read_optional(default, cookie_key)
        memory = lifecycle.Memory()
        while True:
            record = self.record
            observed = lifecycle.Observed(
                driver_type=record.get("driverType") or "",
                guresid=record.get("guresid") or "",
                deleting=True,
                has_finalizer=bool(record),
                pending=_pending(record),
                holders=tuple(_holding(record)),
            )
            step = lifecycle.next_step(observed, memory)
            if isinstance(step, lifecycle.Done):
                self.run.outcome.add("Resource", self.name, "deprovisioned")
                return
            if isinstance(step, lifecycle.CallDriver):
                await self._delete_through(step.holder, cookie)
            elif isinstance(step, lifecycle.DeleteStoreEntries):
                for key in record.get("secretKeys") or []:
                    await default.delete(rr.output_store_key(self.namespace, self.name, key))
                await default.delete(cookie_key)
            elif isinstance(step, lifecycle.RemoveFinalizer):
                await self._save(None)
            elif not isinstance(step, (lifecycle.RecordDeleting, lifecycle.DeleteManifests)):
                # RecordDeleting: no status to write; DeleteManifests: the run prunes by label before this.
                raise AssertionError(f"direct mode cannot execute {step}")
            memory = lifecycle.after(memory, step)
