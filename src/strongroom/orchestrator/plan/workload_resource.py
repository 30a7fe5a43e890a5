"""A workload's own `workload`-type resource (`modules.<workload>`), when a definition provides one.

Step 4 of planning. When it can be evaluated offline (built-in echo or template driver, no secret inputs,
no references to other resources, no manifests in its result) its `update` output becomes a WorkloadPatch
in the CR set, reviewable in Git before it applies. Otherwise it becomes a Resource like any other and the
operator turns its `update` into a WorkloadPatch in the cluster; the Workload then lists it under the name
`workload`, so the sidecars and volumes it emits are merged into the pod.

Planning never calls a driver itself: `prepare` says which call it needs (an `OfflineCall`), the caller
makes it (`orchestrator/render.py`) and `settle` takes the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

import pydantic

from strongroom.api.driver import BUILTIN_DRIVER_TYPES
from strongroom.api.workload import JsonPatchOperation
from strongroom.drivers.base import DriverError, DriverRequest, DriverResult
from strongroom.orchestrator import naming
from strongroom.orchestrator.inputs import Inputs, ResourceDefinition, ScoreWorkload
from strongroom.orchestrator.matching import Ambiguous, NoMatch
from strongroom.orchestrator.plan.driver_inputs import InputSettler, references_resources
from strongroom.orchestrator.plan.model import (
    WORKLOAD_NAME_INPUT,
    WORKLOAD_RESOURCE_KEY,
    WORKLOAD_TYPE,
    Plan,
    ResourceNode,
    ResUid,
    WorkloadNode,
)
from strongroom.orchestrator.plan.workloads import RequestResource
from strongroom.orchestrator.problems import Problems


@dataclass(frozen=True)
class OfflineCall:
    """One call of a built-in driver that planning needs answered: a workload-type resource's `apply`."""

    workload: str
    """The workload whose resource it is: its answer is given back under this name."""
    driver_type: str
    request: DriverRequest


#: What came of an OfflineCall: the driver's result, or the error it raised.
OfflineAnswer: TypeAlias = DriverResult | DriverError


@dataclass(frozen=True)
class WorkloadResource:
    """A workload's workload-type resource as far as planning knows it before any driver is called."""

    uid: ResUid
    definition: ResourceDefinition | None
    """None when more than one definition matches (then `problems` says so)."""
    where: str
    """The definition and workload, for messages."""
    problems: Problems
    """Found while preparing; reported in the workload's turn, so that the order of problems is stable."""
    offline: bool = False
    call: OfflineCall | None = None
    """The call to make when evaluated offline; None if its inputs have problems."""


class WorkloadResourcePlanner:
    """The workload-type resources of one plan; the planner holds it.

    `select` finds a resource's definition (raising NoMatch or Ambiguous); `request` asks the planner for a
    resource, with its inputs."""

    def __init__(
        self,
        inputs: Inputs,
        plan: Plan,
        problems: Problems,
        select: Callable[[ResUid], ResourceDefinition],
        request: RequestResource,
    ) -> None:
        self.inputs = inputs
        self.plan = plan
        self.problems = problems
        self.select = select
        self.request = request

    def prepare(self, wl: ScoreWorkload) -> WorkloadResource | None:
        """The workload's workload-type resource and, if it is evaluated offline, the driver call it needs.

        Pure: reads only the inputs (no node of the graph), so it runs before planning proper."""
        uid = ResUid(WORKLOAD_TYPE, naming.DEFAULT_CLASS, naming.workload_resource_id(wl.name))
        problems = Problems()
        try:
            definition = self.select(uid)
        except NoMatch:
            return None
        except Ambiguous as exc:
            problems.add(wl.source, str(exc))
            return WorkloadResource(uid, None, wl.source, problems)
        where = f"{definition.source} (definition {definition.name!r} for workload {wl.name!r})"
        offline = (
            definition.driver_type in BUILTIN_DRIVER_TYPES
            and not definition.secrets
            and not definition.secret_refs
            and not references_resources(definition.values)
        )
        if not offline:
            return WorkloadResource(uid, definition, where, problems)
        # Without a way to ask for other resources: a reference to one is a problem.
        settler = InputSettler(self.inputs, self.plan, problems, request=None)
        probe = ResourceNode(uid=uid, definition=definition, guresid=settler.guresid(uid))
        values = settler.rewrite_inputs(definition.values, probe, where, "values") or {}
        if problems:
            return WorkloadResource(uid, definition, where, problems, offline=True)
        request = DriverRequest(
            guresid=probe.guresid,
            type=WORKLOAD_TYPE,
            resource_id=uid.res_id,
            resource_inputs={WORKLOAD_NAME_INPUT: wl.name},
            values=values,
            namespace=self.plan.namespace,
        )
        call = OfflineCall(wl.name, definition.driver_type, request)
        return WorkloadResource(uid, definition, where, problems, offline=True, call=call)

    def settle(
        self,
        wl: ScoreWorkload,
        node: WorkloadNode,
        resource: WorkloadResource,
        answers: Mapping[str, OfflineAnswer],
    ) -> None:
        """Turn the offline answer into the workload's patch, or ask for the resource as a Resource."""
        self.problems.extend(resource.problems)
        definition = resource.definition
        if definition is None:
            return
        if resource.offline:
            if resource.call is None:
                return
            result = answers[resource.call.workload]
            if isinstance(result, DriverError):
                self.problems.add(resource.where, str(result))
                return
            if not result.manifests:
                if result.update:
                    try:
                        ops = [
                            JsonPatchOperation.model_validate(op).model_dump(mode="json", exclude_unset=True)
                            for op in result.update
                        ]
                    except pydantic.ValidationError as exc:
                        first = exc.errors(include_input=False, include_url=False)[0]
                        self.problems.add(resource.where, f"update output: {first['msg']}")
                        return
                    node.patch = ops
                    node.patch_definition = definition.name
                return
        if WORKLOAD_RESOURCE_KEY in node.resources:
            self.problems.add(
                f"{wl.source}: resources.{WORKLOAD_RESOURCE_KEY}",
                f"the name {WORKLOAD_RESOURCE_KEY!r} is reserved for the workload's workload-type resource "
                f"(definition {definition.name!r}); rename this resource",
            )
            return
        node.resources[WORKLOAD_RESOURCE_KEY] = resource.uid
        self.request(resource.uid, f"{wl.source} (workload-type resource)", {WORKLOAD_NAME_INPUT: wl.name})
