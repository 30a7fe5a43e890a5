"""The few Kubernetes calls the controllers make, on one lightkube client (and its transport).

Writes are server-side apply with field manager `strongroom`; status goes through the status
subresource as a merge patch of the fields the operator owns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError, LoadResourceError
from lightkube.core.resource import NamespacedResource, api_info
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import (
    GenericNamespacedResource,
    async_load_in_cluster_generic_resources,
    create_namespaced_resource,
)
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.core_v1 import ConfigMap, Secret, Service
from lightkube.types import PatchType

from strongroom.api.constants import FIELD_MANAGER, GROUP, VERSION
from strongroom.net.kubejson import APPLY_PATCH, MERGE_PATCH, KubeJson, object_path
from strongroom.operator.owned import ObjectId, object_id


def custom_resource(kind: str, plural: str) -> type[GenericNamespacedResource]:
    return create_namespaced_resource(GROUP, VERSION, kind, plural)


SecretStoreResource = custom_resource("SecretStore", "secretstores")
SecretMappingResource = custom_resource("SecretMapping", "secretmappings")
WorkloadResource = custom_resource("Workload", "workloads")
ResourceResource = custom_resource("Resource", "resources")
WorkloadPatchResource = custom_resource("WorkloadPatch", "workloadpatches")
DriverResource = custom_resource("Driver", "drivers")

#: The kinds a Workload renders into, by (apiVersion, kind); the only kinds its controller applies,
#: lists and prunes (the chart's RBAC grants exactly these).
RENDERED_KINDS: dict[tuple[str, str], type[NamespacedResource]] = {
    ("v1", "ConfigMap"): ConfigMap,
    ("v1", "Secret"): Secret,
    ("apps/v1", "Deployment"): Deployment,
    ("apps/v1", "StatefulSet"): StatefulSet,
    ("v1", "Service"): Service,
}


def _as_dict(obj: Any) -> dict[str, Any]:
    """A lightkube object as plain data (generic resources type `to_dict` loosely)."""
    data: dict[str, Any] = obj.to_dict()
    return data


def _rendered_kind(api_version: str, kind: str) -> type[NamespacedResource]:
    try:
        return RENDERED_KINDS[(api_version, kind)]
    except KeyError:
        raise ValueError(f"{api_version} {kind} is not a kind a Workload renders") from None


def _unguarded(_ident: ObjectId) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


class Kube:
    """Thin async wrapper so controllers speak in dicts and never handle lightkube types.

    The requests every synced object costs (its Secret's and its status's) go through `json` (net/kubejson.py:
    the same connections without lightkube's and httpx2's request building); the rest through lightkube."""

    def __init__(self, client: AsyncClient, json: KubeJson) -> None:
        self.client = client
        self.json = json
        # Told about every object the operator writes (the API server's answer) or deletes, so that the
        # watch of owned objects (operator/owned.py) can tell the operator's own writes from anyone else's.
        self.on_written: Callable[[dict[str, Any]], None] = lambda _obj: None
        # Wraps each write (the owned-object watch holds back its verdict on the object's events meanwhile).
        self.writing: Callable[[ObjectId], AbstractContextManager[None]] = _unguarded
        self.on_removed: Callable[[str, str, str, str], None] = lambda _v, _k, _ns, _n: None

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.json.get(object_path("v1", "secrets", namespace, name))

    async def apply_secret(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply a whole Secret (field manager `strongroom`, forced); the API server's answer."""
        meta = manifest["metadata"]
        path = object_path("v1", "secrets", meta["namespace"], meta["name"])
        with self.writing(("v1", "Secret", meta["namespace"], meta["name"])):
            written = await self.json.patch(path, manifest, APPLY_PATCH, force=True)
            self.on_written(written)
        return written

    def _written(self, obj: Any) -> None:
        self.on_written(_as_dict(obj))

    async def patch_status(
        self, resource: type[GenericNamespacedResource], namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        info = api_info(resource)
        path = object_path(info.resource.api_version, info.plural, namespace, name) + "/status"
        await self.json.patch_only(path, {"status": status}, MERGE_PATCH)

    async def get_custom(
        self, resource: type[GenericNamespacedResource], namespace: str, name: str
    ) -> dict[str, Any] | None:
        try:
            obj = await self.client.get(resource, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise
        return _as_dict(obj)

    async def list_custom(
        self, resource: type[GenericNamespacedResource], namespace: str
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        async for obj in self.client.list(resource, namespace=namespace):
            found.append(_as_dict(obj))
        return found

    # --- objects rendered from Workloads (RENDERED_KINDS) -----------------------------------------------

    async def apply_rendered(self, manifest: dict[str, Any]) -> None:
        """Server-side apply one rendered manifest as it is (a plain dict: no round trip through lightkube's
        models, which would drop fields they do not know, e.g. of sidecars emitted by drivers)."""
        meta = manifest["metadata"]
        with self.writing(object_id(manifest)):
            obj = await self.client.patch(
                _rendered_kind(manifest["apiVersion"], manifest["kind"]),
                meta["name"],
                manifest,
                namespace=meta["namespace"],
                patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER,
                force=True,
            )
            self._written(obj)

    async def get_rendered(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        try:
            obj = await self.client.get(_rendered_kind(api_version, kind), name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise
        return _as_dict(obj)

    async def list_rendered(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str]
    ) -> list[dict[str, Any]]:
        selector: dict[str, Any] = dict(labels)
        found: list[dict[str, Any]] = []
        async for obj in self.client.list(
            _rendered_kind(api_version, kind), namespace=namespace, labels=selector
        ):
            found.append(_as_dict(obj))
        return found

    async def delete_rendered(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        """Delete one rendered object; one that is already gone counts as deleted."""
        self.on_removed(api_version, kind, namespace, name)
        try:
            await self.client.delete(_rendered_kind(api_version, kind), name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise

    # --- Resources: their metadata, and the objects their drivers emit ------------------------------------

    async def patch_metadata(
        self,
        resource: type[GenericNamespacedResource],
        namespace: str,
        name: str,
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        """Merge-patch an object's metadata (finalizers, annotations); returns the object after the patch.
        Put `resourceVersion` into `metadata` to make the patch fail (409) if the object changed meanwhile."""
        obj = await self.client.patch(
            resource, name, {"metadata": metadata}, namespace=namespace, patch_type=PatchType.MERGE
        )
        return _as_dict(obj)

    async def create_secret(self, manifest: dict[str, Any]) -> bool:
        """Create a Secret unless one of that name exists; True if this call created it.

        A plain create (field manager `strongroom`, recorded as an Update operation) costs the API server
        less than a server-side apply; later applies by `strongroom` take over its fields without conflict,
        but do not remove fields only the create set (`reconcile.secretmapping.stale_keys`)."""
        meta = manifest["metadata"]
        with self.writing(("v1", "Secret", meta["namespace"], meta["name"])):
            try:
                created = await self.json.create(object_path("v1", "secrets", meta["namespace"]), manifest)
            except ApiError as exc:
                if exc.status.code == 409:
                    return False
                raise
            self.on_written(created)
        return True

    async def remove_secret_keys(
        self, namespace: str, name: str, keys: list[str], resource_version: str | None
    ) -> None:
        """Remove data keys from a Secret (a merge patch; 409 if it changed since `resource_version`)."""
        patch: dict[str, Any] = {"data": dict.fromkeys(keys)}
        if resource_version:
            patch["metadata"] = {"resourceVersion": resource_version}
        with self.writing(("v1", "Secret", namespace, name)):
            self.on_written(
                await self.json.patch(object_path("v1", "secrets", namespace, name), patch, MERGE_PATCH)
            )

    async def delete_secret(self, namespace: str, name: str) -> None:
        self.on_removed("v1", "Secret", namespace, name)
        try:
            await self.client.delete(Secret, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise

    async def object_kind(self, api_version: str, kind: str) -> type[Any]:
        """The lightkube class of any kind the cluster serves: built-in kinds, then CRDs (loaded on a miss,
        so a CRD installed after start is found). LookupError if the cluster has no such kind."""
        try:
            return resource_registry.load(api_version, kind)
        except LoadResourceError:
            pass
        with contextlib.suppress(ValueError):  # a CRD clashing with a class made here: keep ours
            await async_load_in_cluster_generic_resources(self.client)
        try:
            return resource_registry.load(api_version, kind)
        except LoadResourceError:
            raise LookupError(f"the cluster serves no kind {kind} in {api_version}") from None

    async def apply_object(self, manifest: dict[str, Any], *, namespaced: bool) -> None:
        """Server-side apply any object as the plain dict it is. `namespaced` must match the kind's scope
        (ValueError otherwise), so a manifest cannot land outside the place it was meant for."""
        kind = await self.object_kind(manifest["apiVersion"], manifest["kind"])
        is_namespaced = issubclass(kind, NamespacedResource)
        if is_namespaced != namespaced:
            scope = "namespaced" if is_namespaced else "cluster-scoped"
            raise ValueError(f"{manifest['kind']} ({manifest['apiVersion']}) is {scope}")
        meta = manifest["metadata"]
        with self.writing(object_id(manifest)):
            obj = await self.client.patch(
                kind,
                meta["name"],
                manifest,
                namespace=meta.get("namespace") if is_namespaced else None,
                patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER,
                force=True,
            )
            self._written(obj)

    async def get_object(
        self, api_version: str, kind: str, name: str, namespace: str | None
    ) -> dict[str, Any] | None:
        """Any object as a plain dict; None when it does not exist or the cluster serves no such kind."""
        try:
            resource = await self.object_kind(api_version, kind)
        except LookupError:
            return None
        try:
            if issubclass(resource, NamespacedResource):
                obj = await self.client.get(resource, name, namespace=namespace)
            else:
                obj = await self.client.get(resource, name)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise
        return _as_dict(obj)

    async def delete_object(self, api_version: str, kind: str, name: str, namespace: str | None) -> None:
        """Delete any object; already gone, or of a kind the cluster no longer serves, counts as deleted."""
        try:
            resource = await self.object_kind(api_version, kind)
        except LookupError:
            return
        self.on_removed(api_version, kind, namespace or "", name)
        try:
            if issubclass(resource, NamespacedResource):
                await self.client.delete(resource, name, namespace=namespace)
            else:
                await self.client.delete(resource, name)
        except ApiError as exc:
            if exc.status.code != 404:
                raise

    async def close(self) -> None:
        await self.client.close()
