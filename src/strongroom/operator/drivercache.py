"""Every Driver object the operator has seen, and the driver a Resource's `driverType` names.

Fed straight from watch events (operator/handlers/driver.py), like the store cache, so a Resource that
waits for its Driver proceeds as soon as the object appears. Lookup: built-in drivers first, then a Driver
object of that name in the Resource's namespace, then in the operator namespace.

Tenancy: a Driver in the operator namespace serves only the namespaces its `allowedNamespaces` names (and
the operator namespace): `DriverNotAllowed` otherwise. The operator's own signing key signs only for Drivers
in the operator namespace (the platform admin's): a signing Driver elsewhere must name its own key
(`SigningKeyNotAllowed`, and nothing is sent), or a tenant's Driver pointing at its own server would
harvest tokens signed with the key the platform's drivers trust.

The signing key of a Driver is read from its `privateKeySecretRef` Secret (in the Driver's namespace), or,
for Drivers in the operator namespace that name none, from the operator's own key Secret
`strongroom-driver-key`.
The Secret is read on each resolution (keys get rotated); the parsed key is kept per Secret
resourceVersion, as parsing an RSA key is not free.

The cache owns the `RemoteDriver`s it builds: each keeps an HTTP client (and its connections) open, which
is closed when the Driver object changes or goes, when a rotated key replaces the driver, and at shutdown
(`close`). A driver whose Driver object changed finishes the operations it has in flight first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from strongroom.api.driver import Driver as DriverObject
from strongroom.drivers.base import (
    Driver,
    DriverConfigError,
    DriverError,
    DriverNotAllowed,
    SigningKeyNotAllowed,
)
from strongroom.drivers.registry import DriverRegistry
from strongroom.drivers.signing import SigningKey, SigningKeyError
from strongroom.operator.kube import Kube
from strongroom.operator.relist import gone_during_gap, key_of, log_forgotten
from strongroom.reconcile.secretdata import decode_secret_data

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
        # Closes of replaced drivers still running (observe() cannot await them); kept so they are not
        # garbage-collected half-way and so `close` can wait for them.
        self._closing: set[asyncio.Task[None]] = set()
        # Called with a Driver's name when it appears, changes or goes: Resources naming it re-run.
        self.on_change: Callable[[str], None] = lambda _name: None

    def forget_unlisted(self, namespace: str, listed: Sequence[Mapping[str, Any]]) -> None:
        """Before a complete list of `namespace` ("": all) is told: forget the Drivers it no longer holds,
        deleted while the watch was down (operator/relist.py)."""
        cached = [(key, driver.metadata.uid) for key, driver in self.drivers.items()]
        cached += [(key, None) for key in self.invalid]  # not parsed: its uid is not known
        gone = gone_during_gap(cached, listed, namespace)
        log_forgotten("Driver", gone)
        for namespace_of, name in gone:
            self.observe("DELETED", {"metadata": {"namespace": namespace_of, "name": name}})

    def observe(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        key: ObjectKey = key_of(body)
        if event_type == "DELETED":
            gone = self.drivers.pop(key, None)
            if gone is not None:
                self.retired[key] = gone
            self.invalid.pop(key, None)
            self._forget(key)
        else:
            self.retired.pop(key, None)
            try:
                obj = DriverObject.model_validate(body)
            except ValidationError as exc:
                self.drivers.pop(key, None)
                self.invalid[key] = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                    for e in exc.errors(include_input=False)
                )
                self._forget(key)
            else:
                previous = self.drivers.get(key)
                self.drivers[key] = obj
                self.invalid.pop(key, None)
                # Events that leave the spec as it was (status or label updates, a watch restarting and
                # listing everything again) keep the built driver and its open connections, and wake no
                # Resource: the Driver's own status writes must not re-run (and re-PUT) its Resources.
                if previous is not None and previous.spec == obj.spec:
                    return
                self._forget(key)
        self.on_change(key[1])

    def _forget(self, key: ObjectKey) -> None:
        """Drop the drivers built for `key` and close their HTTP clients."""
        dropped = [driver for k, driver in self._built.items() if k[0] == key]
        self._built = {k: v for k, v in self._built.items() if k[0] != key}
        self._close_later(key[1], dropped)

    def _close_later(self, name: str, drivers: Iterable[Driver]) -> None:
        remotes = [driver for driver in drivers if not driver.in_process]
        if not remotes:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Only tests call observe() outside a running loop (the watches run in one): there is
            # no loop to close on, and any client left would belong to a loop that has ended.
            return
        for driver in remotes:
            task = loop.create_task(_close(name, driver), name=f"strongroom close driver {name}")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close every remote driver's HTTP client (operator shutdown)."""
        built, self._built = self._built, {}
        await asyncio.gather(
            *(_close(key[0][1], driver) for key, driver in built.items()),
            *self._closing,
        )

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
        self._check_tenancy(obj, namespace)
        signing_key: SigningKey | None = None
        key_version: str | None = None
        if obj.spec.sign:
            signing_key, key_version = await self._signing_key(obj, deleting=deleting)
        cache_key = (key, obj.metadata.generation, key_version)
        driver = self._built.get(cache_key)
        if driver is None:
            driver = self.registry.resolve(driver_type, obj, signing_key=signing_key)
            # A new generation or a rotated signing key: the driver built before is done with.
            self._forget(key)
            self._built[cache_key] = driver
        return driver

    def _check_tenancy(self, obj: DriverObject, namespace: str) -> None:
        """Refuse a Driver the Resource's namespace may not use, or that would sign with a key it may not
        use. Deletions are checked too: a Resource provisioned while its namespace was allowed waits for
        the admin to allow it again (or for its finalizer to be removed by hand), rather than letting a
        namespace reach a driver it was not given."""
        where = f"Driver {obj.namespace}/{obj.name}"
        if obj.namespace == self.operator_namespace:
            if namespace != self.operator_namespace and not obj.spec.allows(namespace):
                raise DriverNotAllowed(
                    f"{where} does not allow namespace {namespace!r}: the platform admin must add it to "
                    f'spec.allowedNamespaces of that Driver (or ["*"] for all namespaces)'
                )
            return
        if obj.spec.sign and obj.spec.private_key_secret_ref is None:
            raise SigningKeyNotAllowed(
                f"{where} signs requests but names no privateKeySecretRef: the operator's own key signs only "
                f"for Drivers in namespace {self.operator_namespace!r}; create a key Secret in "
                f"{obj.namespace!r} (strongroom keys generate) and name it in spec.privateKeySecretRef, or "
                "set sign: false. Nothing was sent to the driver"
            )

    async def signing_key(self, obj: DriverObject) -> SigningKey:
        """The key `obj` signs with, loaded and parsed (DriverError when it is missing or unusable)."""
        return (await self._signing_key(obj))[0]

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


async def _close(name: str, driver: Driver) -> None:
    # Closing only releases connections; a failure is worth a note, not an error for whoever is waiting.
    try:
        await driver.close()
    except Exception as exc:
        logger.warning("could not close the HTTP client of driver %s (%s: %s)", name, type(exc).__name__, exc)


__all__ = ["DEFAULT_KEY_SECRET", "DriverCache", "SigningKeyMissing"]
