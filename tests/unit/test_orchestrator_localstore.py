"""The embedded store of direct mode: encrypted at rest, versioned, private files, clear key errors."""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from strongroom.orchestrator.localstore import KEY_ENV, LocalStore, default_directory, generate_key
from strongroom.stores.base import (
    InvalidStoreConfig,
    SecretNotFound,
    SecretRef,
    SecretValue,
    StoreClient,
    VersionNotFound,
)
from testenv.git_server import dechunk

CANARY = "canary-local-store-91c2"


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_round_trip_versions_and_properties(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "s", key=generate_key())
    assert isinstance(store, StoreClient)
    first = run(store.write("app/db", SecretValue(CANARY)))
    second = run(store.write("app/db", SecretValue('{"user": "u", "password": "p"}')))
    assert (first.version, second.version) == ("1", "2")
    assert run(store.read(SecretRef("app/db"))).reveal() == b'{"user": "u", "password": "p"}'
    assert run(store.read(SecretRef("app/db", "1"))).reveal_text() == CANARY
    assert run(store.read(SecretRef("app/db", None, "password"))).reveal_text() == "p"
    with pytest.raises(VersionNotFound):
        run(store.read(SecretRef("app/db", "7")))
    run(store.delete("app/db"))
    run(store.delete("app/db"))  # deleting what is gone is fine
    with pytest.raises(SecretNotFound):
        run(store.read(SecretRef("app/db")))
    assert run(store.check()).write


# Long and distinctive: a one-letter name would turn up in random ciphertext by chance.
KEY_NAME = "strongroom-demo/key-name-that-must-not-show"


def test_encrypted_at_rest_with_private_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    directory = tmp_path / "store"
    store = LocalStore(directory)
    run(store.write(KEY_NAME, SecretValue(CANARY)))
    data = (directory / "store.enc").read_bytes()
    assert CANARY.encode() not in data
    assert KEY_NAME.encode() not in data  # not even the key names are readable
    for name in ("store.enc", "store.key"):
        assert (directory / name).stat().st_mode & 0o777 == 0o600
    assert directory.stat().st_mode & 0o777 == 0o700
    # A second instance finds the generated key and reads the data back.
    assert run(LocalStore(directory).read(SecretRef(KEY_NAME))).reveal_text() == CANARY
    assert store.keys() == [KEY_NAME]


def test_key_from_the_environment_and_wrong_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_key()
    monkeypatch.setenv(KEY_ENV, key)
    directory = tmp_path / "store"
    run(LocalStore(directory).write("k", SecretValue(CANARY)))
    assert not (directory / "store.key").exists()
    with pytest.raises(InvalidStoreConfig, match="cannot be decrypted with this key"):
        run(LocalStore(directory, key=generate_key()).read(SecretRef("k")))
    with pytest.raises(InvalidStoreConfig, match="must be 32 bytes"):
        run(LocalStore(directory, key="c2hvcnQ=").read(SecretRef("k")))
    (directory / "store.enc").write_bytes(b"garbage")
    with pytest.raises(InvalidStoreConfig, match="not a strongroom store file"):
        run(LocalStore(directory, key=key).read(SecretRef("k")))


def test_old_versions_are_dropped(tmp_path: Path) -> None:
    store = LocalStore(tmp_path, key=generate_key())
    for number in range(12):
        run(store.write("k", SecretValue(str(number))))
    assert run(store.read(SecretRef("k"))).reveal_text() == "11"
    assert run(store.read(SecretRef("k", "3"))).reveal_text() == "2"
    with pytest.raises(VersionNotFound):
        run(store.read(SecretRef("k", "2")))


def test_default_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRONGROOM_STORE_DIR", str(tmp_path / "x"))
    assert default_directory() == tmp_path / "x"
    monkeypatch.delenv("STRONGROOM_STORE_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_directory() == tmp_path / "data" / "strongroom"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_directory() == Path(os.path.expanduser("~")) / ".local" / "share" / "strongroom"


def test_git_server_dechunks_request_bodies() -> None:
    body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\ne\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\n"
    assert dechunk(io.BytesIO(body)) == b"Wikipedia in\r\n\r\nchunks."
    with pytest.raises(ValueError, match="ended"):
        dechunk(io.BytesIO(b"a\r\nshort"))
