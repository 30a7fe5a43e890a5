"""What every Secret the operator writes shares: the managed-by label, the content-hash annotation and its
hash, and reading a Secret's data. Used by SecretMappings, Resources, Workloads, direct mode and the
Driver cache alike, so it belongs to none of them. Pure."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

#: On a Secret the operator writes: the hash of its data (where only readers of the values see it).
CONTENT_HASH_ANNOTATION = "strongroom.dev/content-hash"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"


def content_hash(data: Mapping[str, bytes]) -> str:
    """Hash of a Secret's data, independent of key order (length-prefixed so keys cannot blur)."""
    digest = hashlib.sha256()
    for key in sorted(data):
        value = data[key]
        digest.update(f"{len(key)}:{key}{len(value)}:".encode())
        digest.update(value)
    return digest.hexdigest()


def decode_secret_data(secret: Mapping[str, Any] | None) -> dict[str, bytes]:
    if not secret:
        return {}
    return {key: base64.b64decode(value) for key, value in (secret.get("data") or {}).items()}


__all__ = ["CONTENT_HASH_ANNOTATION", "MANAGED_BY_LABEL", "content_hash", "decode_secret_data"]
