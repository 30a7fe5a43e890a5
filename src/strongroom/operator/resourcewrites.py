"""The Resource controller's writes to the Resource object itself: the sealed status (merge patch, only
what differs), the pending marker annotation, the finalizer. Each keeps the controller's cache current at
once (the watch event of a write may come after the next reconcile)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from lightkube.core.exceptions import ApiError

from strongroom.api.resource import Resource
from strongroom.operator.inputskey import InputsKey
from strongroom.operator.kube import Kube, ResourceResource
from strongroom.reconcile import resource as plan
from strongroom.reconcile.conditions import ConditionSpec, merge_conditions

ObjectKey = tuple[str, str]


def trusted_resource(body: Mapping[str, Any], hmac_key: bytes) -> Resource:
    """The Resource with the sealed fields of its status dropped unless the seal covers them."""
    uid = (body.get("metadata") or {}).get("uid") or ""
    status = body.get("status") or {}
    if plan.status_altered(uid, status, hmac_key):
        body = {**body, "status": plan.apply_merge_patch(status, plan.unsealed_fields(status))}
    return Resource.model_validate(body)


class ResourceWrites:
    def __init__(
        self,
        kube: Kube,
        bodies: dict[ObjectKey, dict[str, Any]],
        inputs: InputsKey,
        alerts: Mapping[ObjectKey, ConditionSpec],
    ) -> None:
        self.kube = kube
        self.bodies = bodies
        self.inputs = inputs
        # The Tampered condition of the reconcile under way, added to every status written.
        self.alerts = alerts

    async def write_status(self, key: ObjectKey, wanted: Mapping[str, Any]) -> bool:
        """Merge-patch the status to `wanted`, sealed: the seal covers the fields the operator acts on later.
        Fields of an altered status (seal not matching) are removed rather than sealed."""
        body = self.bodies.get(key)
        if body is None:
            return False
        hmac_key = await self.inputs.get()
        uid = (body.get("metadata") or {}).get("uid") or ""
        current = body.get("status") or {}
        wanted = dict(wanted)
        if plan.status_altered(uid, current, hmac_key):
            wanted = {**plan.unsealed_fields(current), **wanted}
        alert = self.alerts.get(key)
        if alert is not None and "conditions" in wanted:
            generation = (body.get("metadata") or {}).get("generation")
            wanted["conditions"] = [
                *(c for c in wanted["conditions"] if c.get("type") != plan.TAMPERED),
                *merge_conditions(current.get("conditions"), [alert], datetime.now(UTC), generation),
            ]
        wanted.pop("seal", None)
        after = plan.apply_merge_patch(current, plan.merge_patch(current, wanted) or {})
        wanted["seal"] = plan.status_seal(uid, after, hmac_key)
        patch = plan.merge_patch(current, wanted)
        if patch is None:
            return False
        await self.kube.patch_status(ResourceResource, key[0], key[1], patch)
        # Keep the cache current at once: the watch event of this write may come after the next reconcile.
        body["status"] = plan.apply_merge_patch(body.get("status"), patch)
        return True

    async def set_annotation(self, key: ObjectKey, name: str, value: str | None) -> None:
        body = self.bodies.get(key)
        current = (((body or {}).get("metadata") or {}).get("annotations") or {}).get(name)
        if current == value:
            return
        obj = await self.kube.patch_metadata(ResourceResource, key[0], key[1], {"annotations": {name: value}})
        self.remember(key, obj)

    def remember(self, key: ObjectKey, obj: dict[str, Any]) -> None:
        """Take the object a write returned as the cached state (it is at least as new as the cache)."""
        if key in self.bodies:
            self.bodies[key] = obj

    async def prepare_put(
        self, key: ObjectKey, resource: Resource, marker: plan.Pending | None, hmac_key: bytes
    ) -> Resource:
        """Our finalizer and the pending marker (if given) on the object, in one patch; the object after."""
        uid = resource.metadata.uid or ""
        annotation = marker.annotation(uid, hmac_key) if marker is not None else None
        present = (resource.metadata.annotations or {}).get(plan.PENDING_ANNOTATION)
        annotations: dict[str, str | None] | None = (
            {plan.PENDING_ANNOTATION: annotation} if annotation and present != annotation else None
        )
        if plan.FINALIZER in (resource.metadata.finalizers or []) and annotations is None:
            return resource
        obj = await self.patch_metadata(key, resource, add_finalizer=True, annotations=annotations)
        return trusted_resource(obj, hmac_key)

    async def remove_finalizer(self, key: ObjectKey) -> None:
        body = self.bodies.get(key)
        if body is None:
            return
        await self.patch_metadata(key, Resource.model_validate(body), add_finalizer=False)

    async def patch_metadata(
        self,
        key: ObjectKey,
        resource: Resource,
        *,
        add_finalizer: bool,
        annotations: dict[str, str | None] | None = None,
    ) -> dict[str, Any]:
        # The whole finalizer list with the resourceVersion it was read at: a merge patch replaces lists,
        # and the precondition makes sure no finalizer someone else added meanwhile is dropped.
        finalizers = list(resource.metadata.finalizers or [])
        version = resource.metadata.resource_version
        for retry in (True, False):
            names = [f for f in finalizers if f != plan.FINALIZER]
            if add_finalizer:
                names.append(plan.FINALIZER)
            meta: dict[str, Any] = {}
            if names != finalizers:
                meta.update(finalizers=names or None, resourceVersion=version)
            if annotations:
                meta["annotations"] = annotations
            if not meta:
                return self.bodies.get(key) or resource.to_dict()
            try:
                obj = await self.kube.patch_metadata(ResourceResource, key[0], key[1], meta)
            except ApiError as exc:
                if exc.status.code != 409 or not retry:
                    raise
                fresh = await self.kube.get_custom(ResourceResource, key[0], key[1])
                if fresh is None:
                    raise
                self.remember(key, fresh)
                fresh_meta = fresh.get("metadata") or {}
                finalizers = list(fresh_meta.get("finalizers") or [])
                version = fresh_meta.get("resourceVersion")
                continue
            self.remember(key, obj)
            return obj
        raise AssertionError("unreachable")


__all__ = ["ResourceWrites", "trusted_resource"]
