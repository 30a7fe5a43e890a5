"""Google Cloud Secret Manager, on the SDK's async (gRPC) client.

Credentials: Application Default Credentials (Workload Identity on GKE) when the store has none, else
a service account key (JSON) from a Secret. `endpoint` overrides the API endpoint:

- `host:port` or `https://host[:port]`: gRPC over TLS with the credentials (Private Service Connect,
  regional or sovereign endpoints);
- `http://host:port`: plaintext gRPC with anonymous credentials, for emulators. Credentials are never
  sent over plaintext, so a key configured next to an `http://` endpoint is not used.

Every payload read is checked against `payload.data_crc32c` when the server sends it, and every
write sends it, so a corrupted value never reaches a Kubernetes Secret or the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

import google.auth
import google_crc32c
import grpc
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.api_core.retry import AsyncRetry, if_exception_type
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials, Credentials
from google.cloud.secretmanager_v1 import SecretManagerServiceAsyncClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports.grpc_asyncio import (
    SecretManagerServiceGrpcAsyncIOTransport,
)
from google.oauth2 import service_account

from strongroom.api.secretstore import GCPSMProvider
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

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
_FULL_NAME = re.compile(r"^projects/([^/]+)/secrets/([^/]+)$")
_ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
#: Labels on secrets the operator creates, so they can be told apart in the console.
LABELS = {"managed-by": "strongroom"}


class ChecksumMismatch(StoreError):
    """The payload's CRC32C does not match its bytes: corrupted in transit or storage (retry may help)."""

    reason = "ChecksumMismatch"


def parse_key(key: str, project: str) -> str:
    """The secret's resource name for a logical key or `projects/<p>/secrets/<id>` (p = the store's project).

    A logical key becomes an id through `stores.names` (injective; a valid id stays itself). A full name
    in another project is refused: the store's credentials may reach other projects, and who may use
    the store was decided for this project only. A full name may not name an escaped id (`key--...`):
    those are reached through their logical key alone, which is what access rules check.
    """
    match = _FULL_NAME.match(key)
    if match is None:
        if "/versions/" in key and key.startswith("projects/"):
            raise InvalidReference(
                f"GCP secret key {key!r} names a version; put it in the reference's version"
            )
        return f"projects/{project}/secrets/{secret_id_of(key)}"
    ref_project, secret_id = match.groups()
    if ref_project != project:
        raise InvalidReference(
            f"GCP secret key {key!r} is in project {ref_project!r}, but the store is for project {project!r}"
        )
    if not names.GCP.is_raw_name(secret_id):
        raise InvalidReference(
            f"GCP secret id {secret_id!r} in a full name must be letters, digits, _ and - and not start "
            f"with {names.MARKER!r}; name an escaped secret by its key"
        )
    return key


def parse_version(version: str | None) -> str:
    """`latest` (also for an empty version), a version number, or a version alias."""
    if not version or version == "latest":
        return "latest"
    if version.isdigit():
        if int(version) < 1:
            raise InvalidReference("GCP secret versions start at 1")
        return str(int(version))
    if _ALIAS.match(version):
        return version
    raise InvalidReference(f"GCP secret version {version!r} is not `latest`, a number or an alias")


def secret_id_of(key: str) -> str:
    """The secret id a logical key names (`stores.names`: injective, a valid id stays itself)."""
    return names.GCP.encode(key)


def verify_crc32c(data: bytes, expected: int | None, store: str, what: str) -> None:
    if expected is None:
        return
    if google_crc32c.value(data) != expected:
        raise ChecksumMismatch(f"store {store!r}: {what}: the payload does not match its CRC32C checksum")


class GCPSecretManagerStore:
    """A `StoreClient` for Secret Manager in one project."""

    def __init__(
        self, spec: GCPSMProvider, ctx: StoreContext, client: SecretManagerServiceAsyncClient
    ) -> None:
        self._spec = spec
        self._ctx = ctx
        self._client = client
        self._project = spec.project_id
        # The SDK's default retry keeps going for up to 60 s; a reconcile would rather fail within the
        # store timeout and be requeued.
        transient = if_exception_type(
            gexc.ServiceUnavailable, gexc.ResourceExhausted, gexc.InternalServerError
        )
        self._retry = AsyncRetry(
            predicate=transient, initial=0.1, maximum=1.0, multiplier=2.0, timeout=ctx.timeout
        )

    @classmethod
    async def create(cls, spec: GCPSMProvider, ctx: StoreContext) -> GCPSecretManagerStore:
        endpoint = spec.endpoint
        if endpoint and endpoint.startswith("http://"):
            target = endpoint.removeprefix("http://").rstrip("/")
            channel = grpc.aio.insecure_channel(target)
            transport = SecretManagerServiceGrpcAsyncIOTransport(
                host=target,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                channel=channel,
            )
            return cls(spec, ctx, SecretManagerServiceAsyncClient(transport=transport))
        credentials = await _credentials(spec, ctx)
        options = None
        if endpoint:
            options = ClientOptions(api_endpoint=endpoint.removeprefix("https://").rstrip("/"))
        client = SecretManagerServiceAsyncClient(credentials=credentials, client_options=options)
        return cls(spec, ctx, client)

    # --- StoreClient ------------------------------------------------------------------------------------

    async def read(self, ref: SecretRef) -> SecretValue:
        return (await self.fetch(ref.key, ref.version)).pick(ref.property)

    async def fetch(self, key: str, version_text: str | None) -> SecretDocument:
        ref = SecretRef(key, version_text)
        with self._ctx.naming():
            name = parse_key(ref.key, self._project)
            version = parse_version(ref.version)
        what = f"secret {ref.key!r} version {version!r}"
        try:
            response = await self._client.access_secret_version(
                name=f"{name}/versions/{version}", retry=self._retry, timeout=self._ctx.timeout
            )
        except gexc.NotFound:
            if version != "latest" and await self._secret_exists(name):
                raise VersionNotFound(
                    f"store {self._ctx.label!r}: secret {ref.key!r} has no version {version!r}"
                ) from None
            raise SecretNotFound(f"store {self._ctx.label!r}: secret {ref.key!r} not found") from None
        except gexc.FailedPrecondition:
            raise VersionNotFound(
                f"store {self._ctx.label!r}: {what} is disabled or destroyed; enable it or reference "
                "another version"
            ) from None
        except Exception as exc:
            raise _map_error(exc, self._ctx.label, what) from None
        payload = response.payload
        expected = payload.data_crc32c if "data_crc32c" in payload else None
        data = bytes(payload.data)
        verify_crc32c(data, expected, self._ctx.label, what)
        label = self._ctx.label
        return SecretDocument(lambda prop: select_property(data, SecretRef(key, version_text, prop), label))

    async def write(self, key: str, value: SecretValue) -> WriteResult:
        with self._ctx.naming():
            secret_id = secret_id_of(key)
        name = f"projects/{self._project}/secrets/{secret_id}"
        data = value.reveal()
        payload = {"data": data, "data_crc32c": google_crc32c.value(data)}
        what = f"secret {secret_id!r}"
        try:
            try:
                version = await self._client.add_secret_version(
                    request={"parent": name, "payload": payload}, retry=self._retry, timeout=self._ctx.timeout
                )
            except gexc.NotFound:
                # AlreadyExists: a concurrent write created it.
                with contextlib.suppress(gexc.AlreadyExists):
                    await self._client.create_secret(
                        request={
                            "parent": f"projects/{self._project}",
                            "secret_id": secret_id,
                            "secret": {"replication": {"automatic": {}}, "labels": LABELS},
                        },
                        retry=self._retry,
                        timeout=self._ctx.timeout,
                    )
                version = await self._client.add_secret_version(
                    request={"parent": name, "payload": payload}, retry=self._retry, timeout=self._ctx.timeout
                )
        except Exception as exc:
            raise _map_error(exc, self._ctx.label, what) from None
        return WriteResult(key=key, version=version.name.rsplit("/", 1)[-1])

    async def delete(self, key: str) -> None:
        with self._ctx.naming():
            secret_id = secret_id_of(key)
        try:
            await self._client.delete_secret(
                name=f"projects/{self._project}/secrets/{secret_id}",
                retry=self._retry,
                timeout=self._ctx.timeout,
            )
        except gexc.NotFound:
            return
        except Exception as exc:
            raise _map_error(exc, self._ctx.label, f"secret {secret_id!r}") from None

    async def check(self) -> StoreCapabilities:
        """ListSecrets with a page of one; a read-only identity is recognised as for AWS (see docs)."""
        try:
            await self._client.list_secrets(
                request={"parent": f"projects/{self._project}", "page_size": 1},
                retry=self._retry,
                timeout=self._ctx.timeout,
            )
            return StoreCapabilities(read=True, write=True)
        except gexc.PermissionDenied:
            pass
        except Exception as exc:
            raise _map_error(exc, self._ctx.label, "ListSecrets") from None
        # roles/secretmanager.secretAccessor has no list permission; it authenticated all the same.
        try:
            await self._client.access_secret_version(
                name=f"projects/{self._project}/secrets/strongroom-connectivity-check/versions/latest",
                retry=self._retry,
                timeout=self._ctx.timeout,
            )
        except (gexc.NotFound, gexc.PermissionDenied):
            pass
        except Exception as exc:
            raise _map_error(exc, self._ctx.label, "access probe") from None
        return StoreCapabilities(read=True, write=False)

    async def close(self) -> None:
        await self._client.transport.close()  # type: ignore[no-untyped-call]

    async def _secret_exists(self, name: str) -> bool:
        try:
            await self._client.get_secret(name=name, retry=self._retry, timeout=self._ctx.timeout)
        except Exception:
            return False
        return True


async def _credentials(spec: GCPSMProvider, ctx: StoreContext) -> Credentials:
    ref = spec.auth.credentials_secret_ref if spec.auth else None
    if ref is not None:
        key = await ctx.credentials.secret_key(ref.name, ref.key)
        where = f"key {ref.key!r} of Secret {ref.name!r}"
        try:
            info: Any = json.loads(key.reveal())
        except ValueError:
            raise InvalidStoreConfig(
                f"store {ctx.label!r}: {where} is not a JSON service account key"
            ) from None
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise InvalidStoreConfig(
                f'store {ctx.label!r}: {where} is not a service account key ("type": "service_account")'
            )
        try:
            credentials: Credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=SCOPES
            )
        except (ValueError, KeyError):
            # The library's message may quote the key's fields; say only which Secret is wrong.
            raise InvalidStoreConfig(
                f"store {ctx.label!r}: {where} is an incomplete service account key"
            ) from None
        return credentials
    ctx.require_operator_namespace(
        "using the operator's own Google identity", "set auth.credentialsSecretRef to a service account key"
    )
    try:
        # ADC may probe the metadata server: blocking I/O, so off the event loop.
        credentials, _ = await asyncio.to_thread(google.auth.default, scopes=SCOPES)
    except auth_exc.DefaultCredentialsError:
        raise AuthenticationFailed(
            f"store {ctx.label!r}: no Google application default credentials; set "
            "auth.credentialsSecretRef or give the operator a Workload Identity"
        ) from None
    return credentials


def _map_error(exc: BaseException, store: str, what: str) -> StoreError:
    """gRPC/google-auth errors as StoreErrors: the class and a hint, never the server's message."""
    if isinstance(exc, StoreError):
        return exc
    prefix = f"store {store!r}: {what}"
    if isinstance(exc, gexc.NotFound):
        return SecretNotFound(f"{prefix} not found")
    if isinstance(exc, gexc.Unauthenticated | auth_exc.RefreshError | auth_exc.DefaultCredentialsError):
        return AuthenticationFailed(f"{prefix}: Google rejects the credentials ({type(exc).__name__})")
    if isinstance(exc, gexc.PermissionDenied):
        return PermissionDenied(
            f"{prefix}: permission denied; the identity needs roles/secretmanager.secretAccessor (read) or "
            "secretmanager.admin-like rights (write) on the secret or project"
        )
    if isinstance(exc, gexc.ServiceUnavailable) and "metadata from plugin" in str(exc.message):
        # google-auth's token refresh failed inside gRPC's credentials plugin.
        return AuthenticationFailed(f"{prefix}: obtaining a Google access token failed")
    if isinstance(
        exc, gexc.RetryError | gexc.ServiceUnavailable | gexc.DeadlineExceeded | gexc.ResourceExhausted
    ):
        return StoreUnavailable(f"{prefix}: Secret Manager is unavailable ({type(exc).__name__})")
    if isinstance(exc, gexc.InternalServerError | auth_exc.TransportError | asyncio.TimeoutError):
        return StoreUnavailable(f"{prefix}: Secret Manager is unavailable ({type(exc).__name__})")
    if isinstance(exc, gexc.InvalidArgument):
        return InvalidReference(f"{prefix}: Secret Manager refuses the request (InvalidArgument)")
    if isinstance(exc, gexc.FailedPrecondition):
        return VersionNotFound(f"{prefix}: the version is disabled or destroyed")
    return StoreError(f"{prefix}: {type(exc).__name__}")
