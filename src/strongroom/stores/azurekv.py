"""Azure Key Vault secrets, on the SDK's async client.

Credentials: a service principal's client secret from a Secret (`ClientSecretCredential`, with
`endpoint` as the Microsoft Entra authority for sovereign clouds and emulators), or the operator's own
identity when the store has none: workload identity when the AKS webhook injected its variables,
otherwise managed identity.

Challenge resource verification: the SDK checks that the resource a vault's 401 challenge asks a token
for belongs to the vault's own domain, so a lookalike vault URL cannot collect Key Vault tokens. It is
kept on for the Azure Key Vault domains and turned off for any other host (emulators, test setups),
and such hosts may then only be used with the store's own client secret, never with the operator's
identity.

Names: Key Vault secret names are `[0-9a-zA-Z-]{1,127}`. References must already be such a name;
keys written by the operator are mapped (every other character becomes `-`).
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity.aio import ClientSecretCredential, ManagedIdentityCredential, WorkloadIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from strongroom.api.secretstore import AzureKVProvider
from strongroom.stores import names
from strongroom.stores.base import (
    AuthenticationFailed,
    InvalidReference,
    InvalidStoreConfig,
    PermissionDenied,
    SecretDocument,
    SecretNotFound,
    SecretRef,
    SecretValue,
    StoreCapabilities,
    StoreError,
    StoreUnavailable,
    VersionNotFound,
    WriteResult,
    select_property,
)
from strongroom.stores.credentials import StoreContext

_VERSION = re.compile(r"^[0-9A-Fa-f]{32}$")
#: Hosts of the public and sovereign Azure clouds' Key Vault and Managed HSM endpoints.
AZURE_VAULT_DOMAINS = (
    ".vault.azure.net",
    ".vault.azure.cn",
    ".vault.usgovcloudapi.net",
    ".vault.microsoftazure.de",
    ".managedhsm.azure.net",
    ".managedhsm.azure.cn",
    ".managedhsm.usgovcloudapi.net",
)
#: Azure's retry policy defaults to 10 attempts with backoff, which outlasts a reconcile; keep it short.
RETRY_TOTAL = 2
#: Tags on secrets the operator writes.
TAGS = {"managed-by": "strongroom"}


def secret_name(key: str) -> str:
    """The secret a logical key names (`stores.names`: injective, a valid name stays itself)."""
    return names.AZURE.encode(key)


def check_version(version: str | None) -> str | None:
    if not version:
        return None
    if not _VERSION.match(version):
        raise InvalidReference(
            f"Azure Key Vault versions are 32 hexadecimal characters, not {version[:40]!r}"
        )
    return version


def is_azure_vault_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host.endswith(domain) for domain in AZURE_VAULT_DOMAINS)


def ca_file(ca_bundle: str, directory: Path | None = None) -> Path:
    """The store's CA certificates plus the system roots, as a file (azure-core takes a path only).

    azure-core builds its SSL context with `cafile=`, which drops the system roots; `caBundle` is meant
    in addition to them, so both go into the file.
    """
    parts = [ca_bundle.strip()]
    system = ssl.get_default_verify_paths().cafile
    if system and Path(system).is_file():
        parts.append(Path(system).read_text())
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the client, removed in close()
        "w", prefix="strongroom-ca-", suffix=".pem", dir=directory, delete=False
    )
    with handle:
        handle.write("\n".join(parts) + "\n")
    return Path(handle.name)


class AzureKeyVaultStore:
    """A `StoreClient` for one Azure Key Vault."""

    def __init__(
        self,
        spec: AzureKVProvider,
        ctx: StoreContext,
        client: SecretClient,
        credential: Any,
        ca_path: Path | None,
    ) -> None:
        self._spec = spec
        self._ctx = ctx
        self._client = client
        self._credential = credential
        self._ca_path = ca_path

    @classmethod
    async def create(cls, spec: AzureKVProvider, ctx: StoreContext) -> AzureKeyVaultStore:
        verify_resource = is_azure_vault_host(spec.url)
        auth = spec.auth
        secret_ref = auth.client_secret_secret_ref if auth else None
        client_id = auth.client_id if auth else None
        ca_path = ca_file(spec.ca_bundle) if spec.ca_bundle else None
        transport: dict[str, Any] = {
            "connection_timeout": ctx.timeout,
            "read_timeout": ctx.timeout,
            "retry_total": RETRY_TOTAL,
        }
        if ca_path is not None:
            transport["connection_verify"] = str(ca_path)
        try:
            credential: Any
            if secret_ref is not None and client_id is not None:
                secret = await ctx.credentials.secret_key(secret_ref.name, secret_ref.key)
                extra: dict[str, Any] = {}
                if spec.endpoint:
                    # A custom authority is not in Microsoft's instance-discovery list.
                    extra = {"authority": spec.endpoint, "disable_instance_discovery": True}
                credential = ClientSecretCredential(
                    spec.tenant_id, client_id, secret.reveal_text(), **extra, **transport
                )
            else:
                ctx.require_operator_namespace(
                    "using the operator's own Azure identity",
                    "set auth.clientID and auth.clientSecretSecretRef",
                )
                if not verify_resource:
                    raise InvalidStoreConfig(
                        f"store {ctx.label!r}: the operator's own Azure identity is only sent to Azure Key "
                        f"Vault hosts ({', '.join(AZURE_VAULT_DOMAINS)}); use a client secret for {spec.url}"
                    )
                credential = _ambient_credential(spec, client_id, transport)
        except BaseException:
            if ca_path is not None:
                ca_path.unlink(missing_ok=True)
            raise
        client = SecretClient(spec.url, credential, verify_challenge_resource=verify_resource, **transport)
        return cls(spec, ctx, client, credential, ca_path)

    # --- StoreClient ------------------------------------------------------------------------------------

    async def read(self, ref: SecretRef) -> SecretValue:
        return (await self.fetch(ref.key, ref.version)).pick(ref.property)

    async def fetch(self, key: str, version_text: str | None) -> SecretDocument:
        with self._ctx.naming():
            name = secret_name(key)
            version = check_version(version_text)
        what = f"secret {name!r}" + (f" version {version!r}" if version else "")
        try:
            secret = await self._client.get_secret(name, version)
        except ResourceNotFoundError:
            if version is not None and await self._exists(name):
                raise VersionNotFound(
                    f"store {self._ctx.label!r}: secret {name!r} has no version {version!r}"
                ) from None
            raise SecretNotFound(f"store {self._ctx.label!r}: secret {name!r} not found") from None
        except Exception as exc:
            raise _map_error(exc, self._ctx.label, what) from None
        if secret.value is None:
            raise SecretNotFound(f"store {self._ctx.label!r}: {what} has no value")
        raw, label = secret.value.encode(), self._ctx.label
        return SecretDocument(lambda prop: select_property(raw, SecretRef(key, version_text, prop), label))

    async def write(self, key: str, value: SecretValue) -> WriteResult:
        with self._ctx.naming():
            name = secret_name(key)
        try:
            text = value.reveal_text()
        except UnicodeDecodeError:
            raise InvalidReference(
                f"store {self._ctx.label!r}: Key Vault secrets are text and the value for {name!r} "
                "is not UTF-8"
            ) from None
        what = f"secret {name!r}"
        try:
            try:
                props = await self._client.set_secret(name, text, tags=TAGS)
            except HttpResponseError as exc:
                if exc.status_code != 409:
                    raise
                # The name is held by a soft-deleted secret (an earlier `delete`): recover it, then write.
                await self._client.recover_deleted_secret(name)
                props = await self._client.set_secret(name, text, tags=TAGS)
        except Exception as exc:
            raise _map_error(exc, self._ctx.label, what) from None
        return WriteResult(key=key, version=props.properties.version)

    async def delete(self, key: str) -> None:
        with self._ctx.naming():
            name = secret_name(key)
        try:
            # Soft delete (what the vault's retention policy makes of it); no purge, so an output deleted by
            # mistake can be recovered, and `write` recovers it when the resource comes back.
            await self._client.delete_secret(name)
        except ResourceNotFoundError:
            return
        except Exception as exc:
            raise _map_error(exc, self._ctx.label, f"secret {name!r}") from None

    async def check(self) -> StoreCapabilities:
        """List one secret's properties; a read-only identity is recognised as for AWS (see docs)."""
        try:
            async for _ in _first_page(self._client):
                break
            return StoreCapabilities(read=True, write=True)
        except HttpResponseError as exc:
            if exc.status_code != 403 or isinstance(exc, ClientAuthenticationError):
                raise _map_error(exc, self._ctx.label, "listing secrets") from None
        except Exception as exc:
            raise _map_error(exc, self._ctx.label, "listing secrets") from None
        # "Key Vault Secrets User" may get but not list.
        try:
            await self._client.get_secret("strongroom-connectivity-check")
        except HttpResponseError as exc:
            if exc.status_code not in (403, 404) or isinstance(exc, ClientAuthenticationError):
                raise _map_error(exc, self._ctx.label, "read probe") from None
        except Exception as exc:
            raise _map_error(exc, self._ctx.label, "read probe") from None
        return StoreCapabilities(read=True, write=False)

    async def close(self) -> None:
        try:
            await self._client.close()
            await self._credential.close()
        finally:
            if self._ca_path is not None:
                self._ca_path.unlink(missing_ok=True)

    async def _exists(self, name: str) -> bool:
        try:
            await self._client.get_secret(name)
        except Exception:
            return False
        return True


async def _first_page(client: SecretClient) -> AsyncIterator[object]:
    pages = client.list_properties_of_secrets(max_page_size=1).by_page()
    async for page in pages:
        async for item in page:
            yield item
            return
        return


def _ambient_credential(spec: AzureKVProvider, client_id: str | None, transport: dict[str, Any]) -> Any:
    extra: dict[str, Any] = {"authority": spec.endpoint} if spec.endpoint else {}
    token_file = os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
    if token_file:
        # Set by the AKS workload identity webhook; the store's tenant wins over AZURE_TENANT_ID.
        return WorkloadIdentityCredential(
            tenant_id=spec.tenant_id, client_id=client_id, token_file_path=token_file, **extra, **transport
        )
    return ManagedIdentityCredential(client_id=client_id, **transport)


def _map_error(exc: BaseException, store: str, what: str) -> StoreError:
    """Azure errors as StoreErrors: status, Key Vault's error code and a hint, never the service's message."""
    if isinstance(exc, StoreError):
        return exc
    prefix = f"store {store!r}: {what}"
    if isinstance(exc, ClientAuthenticationError):
        return AuthenticationFailed(
            f"{prefix}: authentication failed ({type(exc).__name__}); check the tenant, client id and client "
            "secret, or the operator's workload identity"
        )
    if isinstance(exc, ResourceNotFoundError):
        return SecretNotFound(f"{prefix} not found")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = _error_code(exc)
        if status == 403 and code == "SecretDisabled":
            return VersionNotFound(f"{prefix} is disabled")
        if status == 403:
            return PermissionDenied(
                f"{prefix}: access denied ({code or status}); grant 'Key Vault Secrets User' (read) or "
                "'Key Vault Secrets Officer' (write), or the matching access policy"
            )
        if status == 401:
            return AuthenticationFailed(f"{prefix}: the vault rejects the token ({code or status})")
        if status is not None and (status == 429 or status >= 500):
            return StoreUnavailable(f"{prefix}: Key Vault is unavailable or throttling (HTTP {status})")
        if status == 400:
            return InvalidReference(f"{prefix}: Key Vault refuses the request ({code or status})")
        return StoreError(f"{prefix}: Key Vault answered HTTP {status} ({code})")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return StoreUnavailable(f"{prefix}: cannot reach Key Vault ({type(exc).__name__})")
    return StoreError(f"{prefix}: {type(exc).__name__}")


def _error_code(exc: HttpResponseError) -> str:
    """Key Vault's inner error code if there is one (`SecretDisabled`), else the outer one (`Forbidden`)."""
    error = exc.error
    if error is None:
        return ""
    inner = getattr(error, "innererror", None)
    if isinstance(inner, dict) and isinstance(inner.get("code"), str):
        return str(inner["code"])
    return str(getattr(error, "code", "") or "")
