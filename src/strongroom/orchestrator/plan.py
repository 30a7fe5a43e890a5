"""From the inputs to a plan: the resource graph and the workloads, with every placeholder settled.

What happens, in order (docs/orchestrator.md has the user-facing version):

1. Every resource a Score file declares becomes a node, identified by (type, class, id): private
   resources get `modules.<workload>.externals.<name>`, resources with a Score `id` are shared as
   `shared.<id>` (one node however many workloads declare them), and `environment` resources are the
   environment's shared values, one node `shared.values` per environment.
2. Each node gets its definition (`matching.py`). Placeholders in the definition's driver inputs are
   settled: `${context.*}` and non-secret `${values.*}` become text; `${resources.<type>[.<class>][#<id>]
   .outputs.<key>}` adds the referenced resource to the graph (the id defaults to the node's own) and is
   rewritten to name its Resource object, which the operator resolves in-cluster; a `secrets` leaf that
   is exactly a secret `${values.KEY}` becomes a secret reference. Score `params` become resource inputs,
   with references to the workload's other resources rewritten the same way.
3. Cycles in the graph are errors.
4. A workload whose `workload`-type resource (`modules.<workload>`) has a definition gets it evaluated
   here, offline, with the built-in echo or template driver: its `update` output becomes a WorkloadPatch.
5. Workload placeholders `${resources.<name>...}` are rewritten to the Resource object names; keys of
   echo-driven resources and of the shared values are checked to exist.

Nothing here reads a secret value: secret references are carried as references.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from strongroom.api import constants as c
from strongroom.api.driver import BUILTIN_DRIVER_TYPES
from strongroom.api.resource import derive_guresid
from strongroom.api.workload import JsonPatchOperation
from strongroom.drivers.base import DriverError, DriverRequest, DriverResult
from strongroom.drivers.registry import builtin_drivers, close_drivers
from strongroom.orchestrator import naming
from strongroom.orchestrator.inputs import Criterion, Inputs, ResourceDefinition, ScoreWorkload
from strongroom.orchestrator.matching import Ambiguous, MatchContext, NoMatch, select_definition
from strongroom.orchestrator.placeholders import Replacement, rewrite, rewrite_tree, strings_with_paths
from strongroom.orchestrator.problems import Problems
from strongroom.reconcile.placeholders import (
    METADATA,
    OUTPUTS,
    RESOURCES,
    Placeholder,
    PlaceholderError,
    lookup,
    parse,
    placeholders,
    resource_ref,
    single_placeholder,
    to_text,
)
from strongroom.reconcile.resource import PENDING_ANNOTATION

CONTEXT = "context"
VALUES = "values"
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


def _without_reserved(annotations: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in annotations.items() if key not in RESERVED_RESOURCE_ANNOTATIONS}


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


# --- Helpers ----------------------------------------------------------------------------------------------


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


_REF = re.compile(r"^(?P<type>[^.#<>]+)(\.(?P<class>[^#<>]+))?(#(?P<id>[^<>]+))?$")


def parse_resource_reference(text: str, own_id: str) -> ResUid:
    """`<type>[.<class>][#<id>]` (Humanitec's resource reference) -> the resource it names.

    The class defaults to `default`, the id to `own_id` (the referring resource's id).
    """
    if "<" in text or ">" in text:
        raise PlaceholderError(f"resource selectors ({text!r}) are not supported; reference one resource")
    match = _REF.fullmatch(text)
    if match is None:
        raise PlaceholderError(f"{text!r} is not a resource reference <type>[.<class>][#<id>]")
    res_type = match.group("type")
    res_class = match.group("class") or naming.DEFAULT_CLASS
    res_id = match.group("id") or own_id
    if not re.fullmatch(c.RESOURCE_TYPE, res_type):
        raise PlaceholderError(f"resource reference {text!r}: {res_type!r} is not a resource type")
    for what, value in (("class", res_class), ("id", res_id)):
        if not re.fullmatch(c.RESOURCE_ID, value):
            raise PlaceholderError(f"resource reference {text!r}: {value!r} is not a valid resource {what}")
    return ResUid(res_type, res_class, res_id)


def _set_path(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> bool:
    node = tree
    for key in path[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict) or {"store", "ref"} & set(child):
            return False
        node = child
    if path[-1] in node:
        return False
    node[path[-1]] = value
    return True


def _pop_secret_values(
    secrets: dict[str, Any], inputs: Inputs, where: str, problems: Problems
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `${values.KEY}` leaves of secret values out of `secrets`: (remaining secrets, references)."""
    refs: dict[str, Any] = {}

    def walk(node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            kept = {}
            for key, item in node.items():
                result = walk(item, (*path, key))
                if result is not _DROP:
                    kept[key] = result
            # A branch whose every leaf became a reference goes too (it lives on in secretRefs).
            return kept if kept or not node or not path else _DROP
        if isinstance(node, str):
            try:
                only = single_placeholder(parse(node))
            except PlaceholderError:
                return node  # reported when the strings are rewritten
            if only is not None and only.root == VALUES and len(only.path) == 2:
                value = inputs.values.get(only.path[1])
                if value is not None and value.ref is not None:
                    if not _set_path(refs, path, value.ref.model_dump(mode="json", exclude_none=True)):
                        problems.add(f"{where}: secrets.{'.'.join(path)}", "clashes with another secret ref")
                    return _DROP
        return node

    remaining = walk(secrets, ())
    return (remaining if isinstance(remaining, dict) else {}), refs


class _Drop:
    pass


_DROP = _Drop()


def _merge_refs(base: dict[str, Any] | None, extra: dict[str, Any], where: str, problems: Problems) -> Any:
    if not extra:
        return base
    merged = copy.deepcopy(base or {})

    def walk(node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in node.items():
            if isinstance(value, dict) and not {"store", "ref"} & set(value):
                walk(value, (*path, key))
            elif not _set_path(merged, (*path, key), value):
                problems.add(
                    f"{where}: secret_refs.{'.'.join((*path, key))}",
                    "is set both in secret_refs and through a secret ${values...} in secrets",
                )

    walk(extra, ())
    return merged


# --- Planning ---------------------------------------------------------------------------------------------


class _Planner:
    def __init__(self, inputs: Inputs, app: str, env: str, env_type: str) -> None:
        self.inputs = inputs
        self.app = app
        self.env = env
        self.env_type = env_type
        self.problems = Problems()
        self.definitions = [*inputs.definitions, _environment_definition(inputs)]
        self.plan = Plan(app=app, env=env, env_type=env_type, namespace=naming.namespace_for(app, env))
        self.queue: deque[tuple[ResUid, str, dict[str, Any] | None]] = deque()
        self.params_origin: dict[ResUid, str] = {}
        self.param_deps: dict[ResUid, set[ResUid]] = {}
        self.annotation_requests: dict[ResUid, list[tuple[str, dict[str, str]]]] = {}

    # -- context --

    def ctx(self, uid: ResUid) -> MatchContext:
        return MatchContext(self.app, self.env, self.env_type, uid.type, uid.res_class, uid.res_id)

    def context_value(self, placeholder: Placeholder, uid: ResUid | None) -> str:
        path = placeholder.path[1:]
        known: dict[tuple[str, ...], str] = {
            ("app", "id"): self.app,
            ("env", "id"): self.env,
            ("env", "type"): self.env_type,
        }
        if uid is not None:
            known |= {
                ("res", "id"): uid.res_id,
                ("res", "type"): uid.type,
                ("res", "class"): uid.res_class,
                ("res", "guresid"): self.guresid(uid),
            }
        if path not in known:
            names = ", ".join("${context." + ".".join(key) + "}" for key in sorted(known))
            raise PlaceholderError(f"unknown placeholder {placeholder.source} (known: {names})")
        return known[path]

    def guresid(self, uid: ResUid) -> str:
        """The GUResID the operator derives for this Resource in its namespace (one derivation for both)."""
        return derive_guresid(self.plan.namespace, uid.type, uid.res_class, uid.res_id)

    def shared_value_text(self, placeholder: Placeholder) -> str:
        if len(placeholder.path) != 2:
            raise PlaceholderError(f"placeholder {placeholder.source}: use ${{values.<KEY>}}")
        value = self.inputs.values.get(placeholder.path[1])
        if value is None:
            known = ", ".join(sorted(self.inputs.values)) or "none"
            raise PlaceholderError(
                f"placeholder {placeholder.source}: no shared value of that key (known: {known})"
            )
        if value.text is None:
            raise PlaceholderError(
                f"placeholder {placeholder.source} names a secret shared value; it can only be a whole "
                "value in driver_inputs.secrets, where it becomes a secret reference"
            )
        return value.text

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
            definition = select_definition(self.definitions, self.ctx(uid))
        except (NoMatch, Ambiguous) as exc:
            self.problems.add(origin, str(exc))
            return
        node = ResourceNode(uid=uid, definition=definition, guresid=self.guresid(uid), requested_by=[origin])
        if params is not None:
            node.resource_inputs = params
            self.params_origin[uid] = origin
        self.plan.resources[uid] = node
        where = f"{definition.source} (definition {definition.name!r} for {uid.object_name})"
        secrets = copy.deepcopy(definition.secrets)
        extra_refs: dict[str, Any] = {}
        if secrets:
            secrets, extra_refs = _pop_secret_values(secrets, self.inputs, where, self.problems)
        node.values = self.rewrite_inputs(definition.values, node, where, "values")
        node.secrets = self.rewrite_inputs(secrets or None, node, where, "secrets")
        refs = _merge_refs(definition.secret_refs, extra_refs, where, self.problems)
        node.secret_refs = self.rewrite_refs(refs, node, where)
        # A driver type that is not built in and has no Driver object among the definition files is
        # expected in the operator namespace, where the operator looks after the Resource's namespace.

    def rewrite_inputs(
        self, tree: dict[str, Any] | None, node: ResourceNode, where: str, part: str, *, record: bool = True
    ) -> Any:
        """Driver inputs with placeholders settled; each bad string is one problem (and kept as it was)."""
        if tree is None:
            return None
        result: dict[str, Any] = self.rewrite_collect(
            tree, lambda ph: self.definition_placeholder(ph, node, record=record), f"{where}: {part}"
        )
        return result

    def rewrite_collect(self, value: Any, replace: Any, where: str) -> Any:
        if isinstance(value, str):
            try:
                return rewrite(value, replace)
            except PlaceholderError as exc:
                self.problems.add(where, str(exc))
                return value
        if isinstance(value, dict):
            return {key: self.rewrite_collect(item, replace, f"{where}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [self.rewrite_collect(item, replace, f"{where}[{i}]") for i, item in enumerate(value)]
        return value

    def rewrite_refs(self, tree: dict[str, Any] | None, node: ResourceNode, where: str) -> Any:
        """Secret references may use `${context.*}` in `ref` and nothing else: they name a secret."""
        if not tree:
            return tree

        def replace(ph: Placeholder) -> Replacement:
            if ph.root == CONTEXT:
                return self.context_value(ph, node.uid)
            raise PlaceholderError(
                f"only ${{context...}} placeholders are allowed in a secret reference, not {ph.source}"
            )

        def walk(value: Any, path: str) -> Any:
            if isinstance(value, dict):
                return {key: walk(item, f"{path}.{key}") for key, item in value.items()}
            if isinstance(value, str):
                try:
                    return rewrite(value, replace)
                except PlaceholderError as exc:
                    self.problems.add(f"{where}: {path}", str(exc))
            return value

        result: dict[str, Any] = walk(tree, "secret_refs")
        return result

    def definition_placeholder(
        self, ph: Placeholder, node: ResourceNode, *, record: bool = True
    ) -> Replacement:
        if ph.root == CONTEXT:
            return self.context_value(ph, node.uid)
        if ph.root == VALUES:
            return self.shared_value_text(ph)
        if ph.root == RESOURCES:
            ref = resource_ref(ph, dotted_names=True)
            assert ref is not None
            if ref.form != "humanitec" or not ref.key:
                raise PlaceholderError(
                    f"placeholder {ph.source}: in a resource definition write "
                    "${resources.<type>.outputs.<key>}"
                )
            target = parse_resource_reference(ref.resource, node.uid.res_id)
            if target == node.uid:
                raise PlaceholderError(f"placeholder {ph.source}: a resource cannot depend on itself")
            if not record:
                raise PlaceholderError(
                    f"placeholder {ph.source}: workload-type resources cannot reference other resources"
                )
            node.depends_on.add(target)
            self.request(target, f"{node.definition.source} (needed by {node.name})")
            return (RESOURCES, target.object_name, OUTPUTS, *ref.key)
        raise PlaceholderError(
            f"unknown placeholder {ph.source}: definitions may use ${{context...}}, ${{values...}} and "
            "${resources.<type>.outputs.<key>}"
        )

    # -- workloads --

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

    def plan_workload_resource(self, wl: ScoreWorkload, node: WorkloadNode) -> None:
        """The workload's `workload`-type resource (`modules.<workload>`), if a definition provides one.

        When it can be evaluated here — built-in echo or template driver, no secret inputs, no references
        to other resources, no manifests in its result — its `update` output becomes a WorkloadPatch in
        the CR set (reviewable in Git before it applies). Otherwise it becomes a Resource like any other
        and the operator turns its `update` into a WorkloadPatch in the cluster; the Workload then lists it
        under the name `workload`, so the sidecars and volumes it emits are merged into the pod.
        """
        uid = ResUid(WORKLOAD_TYPE, naming.DEFAULT_CLASS, naming.workload_resource_id(wl.name))
        try:
            definition = select_definition(self.definitions, self.ctx(uid))
        except NoMatch:
            return
        except Ambiguous as exc:
            self.problems.add(wl.source, str(exc))
            return
        where = f"{definition.source} (definition {definition.name!r} for workload {wl.name!r})"
        offline = (
            definition.driver_type in BUILTIN_DRIVER_TYPES
            and not definition.secrets
            and not definition.secret_refs
            and not _references_resources(definition.values)
        )
        if offline:
            probe = ResourceNode(uid=uid, definition=definition, guresid=self.guresid(uid))
            before = len(self.problems.lines)
            values = self.rewrite_inputs(definition.values, probe, where, "values", record=False) or {}
            if len(self.problems.lines) != before:
                return
            request = DriverRequest(
                guresid=probe.guresid,
                type=WORKLOAD_TYPE,
                resource_id=uid.res_id,
                resource_inputs={WORKLOAD_NAME_INPUT: wl.name},
                values=values,
                namespace=self.plan.namespace,
            )
            try:
                result = asyncio.run(_apply_builtin(definition.driver_type, request))
            except DriverError as exc:
                self.problems.add(where, str(exc))
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
                        self.problems.add(where, f"update output: {first['msg']}")
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
        node.resources[WORKLOAD_RESOURCE_KEY] = uid
        self.request(uid, f"{wl.source} (workload-type resource)", {WORKLOAD_NAME_INPUT: wl.name})

    def settle_annotations(self) -> None:
        """Resource annotations from the Score files; a shared resource gets the same ones everywhere.

        Keys strongroom writes itself are dropped, as they are from a Workload's annotations: emit sets
        the definition's, and only the operator writes its pending marker (with an HMAC, so one from
        anywhere else would be ignored anyway)."""
        for uid, requests in sorted(self.annotation_requests.items()):
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

    def run(self) -> Plan:
        nodes: list[tuple[ScoreWorkload, WorkloadNode]] = []
        for wl in self.inputs.workloads:
            node = self.plan_workload(wl)
            self.plan_workload_resource(wl, node)
            nodes.append((wl, node))
        self.drain()
        for uid, deps in self.param_deps.items():
            if uid in self.plan.resources:
                self.plan.resources[uid].depends_on |= deps
        self.settle_annotations()
        for wl, node in nodes:
            self.finish_workload(wl, node)
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
        return self.plan


def _references_resources(tree: Any) -> bool:
    for _, text in strings_with_paths(tree or {}):
        try:
            if any(isinstance(seg, Placeholder) and seg.root == RESOURCES for seg in parse(text)):
                return True
        except PlaceholderError:
            continue
    return False


def _check_names(app: str, env: str, env_type: str, problems: Problems) -> None:
    for flag, value in (("--app", app), ("--env", env), ("--env-type", env_type)):
        if not naming.is_dns_label(value):
            problems.add(
                flag,
                f"{value!r} must be lower-case letters, digits and '-', start and end with a letter or "
                "digit, at most 63 characters",
            )


def build_plan(inputs: Inputs, app: str, env: str, env_type: str | None = None) -> tuple[Plan, Problems]:
    """Plan the environment `app`/`env`; problems are returned, not raised."""
    problems = Problems()
    env_type = env_type or env
    _check_names(app, env, env_type, problems)
    planner = _Planner(inputs, app, env, env_type)
    plan = planner.run()
    problems.extend(planner.problems)
    return plan, problems


async def _apply_builtin(driver_type: str, request: DriverRequest) -> DriverResult:
    """One call of a built-in driver, offline; the Template driver's render process ends with it."""
    drivers = builtin_drivers()
    try:
        return await drivers[driver_type].apply(request)
    finally:
        await close_drivers(drivers.values())
