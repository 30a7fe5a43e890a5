"""Driver: registers a remote driver that speaks the Driver API (v0.9.3)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import ConfigDict, Field, model_validator

from strongroom.api import constants as c
from strongroom.api.common import (
    ApiModel,
    Duration,
    HttpUrl,
    KubeObject,
    LocalObjectReference,
    ObjectStatus,
    PemCertificates,
    cel,
    parse_duration,
)

#: Driver types the operator runs in-process; they need no Driver object.
BUILTIN_DRIVER_TYPES = frozenset(
    {"humanitec/echo", "humanitec/template", "strongroom/echo", "strongroom/template"}
)

#: Keys the operator reads from the Secret named by `privateKeySecretRef`.
PRIVATE_KEY_SECRET_KEY = "privateKey"  # noqa: S105 (the name of a key, not a credential)
ORGANISATION_ID_SECRET_KEY = "organisationID"  # noqa: S105 (a key name)
#: The Humanitec Operator's name for the organisation id key, read when `organisationID` is absent.
HUMANITEC_ORGANISATION_ID_SECRET_KEY = "humanitecOrganisationID"  # noqa: S105 (a key name)


#: Bounds of `timeouts.request` and `timeouts.operation` (Go durations, as CEL's `duration()` reads them).
#: Floors, because a value such as `1ns` would otherwise end every call before it starts (or, read as zero,
#: mean "no limit"); ceilings, because one Resource waiting on a driver must not be tracked forever.
REQUEST_TIMEOUT_BOUNDS: Final = ("1s", "5m")
OPERATION_TIMEOUT_BOUNDS: Final = ("1s", "1h")
#: Bounds of `maxResponseBytes`: what the operator holds in memory for one answer.
MAX_RESPONSE_BYTES_MIN: Final = 1024
MAX_RESPONSE_BYTES_MAX: Final = 8 * 1024 * 1024
#: `allowedNamespaces: ["*"]` opens an operator-namespace Driver to every namespace.
ALL_NAMESPACES: Final = "*"
_NAMESPACE_OR_ALL: Final = rf"^({c.DNS1123_LABEL[1:-1]}|\*)$"


def _duration_rule(field: str, bounds: tuple[str, str]) -> dict[str, Any]:
    low, high = bounds
    return cel(
        f"!has(self.{field}) || (duration(self.{field}) >= duration('{low}') "
        f"&& duration(self.{field}) <= duration('{high}'))",
        f"{field} must be between {low} and {high}",
        field_path=f".{field}",
    )


def _check_duration(field: str, value: str | None, bounds: tuple[str, str]) -> None:
    if value is None:
        return
    low, high = (parse_duration(bound) for bound in bounds)
    if not low <= parse_duration(value) <= high:
        raise ValueError(f"{field} must be between {bounds[0]} and {bounds[1]}, not {value}")


class DriverTimeouts(ApiModel):
    """Time limits for talking to the driver."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _duration_rule("request", REQUEST_TIMEOUT_BOUNDS),
                _duration_rule("operation", OPERATION_TIMEOUT_BOUNDS),
            ]
        }
    )

    request: Duration | None = None
    """Limit for one HTTP request, from connecting to the last byte of the answer (1s to 5m); the
    operator's default (30s) if absent."""
    operation: Duration | None = None
    """Limit for a whole create, update or delete, polling after 202 included (1s to 1h); the operator's
    default (15m) if absent."""

    @model_validator(mode="after")
    def _bounded(self) -> DriverTimeouts:
        _check_duration("request", self.request, REQUEST_TIMEOUT_BOUNDS)
        _check_duration("operation", self.operation, OPERATION_TIMEOUT_BOUNDS)
        return self


class DriverTLS(ApiModel):
    """TLS settings for https targets."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!(has(self.caBundle) && has(self.insecureSkipVerify) && self.insecureSkipVerify)",
                    "caBundle and insecureSkipVerify: true exclude each other",
                )
            ]
        }
    )

    ca_bundle: PemCertificates | None = None
    insecure_skip_verify: bool | None = None
    """Do not verify the server certificate (tests only)."""

    @model_validator(mode="after")
    def _not_both(self) -> DriverTLS:
        if self.ca_bundle is not None and self.insecure_skip_verify:
            raise ValueError("caBundle and insecureSkipVerify: true exclude each other")
        return self


class DriverSpec(ApiModel):
    """Where the driver is and how to call it."""

    target: HttpUrl
    """Base URL; resources live at `{target}{guresid}`, so it normally ends with `/`."""
    timeouts: DriverTimeouts | None = None
    """Time limits; the operator's defaults if absent."""
    tls: DriverTLS | None = None
    """TLS settings for https targets."""
    sign: bool = True
    """Send a signed JWT (RS256) as `Authorization: Bearer`; true if absent."""
    private_key_secret_ref: LocalObjectReference | None = None
    """Secret with `privateKey` (PEM) and `organisationID` used to sign. Required for signing Drivers
    outside the operator namespace; Drivers in the operator namespace use the operator's own key
    (`strongroom-driver-key`) if absent."""
    allow_cluster_manifests: bool = False
    """Let this driver's answers create cluster-scoped objects (`cluster` manifests). Honoured only on a
    Driver in the operator namespace (the platform admin's); anywhere else such manifests are refused."""
    allowed_namespaces: (
        list[Annotated[str, Field(pattern=_NAMESPACE_OR_ALL, max_length=c.DNS1123_LABEL_MAX)]] | None
    ) = Field(default=None, max_length=1000, json_schema_extra={"x-kubernetes-list-type": "set"})
    """For a Driver in the operator namespace: the namespaces whose Resources may use it (`["*"]`: all).
    Absent or empty: only the operator namespace. A Driver in any other namespace serves that namespace
    alone, whatever this says."""
    max_response_bytes: int | None = Field(default=None, ge=MAX_RESPONSE_BYTES_MIN, le=MAX_RESPONSE_BYTES_MAX)
    """Largest answer read from this driver, in bytes, as sent and after decompression (1 KiB to 8 MiB);
    the operator's `--driver-max-response-bytes` (1 MiB) if absent. A larger answer fails the Resource
    with `DriverAnswerTooLarge`."""

    def allows(self, namespace: str) -> bool:
        """Whether `allowedNamespaces` names `namespace` (or `*`)."""
        names = self.allowed_namespaces or []
        return ALL_NAMESPACES in names or namespace in names


class DriverStatus(ObjectStatus):
    """Observed state of a Driver."""


class Driver(KubeObject[DriverSpec, DriverStatus]):
    """A remote driver the operator calls to provision Resources (PUT/GET/DELETE `{target}{guresid}`)."""

    KIND: ClassVar[str] = "Driver"
    PLURAL: ClassVar[str] = "drivers"

    kind: Literal["Driver"] = "Driver"
