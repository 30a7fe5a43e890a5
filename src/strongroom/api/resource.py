"""Resource: one resource the operator provisions through a driver."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from strongroom.api import constants as c
from strongroom.api.common import (
    ApiModel,
    FreeForm,
    KubeObject,
    ObjectName,
    ObjectReference,
    ObjectStatus,
    SecretReference,
    SecretRefTree,
    cel,
)

#: Most objects one Resource's `namespace` and `cluster` manifests may make (recorded in the status).
MANIFESTS_MAX = 1024
#: Class used when `spec.class` is absent.
DEFAULT_CLASS = "default"


def private_resource_id(workload: str, name: str) -> str:
    """Humanitec's id for a resource only one workload uses (a Score resource without `id`).

    One definition for both sides: the orchestrator names the Resources it emits with it, and the
    operator's Workload controller finds them with it.
    """
    return f"modules.{workload}.externals.{name}"


def derive_guresid(namespace: str, resource_type: str, resource_class: str, resource_id: str) -> str:
    """The GUResID of a resource: 40 hex digits of a digest over its namespace, type, class and id.

    The one derivation both sides use: the operator calls drivers with it, and the orchestrator (direct
    mode, `${context.res.guresid}`) computes the same id for the same Resource, so switching modes finds
    what the other provisioned. Bound to the namespace, so a Resource can only ever address driver
    resources of its own namespace. Deterministic, so a restarted operator (or a re-created Resource)
    calls the driver with the same id; the object's uid is left out on purpose: deleting and re-creating
    a Resource addresses the same resource, as Humanitec's GUResIDs do for the same type and id.
    """
    text = "\x00".join(("strongroom.dev/guresid/v1", namespace, resource_type, resource_class, resource_id))
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _immutable(field: str) -> dict[str, Any]:
    # Changing what a Resource *is* would orphan what the driver provisioned under the old identity, so
    # these fields can only change by deleting the Resource (which deprovisions) and creating a new one.
    return {"x-kubernetes-validations": [cel("self == oldSelf", f"{field} is immutable")]}


#: Most top-level keys of a free-form input object (`driverInputs.values`/`secrets`, `resourceInputs`).
INPUTS_MAX_PROPERTIES = 256
#: Most bytes (compact JSON) of `driverInputs.values` + `secrets` + `resourceInputs` once placeholders are
#: resolved: every byte is sent to, or rendered by, a driver on each call, by one process serving everyone.
DRIVER_INPUTS_MAX_BYTES = 256 * 1024


def inputs_too_large(trees: Mapping[str, Any]) -> str | None:
    """Why the inputs (name -> tree) are over DRIVER_INPUTS_MAX_BYTES, or None when they are not."""
    sizes = {
        name: len(json.dumps(tree, separators=(",", ":"), ensure_ascii=False, default=str).encode())
        for name, tree in trees.items()
    }
    total = sum(sizes.values())
    if total <= DRIVER_INPUTS_MAX_BYTES:
        return None
    parts = ", ".join(f"{name} {size} bytes" for name, size in sizes.items() if size)
    return (
        f"the driver inputs are {total} bytes once placeholders are resolved ({parts}), over the limit of "
        f"{DRIVER_INPUTS_MAX_BYTES} bytes; keep large data where the driver can read it instead"
    )


class DriverInputs(ApiModel):
    """Inputs for the driver; placeholders and secret references are resolved by the operator."""

    values: FreeForm | None = Field(default=None, max_length=INPUTS_MAX_PROPERTIES)
    """Non-secret inputs (`driver.values` in the Driver API)."""
    secrets: FreeForm | None = Field(default=None, max_length=INPUTS_MAX_PROPERTIES)
    """Inputs passed as `driver.secrets`, e.g. Template driver `templates`. Holds no secret values:
    those come from `secretRefs`, which are resolved and merged in here."""
    secret_refs: SecretRefTree | None = None
    """Secret references resolved into `driver.secrets` at the same paths."""


class ResourceSpec(ApiModel):
    """What to provision and with which driver."""

    type: str = Field(pattern=c.RESOURCE_TYPE, max_length=100, json_schema_extra=_immutable("type"))
    """Resource type, e.g. `postgres`, `dns`, `s3`. Immutable."""
    id: str = Field(pattern=c.RESOURCE_ID, max_length=253, json_schema_extra=_immutable("id"))
    """Resource id, e.g. `shared.db` or `modules.api.externals.cache`. Immutable."""
    class_: str | None = Field(
        default=None,
        alias="class",
        pattern=c.RESOURCE_ID,
        max_length=253,
        json_schema_extra=_immutable("class"),
    )
    """Resource class; `default` if absent. Immutable once set."""
    guresid: str | None = Field(
        default=None, pattern=c.GURESID, max_length=c.GURESID_MAX, json_schema_extra=_immutable("guresid")
    )
    """Stable id the driver knows the resource by; derived from namespace, type, class and id if absent.
    Honoured only in namespaces the platform admin lists in the operator's `--explicit-guresid-namespaces`
    (elsewhere the Resource gets `GuresidNotAllowed`). Immutable once set."""
    driver_type: str = Field(pattern=c.DRIVER_TYPE, max_length=253)
    """Built-in driver (`humanitec/echo`, `humanitec/template`, `strongroom/echo`, `strongroom/template`)
    or the name of a Driver object in this namespace."""
    driver_inputs: DriverInputs | None = None
    """Inputs for the driver."""
    resource_inputs: FreeForm | None = Field(default=None, max_length=INPUTS_MAX_PROPERTIES)
    """Resource inputs (`resource` in the Driver API), e.g. a workload spec for `workload` resources."""
    in_place_driver_change: bool = False
    """When `driverType` changes, let the new driver take over instead of deprovisioning with the old one."""

    @property
    def resource_class(self) -> str:
        """`class`, or `default` if absent."""
        return self.class_ or DEFAULT_CLASS


class ResourceOutputs(ApiModel):
    """What the driver returned; secrets only as references."""

    values: FreeForm | None = None
    """Non-secret outputs."""
    secret_refs: SecretRefTree | None = None
    """Where the secret outputs were written (the default store), by output key."""


class AppliedManifest(ObjectReference):
    """An object applied from a driver's manifests."""

    location: Literal["namespace", "cluster"] | None = None
    """Manifest location the object came from."""


class ResourceStatus(ObjectStatus):
    """Observed state of a Resource."""

    guresid: str | None = Field(default=None, max_length=c.GURESID_MAX)
    """The GUResID the driver was called with."""
    driver_type: str | None = Field(default=None, max_length=253)
    """The driver that provisioned the current state (to detect driver changes)."""
    inputs_hash: str | None = Field(default=None, max_length=128)
    """Hash of the resolved inputs last sent to the driver (a digest, not the inputs)."""
    outputs: ResourceOutputs | None = None
    """Outputs of the last successful provisioning."""
    secret_name: ObjectName | None = None
    """Kubernetes Secret (same namespace) holding the secret outputs for workloads."""
    manifests: list[AppliedManifest] | None = Field(default=None, max_length=MANIFESTS_MAX)
    """Objects applied from the driver's `namespace` and `cluster` manifests."""
    cookie_ref: SecretReference | None = None
    """Where the driver cookie is kept (the default store)."""
    last_applied_time: datetime | None = None
    """When the driver last answered a PUT successfully; the periodic resync counts from here, so it
    survives operator restarts."""
    seal: str | None = Field(default=None, max_length=128)
    """HMAC (the operator's key) over the Resource's uid and the fields the operator acts on later
    (`guresid`, `driverType`, `inputsHash`, `outputs.secretRefs`, `cookieRef`, `manifests`, `secretName`):
    a status altered by anyone else is not trusted."""


class Resource(KubeObject[ResourceSpec, ResourceStatus]):
    """One resource provisioned through a driver (built-in echo/template, or a remote Driver)."""

    KIND: ClassVar[str] = "Resource"
    PLURAL: ClassVar[str] = "resources"

    kind: Literal["Resource"] = "Resource"
