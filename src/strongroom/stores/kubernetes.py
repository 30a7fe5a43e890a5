"""Kubernetes Secrets in one namespace of the operator's own cluster.

A reference's `key` is the Secret's name and `property` a key of its data; there are no versions.
Writes create or update a Secret holding the value under `value` (server-side apply, field manager
`strongroom`), labelled as written by strongroom; `write` and `delete` refuse Secrets without that
label, so the default store can never overwrite or remove a Secret someone else made.

Tenancy: the operator reads these Secrets with its own RBAC. A SecretStore outside the operator
namespace may therefore only point at its own namespace; only the platform team's stores (in the
operator namespace) may reach other namespaces.
"""

from __future__ import annotations

import base64

import httpx2
from lightkube import ApiError, AsyncClient
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview
from lightkube.resources.core_v1 import Secret

from strongroom.api.constants import FIELD_MANAGER
from strongroom.api.secretstore import KubernetesProvider
from strongroom.stores import names
from strongroom.stores.base import (
    AuthenticationFailed,
    InvalidReference,
    InvalidStoreConfig,
    PermissionDenied,
    PropertyNotFound,
    SecretDocument,
    SecretNotFound,
    SecretRef,
    SecretValue,
    StoreCapabilities,
    StoreError,
    StoreUnavailable,
    WriteResult,
    select_field,
)
from strongroom.stores.credentials import StoreContext

#: Data key that written values go to (read back without a property, since it is the only key).
VALUE_KEY = "value"
#: Marks Secrets this backend wrote; `write`/`delete` touch no others.
WRITTEN_BY_LABEL = "app.kubernetes.io/managed-by"
WRITTEN_BY_VALUE = "strongroom"


def secret_name(key: str) -> str:
    """The Secret a logical key names (`stores.names`: injective, a valid name stays itself)."""
    return names.KUBERNETES.encode(key)


def decode_data(data: dict[str, str] | None, store: str, name: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for key, encoded in (data or {}).items():
        try:
            out[key] = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise StoreError(f"store {store!r}: key {key!r} of Secret {name!r} is not valid base64") from None
    return out


def select_data(fields: dict[str, bytes], ref: SecretRef, store: str) -> SecretValue:
    """`select_field` for Secret data, whose values are bytes.

    Without a property and with several keys, the keys are returned as one JSON object, which needs
    every value to be text.
    """
    if not fields:
        raise PropertyNotFound(f"store {store!r}: Secret {ref.key!r} has no data")
    if ref.property or len(fields) == 1:
        return select_field(fields, ref, store)
    try:
        text = {key: value.decode() for key, value in fields.items()}
    except UnicodeDecodeError:
        raise PropertyNotFound(
            f"store {store!r}: Secret {ref.key!r} has several keys, some binary; name one as the property"
        ) from None
    return select_field(text, ref, store)


class KubernetesStore:
    """A `StoreClient` for the Secrets of one namespace."""

    def __init__(self, spec: KubernetesProvider, ctx: StoreContext, client: AsyncClient) -> None:
        self._ctx = ctx
        self._client = client
        self._namespace = spec.namespace

    @classmethod
    async def create(cls, spec: KubernetesProvider, ctx: StoreContext) -> KubernetesStore:
        if spec.namespace != ctx.namespace:
            ctx.require_operator_namespace(
                f"reading Secrets of another namespace ({spec.namespace!r})",
                f"set kubernetes.namespace to {ctx.namespace!r}",
            )
        if ctx.kube_client is None:
            raise InvalidStoreConfig(
                f"store {ctx.label!r}: no Kubernetes client was given to the store registry"
            )
        return cls(spec, ctx, ctx.kube_client)

    async def read(self, ref: SecretRef) -> SecretValue:
        return (await self.fetch(ref.key, ref.version)).pick(ref.property)

    async def fetch(self, key: str, version: str | None) -> SecretDocument:
        with self._ctx.naming():
            name = secret_name(key)
        if version:
            raise InvalidReference(
                f"store {self._ctx.label!r}: Kubernetes Secrets have no versions; remove version "
                f"{version!r} from the reference to {name!r}"
            )
        secret = await self._get(name)
        if secret is None:
            raise SecretNotFound(f"store {self._ctx.label!r}: Secret {self._namespace}/{name} not found")
        fields = decode_data(secret.data, self._ctx.label, name)
        label = self._ctx.label
        return SecretDocument(lambda prop: select_data(fields, SecretRef(key, None, prop), label))

    async def write(self, key: str, value: SecretValue) -> WriteResult:
        with self._ctx.naming():
            name = secret_name(key)
        existing = await self._get(name)
        if existing is not None and not _written_by_us(existing):
            raise PermissionDenied(
                f"store {self._ctx.label!r}: Secret {self._namespace}/{name} exists and was not written by "
                f"strongroom (no label {WRITTEN_BY_LABEL}={WRITTEN_BY_VALUE}); refusing to overwrite it"
            )
        body = Secret(
            metadata=ObjectMeta(
                name=name, namespace=self._namespace, labels={WRITTEN_BY_LABEL: WRITTEN_BY_VALUE}
            ),
            type="Opaque",
            data={VALUE_KEY: base64.b64encode(value.reveal()).decode()},
        )
        try:
            await self._client.apply(body, field_manager=FIELD_MANAGER, force=True)
        except (ApiError, httpx2.TransportError) as exc:
            raise self._map_error(exc, f"writing Secret {self._namespace}/{name}") from None
        return WriteResult(key=key, version=None)

    async def delete(self, key: str) -> None:
        with self._ctx.naming():
            name = secret_name(key)
        existing = await self._get(name)
        if existing is None:
            return
        if not _written_by_us(existing):
            raise PermissionDenied(
                f"store {self._ctx.label!r}: Secret {self._namespace}/{name} was not written by strongroom; "
                "refusing to delete it"
            )
        try:
            await self._client.delete(Secret, name, namespace=self._namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return
            raise self._map_error(exc, f"deleting Secret {self._namespace}/{name}") from None
        except httpx2.TransportError as exc:
            raise self._map_error(exc, f"deleting Secret {self._namespace}/{name}") from None

    async def check(self) -> StoreCapabilities:
        """SelfSubjectAccessReviews: whether the operator may get, and create + patch, Secrets there."""
        read = await self._allowed("get")
        write = read and await self._allowed("create") and await self._allowed("patch")
        return StoreCapabilities(read=read, write=write)

    async def close(self) -> None:
        # The client is the operator's, shared by every Kubernetes store; its owner closes it.
        return None

    async def _allowed(self, verb: str) -> bool:
        review = SelfSubjectAccessReview(
            spec=SelfSubjectAccessReviewSpec(
                resourceAttributes=ResourceAttributes(
                    namespace=self._namespace, resource="secrets", verb=verb
                )
            )
        )
        try:
            result = await self._client.create(review)
        except (ApiError, httpx2.TransportError) as exc:
            raise self._map_error(exc, "SelfSubjectAccessReview") from None
        return bool(result.status and result.status.allowed)

    async def _get(self, name: str) -> Secret | None:
        try:
            return await self._client.get(Secret, name, namespace=self._namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise self._map_error(exc, f"Secret {self._namespace}/{name}") from None
        except httpx2.TransportError as exc:
            raise self._map_error(exc, f"Secret {self._namespace}/{name}") from None

    def _map_error(self, exc: Exception, what: str) -> StoreError:
        prefix = f"store {self._ctx.label!r}: {what}"
        if isinstance(exc, httpx2.TransportError):
            return StoreUnavailable(f"{prefix}: cannot reach the API server ({type(exc).__name__})")
        code = exc.status.code if isinstance(exc, ApiError) else None
        if code == 404:
            return SecretNotFound(f"{prefix}: not found")
        if code == 401:
            return AuthenticationFailed(f"{prefix}: the API server rejects the operator's credentials")
        if code == 403:
            return PermissionDenied(
                f"{prefix}: the operator's RBAC does not allow this on secrets in namespace "
                f"{self._namespace!r}"
            )
        if code is not None and (code == 429 or code >= 500):
            return StoreUnavailable(f"{prefix}: the API server answered HTTP {code}")
        return StoreError(f"{prefix}: the API server answered HTTP {code}")


def _written_by_us(secret: Secret) -> bool:
    labels = (secret.metadata.labels if secret.metadata else None) or {}
    return labels.get(WRITTEN_BY_LABEL) == WRITTEN_BY_VALUE
