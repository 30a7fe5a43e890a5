"""Workload (a Score v1b1 workload) and WorkloadPatch (JSON-Patch operations applied to one)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from strongroom.api import constants as c
from strongroom.api.common import (
    ApiModel,
    FreeForm,
    KubeObject,
    ObjectName,
    ObjectReference,
    ObjectStatus,
    cel,
    count_set,
    exactly_one_of_rule,
)

# Keys of typed maps. A pattern on a dict key becomes a CEL rule on the map in the CRD (structural schemas
# have no `propertyNames`), so every such map also carries a maxProperties bound to keep CEL cost low.
ContainerName = Annotated[str, Field(pattern=c.DNS1123_LABEL, max_length=c.DNS1123_LABEL_MAX)]
PortName = Annotated[str, Field(pattern=c.DNS1123_LABEL, max_length=c.DNS1123_LABEL_MAX)]
EnvVarName = Annotated[str, Field(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$", max_length=256)]
MountPath = Annotated[str, Field(pattern=r"^/", max_length=4096)]
ScoreResourceName = Annotated[str, Field(pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_]*[A-Za-z0-9])?$", max_length=63)]

#: Kubernetes quantity syntax (e.g. 500m, 1.5, 128Mi, 1G).
QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
Quantity = Annotated[str, Field(pattern=QUANTITY, max_length=64)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _by_target(value: Any, what: str) -> Any:
    """Score's older list form (`[{target: ..., ...}]`) as the map form keyed by target."""
    if not isinstance(value, list):
        return value
    as_map: dict[str, Any] = {}
    for item in value:
        if not isinstance(item, dict) or "target" not in item:
            raise ValueError(f"each entry of the {what} list needs a target")
        entry = {key: val for key, val in item.items() if key != "target"}
        if "read_only" in entry:  # the list form spelled it in snake case
            entry["readOnly"] = entry.pop("read_only")
        if item["target"] in as_map:
            raise ValueError(f"duplicate {what} target {item['target']!r}")
        as_map[item["target"]] = entry
    return as_map


class ContainerFile(ApiModel):
    """A file mounted into the container; exactly one of content, binaryContent or source."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    exactly_one_of_rule("content", "binaryContent", "source"),
                    "exactly one of content, binaryContent or source must be set",
                )
            ]
        }
    )

    mode: str | None = Field(default=None, pattern=r"^0?[0-7]{3}$", max_length=4)
    """Octal file mode, e.g. `0644`."""
    content: str | None = Field(default=None, max_length=1048576)
    """Inline content; `${...}` placeholders are expanded unless noExpand."""
    binary_content: str | None = Field(default=None, max_length=1048576)
    """Inline content, base64-encoded; never expanded."""
    source: str | None = Field(default=None, min_length=1, max_length=4096)
    """Path relative to the Score file; the orchestrator inlines it as content before writing the CR."""
    no_expand: bool | None = None
    """Do not expand placeholders in content."""

    @model_validator(mode="after")
    def _one_content(self) -> ContainerFile:
        if count_set(self, "content", "binary_content", "source") != 1:
            raise ValueError("exactly one of content, binaryContent or source must be set")
        return self


class ContainerVolume(ApiModel):
    """A volume mounted into the container."""

    source: str = Field(min_length=1, max_length=1024)
    """The volume: a resource placeholder such as `${resources.data}`, or the name of a volume."""
    path: str | None = Field(default=None, max_length=4096)
    """Sub-path within the volume."""
    read_only: bool | None = None
    """Mount read-only."""


class ResourceQuantities(ApiModel):
    """CPU and memory quantities."""

    cpu: Quantity | None = None
    memory: Quantity | None = None


class ContainerResources(ApiModel):
    """Compute resources of the container."""

    limits: ResourceQuantities | None = None
    requests: ResourceQuantities | None = None


class HttpHeader(ApiModel):
    """An HTTP header sent by a probe."""

    name: str = Field(pattern=r"^[-!#$%&'*+.^_`|~0-9A-Za-z]+$", max_length=256)
    value: str = Field(max_length=4096)


class HttpProbe(ApiModel):
    """Probe by HTTP GET; success is a 2xx or 3xx status."""

    host: str | None = Field(default=None, max_length=253)
    """Host to connect to; the pod IP if absent."""
    scheme: Literal["HTTP", "HTTPS"] | None = None
    """HTTP if absent."""
    path: str = Field(pattern=r"^/", max_length=2048)
    """Path to request."""
    port: Port | None = None
    """Port to connect to."""
    http_headers: list[HttpHeader] | None = Field(default=None, max_length=32)
    """Extra request headers."""


class ExecProbe(ApiModel):
    """Probe by running a command in the container; success is exit code 0."""

    command: list[str] = Field(min_length=1, max_length=256)


class ContainerProbe(ApiModel):
    """A liveness or readiness probe: exactly one of httpGet or exec."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(exactly_one_of_rule("httpGet", "exec"), "exactly one of httpGet or exec must be set")
            ]
        }
    )

    http_get: HttpProbe | None = None
    exec: ExecProbe | None = None

    @model_validator(mode="after")
    def _one_handler(self) -> ContainerProbe:
        if count_set(self, "http_get", "exec") != 1:
            raise ValueError("exactly one of httpGet or exec must be set")
        return self


class Container(ApiModel):
    """A container of the workload (Score `containers.<name>`)."""

    image: str = Field(min_length=1, max_length=1024)
    """Image reference."""
    command: list[str] | None = Field(default=None, max_length=256)
    """Overrides the image's entrypoint."""
    args: list[str] | None = Field(default=None, max_length=1024)
    """Overrides the image's arguments."""
    variables: dict[EnvVarName, str] | None = Field(default=None, max_length=1024)
    """Environment variables; values may hold `${...}` placeholders (resource outputs, secrets)."""
    files: dict[MountPath, ContainerFile] | None = Field(default=None, max_length=256)
    """Files to mount, by target path. Score's list form (`- target: ...`) is accepted by the models and
    converted; the CRD stores the map form."""
    volumes: dict[MountPath, ContainerVolume] | None = Field(default=None, max_length=256)
    """Volumes to mount, by target path. Score's list form is accepted by the models and converted."""
    resources: ContainerResources | None = None
    """CPU and memory requests and limits."""
    liveness_probe: ContainerProbe | None = None
    readiness_probe: ContainerProbe | None = None

    @field_validator("files", mode="before")
    @classmethod
    def _files_by_target(cls, value: Any) -> Any:
        return _by_target(value, "files")

    @field_validator("volumes", mode="before")
    @classmethod
    def _volumes_by_target(cls, value: Any) -> Any:
        return _by_target(value, "volumes")


class ServicePort(ApiModel):
    """A port the workload's Service exposes."""

    port: Port
    """Port of the Service."""
    protocol: Literal["TCP", "UDP", "SCTP"] | None = None
    """TCP if absent."""
    target_port: Port | None = None
    """Container port; same as port if absent."""


class Service(ApiModel):
    """The Service in front of the workload."""

    ports: dict[PortName, ServicePort] = Field(min_length=1, max_length=64)
    """Ports by name."""


class ScoreResource(ApiModel):
    """A resource the workload depends on (Score `resources.<name>`); provisioned as a Resource."""

    type: str = Field(min_length=1, max_length=100)
    """Resource type, e.g. `postgres`."""
    class_: str | None = Field(default=None, alias="class", pattern=c.RESOURCE_ID, max_length=253)
    """Resource class; `default` if absent."""
    id: str | None = Field(default=None, pattern=c.RESOURCE_ID, max_length=253)
    """Id of a resource shared between workloads."""
    metadata: FreeForm | None = None
    """Annotations and other metadata of the resource."""
    params: FreeForm | None = None
    """Parameters for provisioning."""


class WorkloadMetadata(ApiModel):
    """Score workload metadata: `name`, `annotations` and any other keys (usable as `${metadata.KEY}`)."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, pattern=c.DNS1123_LABEL, max_length=c.DNS1123_LABEL_MAX)
    """Workload name; the object's name if absent."""
    annotations: dict[str, str] | None = None
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
    rollout_on_secret_change: bool = True
    """Roll pods when a Secret they use changes; true if absent."""


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


# --- WorkloadPatch ----------------------------------------------------------------------------------------


class JsonPatchOperation(ApiModel):
    """One RFC 6902 operation.

    Whether `value` is present is checked in code only: `value` may be any JSON value, and CEL cannot see
    fields without a type, so the API server cannot enforce it.
    """

    op: Literal["add", "remove", "replace"]
    """Operation."""
    path: str = Field(pattern=c.WORKLOAD_PATCH_PATH, max_length=4096)
    """JSON pointer into the Workload object, starting with `/spec` (as Humanitec `update` outputs do)."""
    value: Any = None
    """Value for add and replace."""

    @model_validator(mode="after")
    def _value_presence(self) -> JsonPatchOperation:
        has_value = "value" in self.model_fields_set
        if self.op == "remove" and has_value:
            raise ValueError("value is not allowed for remove")
        if self.op != "remove" and not has_value:
            raise ValueError(f"value is required for {self.op}")
        return self


class WorkloadPatchSpec(ApiModel):
    """Operations against one Workload."""

    workload_name: ObjectName
    """Name of the Workload (same namespace)."""
    priority: int = Field(default=0, ge=-1000000, le=1000000, json_schema_extra={"format": "int32"})
    """Order among patches of the same Workload: lower first, then by name; 0 if absent."""
    patches: list[JsonPatchOperation] = Field(min_length=1, max_length=256)
    """Operations, applied in order."""


class WorkloadPatchStatus(ObjectStatus):
    """Observed state of a WorkloadPatch."""


class WorkloadPatch(KubeObject[WorkloadPatchSpec, WorkloadPatchStatus]):
    """JSON-Patch operations applied to a Workload's spec before it is rendered."""

    KIND: ClassVar[str] = "WorkloadPatch"
    PLURAL: ClassVar[str] = "workloadpatches"

    kind: Literal["WorkloadPatch"] = "WorkloadPatch"

    @property
    def sort_key(self) -> tuple[int, str]:
        """Key for the stable order in which patches apply: priority, then name."""
        return (self.spec.priority, self.name)


def ordered_patches(patches: Iterable[WorkloadPatch]) -> list[WorkloadPatch]:
    """Patches in the order they apply to their Workload."""
    return sorted(patches, key=lambda patch: patch.sort_key)
