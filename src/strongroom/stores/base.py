"""The contract every secret store backend implements, and the value type that carries secrets.

A backend module (vault, awssm, gcpsm, azurekv, kubernetes) exposes one class implementing
`StoreClient`, built from the SecretStore spec and the credentials the operator read for it.
Errors are `StoreError` subclasses whose messages name the store and the reference, never a value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable


class SecretValue:
    """Secret bytes that refuse to show themselves.

    `str()`, `repr()`, f-strings, logging and pickling all yield a placeholder or fail, so a value
    that slips into a log line, an exception or a status field leaks nothing. Use `reveal()` at the
    single place where the bytes must leave (the Kubernetes Secret, a driver request).
    """

    __slots__ = ("_data",)
    _data: bytes

    def __init__(self, data: bytes | str) -> None:
        object.__setattr__(self, "_data", data.encode() if isinstance(data, str) else bytes(data))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SecretValue is immutable")

    def reveal(self) -> bytes:
        return self._data

    def reveal_text(self) -> str:
        return self._data.decode()

    def digest(self) -> str:
        """SHA-256 of the value, for change detection where only the owner of the data sees it."""
        return hashlib.sha256(self._data).hexdigest()

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return "SecretValue(<redacted>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        return hmac.compare_digest(self._data, other._data)

    def __hash__(self) -> int:
        return hash(self.digest())

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SecretValue cannot be pickled")


@dataclass(frozen=True)
class SecretRef:
    """Where a secret lives in one store: key, optional version, optional property (JSON field)."""

    key: str
    version: str | None = None
    property: str | None = None

    def __str__(self) -> str:
        text = self.key
        if self.property:
            text += f"#{self.property}"
        if self.version:
            text += f"@{self.version}"
        return text


class SecretDocument:
    """A secret as one fetch returned it, before a property is picked.

    Several references to one secret that differ only in `property` (three fields of one Vault
    entry, say) then cost one request: the guard coalesces fetches by (key, version).
    """

    __slots__ = ("_pick",)

    def __init__(self, pick: Callable[[str | None], SecretValue]) -> None:
        self._pick = pick

    def pick(self, prop: str | None) -> SecretValue:
        """The whole value (no property) or one field of it; `PropertyNotFound` if it has none."""
        return self._pick(prop)

    def __repr__(self) -> str:
        return "SecretDocument(<redacted>)"


@dataclass(frozen=True)
class WriteResult:
    """Where a write put the value: the key in the store's own terms and the version it created."""

    key: str
    version: str | None


@dataclass(frozen=True)
class StoreCapabilities:
    """What a connectivity check found the store's credentials may do."""

    read: bool
    write: bool


class StoreError(Exception):
    """A store call failed. `reason` is a CamelCase word for conditions; the message never holds a value."""

    reason: ClassVar[str] = "StoreError"
    retryable: ClassVar[bool] = True


class SecretNotFound(StoreError):
    reason = "SecretNotFound"
    retryable = True  # it may be created later; the referrer keeps waiting with a condition


class PropertyNotFound(StoreError):
    reason = "PropertyNotFound"


class VersionNotFound(StoreError):
    reason = "VersionNotFound"


class AuthenticationFailed(StoreError):
    reason = "AuthenticationFailed"


class PermissionDenied(StoreError):
    reason = "PermissionDenied"


class StoreUnavailable(StoreError):
    """Network error, timeout, 5xx: the store may come back."""

    reason = "StoreUnavailable"


class InvalidReference(StoreError):
    """The reference cannot name a secret in this backend (bad characters, unversioned store)."""

    reason = "InvalidReference"
    retryable = False


class InvalidStoreConfig(StoreError):
    """The SecretStore spec or its credential Secrets are unusable."""

    reason = "InvalidStoreConfig"
    retryable = False


class InsecureTransport(InvalidStoreConfig):
    """The store would send a login credential over an unencrypted connection."""

    reason = "InsecureTransport"


@runtime_checkable
class StoreClient(Protocol):
    """One configured backend. All methods are idempotent and safe to call concurrently."""

    async def fetch(self, key: str, version: str | None) -> SecretDocument:
        """The secret at `key` (latest when `version` is empty), ready to have a property picked."""
        ...

    async def read(self, ref: SecretRef) -> SecretValue:
        """The value at `ref`: `fetch` then `pick(ref.property)`."""
        ...

    async def write(self, key: str, value: SecretValue) -> WriteResult:
        """Create or update the secret at `key` with a new version (for the default store)."""
        ...

    async def delete(self, key: str) -> None:
        """Delete the secret at `key`; deleting a missing secret succeeds."""
        ...

    async def check(self) -> StoreCapabilities:
        """A real round trip that proves connectivity and authentication."""
        ...

    async def close(self) -> None:
        """Release connections and background tasks."""
        ...


def select_property(raw: bytes, ref: SecretRef, store: str) -> SecretValue:
    """Apply `ref.property` to a value that holds a JSON object; the whole value when there is none.

    A dotted property (`db.password`) walks nested objects, as in External Secrets Operator; a key
    that itself contains dots is found first, so `{"a.b": 1}` stays reachable.
    """
    if not ref.property:
        return SecretValue(raw)
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise PropertyNotFound(
            f"store {store!r}: secret {ref.key!r} is not a JSON object, "
            f"so property {ref.property!r} cannot be read"
        ) from None
    return SecretValue(_encode_field(_walk(document, ref, store)))


def select_field(fields: Mapping[str, object], ref: SecretRef, store: str) -> SecretValue:
    """For stores whose secrets are field maps (Vault KV, Kubernetes Secrets).

    With a property: that field. Without: the only field if there is exactly one, else the whole map
    as JSON (sorted keys, stable bytes).
    """
    if ref.property:
        return SecretValue(_encode_field(_walk(dict(fields), ref, store)))
    if len(fields) == 1:
        return SecretValue(_encode_field(next(iter(fields.values()))))
    return SecretValue(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())


def _walk(document: object, ref: SecretRef, store: str) -> object:
    assert ref.property
    if isinstance(document, dict) and ref.property in document:
        return document[ref.property]
    node = document
    for part in ref.property.split("."):
        if not isinstance(node, dict) or part not in node:
            raise PropertyNotFound(f"store {store!r}: secret {ref.key!r} has no property {ref.property!r}")
        node = node[part]
    return node


def _encode_field(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
