"""The orchestrator's own secret store for direct mode: one encrypted file, no setup.

Where: `$STRONGROOM_STORE_DIR`, else `$XDG_DATA_HOME/strongroom`, else `~/.local/share/strongroom`
(directory mode 0700). What:

- `store.enc`: every secret with its last versions, as JSON, encrypted with AES-256-GCM (a fresh 96-bit
  nonce per write; the file's format tag is authenticated as associated data, so a file cannot be passed
  off as another format). Written to a temporary file (0600) and renamed, so a crash never leaves half a
  file.
- the key: `$STRONGROOM_STORE_KEY` (32 bytes, URL-safe base64) when set; else `store.key` next to the data,
  created on first use with mode 0600. A key file beside the data protects against the data file being
  copied or backed up on its own, not against someone who can read the whole directory: for that, keep
  the key elsewhere (the variable, filled from a password manager or a CI secret).
- `store.lock`: an advisory lock around every read-modify-write, so two `strongroom deploy` runs on one
  machine do not lose each other's writes.

It implements the store contract (`strongroom.stores.base.StoreClient`) like every backend, so the driver
and resolution code of the operator use it unchanged. Errors name keys, never values.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.stores.base import (
    InvalidStoreConfig,
    SecretDocument,
    SecretNotFound,
    SecretRef,
    SecretValue,
    StoreCapabilities,
    VersionNotFound,
    WriteResult,
    select_property,
)

KEY_ENV = "STRONGROOM_STORE_KEY"
DIR_ENV = "STRONGROOM_STORE_DIR"
#: The name references use for this store (`{store: local, ref: ...}`).
LOCAL_STORE_NAME = "local"
_MAGIC = b"SRLS1"
_NONCE = 12
#: Versions kept per key (older ones are dropped on write).
KEEP_VERSIONS = 10


def default_directory() -> Path:
    override = os.environ.get(DIR_ENV)
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "strongroom"


def generate_key() -> str:
    """A new key in the form `STRONGROOM_STORE_KEY` takes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raise InvalidStoreConfig(f"local store: the key in {where} is not URL-safe base64") from None
    if len(key) != 32:
        raise InvalidStoreConfig(
            f"local store: the key in {where} must be 32 bytes (AES-256), not {len(key)}"
        )
    return key


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically, readable by the owner only at every moment."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


class LocalStore:
    """The embedded store (implements `StoreClient`)."""

    def __init__(self, directory: Path | None = None, *, key: str | None = None) -> None:
        self.directory = directory or default_directory()
        self._key_text = key if key is not None else os.environ.get(KEY_ENV)
        self._aead: AESGCM | None = None

    @property
    def data_path(self) -> Path:
        return self.directory / "store.enc"

    @property
    def key_path(self) -> Path:
        return self.directory / "store.key"

    def _prepare(self) -> AESGCM:
        if self._aead is not None:
            return self._aead
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._key_text:
            key = _decode_key(self._key_text, f"${KEY_ENV}")
        else:
            try:
                fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                key = _decode_key(self.key_path.read_text(), str(self.key_path))
            else:
                text = generate_key()
                with os.fdopen(fd, "w") as handle:
                    handle.write(text + "\n")
                key = _decode_key(text, str(self.key_path))
        self._aead = AESGCM(key)
        return self._aead

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._prepare()
        fd = os.open(self.directory / "store.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _load(self) -> dict[str, list[dict[str, str]]]:
        aead = self._prepare()
        try:
            blob = self.data_path.read_bytes()
        except FileNotFoundError:
            return {}
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _NONCE + 16:
            raise InvalidStoreConfig(f"local store: {self.data_path} is not a strongroom store file")
        nonce = blob[len(_MAGIC) : len(_MAGIC) + _NONCE]
        try:
            plain = aead.decrypt(nonce, blob[len(_MAGIC) + _NONCE :], _MAGIC)
        except InvalidTag:
            raise InvalidStoreConfig(
                f"local store: {self.data_path} cannot be decrypted with this key (wrong {KEY_ENV} or "
                "key file, or the file was changed)"
            ) from None
        document: dict[str, Any] = json.loads(plain)
        found: dict[str, list[dict[str, str]]] = document.get("secrets", {})
        return found

    def _save(self, secrets_: dict[str, list[dict[str, str]]]) -> None:
        aead = self._prepare()
        plain = json.dumps({"format": 1, "secrets": secrets_}, sort_keys=True).encode()
        nonce = os.urandom(_NONCE)
        _write_private(self.data_path, _MAGIC + nonce + aead.encrypt(nonce, plain, _MAGIC))

    # --- StoreClient ----------------------------------------------------------------------------------

    async def fetch(self, key: str, version: str | None) -> SecretDocument:
        with self._locked():
            versions = self._load().get(key)
        if not versions:
            raise SecretNotFound(f"store {LOCAL_STORE_NAME!r}: no secret {key!r}")
        entry = versions[-1] if not version else next((v for v in versions if v["version"] == version), None)
        if entry is None:
            raise VersionNotFound(f"store {LOCAL_STORE_NAME!r}: secret {key!r} has no version {version!r}")
        raw = base64.b64decode(entry["data"])
        ref_key = key
        return SecretDocument(
            lambda prop: select_property(raw, SecretRef(ref_key, version, prop), LOCAL_STORE_NAME)
        )

    async def read(self, ref: SecretRef) -> SecretValue:
        document = await self.fetch(ref.key, ref.version)
        return document.pick(ref.property)

    async def write(self, key: str, value: SecretValue) -> WriteResult:
        with self._locked():
            data = self._load()
            versions = data.setdefault(key, [])
            number = int(versions[-1]["version"]) + 1 if versions else 1
            versions.append({"version": str(number), "data": base64.b64encode(value.reveal()).decode()})
            del versions[:-KEEP_VERSIONS]
            self._save(data)
        return WriteResult(key, str(number))

    async def delete(self, key: str) -> None:
        with self._locked():
            data = self._load()
            if data.pop(key, None) is not None:
                self._save(data)

    async def check(self) -> StoreCapabilities:
        with self._locked():
            self._load()
        return StoreCapabilities(read=True, write=True)

    async def close(self) -> None:
        return None

    def keys(self) -> list[str]:
        """Names of the secrets held (never their values)."""
        with self._locked():
            return sorted(self._load())
