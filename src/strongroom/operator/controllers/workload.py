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
4. the pure renderer (`reconcile/workload.py`) decides the objects;
5. a complete rendering is server-side applied (objects whose rendered hash is unchanged are skipped, so a
   no-op reconcile writes nothing) and objects this Workload applied before but no longer renders are
   deleted; anything less (a broken patch, a missing resource, a problem) changes no object: the last good
   rendering stays;
6. status goes onto the Workload (`Ready`, `objects`, `patches`) and onto each of its WorkloadPatches.

The Workload is woken when one of its Resources changes (the operator feeds Resource events into
`resource_event`), when one of its patches changes, and periodically (a resync that heals deleted objects).
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
from strongroom.operator.events import EventType
from strongroom.operator.kube import (
    RENDERED_KINDS,
    Kube,
    ResourceResource,
    WorkloadPatchResource,
    WorkloadResource,
)
from strongroom.reconcile.conditions import ConditionSpec, merge_conditions, not_ready, ready
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
from strongroom.reconcile.workloadgather import (
    RENDERED_HASH_ANNOTATION,
    Decision,
    Gathered,
    ObjectId,
    ResourceIdentity,
    clip,
    composed_keys,
    decide,
    describe_objects,
    match_identity,
    matching,
    object_id,
    object_ref,
    parse_manifest_list,
    parse_patches,
    patch_target,
    resource_identity,
    resource_not_ready,
    with_rendered_hash,
)
from strongroom.reconcile.workloadpatch import apply_patches, describe_validation_error
from strongroom.stores.base import SecretValue

# --- The controller -----------------------------------------------------------------------------------------


class WorkloadController(Controller):
    kind = "Workload"
    status_resource = WorkloadResource

    def __init__(self, kube: Kube, resync_interval: float) -> None:
        super().__init__()
        self.kube = kube
        self.resync_interval = resync_interval
        self.patches = WorkloadPatchController(kube, self)
        # Resource events, reduced to what matching and readiness need (Resource key -> body), and the
        # Resources by identity, so matching costs the same however many Resources a namespace holds.
        self.resources: dict[ObjectKey, dict[str, Any]] = {}
        self._by_identity: dict[ResourceIdentity, set[ObjectKey]] = {}
        # Which workloads a Resource identity matters to, to wake exactly those when it changes.
        self._dependents: dict[ResourceIdentity, set[ObjectKey]] = {}
        self._needs: dict[ObjectKey, set[ResourceIdentity]] = {}

    # --- events -----------------------------------------------------------------------------------------

    async def current(self, key: ObjectKey) -> dict[str, Any] | None:
        return await self.kube.get_custom(WorkloadResource, *key)

    def deleted(self, key: ObjectKey) -> None:
        self._set_needs(key, set())
        # Its patches now point at nothing; their status says so.
        for patch_key in self.patches.targeting(key):
            self.patches.wake(patch_key)

    def resource_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Feed one Resource watch event: wake the workloads that use it when what they read changed."""
        meta = body.get("metadata") or {}
        key: ObjectKey = (meta.get("namespace") or "", meta.get("name") or "")
        before = self.resources.get(key)
        if event_type == "DELETED":
            self.resources.pop(key, None)
            after = None
        else:
            after = {
                "metadata": {
                    name: meta.get(name)
                    for name in ("name", "namespace", "uid", "generation", "deletionTimestamp")
                },
                "spec": {name: (body.get("spec") or {}).get(name) for name in ("type", "class", "id")},
                "status": body.get("status") or {},
            }
            self.resources[key] = after
            if before == after:
                return
        current = resource_identity(after) if after is not None else None
        previous = resource_identity(before) if before is not None else None
        for identity in {previous, current}:
            if identity is None:
                continue
            _index(self._by_identity, identity, key, add=identity == current)
            for workload in list(self._dependents.get(identity, ())):
                self.wake(workload)

    def cached_resources(self, identity: ResourceIdentity) -> list[dict[str, Any]]:
        return [self.resources[key] for key in self._by_identity.get(identity, ()) if key in self.resources]

    def _set_needs(self, key: ObjectKey, identities: set[ResourceIdentity]) -> None:
        for identity in self._needs.pop(key, set()) - identities:
            dependents = self._dependents.get(identity)
            if dependents is not None:
                dependents.discard(key)
                if not dependents:
                    del self._dependents[identity]
        if identities:
            self._needs[key] = identities
            for identity in identities:
                self._dependents.setdefault(identity, set()).add(key)

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
        owned = {obj["metadata"]["name"] for obj in result.objects if obj.get("kind") == "Secret"}
        unknown = [
            name
            for name in result.consumed_secrets
            if name not in owned and name not in gathered.secret_hashes
        ]
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
                elif (
                    ident in drifted
                    or ((current.get("metadata") or {}).get("annotations") or {}).get(
                        RENDERED_HASH_ANNOTATION
                    )
                    != manifest["metadata"]["annotations"][RENDERED_HASH_ANNOTATION]
                ):
                    to_apply.append(manifest)
            if conflicts:
                # Never take over an object someone else made (server-side apply with force would).
                condition = not_ready(
                    "ObjectConflict",
                    clip(
                        f"{', '.join(conflicts)}: already there and not owned by this Workload; "
                        "strongroom never overwrites objects it does not manage: delete or rename them "
                        "(nothing was applied)"
                    ),
                )
                return Decision(condition, retry=True), None, "conflict"

            for manifest in to_apply:
                await self.kube.apply_rendered(manifest)
                self.log(logging.INFO, key, "applied %s %s", manifest["kind"], manifest["metadata"]["name"])
            keep = {object_id(obj) for obj in wanted}
            stale = sorted(ident for ident in live if ident not in keep)
            for ident in stale:
                await self.kube.delete_rendered(*ident[:2], namespace, ident[2])
                self.log(logging.INFO, key, "pruned %s %s (no longer rendered)", ident[1], ident[2])
        except ApiError as exc:
            return Decision(self._api_failure(exc), retry=True), None, "apply-failed"

        message = f"rendered {len(result.objects)} objects: {describe_objects(result.objects)}"
        if result.applied_patches:
            message += f"; patches applied: {', '.join(result.applied_patches)}"
        outcome = "applied" if to_apply or stale else "unchanged"
        return Decision(ready("Rendered", clip(message)), retry=False), result.objects, outcome

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
        generation = (body.get("metadata") or {}).get("generation")
        previous = body.get("status") or {}
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "conditions": merge_conditions(
                previous.get("conditions"), [condition], datetime.now(UTC), generation
            ),
            "patches": patches,
        }
        # Objects left in place by a reconcile that rendered nothing are still this Workload's objects.
        status["objects"] = (
            [object_ref(obj) for obj in objects] if objects is not None else previous.get("objects") or []
        )
        if not status_differs(previous, status):
            return
        await self.kube.patch_status(WorkloadResource, key[0], key[1], status)
        body["status"] = {**previous, **status}


def _index(index: dict[Any, set[ObjectKey]], entry: Any, key: ObjectKey, *, add: bool) -> None:
    """Add `key` under `entry` of a reverse index, or remove it (dropping entries that become empty)."""
    if add:
        index.setdefault(entry, set()).add(key)
        return
    keys = index.get(entry)
    if keys is not None:
        keys.discard(key)
        if not keys:
            del index[entry]


# --- WorkloadPatches ----------------------------------------------------------------------------------------


class WorkloadPatchController(Controller):
    """Keeps WorkloadPatch bodies for the Workload controller and answers for patches without a Workload.

    A patch's status is decided where the patch is applied, by its Workload's reconcile; this controller
    only wakes that Workload when a patch changes (also the Workload a patch no longer names) and reports
    patches whose Workload does not exist.
    """

    kind = "WorkloadPatch"
    status_resource = WorkloadPatchResource

    def __init__(self, kube: Kube, workloads: WorkloadController) -> None:
        super().__init__()
        self.kube = kube
        self.workloads = workloads
        # Workload key -> keys of the patches that name it.
        self._by_target: dict[ObjectKey, set[ObjectKey]] = {}

    async def current(self, key: ObjectKey) -> dict[str, Any] | None:
        return await self.kube.get_custom(WorkloadPatchResource, *key)

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key: ObjectKey = (meta.get("namespace") or "", meta.get("name") or "")
        before = patch_target(self.bodies.get(key) or {})
        super().observe(event_type, body)
        after = None if event_type == "DELETED" else patch_target(body)
        if before != after:
            for target, add in ((before, False), (after, True)):
                if target is not None:
                    _index(self._by_target, (key[0], target), key, add=add)
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
        problems = {**result.patch_problems, **broken}
        order = {name: index for index, name in enumerate(result.applied_patches, start=1)}
        for name in sorted(bodies):
            if name in problems:
                condition = not_ready(
                    "InvalidPatch",
                    clip(
                        f"not applied to Workload {workload[1]!r}: {problems[name]}; the Workload keeps its "
                        "last good rendering until this patch is fixed or deleted"
                    ),
                )
            elif name in order:
                condition = ready(
                    "Applied",
                    f"applied to Workload {workload[1]!r} ({order[name]} of {len(order)} in order)",
                )
            else:
                continue
            await self._write((workload[0], name), bodies[name], condition)

    async def _write(self, key: ObjectKey, body: dict[str, Any], condition: ConditionSpec) -> None:
        generation = (body.get("metadata") or {}).get("generation")
        previous = body.get("status") or {}
        status = {
            "observedGeneration": generation,
            "conditions": merge_conditions(
                previous.get("conditions"), [condition], datetime.now(UTC), generation
            ),
        }
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


__all__ = ["WorkloadController", "WorkloadPatchController"]
