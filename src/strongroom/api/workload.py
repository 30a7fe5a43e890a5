"""Workload (a Score v1b1 workload) and WorkloadPatch (JSON-Patch operations applied to one)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

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

# --- Score v1b1 rules --------------------------------------------------------------------------------------
#
# The rules of the Score v1b1 JSON schema (score-go's `schema/files/score-v1b1.json`), plus the rules of
# Kubernetes that would otherwise refuse the rendered objects later. Each is a pattern in the CRD (so the API
# server refuses it at once) and a check here with a message that names the rule, so `strongroom render`,
# the operator and `kubectl apply` refuse exactly the same things. docs/workloads.md lists them.


def _rule(pattern: str, message: str, max_length: int) -> tuple[Any, Any, Any]:
    """Length bound, schema pattern (for the CRD) and a check with a readable message (pydantic's own
    message quotes the regex)."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError("score_rule", message)
        return value

    schema = WithJsonSchema({"type": "string", "pattern": pattern, "maxLength": max_length})
    return Field(max_length=max_length), schema, AfterValidator(check)


#: Score's name of containers, service ports, resources and the workload: an RFC 1123 label of 2-63 chars.
SCORE_NAME = r"^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$"
_SCORE_NAME_RULE = _rule(
    SCORE_NAME,
    "must be 2 to 63 lower-case letters, digits or '-', starting and ending with a letter or digit "
    "(Score: an RFC 1123 label of at least 2 characters)",
    63,
)
#: Score resource types and classes: as SCORE_NAME, upper-case letters allowed.
SCORE_TYPE = r"^[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9]$"
_SCORE_TYPE_RULE = _rule(
    SCORE_TYPE,
    "must be 2 to 63 letters, digits or '-', starting and ending with a letter or digit (Score)",
    63,
)
#: Score resource ids: dot-separated labels of a-z, 0-9 and '-' (not at either end), 2 to 63 characters.
SCORE_RESOURCE_ID = r"^[a-z0-9]+(?:-+[a-z0-9]+)*(?:\.[a-z0-9]+(?:-+[a-z0-9]+)*)*$"
SCORE_RESOURCE_ID_MAX = 63
#: Annotation keys (Score): an optional DNS prefix and '/', then 2-63 letters, digits, '.', '_' or '-'.
ANNOTATION_KEY = (
    r"^(([a-z0-9][a-z0-9-]{0,61}[a-z0-9])(\.[a-z0-9][a-z0-9-]{0,61}[a-z0-9])*/)?"
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,61}[A-Za-z0-9]$"
)
#: Kubernetes: the prefix of a qualified name is a DNS subdomain of at most 253 characters.
ANNOTATION_PREFIX_MAX = 253
#: Kubernetes: all annotations of one object together, keys and values, at most 256 KiB.
ANNOTATIONS_TOTAL_MAX = 256 * 1024
#: Environment variable names: Score refuses '='; Kubernetes takes printable ASCII only.
ENV_VAR_NAME = r"^[ -<>-~]+$"
#: Score CPU quantities: whole or fractional CPUs, or milli-CPUs (`2`, `0.5`, `125m`).
CPU_QUANTITY = r"^\d+(?:m|\.\d+)?$"
#: Score memory quantities: bytes with an optional unit (`125M`, `1.5Gi`).
MEMORY_QUANTITY = r"^(0\.\d+|[1-9]\d*(\.\d+)?)(K|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
#: The placeholder image: score-k8s replaces it with `--image`; so do `strongroom render/deploy`.
PLACEHOLDER_IMAGE = "."


def _annotation_key(key: str) -> str:
    prefix, slash, _ = key.rpartition("/")
    if slash and len(prefix) > ANNOTATION_PREFIX_MAX:
        raise PydanticCustomError(
            "k8s_rule",
            f"the prefix before '/' has more than {ANNOTATION_PREFIX_MAX} characters "
            "(Kubernetes: the prefix of an annotation key is a DNS subdomain)",
        )
    return key


ScoreName = Annotated[str, *_SCORE_NAME_RULE]
ContainerName = ScoreName
PortName = ScoreName
ScoreResourceName = ScoreName
ScoreType = Annotated[str, *_SCORE_TYPE_RULE]
EnvVarName = Annotated[
    str,
    *_rule(
        ENV_VAR_NAME,
        "must be printable ASCII characters other than '=' (Score refuses '='; Kubernetes takes printable "
        "ASCII only)",
        256,
    ),
]
AnnotationKey = Annotated[
    str,
    *_rule(
        ANNOTATION_KEY,
        "must be an optional DNS prefix and '/', then 2 to 63 letters, digits, '.', '_' or '-', starting "
        "and ending with a letter or digit (Score's annotation key)",
        316,
    ),
    AfterValidator(_annotation_key),
]
Annotations = dict[AnnotationKey, str]
# Absolute or relative, as score-k8s writes it: Kubernetes only requires a mountPath (the kubelet mounts a
# relative one below the container's root, `conf/app.conf` at `/conf/app.conf`).
MountPath = Annotated[str, Field(min_length=1, max_length=4096)]
CpuQuantity = Annotated[
    str,
    *_rule(CPU_QUANTITY, "must be whole or fractional CPUs or milli-CPUs, e.g. 2, 0.5 or 125m (Score)", 64),
]
MemoryQuantity = Annotated[
    str,
    *_rule(
        MEMORY_QUANTITY,
        "must be a positive number of bytes with an optional unit K, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi or "
        "Ei, e.g. 128Mi or 1.5G (Score)",
        64,
    ),
]
#: A port: an integer (a string such as "80" is refused, as the Score schema does).
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]


def _check_annotations_size(annotations: dict[str, str]) -> dict[str, str]:
    size = sum(len(key) + len(value) for key, value in annotations.items())
    if size > ANNOTATIONS_TOTAL_MAX:
        raise ValueError(
            f"annotations take {size} bytes (Kubernetes: all annotations of an object together may take "
            f"at most {ANNOTATIONS_TOTAL_MAX} bytes)"
        )
    return annotations


#: Annotations of one object: valid keys, at most 256 of them, within Kubernetes' total size.
ObjectAnnotations = Annotated[Annotations, Field(max_length=256), AfterValidator(_check_annotations_size)]


_QUANTITY_UNITS: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    **{unit: Decimal(1000) ** power for power, unit in enumerate("KMGTPE", start=1)},
    **{f"{unit}i": Decimal(1024) ** power for power, unit in enumerate("KMGTPE", start=1)},
}


def quantity_value(text: str) -> Decimal:
    """The value of a Score cpu or memory quantity (already checked against its pattern)."""
    number = text.rstrip("KMGTPEim")
    return Decimal(number) * _QUANTITY_UNITS[text[len(number) :]]


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
    """Inline content, standard base64; never expanded."""
    source: str | None = Field(default=None, min_length=1, max_length=4096)
    """Path relative to the Score file; the orchestrator inlines it as content before writing the CR."""
    no_expand: StrictBool | None = None
    """Do not expand placeholders in content."""

    @field_validator("binary_content")
    @classmethod
    def _base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("is not valid standard base64 (Score: binaryContent)") from None
        return value

    @model_validator(mode="after")
    def _one_content(self) -> ContainerFile:
        if count_set(self, "content", "binary_content", "source") != 1:
            raise ValueError("exactly one of content, binaryContent or source must be set")
        return self


#: A relative path without `..` segments (Kubernetes' rule for a volume mount's subPath).
_SEGMENT = r"(?:[^./][^/]*|\.(?:[^./][^/]*)?|\.\.[^/]+)"
SUB_PATH = rf"^(?:{_SEGMENT}(?:/+{_SEGMENT})*/*)?$"


class ContainerVolume(ApiModel):
    """A volume mounted into the container."""

    source: str = Field(min_length=1, max_length=1024)
    """The volume: a resource placeholder such as `${resources.data}`, or the name of a volume."""
    path: (
        Annotated[
            str,
            *_rule(
                SUB_PATH,
                "must be a relative path without '..' (Kubernetes: a volume mount's subPath stays inside "
                "the volume)",
                4096,
            ),
        ]
        | None
    ) = None
    """Sub-path within the volume."""
    read_only: StrictBool | None = None
    """Mount read-only."""


class ResourceQuantities(ApiModel):
    """CPU and memory quantities (Score's units)."""

    cpu: CpuQuantity | None = None
    memory: MemoryQuantity | None = None


class ContainerResources(ApiModel):
    """Compute resources of the container."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"!has(self.requests) || !has(self.limits) || !has(self.requests.{kind}) || "
                    f"!has(self.limits.{kind}) || quantity(self.requests.{kind})"
                    f".compareTo(quantity(self.limits.{kind})) <= 0",
                    f"requests.{kind} must be less than or equal to limits.{kind} (Kubernetes)",
                )
                for kind in ("cpu", "memory")
            ]
        }
    )

    limits: ResourceQuantities | None = None
    requests: ResourceQuantities | None = None

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ContainerResources:
        for kind in ("cpu", "memory"):
            request = getattr(self.requests, kind, None) if self.requests else None
            limit = getattr(self.limits, kind, None) if self.limits else None
            if request is not None and limit is not None and quantity_value(request) > quantity_value(limit):
                raise ValueError(
                    f"requests.{kind} {request} is more than limits.{kind} {limit} (Kubernetes: a request "
                    "must be less than or equal to its limit)"
                )
        return self


class HttpHeader(ApiModel):
    """An HTTP header sent by a probe."""

    name: Annotated[
        str,
        *_rule(
            r"^[-A-Za-z0-9]+$",
            "must be letters, digits and '-' (Score also allows '_', which Kubernetes refuses in an HTTP "
            "header name)",
            256,
        ),
    ]
    value: str = Field(min_length=1, max_length=4096)


class HttpProbe(ApiModel):
    """Probe by HTTP GET; success is a 2xx or 3xx status."""

    host: str | None = Field(default=None, min_length=1, max_length=253)
    """Host to connect to; the pod IP if absent."""
    scheme: Literal["HTTP", "HTTPS"] | None = None
    """HTTP if absent."""
    path: str = Field(max_length=2048)
    """Path to request."""
    port: Port
    """Port to connect to."""
    http_headers: list[HttpHeader] | None = Field(default=None, max_length=32)
    """Extra request headers."""


class ExecProbe(ApiModel):
    """Probe by running a command in the container; success is exit code 0."""

    command: list[str] = Field(min_length=1, max_length=256)
    """Command and arguments (Kubernetes needs at least one item)."""


class ContainerProbe(ApiModel):
    """A liveness or readiness probe: httpGet, exec, or both (then httpGet is used, as score-k8s does)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.httpGet) || has(self.exec)",
                    "httpGet or exec must be set (Kubernetes: a probe must specify a handler type)",
                )
            ]
        }
    )

    http_get: HttpProbe | None = None
    exec: ExecProbe | None = None

    @model_validator(mode="after")
    def _a_handler(self) -> ContainerProbe:
        if self.http_get is None and self.exec is None:
            raise ValueError("httpGet or exec must be set (Kubernetes: a probe must specify a handler type)")
        return self


class ContainerBefore(ApiModel):
    """When a container that must start before this one counts as started (Score `before`)."""

    ready: Literal["started", "healthy", "complete"]


class Container(ApiModel):
    """A container of the workload (Score `containers.<name>`)."""

    image: Annotated[
        str,
        Field(min_length=1),
        *_rule(r"^\S(.*\S)?$", "must not start or end with whitespace (Kubernetes)", 1024),
    ]
    """Image reference; `.` is the placeholder that `strongroom render/deploy --image` replaces."""

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
    before: dict[ContainerName, ContainerBefore] | None = Field(default=None, max_length=32)
    """Containers of this workload that must be started before this one, and when they count as started."""

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
