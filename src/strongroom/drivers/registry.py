"""Which driver serves a Resource's `driverType`.

Built-in drivers (`humanitec/echo`, `strongroom/echo`, `humanitec/template`, `strongroom/template`) run in
the operator's process and are found by name. Any other `driverType` names a Driver object in the
Resource's namespace; the caller (the operator, which reads objects from the cluster) passes that object
and the signing key read from its Secret, and gets a `RemoteDriver` for it. This module reads nothing from
the cluster itself, and keeps nothing: each `RemoteDriver` it returns is a new one, owned by the caller,
who keeps it as long as the Driver object stays the same and then `close()`s it (it holds an HTTP client).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import httpx2

from strongroom.api.driver import BUILTIN_DRIVER_TYPES
from strongroom.api.driver import Driver as DriverObject
from strongroom.drivers.base import Driver, DriverConfigError, DriverNotFound
from strongroom.drivers.echo import EchoDriver
from strongroom.drivers.remote import RemoteDriver, RemoteTimings
from strongroom.drivers.sandbox import SandboxLimits
from strongroom.drivers.signing import SigningKey
from strongroom.drivers.template import TemplateDriver


def builtin_drivers(template_limits: SandboxLimits | None = None) -> dict[str, Driver]:
    """The built-in drivers by type: the Humanitec names and strongroom's own. The Template driver owns a
    pool of render processes: whoever calls this closes the drivers (`close_drivers`) when done."""
    echo, template = EchoDriver(), TemplateDriver(template_limits)
    drivers: dict[str, Driver] = {
        "humanitec/echo": echo,
        "strongroom/echo": echo,
        "humanitec/template": template,
        "strongroom/template": template,
    }
    assert set(drivers) == BUILTIN_DRIVER_TYPES, "api.driver.BUILTIN_DRIVER_TYPES and the registry disagree"
    return drivers


async def close_drivers(drivers: Iterable[Driver]) -> None:
    """Close each distinct driver once (the registry maps two names to each built-in)."""
    for driver in {id(d): d for d in drivers}.values():
        await driver.close()


class DriverRegistry:
    """Resolves a `driverType` to a `Driver`."""

    def __init__(
        self,
        *,
        defaults: RemoteTimings | None = None,
        builtins: Mapping[str, Driver] | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        template_limits: SandboxLimits | None = None,
    ) -> None:
        """`defaults`: time limits for Driver objects that set none. `builtins`: replaces the built-in
        drivers (tests). `transport`: an httpx2 transport for every remote driver (tests).
        `template_limits`: time, memory and process count of the Template driver's renders."""
        self.defaults = defaults or RemoteTimings()
        self._builtins = dict(builtin_drivers(template_limits) if builtins is None else builtins)
        self._transport = transport

    async def close(self) -> None:
        """Close the built-in drivers (the Template driver's render processes)."""
        await close_drivers(self._builtins.values())

    def is_builtin(self, driver_type: str) -> bool:
        return driver_type in self._builtins

    def resolve(
        self,
        driver_type: str,
        driver: DriverObject | None = None,
        *,
        signing_key: SigningKey | None = None,
    ) -> Driver:
        """The driver for `driver_type`.

        Built-ins are returned as they are (`driver` is ignored). Otherwise `driver` must be the Driver
        object named `driver_type`; `signing_key` is required when it signs requests (the default).
        Raises `DriverNotFound` (retryable: the object may be created later) or `DriverConfigError`.
        """
        builtin = self._builtins.get(driver_type)
        if builtin is not None:
            return builtin
        if driver is None:
            raise DriverNotFound(
                f"driver type {driver_type!r} is not built in "
                f"({', '.join(sorted(self._builtins))}) and no Driver object of that name was found"
            )
        if driver.name and driver.name != driver_type:
            raise DriverConfigError(
                f"Driver object {driver.name!r} was passed for driver type {driver_type!r}"
            )
        name = f"{driver.namespace}/{driver.name}" if driver.namespace else driver.name or driver_type
        return RemoteDriver.from_spec(
            driver.spec,
            name=name,
            signing_key=signing_key,
            defaults=self.defaults,
            transport=self._transport,
        )
