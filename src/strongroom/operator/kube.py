"""The few Kubernetes calls the controllers make, on one lightkube client.

Writes are server-side apply with field manager `strongroom`; status goes through the status
subresource as a merge patch of the fields the operator owns.
"""

from __future__ import annotations

from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import GenericNamespacedResource, create_namespaced_resource
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

from strongroom.api.constants import FIELD_MANAGER, GROUP, VERSION


def custom_resource(kind: str, plural: str) -> type[GenericNamespacedResource]:
    return create_namespaced_resource(GROUP, VERSION, kind, plural)


SecretStoreResource = custom_resource("SecretStore", "secretstores")
SecretMappingResource = custom_resource("SecretMapping", "secretmappings")


class Kube:
    """Thin async wrapper so controllers speak in dicts and never handle lightkube types."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            secret = await self.client.get(Secret, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise
        data: dict[str, Any] = secret.to_dict()
        return data

    async def apply_secret(self, manifest: dict[str, Any]) -> None:
        secret: Secret = Secret.from_dict(manifest)  # type: ignore[assignment]  # lightkube types it loosely
        await self.client.apply(secret, field_manager=FIELD_MANAGER, force=True)

    async def patch_status(
        self, resource: type[GenericNamespacedResource], namespace: str, name: str, status: dict[str, Any]
    ) -> None:
        await self.client.patch(
            resource.Status,
            name,
            {"status": status},
            namespace=namespace,
            patch_type=PatchType.MERGE,
        )

    async def close(self) -> None:
        await self.client.close()
