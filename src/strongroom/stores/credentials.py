"""What a store backend gets from the operator: its credentials and the context it runs in.

Backends never talk to Kubernetes for their credentials themselves. They ask a `CredentialSource` for a
key of a Secret (an access key, a Vault token, a service account key) or for a service account token
(Vault's Kubernetes auth), so the same backend code runs in the operator, in `strongroom deploy` (direct
mode) and in tests, and so every credential read goes through one place that knows the namespace
boundary: a store reads Secrets of its own namespace only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import httpx2
from lightkube import ApiError, AsyncClient
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Secret, ServiceAccount

from strongroom.stores.base import InvalidReference, InvalidStoreConfig, SecretValue, StoreUnavailable

#: Lifetime asked for service account tokens. They are used only to log in to a store once, right away;
#: 10 minutes is the shortest the API server accepts.
TOKEN_EXPIRATION_SECONDS = 600


@runtime_checkable
class CredentialSource(Protocol):
    """Credentials of one store, bound to that store's namespace."""

    async def secret_key(self, name: str, key: str) -> SecretValue:
        """The value of `key` in Secret `name`; `InvalidStoreConfig` if either is missing."""
        ...

    async def service_account_token(self, service_account: str | None, audience: str) -> str:
        """A short-lived token for `audience` of the named service account, or of the operator's own when
        `service_account` is None (only a credential source of the operator namespace knows it)."""
        ...


@dataclass(frozen=True)
class StoreContext:
    """Everything a backend's `create()` needs besides its spec block.

    `namespace` is the SecretStore's namespace (credential Secrets are read there); `operator_namespace`
    lets backends refuse what only an operator-namespace store may do, such as acting with the
    operator's own identity. `kube_client` is the operator's client, for the Kubernetes backend.
    """

    name: str
    namespace: str
    credentials: CredentialSource
    operator_namespace: str
    timeout: float = 10.0
    kube_client: AsyncClient | None = None

    @property
    def label(self) -> str:
        """How errors name the store: `namespace/name`."""
        return f"{self.namespace}/{self.name}"

    @property
    def in_operator_namespace(self) -> bool:
        return self.namespace == self.operator_namespace

    @contextlib.contextmanager
    def naming(self) -> Iterator[None]:
        """Prefix the store to `InvalidReference`s of the store-independent key/version parsers."""
        try:
            yield
        except InvalidReference as exc:
            if str(exc).startswith("store "):
                raise
            raise InvalidReference(f"store {self.label!r}: {exc}") from None

    def require_operator_namespace(self, what: str, instead: str) -> None:
        """Refuse `what` (acting as the operator's own cloud/Vault identity) outside the operator namespace.

        Otherwise anyone who may create a SecretStore in some namespace could borrow the operator's
        identity and read whatever it can read: the cross-namespace exfiltration External Secrets
        Operator's advisories are about. Stores in the operator namespace are the platform team's, and
        they open them to other namespaces, key prefix by key prefix, with `spec.access`.
        """
        if not self.in_operator_namespace:
            raise InvalidStoreConfig(
                f"store {self.label!r}: {what} is only allowed for stores in the operator namespace "
                f"{self.operator_namespace!r}; {instead}"
            )


class KubernetesCredentialSource:
    """`CredentialSource` on the Kubernetes API, for stores in `namespace`.

    Secrets are read with a plain GET each time (no cache): credential reads happen only when a store
    client is built or re-authenticates, and a rotated Secret is then picked up without a restart.
    """

    def __init__(
        self, client: AsyncClient, namespace: str, *, operator_service_account: str | None = None
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._operator_service_account = operator_service_account

    @property
    def namespace(self) -> str:
        return self._namespace

    async def secret_key(self, name: str, key: str) -> SecretValue:
        where = f"key {key!r} of Secret {self._namespace}/{name}"
        try:
            secret = await self._client.get(Secret, name, namespace=self._namespace)
        except ApiError as exc:
            code = exc.status.code
            if code == 404:
                raise InvalidStoreConfig(
                    f"credential Secret {self._namespace}/{name} does not exist"
                ) from None
            if code in (401, 403):
                raise InvalidStoreConfig(
                    f"the operator may not read credential Secret {self._namespace}/{name} "
                    f"(HTTP {code}); grant it `get` on secrets in namespace {self._namespace}"
                ) from None
            raise StoreUnavailable(
                f"reading credential Secret {self._namespace}/{name}: HTTP {code}"
            ) from None
        except httpx2.TransportError as exc:
            raise StoreUnavailable(
                f"reading credential Secret {self._namespace}/{name}: {type(exc).__name__}"
            ) from None
        # `stringData` never comes back from the API server: it is folded into `data` on write.
        encoded = (secret.data or {}).get(key)
        if encoded is None:
            raise InvalidStoreConfig(f"{where} does not exist")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidStoreConfig(f"{where} is not valid base64") from None
        # A trailing newline is almost always an artefact of `echo` or a file; no credential ends with one.
        raw = raw.rstrip(b"\r\n")
        if not raw:
            raise InvalidStoreConfig(f"{where} is empty")
        return SecretValue(raw)

    async def service_account_token(self, service_account: str | None, audience: str) -> str:
        if service_account is None:
            if self._operator_service_account is None:
                raise InvalidStoreConfig(
                    "the operator's own service account is not known here (set --service-account or "
                    "STRONGROOM_SERVICE_ACCOUNT; the chart does), or the store is outside the operator "
                    "namespace; set serviceAccountRef in the store's Vault Kubernetes auth"
                )
            service_account = self._operator_service_account
        request = ServiceAccount.Token(
            # lightkube reads metadata.namespace of whatever it POSTs, subresources included.
            metadata=ObjectMeta(),
            spec=TokenRequestSpec(
                # Never the API server's own audience: the token must not work against the cluster.
                audiences=[audience],
                expirationSeconds=TOKEN_EXPIRATION_SECONDS,
            ),
        )
        where = f"service account {self._namespace}/{service_account}"
        try:
            result = await self._client.create(request, service_account, namespace=self._namespace)
        except ApiError as exc:
            code = exc.status.code
            if code == 404:
                raise InvalidStoreConfig(f"{where} does not exist") from None
            if code in (401, 403):
                raise InvalidStoreConfig(
                    f"the operator may not request a token for {where} (HTTP {code}); grant it `create` on "
                    f"serviceaccounts/token in namespace {self._namespace}"
                ) from None
            raise StoreUnavailable(f"requesting a token for {where}: HTTP {code}") from None
        except httpx2.TransportError as exc:
            raise StoreUnavailable(f"requesting a token for {where}: {type(exc).__name__}") from None
        token = result.status.token if result.status else None
        if not token:
            raise StoreUnavailable(f"the API server returned no token for {where}")
        return token
