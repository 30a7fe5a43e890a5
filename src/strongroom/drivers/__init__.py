"""Drivers: the contract (`base`), the built-in Echo (`echo`) and Template (`template`) drivers, the remote
client (`remote`) with request signing (`signing`), the registry that picks one for a `driverType`
(`registry`), and `sdk/` for writing remote drivers.

Only the contract is re-exported here, so that importing a light module (`signing` for the CLI) does not
pull in the template engine or the HTTP client.
"""

from strongroom.drivers.base import (
    Driver,
    DriverAuthFailed,
    DriverConfigError,
    DriverError,
    DriverNotFound,
    DriverProtocolError,
    DriverRejected,
    DriverRequest,
    DriverResult,
    DriverTimeout,
    DriverUnavailable,
    Manifest,
    ManifestLocation,
    SecretTree,
    TemplateFailed,
    redact,
)

__all__ = [
    "Driver",
    "DriverAuthFailed",
    "DriverConfigError",
    "DriverError",
    "DriverNotFound",
    "DriverProtocolError",
    "DriverRejected",
    "DriverRequest",
    "DriverResult",
    "DriverTimeout",
    "DriverUnavailable",
    "Manifest",
    "ManifestLocation",
    "SecretTree",
    "TemplateFailed",
    "redact",
]
