"""Every Driver object the operator has seen, and the driver a Resource's `driverType` names.

Fed straight from watch events (operator/handlers/driver.py), like the store cache, so a Resource that
waits for its Driver proceeds as soon as the object appears. Lookup: built-in drivers first, then a Driver
object of that name in the Resource's namespace, then in the operator namespace.

The signing key of a Driver is read from its `privateKeySecretRef` Secret (in the Driver's namespace), or,
when it names none, from the operator's own key Secret `strongroom-driver-key` in the operator namespace.
The Secret is read on each resolution (keys get rotated); the parsed key is kept per Secret
resourceVersion, as parsing an RSA key is not free.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import ValidationError

from strongroom.api.driver import Driver as DriverObject
from strongroom.drivers.base import Driver, DriverConfigError, DriverError
from strongroom.drivers.registry import DriverRegistry
from strongroom.drivers.remote import RemoteDriver
from strongroom.drivers.signing import SigningKey, SigningKeyError
from strongroom.operator.kube import Kube
from strongroom.reconcile.secretmapping import decode_secret_data

ObjectKey = tuple[str, str]

#: The operator's own key Secret (in the operator namespace), used by Drivers that name none.
DEFAULT_KEY_SECRET = "strongroom-driver-key"  # noqa: S105 (a Secret's name)

logger = logging.getLogger("strongroom.controller.driver")


class SigningKeyMissing(DriverError):
    """The key Secret a Driver signs with does not exist (yet): retried, it may be created."""

    reason = "SigningKeyMissing"
    retryable = True


class DriverCache:
    def __init__(self, kube: Kube, operator_namespace: str, registry: DriverRegistry) -> None:
        self.kube = kube
        self.operator_namespace = operator_namespace
        self.registry = registry
        self.drivers: dict[ObjectKey, DriverObject] = {}
        self.invalid: dict[ObjectKey, str] = {}
        # Drivers deleted while this process ran, kept to deprovision Resources that still name them: when a
        # namespace is deleted, its Drivers (and key Secrets) go at the same time as its Resources.
        self.retired: dict[ObjectKey, DriverObject] = {}
        self._keys: dict[ObjectKey, tuple[str, SigningKey]] = {}
        self._key_locks: dict[ObjectKey, asyncio.Lock] = {}
        self._built: dict[tuple[ObjectKey, int | None, str | None], Driver] = {}
        self._tls: ssl.SSLContext | None = None
        # Called with a Driver's name when it appears, changes or goes: Resources naming it re-run.
        self.on_change: Callable[[str], None] = lambda _name: None

    def _default_tls(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = httpx.create_ssl_context()
        return self._tls

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key: ObjectKey = (meta.get("namespace") or "", meta.get("name") or "")
        self._built = {k: v for k, v in self._built.items() if k[0] != key}
        if event_type == "DELETED":
            gone = self.drivers.pop(key, None)
            if gone is not None:
                self.retired[key] = gone
            self.invalid.pop(key, None)
        else:
            self.retired.pop(key, None)
            try:
                self.drivers[key] = DriverObject.model_validate(body)
                self.invalid.pop(key, None)
            except ValidationError as exc:
                self.drivers.pop(key, None)
                self.invalid[key] = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                    for e in exc.errors(include_input=False)
                )
        self.on_change(key[1])

    def is_builtin(self, driver_type: str) -> bool:
        return self.registry.is_builtin(driver_type)

    def find(
        self, driver_type: str, namespace: str, *, deleting: bool = False
    ) -> tuple[ObjectKey, DriverObject | None]:
        """The Driver object for `driver_type` seen from `namespace` (own namespace first); with `deleting`,
        a Driver deleted meanwhile is still found."""
        for ns in dict.fromkeys((namespace, self.operator_namespace)):
            key = (ns, driver_type)
            if key in self.drivers or key in self.invalid:
                return key, self.drivers.get(key)
        if deleting:
            for ns in dict.fromkeys((namespace, self.operator_namespace)):
                if (ns, driver_type) in self.retired:
                    return (ns, driver_type), self.retired[(ns, driver_type)]
        return (namespace, driver_type), None

    async def resolve(self, driver_type: str, namespace: str, *, deleting: bool = False) -> Driver:
        """The driver for a Resource in `namespace`; raises DriverError (retryable when waiting can help).

        `deleting`: for deprovisioning, a Driver or key Secret deleted while the operator ran is still used
        as last seen, so deleting a namespace does not leave its Resources stuck on their finalizer."""
        if self.registry.is_builtin(driver_type):
            return self.registry.resolve(driver_type)
        key, obj = self.find(driver_type, namespace, deleting=deleting)
        if obj is None:
            if key in self.invalid:
                raise DriverConfigError(f"Driver {key[0]}/{key[1]} is not valid: {self.invalid[key]}")
            return self.registry.resolve(driver_type)  # raises DriverNotFound (retryable)
        signing_key: SigningKey | None = None
        key_version: str | None = None
        if obj.spec.sign:
            signing_key, key_version = await self._signing_key(obj, deleting=deleting)
        cache_key = (key, obj.metadata.generation, key_version)
        driver = self._built.get(cache_key)
        if driver is None:
            driver = self.registry.resolve(driver_type, obj, signing_key=signing_key)
            if isinstance(driver, RemoteDriver) and driver.verify is True:
                # The client opens an httpx client per operation; with `verify=True` each one would load
                # the CA bundle into a new SSL context (about 20 ms of CPU and some memory per Resource
                # provisioned). One context with the same default trust serves them all.
                driver.verify = self._default_tls()
            self._built = {k: v for k, v in self._built.items() if k[0] != key}
            self._built[cache_key] = driver
        return driver

    async def _signing_key(self, obj: DriverObject, *, deleting: bool = False) -> tuple[SigningKey, str]:
        ref = obj.spec.private_key_secret_ref
        where: ObjectKey = (obj.namespace, ref.name) if ref else (self.operator_namespace, DEFAULT_KEY_SECRET)
        secret = await self.kube.get_secret(*where)
        if secret is None and deleting and where in self._keys:
            return self._keys[where][1], self._keys[where][0]
        if secret is None:
            raise SigningKeyMissing(
                f"Driver {obj.namespace}/{obj.name} signs requests with the key in Secret "
                f"{where[0]}/{where[1]}, which does not exist"
            )
        version = str((secret.get("metadata") or {}).get("resourceVersion") or "")
        cached = self._keys.get(where)
        if cached is not None and cached[0] == version:
            return cached[1], version
        # A burst of Resources using a new key would otherwise parse it once each, on the event loop.
        async with self._key_locks.setdefault(where, asyncio.Lock()):
            cached = self._keys.get(where)
            if cached is not None and cached[0] == version:
                return cached[1], version
            try:
                signing_key = SigningKey.from_secret_data(decode_secret_data(secret))
            except SigningKeyError as exc:
                raise DriverConfigError(f"Secret {where[0]}/{where[1]}: {exc}") from None
            self._keys[where] = (version, signing_key)
        return signing_key, version
