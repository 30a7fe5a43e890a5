"""The Workload kind: the top-level Score spec (metadata, containers, service, resources) and its status.

The Service and resources of a workload are here with the spec they belong to; the containers are in
`container`, the field rules in `rules`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, StrictBool, field_validator, model_validator

from strongroom.api import constants as c
from strongroom.api.common import (
    ApiModel,
    FreeForm,
    KubeObject,
    ObjectName,
    ObjectReference,
    ObjectStatus,
    cel,
)
from strongroom.api.workload.container import Container
from strongroom.api.workload.rules import (
    ContainerName,
    ObjectAnnotations,
    Port,
    PortName,
    ScoreName,
    ScoreResourceName,
    ScoreType,
)


class ServicePort(ApiModel):
    """A port the workload's Service exposes."""

    port: Port
    """Port of the Service."""
    protocol: Literal["TCP", "UDP"] | None = None
    """TCP if absent."""
    target_port: Port | None = None
    """Container port; same as port if absent."""


class Service(ApiModel):
    """The Service in front of the workload; no Service is rendered without ports."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.ports) || self.ports.all(a, self.ports.all(b, a == b || "
                    "self.ports[a].port != self.ports[b].port || "
                    "(has(self.ports[a].protocol) ? self.ports[a].protocol : 'TCP') != "
                    "(has(self.ports[b].protocol) ? self.ports[b].protocol : 'TCP')))",
                    "two ports expose the same port and protocol (Kubernetes: a Service port and protocol "
                    "may appear once)",
                )
            ]
        }
    )

    ports: dict[PortName, ServicePort] | None = Field(default=None, max_length=64)
    """Ports by name."""

    @field_validator("ports")
    @classmethod
    def _distinct(cls, value: dict[str, ServicePort] | None) -> dict[str, ServicePort] | None:
        seen: dict[tuple[int, str], str] = {}
        for name in sorted(value or {}):
            port = (value or {})[name]
            key = (port.port, port.protocol or "TCP")
            if key in seen:
                raise ValueError(
                    f"{seen[key]} and {name} both expose {key[0]}/{key[1]} (Kubernetes: a Service port and "
                    "protocol may appear once)"
                )
            seen[key] = name
        return value


class ResourceMetadata(ApiModel):
    """Score resource metadata: `annotations` (put on the Resource object) and any other keys."""

    model_config = ConfigDict(extra="allow")

    annotations: ObjectAnnotations | None = None
    """Annotations of the resource; `strongroom render/deploy` puts them on the Resource object."""


class ScoreResource(ApiModel):
    """A resource the workload depends on (Score `resources.<name>`); provisioned as a Resource."""

    type: ScoreType
    """Resource type, e.g. `postgres`."""
    class_: ScoreType | None = Field(default=None, alias="class")
    """Resource class; `default` if absent."""
    id: str | None = Field(default=None, pattern=c.RESOURCE_ID, max_length=253)
    """Id of a resource shared between workloads (in a Score file: Score's id rule, at most 63 characters;
    the orchestrator writes the full id such as `shared.<id>` here)."""
    metadata: ResourceMetadata | None = None
    """Annotations and other metadata of the resource."""
    params: FreeForm | None = None
    """Parameters for provisioning."""


class WorkloadMetadata(ApiModel):
    """Score workload metadata: `name`, `annotations` and any other keys (usable as `${metadata.KEY}`)."""

    model_config = ConfigDict(extra="allow")

    name: ScoreName | None = None
    """Workload name; the object's name if absent."""
    annotations: ObjectAnnotations | None = None
    """Annotations passed on to the rendered objects."""


class WorkloadSpec(ApiModel):
    """A Score v1b1 workload (score.dev), without apiVersion."""

    metadata: WorkloadMetadata | None = None
    """Score metadata."""
    containers: dict[ContainerName, Container] = Field(min_length=1, max_length=32)
    """Containers by name."""
    service: Service | None = None
    """Service to expose; none if absent."""
    resources: dict[ScoreResourceName, ScoreResource] | None = Field(default=None, max_length=256)
    """Resources the workload depends on, by name."""
    rollout_on_secret_change: StrictBool = True
    """Roll pods when a Secret they use changes; true if absent (strongroom extension)."""
    replicas: int | None = Field(
        default=None, ge=0, le=2147483647, strict=True, json_schema_extra={"format": "int32"}
    )
    """Replicas of the Deployment (strongroom extension, e.g. set by a WorkloadPatch); left to Kubernetes
    (and to a HorizontalPodAutoscaler) if absent."""

    @model_validator(mode="after")
    def _before_names_containers(self) -> WorkloadSpec:
        for cname, container in self.containers.items():
            for other in container.before or {}:
                if other == cname or other not in self.containers:
                    raise ValueError(
                        f"containers.{cname}.before.{other}: must name another container of this workload"
                    )
        return self


class WorkloadStatus(ObjectStatus):
    """Observed state of a Workload."""

    objects: list[ObjectReference] | None = Field(default=None, max_length=1024)
    """Objects rendered from the workload (Deployment, Service, ConfigMaps, ...)."""
    patches: list[ObjectName] | None = Field(default=None, max_length=1024)
    """WorkloadPatches applied, in the order they were applied."""


class Workload(KubeObject[WorkloadSpec, WorkloadStatus]):
    """A Score workload the operator renders into a Deployment (+ Service, ConfigMaps) in its namespace."""

    KIND: ClassVar[str] = "Workload"
    PLURAL: ClassVar[str] = "workloads"

    kind: Literal["Workload"] = "Workload"
