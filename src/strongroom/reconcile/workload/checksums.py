"""Canonical form and digests of rendered content: why equal content always compares and hashes equal.

Manifests are compared (a volume or sidecar emitted twice) and the pod template carries digests that
roll the pods when a file or a Secret they read changes; both must not depend on key order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def canonical(value: Any) -> Any:
    """A copy with every mapping's keys sorted, so equal content serialises identically."""
    if isinstance(value, Mapping):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    return value


def checksum(entries: Mapping[str, str]) -> str:
    """Digest over named entries (here: Secret name -> content hash), independent of their order."""
    digest = hashlib.sha256()
    for name in sorted(entries):
        digest.update(f"{len(name)}:{name}={entries[name]}\n".encode())
    return digest.hexdigest()


def config_checksum(config_maps: list[dict[str, Any]]) -> str:
    """Digest over the names and data of the rendered ConfigMaps."""
    config = [
        {"name": cm["metadata"]["name"], "data": cm.get("data"), "binaryData": cm.get("binaryData")}
        for cm in config_maps
    ]
    return hashlib.sha256(json.dumps(canonical(config), sort_keys=True).encode()).hexdigest()
