"""The workloads of a plan: each Score workload's resources asked for, then its placeholders checked.

Steps 1 and 5 of planning: every resource a Score file declares is requested from the planner under its
identity (private `modules.<workload>.externals.<name>`, shared `shared.<id>`, the environment's
`shared.values`); Score `params` become resource inputs, with references to the workload's other resources
rewritten to name their Resource objects. Once the graph is complete, the workload's placeholders
`${resources.<name>...}` are checked against it (keys of echo-driven resources and shared values must
exist) and each resource of the Workload is pinned to its Resource.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

from strongroom.api import constants as c
from strongroom.orchestrator import naming
from strongroom.orchestrator.inputs import ScoreWorkload
from strongroom.orchestrator.placeholders import Replacement, rewrite_tree
from strongroom.orchestrator.plan.model import (
    ECHO_DRIVERS,
    ENVIRONMENT_ID,
    ENVIRONMENT_TYPE,
    Plan,
    ResUid,
    WorkloadNode,
)
from strongroom.orchestrator.problems import Problems
from strongroom.reconcile.placeholders import (
    METADATA,
    OUTPUTS,
    RESOURCES,
    Placeholder,
    PlaceholderError,
    lookup,
    placeholders,
    resource_ref,
    to_text,
)

#: Asks the planner for a resource: (the resource, who asks, its inputs from Score `params` or None).
RequestResource = Callable[[ResUid, str, dict[str, Any] | None], None]


class WorkloadPlanner:
    """The workload side of one plan; the planner holds it and owns the resource graph it asks for."""

    def __init__(self, plan: Plan, problems: Problems, request: RequestResource) -> None:
        self.plan = plan
        self.problems = problems
        self.request = request
        self.param_deps: dict[ResUid, set[ResUid]] = {}
        """Dependencies of resources on the resources their params reference (recorded once they exist)."""
        self.annotation_requests: dict[ResUid, list[tuple[str, dict[str, str]]]] = {}
        """Resource annotations each Score file gives, with where it gives them."""

    def workload_uid(self, wl: ScoreWorkload, rname: str, decl: Mapping[str, Any]) -> ResUid:
        res_type = str(decl["type"])
        res_class = str(decl.get("class") or naming.DEFAULT_CLASS)
        if res_type == ENVIRONMENT_TYPE:
            return ResUid(res_type, res_class, ENVIRONMENT_ID)
        if decl.get("id"):
            return ResUid(res_type, res_class, naming.shared_resource_id(str(decl["id"])))
        return ResUid(res_type, res_class, naming.private_resource_id(wl.name, rname))

    def plan_workload(self, wl: ScoreWorkload) -> WorkloadNode:
        node = WorkloadNode(name=wl.name, source=wl.source, spec=copy.deepcopy(wl.spec))
        declared: dict[str, Any] = wl.spec.get("resources") or {}
        if not re.fullmatch(c.RESOURCE_TYPE, wl.name):
            self.problems.add(wl.source, f"workload name {wl.name!r} is not usable in resource ids")
        for rname in sorted(declared):
            decl = declared[rname]
            try:
                uid = self.workload_uid(wl, rname, decl)
            except PlaceholderError as exc:
                self.problems.add(f"{wl.source}: resources.{rname}", str(exc))
                continue
            if not re.fullmatch(c.RESOURCE_TYPE, uid.type):
                self.problems.add(
                    f"{wl.source}: resources.{rname}.type", f"{uid.type!r} is not a resource type"
                )
                continue
            node.resources[rname] = uid
        metadata = wl.spec.get("metadata") or {}
        for rname, uid in sorted(node.resources.items()):
            annotations = (declared[rname].get("metadata") or {}).get("annotations")
            if annotations:
                origin = f"{wl.source}: resources.{rname}.metadata.annotations"
                self.annotation_requests.setdefault(uid, []).append((origin, dict(annotations)))
            params = declared[rname].get("params")
            where = f"{wl.source}: resources.{rname}.params"
            if params is not None:
                params = self.rewrite_params(params, node, metadata, uid, where)
            self.request(uid, f"{wl.source}: resources.{rname}", params)
        return node

    def rewrite_params(
        self, params: dict[str, Any], node: WorkloadNode, metadata: Mapping[str, Any], uid: ResUid, where: str
    ) -> dict[str, Any]:
        deps: set[ResUid] = set()

        def replace(ph: Placeholder) -> Replacement:
            if ph.root == METADATA:
                try:
                    return to_text(lookup(metadata, ph.path[1:]))
                except KeyError:
                    raise PlaceholderError(
                        f"placeholder {ph.source}: the workload metadata has no such key"
                    ) from None
            ref = resource_ref(ph)
            if ref is None:
                raise PlaceholderError(
                    f"unknown placeholder {ph.source}: params may use ${{metadata...}} and ${{resources...}}"
                )
            target = node.resources.get(ref.resource)
            if target is None:
                raise PlaceholderError(
                    f"placeholder {ph.source} names a resource the workload does not declare"
                )
            if target == uid or not ref.key:
                raise PlaceholderError(f"placeholder {ph.source}: reference another resource's output")
            deps.add(target)
            return (RESOURCES, target.object_name, OUTPUTS, *ref.key)

        result: dict[str, Any] = {}
        for key, value in params.items():
            try:
                # Score params: `$$` is Score's escape of `$` (the Resource's inputs are written unescaped).
                result[key] = rewrite_tree(value, replace, score=True)
            except PlaceholderError as exc:
                self.problems.add(f"{where}.{key}", str(exc))
        # Dependencies are recorded when the node exists (after this workload's requests are drained).
        self.param_deps.setdefault(uid, set()).update(deps)
        return result

    def finish_workload(self, wl: ScoreWorkload, node: WorkloadNode) -> None:
        """Pin each resource of the Workload to its Resource and check the workload's placeholders.

        The Workload keeps the Score file's resource names (its placeholders stay as written); each entry
        gets the full id of the Resource it means, which is how the operator finds it (type, class, id).
        Params stay behind: they went into the Resource's inputs.
        """
        spec = node.spec
        entries: dict[str, Any] = {}
        for rname, uid in sorted(node.resources.items()):
            entry: dict[str, Any] = {"type": uid.type}
            if uid.res_class != naming.DEFAULT_CLASS:
                entry["class"] = uid.res_class
            entry["id"] = uid.res_id
            entries[rname] = entry
        if entries:
            spec["resources"] = entries
        else:
            spec.pop("resources", None)

        def replace(ph: Placeholder) -> Replacement:
            if ph.root == METADATA:
                return None
            ref = resource_ref(ph)
            if ref is None:
                raise PlaceholderError(
                    f"unknown placeholder {ph.source}: workloads may use ${{metadata...}} and "
                    "${resources...}"
                )
            uid = node.resources.get(ref.resource)
            if uid is None:
                declared = ", ".join(sorted(node.resources)) or "none"
                raise PlaceholderError(
                    f"placeholder {ph.source} refers to resource {ref.resource!r}, which the workload "
                    f"does not declare (declared: {declared})"
                )
            if ref.key:
                self.check_output_key(ph, uid, ref.key)
            return None

        for cname, container in sorted((spec.get("containers") or {}).items()):
            for var, value in sorted((container.get("variables") or {}).items()):
                where = f"{wl.source}: containers.{cname}.variables.{var}"
                container["variables"][var] = self.rewrite_checked(value, replace, where)
            for target, file in sorted((container.get("files") or {}).items()):
                if "content" in file and not file.get("noExpand"):
                    where = f"{wl.source}: containers.{cname}.files.{target}"
                    file["content"] = self.rewrite_checked(file["content"], replace, where)
            for target, volume in sorted((container.get("volumes") or {}).items()):
                where = f"{wl.source}: containers.{cname}.volumes.{target}"
                volume["source"] = self.rewrite_checked(volume["source"], replace, where)

    def rewrite_checked(self, text: str, replace: Any, where: str) -> str:
        """Check every placeholder of `text` (Score text); the text itself is kept exactly as written."""
        try:
            for placeholder in placeholders(text, score=True):
                replace(placeholder)
        except PlaceholderError as exc:
            self.problems.add(where, str(exc))
        return text

    def check_output_key(self, ph: Placeholder, uid: ResUid, key: tuple[str, ...]) -> None:
        """Outputs are known offline for echo-driven resources (outputs = inputs): check the key exists."""
        node = self.plan.resources.get(uid)
        if node is None or node.definition.driver_type not in ECHO_DRIVERS:
            return
        outputs: dict[str, Any] = {}
        outputs |= node.values or {}
        outputs |= node.secrets or {}
        outputs |= node.secret_refs or {}
        try:
            lookup(outputs, key)
        except KeyError:
            what = "shared value" if uid.type == ENVIRONMENT_TYPE else "output"
            known = ", ".join(sorted(outputs)) or "none"
            raise PlaceholderError(
                f"placeholder {ph.source}: there is no {what} {'.'.join(key)!r} (known: {known})"
            ) from None
