"""An in-memory Google Cloud Secret Manager v1 server (gRPC), for tests.

Why this exists: no third-party Secret Manager emulator could be obtained through the registries this
project may use (the Go module proxy refuses github.com/blackwell-systems/gcp-secret-manager-emulator
and every other emulator module tried; floci-gcp is a Docker image only; PyPI's gcplocal ships a
stub). See testenv/stores/README.md for the full search.

It speaks the real wire protocol, `google.cloud.secretmanager.v1.SecretManagerService` over gRPC,
with the request/response types of the `google-cloud-secret-manager` SDK itself, so client code is
exercised unchanged against it. Behaviour follows the public API reference:

- names `projects/{p}/secrets/{s}[/versions/{v}]` and the regional form
  `projects/{p}/locations/{l}/secrets/{s}...`; version `latest` is the most recently created
  version whatever its state (as documented), and `version_aliases` resolve too;
- version numbers start at 1 per secret and are never reused;
- AddSecretVersion verifies `payload.data_crc32c` when the client sends one (INVALID_ARGUMENT on a
  mismatch) and AccessSecretVersion always returns it;
- accessing a DISABLED or DESTROYED version is FAILED_PRECONDITION; destroying drops the payload;
  a secret with `version_destroy_ttl` gets the version disabled and `scheduled_destroy_time` set;
- missing resources are NOT_FOUND, duplicates ALREADY_EXISTS, a stale `etag` FAILED_PRECONDITION;
- List* are paginated (`page_size`/`page_token`); versions are listed newest first; filters support
  `state:X`, `name:X` and `labels.K=V` / `labels.K:*` terms joined by spaces or AND;
- the IAM methods store one policy per secret and TestIamPermissions grants everything.

Not emulated: authentication (any or no credentials are accepted), secret expiry actually deleting
the secret, delayed destruction firing, rotation notifications, CMEK, and the REST transport.

Run: `python -m testenv.stores.gcp_emulator --port 0` prints `listening on 127.0.0.1:<port>`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import itertools
import re
import signal
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.cloud.secretmanager_v1 import types as sm
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_PAGE_SIZE = 25000

_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_PARENT = re.compile(r"^projects/([^/]+)(/locations/([^/]+))?$")
_SECRET_NAME = re.compile(r"^(projects/[^/]+(?:/locations/[^/]+)?)/secrets/([^/]+)$")
_VERSION_NAME = re.compile(r"^(projects/[^/]+(?:/locations/[^/]+)?/secrets/[^/]+)/versions/([^/]+)$")
_UPDATABLE = {
    "labels",
    "annotations",
    "version_aliases",
    "topics",
    "expire_time",
    "ttl",
    "rotation",
    "version_destroy_ttl",
    "tags",
}

_State = sm.SecretVersion.State
_INVALID = grpc.StatusCode.INVALID_ARGUMENT
_NOT_FOUND = grpc.StatusCode.NOT_FOUND
_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


# --- CRC32C (Castagnoli), as Secret Manager uses for payload integrity --------------------------


def _crc32c_table() -> list[int]:
    poly = 0x82F63B78  # the Castagnoli polynomial, bit-reflected
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# --- the store ---------------------------------------------------------------------------------


class ApiError(Exception):
    """A failed call: the gRPC status code and message the client will see."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _copy(message: Any) -> Any:
    """A deep copy of a proto-plus message: what we return must not alias what we store."""
    cls = type(message)
    return cls.deserialize(cls.serialize(message))


@dataclass
class _Version:
    resource: Any  # sm.SecretVersion
    payload: bytes | None


@dataclass
class _Secret:
    resource: Any  # sm.Secret
    versions: dict[int, _Version] = field(default_factory=dict)
    next_version: int = 1
    policy: policy_pb2.Policy = field(default_factory=policy_pb2.Policy)


class SecretStore:
    """The Secret Manager semantics, independent of gRPC; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, _Secret] = {}
        self._etags = itertools.count(1)

    # helpers

    def _etag(self) -> str:
        # Quoted like the real service's etags; unique per change, which is all clients rely on.
        return f'"{_now().strftime("%Y%m%d%H%M%S%f")}{next(self._etags):x}"'

    def _secret(self, name: str) -> _Secret:
        if not _SECRET_NAME.match(name):
            raise ApiError(_INVALID, f"Invalid resource field value in the request: {name}")
        secret = self._secrets.get(name)
        if secret is None:
            raise ApiError(_NOT_FOUND, f"Secret [{name}] not found or has no versions.")
        return secret

    def _version(self, name: str) -> tuple[_Secret, int, _Version]:
        match = _VERSION_NAME.match(name)
        if not match:
            raise ApiError(_INVALID, f"Invalid resource field value in the request: {name}")
        secret_name, version_id = match.group(1), match.group(2)
        secret = self._secret(secret_name)
        number: int | None
        if version_id == "latest":
            number = max(secret.versions) if secret.versions else None
        elif version_id.isdigit():
            number = int(version_id)
        else:
            aliases = dict(secret.resource.version_aliases)
            number = int(aliases[version_id]) if version_id in aliases else None
        version = secret.versions.get(number) if number is not None else None
        if number is None or version is None:
            raise ApiError(_NOT_FOUND, f"Secret Version [{name}] not found.")
        return secret, number, version

    @staticmethod
    def _check_etag(given: str, current: str) -> None:
        if given and given != current:
            raise ApiError(_PRECONDITION, f"The etag {given} does not match {current}.")

    @staticmethod
    def _page(items: list[Any], page_size: int, page_token: str) -> tuple[list[Any], str]:
        if page_size < 0:
            raise ApiError(_INVALID, "page_size must not be negative.")
        try:
            start = int(base64.urlsafe_b64decode(page_token.encode()).decode()) if page_token else 0
        except ValueError as exc:
            raise ApiError(_INVALID, f"Invalid page_token {page_token!r}.") from exc
        size = min(page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        end = start + size
        next_token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else ""
        return items[start:end], next_token

    # secrets

    def create_secret(self, request: Any) -> Any:
        parent_match = _PARENT.match(request.parent)
        if not parent_match:
            raise ApiError(_INVALID, f"Invalid parent {request.parent!r}.")
        if not _SECRET_ID.match(request.secret_id):
            raise ApiError(
                _INVALID,
                "Secret ID must match [a-zA-Z0-9_-]{1,255}: " + repr(request.secret_id),
            )
        regional = parent_match.group(3) is not None
        secret = _copy(request.secret) if "secret" in request else sm.Secret()
        if not regional and "replication" not in secret:
            raise ApiError(_INVALID, "Secret.replication is required.")
        name = f"{request.parent}/secrets/{request.secret_id}"
        with self._lock:
            if name in self._secrets:
                raise ApiError(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
            secret.name = name
            secret.create_time = _now()
            if "ttl" in secret:
                secret.expire_time = secret.create_time + secret.ttl
            secret.etag = self._etag()
            self._secrets[name] = _Secret(resource=secret)
            return _copy(secret)

    def get_secret(self, request: Any) -> Any:
        with self._lock:
            return _copy(self._secret(request.name).resource)

    def list_secrets(self, request: Any) -> Any:
        if not _PARENT.match(request.parent):
            raise ApiError(_INVALID, f"Invalid parent {request.parent!r}.")
        matches = _filter(request.filter, kind="secret")
        prefix = request.parent + "/secrets/"
        with self._lock:
            items = [
                _copy(s.resource)
                for n, s in sorted(self._secrets.items())
                if n.startswith(prefix) and "/" not in n[len(prefix) :] and matches(s.resource)
            ]
        page, token = self._page(items, request.page_size, request.page_token)
        return sm.ListSecretsResponse(secrets=page, next_page_token=token, total_size=len(items))

    def update_secret(self, request: Any) -> Any:
        paths = list(request.update_mask.paths)
        if not paths:
            raise ApiError(_INVALID, "update_mask is required.")
        unknown = [p for p in paths if p not in _UPDATABLE]
        if unknown:
            raise ApiError(_INVALID, f"Cannot update field(s): {', '.join(unknown)}.")
        with self._lock:
            secret = self._secret(request.secret.name)
            self._check_etag(request.secret.etag, secret.resource.etag)
            stored = secret.resource
            for path in paths:
                if path == "ttl":
                    stored.expire_time = _now() + request.secret.ttl
                elif path == "version_aliases":
                    aliases = dict(request.secret.version_aliases)
                    missing = [str(v) for v in aliases.values() if int(v) not in secret.versions]
                    if missing:
                        raise ApiError(
                            _INVALID,
                            f"version_aliases refer to versions that do not exist: {', '.join(missing)}.",
                        )
                    stored.version_aliases = aliases
                elif path in ("labels", "annotations", "tags"):
                    setattr(stored, path, dict(getattr(request.secret, path)))
                else:
                    setattr(stored, path, getattr(request.secret, path))
            stored.etag = self._etag()
            return _copy(stored)

    def delete_secret(self, request: Any) -> empty_pb2.Empty:
        with self._lock:
            secret = self._secret(request.name)
            self._check_etag(request.etag, secret.resource.etag)
            del self._secrets[request.name]
        return empty_pb2.Empty()

    # versions

    def add_secret_version(self, request: Any) -> Any:
        data: bytes = request.payload.data
        if len(data) > MAX_PAYLOAD_BYTES:
            raise ApiError(_INVALID, f"Secret payload exceeds {MAX_PAYLOAD_BYTES} bytes.")
        client_checksum = "data_crc32c" in request.payload
        if client_checksum and request.payload.data_crc32c != crc32c(data):
            raise ApiError(_INVALID, "Checksum mismatch: data_crc32c does not match data.")
        with self._lock:
            secret = self._secret(request.parent)
            number = secret.next_version
            secret.next_version += 1
            version = sm.SecretVersion(
                name=f"{request.parent}/versions/{number}",
                create_time=_now(),
                state=_State.ENABLED,
                etag=self._etag(),
                client_specified_payload_checksum=client_checksum,
            )
            secret.versions[number] = _Version(resource=version, payload=bytes(data))
            return _copy(version)

    def get_secret_version(self, request: Any) -> Any:
        with self._lock:
            return _copy(self._version(request.name)[2].resource)

    def access_secret_version(self, request: Any) -> Any:
        with self._lock:
            _, _, version = self._version(request.name)
            state = version.resource.state
            if state != _State.ENABLED or version.payload is None:
                raise ApiError(
                    _PRECONDITION,
                    f"Secret Version [{version.resource.name}] is in {_State(state).name} state.",
                )
            return sm.AccessSecretVersionResponse(
                name=version.resource.name,
                payload=sm.SecretPayload(data=version.payload, data_crc32c=crc32c(version.payload)),
            )

    def list_secret_versions(self, request: Any) -> Any:
        matches = _filter(request.filter, kind="version")
        with self._lock:
            secret = self._secret(request.parent)
            items = [
                _copy(v.resource)
                for _, v in sorted(secret.versions.items(), reverse=True)
                if matches(v.resource)
            ]
        page, token = self._page(items, request.page_size, request.page_token)
        return sm.ListSecretVersionsResponse(versions=page, next_page_token=token, total_size=len(items))

    def _set_state(self, request: Any, target: Any) -> Any:
        with self._lock:
            secret, _, version = self._version(request.name)
            resource = version.resource
            self._check_etag(request.etag, resource.etag)
            if resource.state == _State.DESTROYED:
                raise ApiError(
                    _PRECONDITION,
                    f"Secret Version [{resource.name}] is in DESTROYED state.",
                )
            if target == _State.DESTROYED:
                ttl = (
                    secret.resource.version_destroy_ttl if "version_destroy_ttl" in secret.resource else None
                )
                if ttl:
                    resource.state = _State.DISABLED
                    resource.scheduled_destroy_time = _now() + ttl
                else:
                    resource.state = _State.DESTROYED
                    resource.destroy_time = _now()
                    version.payload = None
            else:
                resource.state = target
                if target == _State.ENABLED and "scheduled_destroy_time" in resource:
                    del resource.scheduled_destroy_time  # re-enabling cancels a delayed destruction
            resource.etag = self._etag()
            return _copy(resource)

    def disable_secret_version(self, request: Any) -> Any:
        return self._set_state(request, _State.DISABLED)

    def enable_secret_version(self, request: Any) -> Any:
        return self._set_state(request, _State.ENABLED)

    def destroy_secret_version(self, request: Any) -> Any:
        return self._set_state(request, _State.DESTROYED)

    # IAM (per secret, stored verbatim; nothing is enforced)

    def set_iam_policy(self, request: iam_policy_pb2.SetIamPolicyRequest) -> policy_pb2.Policy:
        with self._lock:
            secret = self._secret(request.resource)
            policy = policy_pb2.Policy()
            policy.CopyFrom(request.policy)
            policy.etag = self._etag().encode()
            secret.policy = policy
            result = policy_pb2.Policy()
            result.CopyFrom(policy)
            return result

    def get_iam_policy(self, request: iam_policy_pb2.GetIamPolicyRequest) -> policy_pb2.Policy:
        with self._lock:
            result = policy_pb2.Policy()
            result.CopyFrom(self._secret(request.resource).policy)
            return result

    def test_iam_permissions(
        self, request: iam_policy_pb2.TestIamPermissionsRequest
    ) -> iam_policy_pb2.TestIamPermissionsResponse:
        with self._lock:
            self._secret(request.resource)
        return iam_policy_pb2.TestIamPermissionsResponse(permissions=list(request.permissions))


def _state_is(wanted: str) -> Callable[[Any], bool]:
    def check(resource: Any) -> bool:
        return bool(_State(resource.state).name == wanted)

    return check


def _name_matches(value: str, exact: bool) -> Callable[[Any], bool]:
    def check(resource: Any) -> bool:
        return bool(resource.name == value) if exact else value in resource.name

    return check


def _label_matches(label: str, value: str) -> Callable[[Any], bool]:
    def check(resource: Any) -> bool:
        labels = dict(resource.labels)
        return label in labels and (value == "*" or labels[label] == value)

    return check


def _filter(expression: str, kind: str) -> Callable[[Any], bool]:
    """A predicate for the small subset of the List* filter syntax that tests need."""
    terms = [t for t in re.split(r"\s+(?:AND\s+)?", expression.strip()) if t and t != "AND"]
    checks: list[Callable[[Any], bool]] = []
    for term in terms:
        match = re.fullmatch(r"([A-Za-z_.][\w.-]*)\s*([:=])\s*(\S+)", term)
        if not match:
            raise ApiError(_INVALID, f"Unsupported filter term {term!r}.")
        key, op, value = match.groups()
        value = value.strip('"')
        if key == "state" and kind == "version":
            checks.append(_state_is(value.upper()))
        elif key == "name":
            checks.append(_name_matches(value, exact=op == "="))
        elif key.startswith("labels.") and kind == "secret":
            checks.append(_label_matches(key.removeprefix("labels."), value))
        else:
            raise ApiError(_INVALID, f"Unsupported filter field {key!r}.")
    return lambda resource: all(check(resource) for check in checks)


# --- gRPC wiring -------------------------------------------------------------------------------


def _unary(
    fn: Callable[[Any], Any], deserialize: Callable[[bytes], Any], serialize: Callable[[Any], bytes]
) -> grpc.RpcMethodHandler[Any, Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(request)
        except ApiError as err:
            context.abort(err.code, err.message)

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=deserialize, response_serializer=serialize
    )


def _pb(message: Any) -> bytes:
    data: bytes = message.SerializeToString()
    return data


def handler(store: SecretStore) -> grpc.GenericRpcHandler:
    """The service's methods bound to `store`; RotateSecret and EnableManagedRotation stay UNIMPLEMENTED."""
    iam = iam_policy_pb2
    methods: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "CreateSecret": _unary(store.create_secret, sm.CreateSecretRequest.deserialize, sm.Secret.serialize),
        "GetSecret": _unary(store.get_secret, sm.GetSecretRequest.deserialize, sm.Secret.serialize),
        "ListSecrets": _unary(
            store.list_secrets, sm.ListSecretsRequest.deserialize, sm.ListSecretsResponse.serialize
        ),
        "UpdateSecret": _unary(store.update_secret, sm.UpdateSecretRequest.deserialize, sm.Secret.serialize),
        "DeleteSecret": _unary(store.delete_secret, sm.DeleteSecretRequest.deserialize, _pb),
        "AddSecretVersion": _unary(
            store.add_secret_version, sm.AddSecretVersionRequest.deserialize, sm.SecretVersion.serialize
        ),
        "GetSecretVersion": _unary(
            store.get_secret_version, sm.GetSecretVersionRequest.deserialize, sm.SecretVersion.serialize
        ),
        "AccessSecretVersion": _unary(
            store.access_secret_version,
            sm.AccessSecretVersionRequest.deserialize,
            sm.AccessSecretVersionResponse.serialize,
        ),
        "ListSecretVersions": _unary(
            store.list_secret_versions,
            sm.ListSecretVersionsRequest.deserialize,
            sm.ListSecretVersionsResponse.serialize,
        ),
        "DisableSecretVersion": _unary(
            store.disable_secret_version,
            sm.DisableSecretVersionRequest.deserialize,
            sm.SecretVersion.serialize,
        ),
        "EnableSecretVersion": _unary(
            store.enable_secret_version, sm.EnableSecretVersionRequest.deserialize, sm.SecretVersion.serialize
        ),
        "DestroySecretVersion": _unary(
            store.destroy_secret_version,
            sm.DestroySecretVersionRequest.deserialize,
            sm.SecretVersion.serialize,
        ),
        "SetIamPolicy": _unary(store.set_iam_policy, iam.SetIamPolicyRequest.FromString, _pb),
        "GetIamPolicy": _unary(store.get_iam_policy, iam.GetIamPolicyRequest.FromString, _pb),
        "TestIamPermissions": _unary(
            store.test_iam_permissions, iam.TestIamPermissionsRequest.FromString, _pb
        ),
    }
    return grpc.method_handlers_generic_handler(SERVICE, methods)


def serve(host: str, port: int) -> tuple[grpc.Server, int]:
    """Start a server on host:port (0 = any free port); returns it and the bound port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler(SecretStore()),))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    return server, bound


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server, port = serve(args.host, args.port)
    print(f"listening on {args.host}:{port}", flush=True)
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    done.wait()
    server.stop(grace=1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
