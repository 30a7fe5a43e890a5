"""The planner: from the inputs to a plan, the resource graph grown from what the workloads ask for.

It holds the graph (a queue of resource requests, drained into nodes, each with its definition and its
settled driver inputs), checks it (shared resources asked for alike, no cycles, no two resources with one
object name) and delegates the rest to the pieces it holds: the workloads (`workloads.py`), the
workload-type resources (`workload_resource.py`) and the driver inputs (`driver_inputs.py`).

Planning is pure and synchronous: the built-in driver calls it needs are listed in `Planner.calls` and
answered by the caller, which passes the answers to `Planner.finish`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from strongroom.orchestrator import naming
from strongroom.orchestrator.inputs import Criterion, Inputs, ResourceDefinition, ScoreWorkload
from strongroom.orchestrator.matching import Ambiguous, MatchContext, NoMatch, select_definition
from strongroom.orchestrator.plan.driver_inputs import InputSettler
from strongroom.orchestrator.plan.model import (
    BUILTIN_ENVIRONMENT_DEFINITION,
    ENVIRONMENT_TYPE,
    RESERVED_RESOURCE_ANNOTATIONS,
    Plan,
    ResourceNode,
    ResUid,
    WorkloadNode,
)
from strongroom.orchestrator.plan.workload_resource import (
    OfflineAnswer,
    OfflineCall,
    WorkloadResourcePlanner,
)
from strongroom.orchestrator.plan.workloads import WorkloadPlanner
from strongroom.orchestrator.problems import Problems


def _without_reserved(annotations: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in annotations.items() if key not in RESERVED_RESOURCE_ANNOTATIONS}


def _environment_definition(inputs: Inputs) -> ResourceDefinition:
    """Fallback for `environment` resources: the echo driver hands out the shared values."""
    plain = {key: value.text for key, value in inputs.values.items() if not value.is_secret}
    refs = {
        key: value.ref.model_dump(mode="json", by_alias=True, exclude_none=True)
        for key, value in inputs.values.items()
        if value.ref is not None
    }
    return ResourceDefinition(
        name=BUILTIN_ENVIRONMENT_DEFINITION,
        source="built-in",
        type=ENVIRONMENT_TYPE,
        driver_type="strongroom/echo",
        values=plain or None,
        secret_refs=refs or None,
        criteria=(Criterion(),),
        builtin=True,
    )


def _check_names(app: str, env: str, env_type: str, problems: Problems) -> None:
    for flag, value in (("--app", app), ("--env", env), ("--env-type", env_type)):
        if not naming.is_dns_label(value):
            problems.add(
                flag,
                f"{value!r} must be lower-case letters, digits and '-', start and end with a letter or "
                "digit, at most 63 characters",
            )


class Planner:
    """Plans the environment `app`/`env` of `inputs`; problems are collected, not raised.

    In two steps, with no I/O in either: constructing it lists in `calls` the built-in driver calls that
    planning needs (workload-type resources evaluated offline); `finish` takes their answers, by workload
    name, and returns the plan and every problem found.
    """

    def __init__(self, inputs: Inputs, app: str, env: str, env_type: str | None = None) -> None:
        env_type = env_type or env
        self.inputs = inputs
        self.problems = Problems()
        _check_names(app, env, env_type, self.problems)
        self.definitions = [*inputs.definitions, _environment_definition(inputs)]
        self.plan = Plan(app=app, env=env, env_type=env_type, namespace=naming.namespace_for(app, env))
        self.queue: deque[tuple[ResUid, str, dict[str, Any] | None]] = deque()
        self.params_origin: dict[ResUid, str] = {}
        self.settler = InputSettler(inputs, self.plan, self.problems, self.request)
        self.workloads = WorkloadPlanner(self.plan, self.problems, self.request)
        self.workload_resources = WorkloadResourcePlanner(
            inputs, self.plan, self.problems, self.select, self.request
        )
        self.prepared = {
            wl.name: resource
            for wl in inputs.workloads
            if (resource := self.workload_resources.prepare(wl)) is not None
        }
        self.calls: list[OfflineCall] = [
            resource.call for resource in self.prepared.values() if resource.call is not None
        ]
        """The built-in driver calls to answer before `finish`."""

    def select(self, uid: ResUid) -> ResourceDefinition:
        """The definition of a resource; raises NoMatch or Ambiguous."""
        plan = self.plan
        context = MatchContext(plan.app, plan.env, plan.env_type, uid.type, uid.res_class, uid.res_id)
        return select_definition(self.definitions, context)

    # -- requests --

    def request(self, uid: ResUid, origin: str, params: dict[str, Any] | None = None) -> None:
        self.queue.append((uid, origin, params))

    def drain(self) -> None:
        while self.queue:
            uid, origin, params = self.queue.popleft()
            node = self.plan.resources.get(uid)
            if node is not None:
                node.requested_by.append(origin)
                if params is not None:
                    if node.resource_inputs is None and uid not in self.params_origin:
                        node.resource_inputs = params
                        self.params_origin[uid] = origin
                    elif node.resource_inputs != params:
                        first = self.params_origin.get(uid, "another request")
                        self.problems.add(
                            origin, f"params of shared resource {uid} differ from those given in {first}"
                        )
                continue
            self.add_node(uid, origin, params)

    def add_node(self, uid: ResUid, origin: str, params: dict[str, Any] | None) -> None:
        try:
            definition = self.select(uid)
        except (NoMatch, Ambiguous) as exc:
            self.problems.add(origin, str(exc))
            return
        node = ResourceNode(
            uid=uid, definition=definition, guresid=self.settler.guresid(uid), requested_by=[origin]
        )
        if params is not None:
            node.resource_inputs = params
            self.params_origin[uid] = origin
        self.plan.resources[uid] = node
        self.settler.settle(node)
        # A driver type that is not built in and has no Driver object among the definition files is
        # expected in the operator namespace, where the operator looks after the Resource's namespace.

    def settle_annotations(self) -> None:
        """Resource annotations from the Score files; a shared resource gets the same ones everywhere.

        Keys strongroom writes itself are dropped, as they are from a Workload's annotations: emit sets
        the definition's, and only the operator writes its pending marker (with an HMAC, so one from
        anywhere else would be ignored anyway)."""
        for uid, requests in sorted(self.workloads.annotation_requests.items()):
            node = self.plan.resources.get(uid)
            if node is None:
                continue
            first_origin, first = requests[0]
            first = _without_reserved(first)
            for origin, other in requests[1:]:
                if _without_reserved(other) != first:
                    self.problems.add(
                        origin,
                        f"annotations of shared resource {uid} differ from those given in {first_origin}",
                    )
            node.annotations = first

    # -- cycles --

    def check_cycles(self) -> None:
        white, grey, black = 0, 1, 2
        colour = dict.fromkeys(self.plan.resources, white)
        stack: list[ResUid] = []
        reported: set[frozenset[ResUid]] = set()

        def visit(uid: ResUid) -> None:
            colour[uid] = grey
            stack.append(uid)
            for dep in sorted(self.plan.resources[uid].depends_on):
                if dep not in colour:
                    continue  # unmatched dependency: already reported
                if colour[dep] == grey:
                    cycle = [*stack[stack.index(dep) :], dep]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        path = " -> ".join(u.object_name for u in cycle)
                        self.problems.add("resource graph", f"dependency cycle: {path}")
                elif colour[dep] == white:
                    visit(dep)
            stack.pop()
            colour[uid] = black

        for uid in sorted(self.plan.resources):
            if colour[uid] == white:
                visit(uid)

    def finish(self, answers: Mapping[str, OfflineAnswer]) -> tuple[Plan, Problems]:
        """The plan and its problems, given the answers to `calls` (once)."""
        nodes: list[tuple[ScoreWorkload, WorkloadNode]] = []
        for wl in self.inputs.workloads:
            node = self.workloads.plan_workload(wl)
            resource = self.prepared.get(wl.name)
            if resource is not None:
                self.workload_resources.settle(wl, node, resource, answers)
            nodes.append((wl, node))
        self.drain()
        for uid, deps in self.workloads.param_deps.items():
            if uid in self.plan.resources:
                self.plan.resources[uid].depends_on |= deps
        self.settle_annotations()
        for wl, node in nodes:
            self.workloads.finish_workload(wl, node)
            self.plan.workloads.append(node)
        self.check_cycles()
        names: dict[str, ResUid] = {}
        for uid in sorted(self.plan.resources):
            other = names.setdefault(uid.object_name, uid)
            if other != uid:
                self.problems.add(
                    "resource graph", f"resources {other} and {uid} would both be named {uid.object_name!r}"
                )
        # Drivers are the platform's: never part of the CR set (a copy in the app namespace would be the
        # tenant's to edit), but described here for `render --drivers`, the deploy check and direct mode.
        self.plan.drivers = {
            name: self.inputs.drivers[name]
            for name in self.plan.remote_driver_types()
            if name in self.inputs.drivers
        }
        self.plan.shared_secrets = {
            key: value.ref for key, value in sorted(self.inputs.values.items()) if value.ref is not None
        }
        return self.plan, self.problems
