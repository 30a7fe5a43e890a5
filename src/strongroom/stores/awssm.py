"""AWS Secrets Manager, on aiobotocore.

Credentials: the default chain (EKS Pod Identity, IRSA, environment, instance profile) when the store
has no access keys, else the keys from Secrets; with `role`, those credentials assume the role via
STS and the session credentials are refreshed before they expire (botocore's refreshable credentials,
fed by our own AssumeRole call). Each store gets its own session so credentials never cross stores.

References: `key` is a secret name or ARN; `version` is either a version id or a staging label
(see `classify_version`); `property` selects a field of a JSON SecretString.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

# aiobotocore and botocore ship no type information (types-aiobotocore-secretsmanager types the client).
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.credentials import (  # type: ignore[import-untyped]
    AioCredentialResolver,
    AioCredentials,
    AioDeferredRefreshableCredentials,
)
from aiobotocore.session import AioSession, get_session  # type: ignore[import-untyped]
from botocore.credentials import CredentialProvider  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from strongroom.api.secretstore import AWSSMProvider
from strongroom.stores.base import (
    AuthenticationFailed,
    InvalidReference,
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

if TYPE_CHECKING:
    from types_aiobotocore_secretsmanager import SecretsManagerClient

# Version ids are the ClientRequestToken of the write that made them: UUIDs for every AWS SDK, CLI,
# console and Terraform write. Staging labels are free-form words (AWSCURRENT, AWSPREVIOUS, custom).
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
VERSION_ID_PREFIX = "id:"
VERSION_STAGE_PREFIX = "stage:"
# https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html: name characters.
_NAME_CHARS = re.compile(r"[^A-Za-z0-9/_+=.@-]")
NAME_MAX = 512
_XML_CODE = re.compile(r"<Code>([A-Za-z.]{1,64})</Code>")
_ARN = re.compile(r"^arn:aws[-a-z]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$")

_AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "ExpiredToken",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AuthFailure",
    }
)
_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "AccessDeniedForDependencyException"})
_UNAVAILABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "InternalServiceError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
#: What the role session is called in CloudTrail; `strongroom-<namespace>-<store>` cut to AWS's limit.
ROLE_SESSION_MAX = 64
ROLE_SESSION_SECONDS = 3600


def classify_version(version: str | None) -> tuple[Literal["VersionId", "VersionStage"], str] | None:
    """Which GetSecretValue parameter a reference's version is.

    `id:<x>` and `stage:<x>` say it explicitly. Otherwise a UUID is a version id (what every AWS tool
    generates) and anything else a staging label, so `AWSCURRENT`, `AWSPREVIOUS` and custom labels work
    as they are written in the console.
    """
    if not version:
        return None
    if version.startswith(VERSION_ID_PREFIX):
        value, kind = version[len(VERSION_ID_PREFIX) :], "VersionId"
    elif version.startswith(VERSION_STAGE_PREFIX):
        value, kind = version[len(VERSION_STAGE_PREFIX) :], "VersionStage"
    elif _UUID.match(version):
        value, kind = version, "VersionId"
    else:
        value, kind = version, "VersionStage"
    if not value:
        raise InvalidReference(f"empty AWS secret version in {version!r}")
    return ("VersionId", value) if kind == "VersionId" else ("VersionStage", value)


def write_name(key: str) -> str:
    """The secret name a logical key is written under: the key itself (so names are injective), which
    must hold only the characters AWS accepts."""
    if not key or _NAME_CHARS.search(key):
        raise InvalidReference(
            f"AWS secret name {key[:80]!r} is empty or holds characters other than letters, digits and "
            "/_+=.@-"
        )
    if len(key) > NAME_MAX:
        raise InvalidReference(
            f"AWS secret names are at most {NAME_MAX} characters; key {key[:40]!r}... is longer"
        )
    return key


def check_reference_key(key: str) -> str:
    """A name or an ARN, as GetSecretValue's SecretId takes it."""
    if _ARN.match(key):
        return key
    if not key or len(key) > 2048 or _NAME_CHARS.search(key):
        raise InvalidReference(
            f"AWS secret key {key[:80]!r} is neither an ARN nor a name of letters, digits and /_+=.@-"
        )
    return key


class _FixedProvider(CredentialProvider):  # type: ignore[misc]
    """A credential chain of one link: the store's own credentials, never the process environment."""

    METHOD = "strongroom-store"

    def __init__(self, credentials: object) -> None:
        super().__init__()
        self._credentials = credentials

    async def load(self) -> object:
        return self._credentials


def _use_credentials(session: AioSession, credentials: object) -> None:
    session.register_component("credential_provider", AioCredentialResolver([_FixedProvider(credentials)]))


class AWSSecretsManagerStore:
    """A `StoreClient` for AWS Secrets Manager in one region."""

    def __init__(
        self,
        spec: AWSSMProvider,
        ctx: StoreContext,
        client: SecretsManagerClient,
        exit_stack: contextlib.AsyncExitStack,
    ) -> None:
        self._spec = spec
        self._ctx = ctx
        self._client = client
        self._exit_stack = exit_stack

    @classmethod
    async def create(cls, spec: AWSSMProvider, ctx: StoreContext) -> AWSSecretsManagerStore:
        config = AioConfig(
            connect_timeout=ctx.timeout,
            read_timeout=ctx.timeout,
            retries={"mode": "standard", "max_attempts": 3},
            # Loading the service model is file I/O + JSON parsing: keep it off the event loop.
            warm_up_loader_caches=True,
        )
        session = get_session()
        auth = spec.auth
        if auth is not None and auth.access_key_id_secret_ref and auth.secret_access_key_secret_ref:
            key_id = await ctx.credentials.secret_key(
                auth.access_key_id_secret_ref.name, auth.access_key_id_secret_ref.key
            )
            secret = await ctx.credentials.secret_key(
                auth.secret_access_key_secret_ref.name, auth.secret_access_key_secret_ref.key
            )
            _use_credentials(session, AioCredentials(key_id.reveal_text(), secret.reveal_text()))
        else:
            ctx.require_operator_namespace(
                "using the operator's own AWS identity",
                "set auth.accessKeyIDSecretRef and auth.secretAccessKeySecretRef",
            )
        if spec.role:
            base = session
            session = get_session()
            _use_credentials(
                session,
                AioDeferredRefreshableCredentials(
                    refresh_using=_assume_role(base, spec, ctx, config), method="assume-role"
                ),
            )
        stack = contextlib.AsyncExitStack()
        try:
            client = await stack.enter_async_context(
                session.create_client(
                    "secretsmanager", region_name=spec.region, endpoint_url=spec.endpoint, config=config
                )
            )
        except (BotoCoreError, ClientError) as exc:
            await stack.aclose()
            raise _map_error(exc, ctx.label, "creating the client") from None
        return cls(spec, ctx, client, stack)

    # --- StoreClient ------------------------------------------------------------------------------------

    async def read(self, ref: SecretRef) -> SecretValue:
        return (await self.fetch(ref.key, ref.version)).pick(ref.property)

    async def fetch(self, key: str, version_text: str | None) -> SecretDocument:
        ref = SecretRef(key, version_text)
        with self._ctx.naming():
            secret_id = check_reference_key(ref.key)
            version = classify_version(ref.version)
        params: dict[str, Any] = {"SecretId": secret_id}
        if version is not None:
            params[version[0]] = version[1]
        what = f"secret {ref.key!r}" + (f" version {ref.version!r}" if ref.version else "")
        try:
            response = await self._client.get_secret_value(**params)
        except ClientError as exc:
            code = _code(exc)
            if code == "ResourceNotFoundException" and version is not None and await self._exists(secret_id):
                raise VersionNotFound(
                    f"store {self._ctx.label!r}: secret {ref.key!r} has no version {ref.version!r} "
                    f"(a UUID is taken as a version id, anything else as a staging label; prefix with "
                    f"{VERSION_ID_PREFIX!r} or {VERSION_STAGE_PREFIX!r} to say which)"
                ) from None
            raise _map_error(exc, self._ctx.label, what) from None
        except BotoCoreError as exc:
            raise _map_error(exc, self._ctx.label, what) from None
        if "SecretString" in response:
            raw = response["SecretString"].encode()
        elif "SecretBinary" in response:
            raw = bytes(response["SecretBinary"])
        else:
            raise SecretNotFound(f"store {self._ctx.label!r}: {what} has no value")
        label = self._ctx.label
        return SecretDocument(lambda prop: select_property(raw, SecretRef(key, version_text, prop), label))

    async def write(self, key: str, value: SecretValue) -> WriteResult:
        """Describe, then create, or restore and put, or put.

        The describe costs a call per write (writes are rare: driver outputs), and makes a secret
        scheduled for deletion by an earlier `delete` come back before the new version is put, instead
        of relying on PutSecretValue to refuse it (moto, for one, accepts it silently).
        """
        with self._ctx.naming():
            name = write_name(key)
        payload = _payload(value)
        what = f"secret {name!r}"
        deleted = False
        try:
            try:
                deleted = "DeletedDate" in await self._client.describe_secret(SecretId=name)
            except ClientError as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise
                try:
                    created = await self._client.create_secret(
                        Name=name, Description="Written by strongroom", **payload
                    )
                    return WriteResult(key=name, version=created.get("VersionId"))
                except ClientError as create_exc:
                    # A concurrent write created it first: fall through to a new version.
                    if _code(create_exc) != "ResourceExistsException":
                        raise
            if deleted:
                # This is why the default store's policy needs secretsmanager:RestoreSecret.
                await self._client.restore_secret(SecretId=name)
            response = await self._client.put_secret_value(SecretId=name, **payload)
        except (ClientError, BotoCoreError) as exc:
            raise _map_error(exc, self._ctx.label, what) from None
        return WriteResult(key=name, version=response.get("VersionId"))

    async def delete(self, key: str) -> None:
        with self._ctx.naming():
            name = write_name(key)
        try:
            # With AWS's recovery window (30 days), not ForceDeleteWithoutRecovery: a driver output deleted
            # by mistake (a pruned Resource in a GitOps repo) can be restored, and `write` restores it
            # automatically when the resource comes back.
            await self._client.delete_secret(SecretId=name)
        except ClientError as exc:
            code = _code(exc)
            # Missing, or already scheduled for deletion: either way it is (being) deleted.
            if code in ("ResourceNotFoundException", "InvalidRequestException"):
                return
            raise _map_error(exc, self._ctx.label, f"secret {name!r}") from None
        except BotoCoreError as exc:
            raise _map_error(exc, self._ctx.label, f"secret {name!r}") from None

    async def check(self) -> StoreCapabilities:
        """ListSecrets (cheap, authenticated, touches no secret).

        IAM policies cannot be read back with the store's own rights, so capabilities are inferred: a
        policy that allows ListSecrets is taken to be a read/write one (the default-store policy); one that
        denies it is probed with a GetSecretValue on a name that cannot exist and reported read-only
        (the policy Humanitec documents for non-default stores has GetSecretValue only). The first real
        write proves the rest.
        """
        try:
            await self._client.list_secrets(MaxResults=1)
            return StoreCapabilities(read=True, write=True)
        except ClientError as exc:
            if _code(exc) not in _DENIED_CODES:
                raise _map_error(exc, self._ctx.label, "ListSecrets") from None
        except BotoCoreError as exc:
            raise _map_error(exc, self._ctx.label, "ListSecrets") from None
        try:
            await self._client.get_secret_value(SecretId="strongroom/connectivity-check")
        except ClientError as probe:
            # Denied is fine too: the credentials authenticated, and the policy may be scoped to a prefix.
            if _code(probe) not in ("ResourceNotFoundException", *_DENIED_CODES):
                raise _map_error(probe, self._ctx.label, "GetSecretValue probe") from None
        except BotoCoreError as probe:
            raise _map_error(probe, self._ctx.label, "GetSecretValue probe") from None
        return StoreCapabilities(read=True, write=False)

    async def close(self) -> None:
        await self._exit_stack.aclose()

    async def _exists(self, secret_id: str) -> bool:
        try:
            await self._client.describe_secret(SecretId=secret_id)
        except (ClientError, BotoCoreError):
            return False
        return True


def _payload(value: SecretValue) -> dict[str, Any]:
    try:
        return {"SecretString": value.reveal_text()}
    except UnicodeDecodeError:
        return {"SecretBinary": value.reveal()}


def _assume_role(
    base: AioSession, spec: AWSSMProvider, ctx: StoreContext, config: AioConfig
) -> Callable[[], Awaitable[dict[str, str]]]:
    session_name = re.sub(r"[^\w+=,.@-]", "-", f"strongroom-{ctx.namespace}-{ctx.name}")[:ROLE_SESSION_MAX]

    async def fetch() -> dict[str, str]:
        # STS goes to its regional endpoint (or AWS_ENDPOINT_URL_STS), not to `spec.endpoint`: that one
        # is a Secrets Manager endpoint (VPC endpoint, emulator) and would not answer STS.
        try:
            async with base.create_client("sts", region_name=spec.region, config=config) as sts:
                response = await sts.assume_role(
                    RoleArn=spec.role or "",
                    RoleSessionName=session_name,
                    DurationSeconds=ROLE_SESSION_SECONDS,
                )
        except (ClientError, BotoCoreError) as exc:
            raise _map_error(exc, ctx.label, f"assuming role {spec.role}") from None
        creds = response["Credentials"]
        return {
            "access_key": creds["AccessKeyId"],
            "secret_key": creds["SecretAccessKey"],
            "token": creds["SessionToken"],
            "expiry_time": creds["Expiration"].isoformat(),
        }

    return fetch


def _code(exc: ClientError) -> str:
    """AWS's error code. When botocore could not parse the body, its code is the bare HTTP status; an
    XML `ErrorResponse` (what STS-style front ends and moto's auth layer send even for JSON services)
    still names the code, so it is looked up there (for classification only, never for messages)."""
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code.isdigit():
        found = _XML_CODE.search(str(error.get("Message", "")))
        if found:
            return found.group(1)
    return code


def _map_error(exc: BaseException, store: str, what: str) -> StoreError:
    """A StoreError naming the store, the call and AWS's error code, never AWS's message.

    botocore's messages are safe for GetSecretValue, but a ParamValidationError prints the parameters
    it got, SecretString included; so only codes and exception types go into our messages.
    """
    if isinstance(exc, StoreError):
        return exc
    prefix = f"store {store!r}: {what}"
    if isinstance(exc, ClientError):
        code = _code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "ResourceNotFoundException":
            return SecretNotFound(f"{prefix} not found")
        if code in _AUTH_CODES:
            return AuthenticationFailed(
                f"{prefix}: AWS rejects the credentials ({code}); check the access keys or the role"
            )
        if code in _DENIED_CODES:
            return PermissionDenied(
                f"{prefix}: access denied ({code}); the IAM policy must allow this action on the secret"
            )
        if code == "401":
            return AuthenticationFailed(f"{prefix}: AWS rejects the credentials (HTTP 401)")
        if code == "403":
            return PermissionDenied(f"{prefix}: access denied (HTTP 403)")
        if code in _UNAVAILABLE_CODES or (isinstance(status, int) and status >= 500):
            return StoreUnavailable(f"{prefix}: AWS is unavailable or throttling ({code or status})")
        if code == "DecryptionFailure":
            return PermissionDenied(f"{prefix}: the secret's KMS key cannot be used ({code})")
        if code in ("InvalidParameterException", "ValidationException"):
            return InvalidReference(f"{prefix}: AWS refuses the request ({code})")
        if code == "InvalidRequestException":
            return SecretNotFound(f"{prefix}: AWS refuses the request ({code}; scheduled for deletion?)")
        return StoreError(f"{prefix}: AWS error {code or status}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AuthenticationFailed(
            f"{prefix}: no AWS credentials found; set auth.accessKeyIDSecretRef/secretAccessKeySecretRef "
            "or give "
            "the operator an identity (EKS Pod Identity, IRSA)"
        )
    if isinstance(exc, ConnectionError | HTTPClientError):
        return StoreUnavailable(f"{prefix}: cannot reach AWS ({type(exc).__name__})")
    return StoreError(f"{prefix}: {type(exc).__name__}")
