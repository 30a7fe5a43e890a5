"""The Driver API v0.9.3 wire format (Humanitec), as pydantic models.

Two readings of the same shapes:
- strict (`InputData`, `OutputData`, ...): what a conforming party sends. The SDK checks incoming
  requests and its user's responses against these.
- lenient (`parse_output`): what the operator accepts from a remote driver. Older drivers (the tutorial
  spec) name locations `container`/`volume` and the manifest body `manifest`; unknown fields are ignored so
  a newer driver keeps working.

Validation errors are reported as `loc: msg` pairs only (`field_errors`): pydantic's own messages quote the
input, and inputs hold secrets.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from strongroom.api import constants as c

#: Request header carrying the cookie the driver set last time for this GUResID.
COOKIE_HEADER: Final = "Humanitec-Driver-Cookie"
#: Response header with which a driver sets (or, empty, clears) its cookie.
SET_COOKIE_HEADER: Final = "Set-Humanitec-Driver-Cookie"
#: The spec allows any string shorter than 10 KiB.
COOKIE_MAX_BYTES: Final = 10 * 1024

#: Error codes a driver puts in `Error.error`; drivers always use the RES-1xx range.
ERROR_CODE: Final = r"^RES-1[0-9]{2}$"


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DriverInputsWire(WireModel):
    """`driver` in a request: the resolved driver inputs."""

    # Requests may come from other callers of the same API (Humanitec's own orchestrator); fields a later
    # version adds must not turn into 400s.
    model_config = ConfigDict(extra="ignore")

    values: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, Any] = Field(default_factory=dict)


class InputData(WireModel):
    """Body of `PUT {target}{guresid}`."""

    model_config = ConfigDict(extra="ignore")

    type: str = Field(pattern=c.RESOURCE_TYPE, max_length=100)
    resource: dict[str, Any] = Field(default_factory=dict)
    driver: DriverInputsWire = Field(default_factory=DriverInputsWire)


class ManifestWire(WireModel):
    location: Literal["namespace", "cluster", "containers", "volumes"]
    data: dict[str, Any]


class ResourceOutputsWire(WireModel):
    values: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, Any] = Field(default_factory=dict)


class OutputData(WireModel):
    """Body of a 200 answer to PUT or GET."""

    id: str = Field(pattern=c.GURESID, max_length=c.GURESID_MAX)
    type: str = Field(pattern=c.RESOURCE_TYPE, max_length=100)
    resource: ResourceOutputsWire = Field(default_factory=ResourceOutputsWire)
    manifests: list[ManifestWire] = Field(default_factory=list)


class AsyncProgressHint(BaseModel):
    """Body of 202 and 409: hints only, every field optional (names differ between published specs)."""

    model_config = ConfigDict(extra="allow")

    status: Literal["creating", "updating", "deleting"] | None = None
    estimated_completion_time: str | None = None
    timeout: str | None = None
    current_time: str | None = None


class ErrorBody(WireModel):
    """Body of a 400 answer."""

    error: str = Field(pattern=ERROR_CODE)
    message: str


# --- Lenient reading of driver answers --------------------------------------------------------------------

_LOCATION_ALIASES = {"container": "containers", "volume": "volumes"}


class _LenientManifest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    location: str
    data: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None


class _LenientOutputs(BaseModel):
    model_config = ConfigDict(extra="ignore")

    values: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None


class LenientOutputData(BaseModel):
    """A driver's 200 body as the operator reads it; `normalised_manifests()` maps the older names."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    type: str | None = None
    resource: _LenientOutputs | None = None
    manifests: list[_LenientManifest] | None = None

    def normalised_manifests(self) -> list[ManifestWire]:
        """Manifests with plural locations and the body under `data`; ValueError on an unknown location."""
        found: list[ManifestWire] = []
        for index, item in enumerate(self.manifests or []):
            location = _LOCATION_ALIASES.get(item.location, item.location)
            body = item.data if item.data is not None else item.manifest
            if body is None:
                raise ValueError(f"manifests[{index}] has no data")
            try:
                found.append(ManifestWire.model_validate({"location": location, "data": body}))
            except ValidationError as exc:
                raise ValueError(f"manifests[{index}]: {field_errors(exc)}") from None
        return found


def field_errors(exc: ValidationError, *, limit: int = 10) -> str:
    """`loc: msg; ...` for a validation error, without the offending input (it may be a secret)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False)[:limit]:
        loc = ".".join(str(part) for part in error["loc"]) or "(body)"
        parts.append(f"{loc}: {error['msg']}")
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)


def field_error_list(exc: ValidationError, *, limit: int = 50) -> list[dict[str, str]]:
    """The same as `field_errors`, as a list of `{loc, msg}` for JSON bodies."""
    return [
        {"loc": ".".join(str(part) for part in error["loc"]) or "(body)", "msg": error["msg"]}
        for error in exc.errors(include_url=False, include_input=False, include_context=False)[:limit]
    ]
