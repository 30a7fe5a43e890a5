"""Workload controller: find the workload's Resources, read what they produced, render, apply, prune.

One reconcile of a Workload:

1. its WorkloadPatches (same namespace, `spec.workloadName` = the Workload; listed from the API server,
   not from the event cache, which may be incomplete just after a start) apply to its spec;
2. each entry of the patched `spec.resources` is matched to a Resource in the namespace (`match_identity`:
   same type, class and id; the id defaults to `modules.<workload>.externals.<resource>`);
3. of each Ready Resource it reads `status.outputs.values`, its outputs Secret `<resource>-outputs`
   (content hash and key names; values only of keys that are composed with text; only a Secret the Resource
   controls, whatever name a tenant writes into `status.secretName`) and the manifests Secret
   `<resource>-manifests` (sidecar containers and volumes);
4. the pure renderer (`reconcile/workload/`) decides the objects;
5. a complete rendering is server-side applied (objects whose rendered hash is unchanged are skipped, so a
   no-op reconcile writes nothing) and objects this Workload applied before but no longer renders are
   deleted; anything less (a broken patch, a missing resource, a problem) changes no object: the last good
   rendering stays;
6. status goes onto the Workload (`Ready`, `objects`, `patches`) and onto each of its WorkloadPatches.

The Workload is woken when one of its Resources changes (the operator feeds Resource events into
`resource_event`), when one of its patches changes, and periodically (a resync that heals deleted objects).

This controller reads and writes; what it decides is pure, in reconcile/: `workloadgather` (matching,
what a Resource may be used for, the condition when nothing applies), `workloadapply` (what to apply and
prune, the conditions and status bodies), `workloaddeps` (whom a Resource event wakes). WorkloadPatches
have their own controller (operator/controllers/workloadpatch.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lightkube.core.exceptions import ApiError
from pydantic import ValidationError

from strongroom.api.constants import MANAGED_LABEL
from strongroom.api.workload import Workload, WorkloadPatch, WorkloadSpec
from strongroom.operator.controllers.base import Controller, ObjectKey
from strongroom.operator.controllers.workloadpatch import WorkloadPatchController
from strongroom.operator.events import EventType
from strongroom.operator.kube import RENDERED_KINDS, Kube, ResourceResource, WorkloadResource
from strongroom.reconcile.conditions import ConditionSpec, not_ready
from strongroom.reconcile.ownership import controlled_by, owned_by
from strongroom.reconcile.resource import (
    CONTAINERS_KEY,
    VOLUMES_KEY,
    manifests_secret_name,
    outputs_secret_name,
)
from strongroom.reconcile.secretdata import CONTENT_HASH_ANNOTATION, content_hash, decode_secret_data
from strongroom.reconcile.secretmapping import status_differs
from strongroom.reconcile.workload import (
    INSTANCE_LABEL,
    WORKLOAD_KINDS,
    RenderResult,
    ResourceOutputs,
    render,
)
from strongroom.reconcile.workloadapply import (
    conflict_condition,
    rendered_condition,
    rendered_hash_differs,
    stale_objects,
    unknown_consumed_secrets,
    workload_status,
)
from strongroom.reconcile.workloaddeps import WorkloadDependencies
from strongroom.reconcile.workloadgather import (
    Decision,
    Gathered,
    ObjectId,
    ResourceIdentity,
    clip,
    composed_keys,
    decide,
    match_identity,
    matching,
    object_id,
    parse_manifest_list,
    parse_patches,
    resource_not_ready,
    with_rendered_hash,
)
from strongroom.reconcile.workloadpatch import apply_patches, describe_validation_error
from strongroom.stores.base import SecretValue


class WorkloadController(Controller):
    kind = "Workload"
    status_resource = WorkloadResource

    def __init__(self, kube: Kube, resync_interval: float) -> None:
        super().__init__()
        self.kube = kube
        self.resync_interval = resync_interval
        self.patches = WorkloadPatchController(kube, self)
        # The Resources seen and which workloads need which of them, to wake exactly those on a change.
        self.dependencies = WorkloadDependencies()

    # --- events -----------------------------------------------------------------------------------------

    def deleted(self, key: ObjectKey) -> None:
        self._set_needs(key, set())
        # Its patches now point at nothing; their status says so.
        for patch_key in self.patches.targeting(key):
            self.patches.wake(patch_key)

    @property
    def resources(self) -> dict[ObjectKey, dict[str, Any]]:
        """Resource events, reduced to what matching and readiness need (Resource key -> body)."""
        return self.dependencies.resources

    def resource_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Feed one Resource watch event: wake the workloads that use it when what they read changed."""
        for workload in self.dependencies.resource_event(event_type, body):
            self.wake(workload)

    def cached_resources(self, identity: ResourceIdentity) -> list[dict[str, Any]]:
        return self.dependencies.cached(identity)

    def _set_needs(self, key: ObjectKey, identities: set[ResourceIdentity]) -> None:
        self.dependencies.set_needs(key, identities)

    # --- reconcile --------------------------------------------------------------------------------------

    async def reconcile(self, key: ObjectKey) -> str:
        body = self.bodies[key]
        if (body.get("metadata") or {}).get("deletionTimestamp"):
            return "deleting"  # the garbage collector removes what it owns
        try:
            workload = Workload.model_validate(body)
        except ValidationError as exc:
            condition = not_ready("InvalidSpec", f"the spec is not valid: {describe_validation_error(exc)}")
            await self._write_status(key, body, condition, None, [])
            self.failed(key, retry=False, fallback_after=self.resync_interval)
            return "invalid"

        patch_bodies = await self.patches.for_workload(key)
        patches, broken = parse_patches(patch_bodies.values())
        spec = apply_patches(workload, patches).spec
        gathered = await self._gather(workload, spec)
        self._set_needs(key, gathered.identities)
        result = render(workload, patches, gathered.outputs, gathered.secret_hashes)
        if result.complete and not broken:
            result = await self._with_consumed_hashes(workload, patches, gathered, result)

        decision = decide(result, gathered, broken)
        objects: list[dict[str, Any]] | None = None
        outcome = ""
        if decision is None:
            decision, objects, outcome = await self._apply(key, workload, result)
        await self._write_status(key, body, decision.condition, objects, result.applied_patches)
        await self.patches.write_statuses(key, patch_bodies, result, broken)

        ready_now = decision.condition.status is True
        if outcome == "applied":
            self.report(key, "Normal", "Rendered", decision.condition.message)
        elif not ready_now:
            event_type: EventType = (
                "Normal" if decision.condition.reason == "WaitingForResources" else "Warning"
            )
            self.report(key, event_type, decision.condition.reason, decision.condition.message)
        if ready_now or decision.condition.reason == "WaitingForResources":
            # Resource events wake a waiting workload; the resync only heals what events cannot see.
            self.succeeded(key, self.resync_interval)
        else:
            delay = self.failed(key, decision.retry, self.resync_interval)
            self.log(
                logging.INFO,
                key,
                "not rendered (%s); next attempt in %.0fs",
                decision.condition.reason,
                delay or 0,
            )
        return outcome if ready_now else decision.condition.reason

    async def _gather(self, workload: Workload, spec: WorkloadSpec) -> Gathered:
        gathered = Gathered()
        composed = composed_keys(spec)
        listed: list[dict[str, Any]] | None = None
        for name in sorted(spec.resources or {}):
            identity = match_identity(workload.namespace, workload.name, name, (spec.resources or {})[name])
            gathered.identities.add(identity)
            matches = matching(identity, self.cached_resources(identity))
            if len(matches) != 1 or resource_not_ready(matches[0]) is not None:
                # The cache may not have caught up (just after a start, Resources are still being listed
                # while Workloads already reconcile): ask the API server before reporting a wait, so a
                # restart never flips a Ready workload to waiting and back. One list per reconcile.
                if listed is None:
                    listed = await self.kube.list_custom(ResourceResource, workload.namespace)
                matches = matching(identity, listed)
            if not matches:
                gathered.waiting_notes[name] = (
                    f"no Resource with {identity.describe()} in namespace {identity.namespace!r}"
                )
                continue
            if len(matches) > 1:
                names = ", ".join(str((body.get("metadata") or {}).get("name")) for body in matches)
                gathered.problems.append(
                    f"resources.{name}: {len(matches)} Resources match {identity.describe()} ({names}); "
                    "delete all but one"
                )
                continue
            await self._read_resource(name, matches[0], composed.get(name, set()), gathered)
        return gathered

    async def _read_resource(
        self, name: str, body: Mapping[str, Any], composed: set[str], gathered: Gathered
    ) -> None:
        meta = body.get("metadata") or {}
        resource_name, uid = str(meta.get("name")), str(meta.get("uid"))
        namespace = str(meta.get("namespace"))
        why = resource_not_ready(body)
        if why is not None:
            gathered.waiting_notes[name] = f"Resource {resource_name!r}: {why}"
            return
        status = body.get("status") or {}
        values = (status.get("outputs") or {}).get("values") or {}
        # Not the name the status gives (tenants may write the status): the Secret the Resource controller
        # writes, and only if that Resource controls it.
        secret_name = outputs_secret_name(resource_name) if status.get("secretName") else None
        secrets: dict[str, SecretValue] = {}
        secret_keys: set[str] = set()
        digest: str | None = None
        if secret_name:
            secret = await self.kube.get_secret(namespace, secret_name)
            if secret is None or not controlled_by(secret, uid):
                gathered.waiting_notes[name] = (
                    f"Resource {resource_name!r}: its outputs Secret {secret_name!r} does not exist yet"
                )
                return
            data = decode_secret_data(secret)
            digest = ((secret.get("metadata") or {}).get("annotations") or {}).get(
                CONTENT_HASH_ANNOTATION
            ) or content_hash(data)
            # Values only where text must be composed with them; the rest is wired by reference.
            secrets = {key: SecretValue(data[key]) for key in sorted(composed) if key in data}
            secret_keys = set(data) - set(secrets)
            gathered.secret_hashes[secret_name] = digest
        containers: list[dict[str, Any]] = []
        volumes: list[dict[str, Any]] = []
        manifests_name = manifests_secret_name(resource_name)
        manifests = await self.kube.get_secret(namespace, manifests_name)
        if manifests is not None and owned_by(manifests, uid):
            data = decode_secret_data(manifests)
            try:
                if CONTAINERS_KEY in data:
                    containers = parse_manifest_list(data[CONTAINERS_KEY], CONTAINERS_KEY)
                if VOLUMES_KEY in data:
                    volumes = parse_manifest_list(data[VOLUMES_KEY], VOLUMES_KEY)
            except ValueError as exc:
                gathered.problems.append(
                    f"resources.{name}: the manifests Secret {manifests_name!r} of Resource "
                    f"{resource_name!r} cannot be read: {exc}"
                )
                return
        gathered.outputs[name] = ResourceOutputs(
            ready=True,
            values=values if isinstance(values, dict) else {},
            secret_name=secret_name or None,
            secrets=secrets,
            containers=containers,
            volumes=volumes,
            content_hash=digest,
            secret_keys=secret_keys,
        )

    async def _with_consumed_hashes(
        self,
        workload: Workload,
        patches: list[WorkloadPatch],
        gathered: Gathered,
        result: RenderResult,
    ) -> RenderResult:
        """Render again when the pod reads Secrets whose content hash is not known yet (Secrets named by
        sidecars and volumes that resources emit), so their changes roll the pods too."""
        unknown = unknown_consumed_secrets(result, gathered.secret_hashes)
        if not unknown:
            return result
        for name in unknown:
            secret = await self.kube.get_secret(workload.namespace, name)
            if secret is None:
                gathered.secret_hashes[name] = "absent"
                continue
            annotations = (secret.get("metadata") or {}).get("annotations") or {}
            gathered.secret_hashes[name] = annotations.get(CONTENT_HASH_ANNOTATION) or content_hash(
                decode_secret_data(secret)
            )
        return render(workload, patches, gathered.outputs, gathered.secret_hashes)

    async def _apply(
        self, key: ObjectKey, workload: Workload, result: RenderResult
    ) -> tuple[Decision, list[dict[str, Any]] | None, str]:
        """Apply a complete rendering and prune what it no longer contains."""
        namespace, uid = workload.namespace, workload.metadata.uid or ""
        pods = next(obj for obj in result.objects if obj["kind"] in WORKLOAD_KINDS)
        selector = {MANAGED_LABEL: "true", INSTANCE_LABEL: pods["metadata"]["labels"][INSTANCE_LABEL]}
        # Objects someone else edited keep their rendered-hash annotation: apply them again regardless.
        drifted = {(version, kind, name) for version, kind, _, name in self.take_drifted(key)}
        try:
            live: dict[ObjectId, dict[str, Any]] = {}
            for api_version, kind in RENDERED_KINDS:
                for obj in await self.kube.list_rendered(api_version, kind, namespace, selector):
                    if controlled_by(obj, uid):
                        live[(api_version, kind, obj["metadata"]["name"])] = obj

            wanted = [with_rendered_hash(obj) for obj in result.objects]
            to_apply: list[dict[str, Any]] = []
            conflicts: list[str] = []
            for manifest in wanted:
                ident = object_id(manifest)
                current = live.get(ident)
                if current is None:
                    other = await self.kube.get_rendered(*ident[:2], namespace, ident[2])
                    if other is not None and not controlled_by(other, uid):
                        conflicts.append(f"{ident[1]} {ident[2]}")
                        continue
                    to_apply.append(manifest)
                elif ident in drifted or rendered_hash_differs(current, manifest):
                    to_apply.append(manifest)
            if conflicts:
                return Decision(conflict_condition(conflicts), retry=True), None, "conflict"

            for manifest in to_apply:
                await self.kube.apply_rendered(manifest)
                self.log(logging.INFO, key, "applied %s %s", manifest["kind"], manifest["metadata"]["name"])
            stale = stale_objects(live, wanted)
            for ident in stale:
                await self.kube.delete_rendered(*ident[:2], namespace, ident[2])
                self.log(logging.INFO, key, "pruned %s %s (no longer rendered)", ident[1], ident[2])
        except ApiError as exc:
            return Decision(self._api_failure(exc), retry=True), None, "apply-failed"

        outcome = "applied" if to_apply or stale else "unchanged"
        return Decision(rendered_condition(result), retry=False), result.objects, outcome

    @staticmethod
    def _api_failure(exc: ApiError) -> ConditionSpec:
        status = exc.status
        code = status.code if status is not None else None
        reason = (status.reason if status is not None else None) or "Error"
        details = getattr(status, "details", None)
        kind = getattr(details, "kind", None) or ""
        # API errors about Secrets may quote parts of what was sent; only say which object and why.
        if kind == "secrets":
            text = f"the API server refused Secret {getattr(details, 'name', '')!r}: {reason} ({code})"
        else:
            text = f"the API server refused an object: {reason} ({code}): {status.message if status else ''}"
        return not_ready("ApplyFailed", clip(text))

    async def _write_status(
        self,
        key: ObjectKey,
        body: dict[str, Any],
        condition: ConditionSpec,
        objects: list[dict[str, Any]] | None,
        patches: list[str],
    ) -> None:
        previous = body.get("status") or {}
        status = workload_status(body, condition, objects, patches, datetime.now(UTC))
        if not status_differs(previous, status):
            return
        await self.kube.patch_status(WorkloadResource, key[0], key[1], status)
        body["status"] = {**previous, **status}


__all__ = ["WorkloadController", "WorkloadPatchController"]
