"""Driver: registers a remote driver that speaks the Driver API (v0.9.3)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, model_validator

from strongroom.api.common import (
    ApiModel,
    Duration,
    HttpUrl,
    KubeObject,
    LocalObjectReference,
    ObjectStatus,
    PemCertificates,
    cel,
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


class DriverTimeouts(ApiModel):
    """Time limits for talking to the driver."""

    request: Duration | None = None
    """Limit for one HTTP request; the operator's default if absent."""
    operation: Duration | None = None
    """Limit for a whole create, update or delete, polling after 202 included; the operator's default if
    absent."""


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
    """Secret with `privateKey` (PEM) and `organisationID` used to sign; the operator's own if absent."""
    allow_cluster_manifests: bool = False
    """Let this driver's answers create cluster-scoped objects (`cluster` manifests). Honoured only on a
    Driver in the operator namespace (the platform admin's); anywhere else such manifests are refused."""


class DriverStatus(ObjectStatus):
    """Observed state of a Driver."""


class Driver(KubeObject[DriverSpec, DriverStatus]):
    """A remote driver the operator calls to provision Resources (PUT/GET/DELETE `{target}{guresid}`)."""

    KIND: ClassVar[str] = "Driver"
    PLURAL: ClassVar[str] = "drivers"

    kind: Literal["Driver"] = "Driver"
