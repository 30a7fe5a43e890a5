"""A container of a Score workload: image and command, env variables, files, volumes, compute resources,
probes and `before`.

Everything the Workload model says about one container (Score `containers.<name>`), with the Score list
forms of files and volumes accepted and converted to the map form the CRD stores.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StrictBool, field_validator, model_validator

from strongroom.api.common import ApiModel, cel, count_set, exactly_one_of_rule
from strongroom.api.workload.rules import (
    ContainerName,
    CpuQuantity,
    EnvVarName,
    MemoryQuantity,
    MountPath,
    Port,
    quantity_value,
    rule,
)


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
            *rule(
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
        *rule(
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
        *rule(r"^\S(.*\S)?$", "must not start or end with whitespace (Kubernetes)", 1024),
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
