"""What planning produces: the resource graph and the workloads of one environment, and their identities.

A `Plan` is plain data: emit turns it into the CR set, direct mode executes it. The constants name the
resource types and keys that planning, emit and the operator agree on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.api.driver import BUILTIN_DRIVER_TYPES
from strongroom.orchestrator import naming
from strongroom.orchestrator.inputs import ResourceDefinition
from strongroom.reconcile.resource import PENDING_ANNOTATION

ENVIRONMENT_TYPE = "environment"
ENVIRONMENT_ID = "shared.values"
WORKLOAD_TYPE = "workload"
#: Key of a workload's own workload-type resource in the Workload's `spec.resources` (when in-cluster).
WORKLOAD_RESOURCE_KEY = "workload"
#: Resource input naming the Workload that a workload-type resource's `update` patches (read by the operator).
WORKLOAD_NAME_INPUT = "workloadName"
ECHO_DRIVERS = frozenset({"humanitec/echo", "strongroom/echo"})
#: Annotations strongroom itself writes on a Resource (the definition matched, the operator's marker);
#: dropped from a Score file's resource annotations.
RESERVED_RESOURCE_ANNOTATIONS = frozenset({naming.DEFINITION_ANNOTATION, PENDING_ANNOTATION})
#: Name of the orchestrator's fallback definition for `environment` resources.
BUILTIN_ENVIRONMENT_DEFINITION = "strongroom-shared-values"


@dataclass(frozen=True, order=True)
class ResUid:
    """What identifies a resource in an environment (as in Humanitec: type, class, id)."""

    type: str
    res_class: str
    res_id: str

    @property
    def object_name(self) -> str:
        return naming.resource_object_name(self.type, self.res_class, self.res_id)

    def __str__(self) -> str:
        return f"{self.type}.{self.res_class}#{self.res_id}"


@dataclass
class ResourceNode:
    uid: ResUid
    definition: ResourceDefinition
    guresid: str
    values: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None
    secret_refs: dict[str, Any] | None = None
    resource_inputs: dict[str, Any] | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    """Annotations of the Resource object, from the Score files' `resources.<name>.metadata.annotations`."""
    depends_on: set[ResUid] = field(default_factory=set)
    requested_by: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.uid.object_name


@dataclass
class WorkloadNode:
    name: str
    source: str
    spec: dict[str, Any]
    """The Workload object's spec: the Score workload with placeholders rewritten."""
    resources: dict[str, ResUid] = field(default_factory=dict)
    """Score resource name -> the resource it means."""
    patch: list[dict[str, Any]] | None = None
    """JSON-patch operations from the workload's `workload`-type resource, if it has one."""
    patch_definition: str | None = None


@dataclass
class Plan:
    app: str
    env: str
    env_type: str
    namespace: str
    resources: dict[ResUid, ResourceNode] = field(default_factory=dict)
    workloads: list[WorkloadNode] = field(default_factory=list)
    drivers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Driver objects of the definition files that the resources use, by name: platform Drivers, which
    operator and gitops mode expect in the operator namespace and direct mode calls itself."""
    shared_secrets: dict[str, Any] = field(default_factory=dict)
    """Secret shared values (key -> SecretReference), for the SecretMapping."""

    def remote_driver_types(self) -> list[str]:
        """Driver types of the resources that are not built in (each needs a Driver object), sorted."""
        return sorted(
            {node.definition.driver_type for node in self.resources.values()} - BUILTIN_DRIVER_TYPES
        )

    def order(self) -> list[ResourceNode]:
        """Resources in dependency order (dependencies first), ties by name: deterministic."""
        done: set[ResUid] = set()
        ordered: list[ResourceNode] = []
        pending = sorted(self.resources.values(), key=lambda node: node.name)
        while pending:
            ready = [node for node in pending if node.depends_on <= done]
            if not ready:  # pragma: no cover - cycles are rejected while planning
                raise RuntimeError("resource graph has a cycle")
            for node in ready:
                done.add(node.uid)
                ordered.append(node)
            pending = [node for node in pending if node.uid not in done]
        return ordered
