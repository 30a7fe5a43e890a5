"""The WorkloadPatch kind: JSON-Patch operations applied to one Workload's spec, and the order they apply."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from strongroom.api import constants as c
from strongroom.api.common import ApiModel, KubeObject, ObjectName, ObjectStatus


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
