"""The operator's HMAC key: it seals what the operator later acts on from tenant-writable objects (a
Resource's `status.inputsHash`, status seal and pending marker). Kept in the Secret `strongroom-inputs-hmac`
of the operator namespace, made on first use."""

from __future__ import annotations

import asyncio
import base64
import secrets

from strongroom.api import constants as c
from strongroom.operator.kube import Kube
from strongroom.operator.resourceio import Failed
from strongroom.reconcile.secretdata import MANAGED_BY_LABEL, decode_secret_data
from strongroom.reconcile.stores import Problem

#: Secret in the operator namespace holding the HMAC key for `status.inputsHash` (made on first use).
HMAC_SECRET = "strongroom-inputs-hmac"  # noqa: S105 (a Secret's name)
HMAC_SECRET_KEY = "key"  # noqa: S105 (a key name)


class InputsKey:
    def __init__(self, kube: Kube, operator_namespace: str) -> None:
        self.kube = kube
        self.operator_namespace = operator_namespace
        self._key: bytes | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> bytes:
        """The key of `status.inputsHash`, from a Secret in the operator namespace (created on first use)."""
        if self._key is not None:
            return self._key
        async with self._lock:
            if self._key is not None:
                return self._key
            secret = await self.kube.get_secret(self.operator_namespace, HMAC_SECRET)
            if secret is None:
                key = secrets.token_bytes(32)
                manifest = {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": HMAC_SECRET,
                        "namespace": self.operator_namespace,
                        "labels": {c.MANAGED_LABEL: "true", MANAGED_BY_LABEL: "strongroom"},
                    },
                    "type": "Opaque",
                    "data": {HMAC_SECRET_KEY: base64.b64encode(key).decode()},
                }
                if await self.kube.create_secret(manifest):
                    self._key = key
                    return key
                secret = await self.kube.get_secret(self.operator_namespace, HMAC_SECRET)
            stored = decode_secret_data(secret).get(HMAC_SECRET_KEY, b"")
            if len(stored) < 16:
                raise Failed(
                    Problem(
                        "InvalidHmacKey",
                        f"Secret {self.operator_namespace}/{HMAC_SECRET} has no usable {HMAC_SECRET_KEY!r} "
                        "(at least 16 bytes); delete it and the operator makes a new one",
                    )
                )
            self._key = stored
            return stored


__all__ = ["HMAC_SECRET", "HMAC_SECRET_KEY", "InputsKey"]
