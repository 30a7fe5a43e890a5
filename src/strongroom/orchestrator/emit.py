"""From a plan to the CR set: the objects operator and gitops mode deliver, and their YAML.

The set, in this order (kinds, then names): the Namespace, the SecretMapping of the secret shared values,
one Resource per resource, one Workload per Score file, one WorkloadPatch per workload whose
`workload`-type resource has an `update` output. Every object carries the labels `strongroom.dev/app` and
`strongroom.dev/env` (pruning selects by them) and is checked against the API models before it is emitted.
Output is deterministic: same inputs, byte-identical YAML.

No Driver is in the set: Drivers are platform objects. A Driver in the app namespace would be the tenant's
to edit (point it at the tenant's own server and collect tokens the platform's key signed), so the operator
refuses to sign for one; the platform admin installs each Driver once in the operator namespace, naming the
namespaces that may use it. `platform_drivers` renders those objects from the definition files.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
import yaml

from strongroom.api import constants as c
from strongroom.api.common import validation_lines
from strongroom.api.driver import ALL_NAMESPACES
from strongroom.api.kinds import parse_object
from strongroom.api.workload import Workload, WorkloadPatch
from strongroom.orchestrator import naming
from strongroom.orchestrator.plan import Plan, WorkloadNode
from strongroom.orchestrator.problems import Problems
from strongroom.reconcile.workload import check

#: Kinds in the order they are emitted (and applied).
KIND_ORDER = ("Namespace", "SecretMapping", "Resource", "Workload", "WorkloadPatch")
#: The strongroom kinds the orchestrator prunes, with their plurals. Drivers are never emitted any more;
#: pruning removes the copies earlier versions put into app namespaces (they would shadow the platform's).
MANAGED_KINDS = {
    "Driver": "drivers",
    "SecretMapping": "secretmappings",
    "Resource": "resources",
    "Workload": "workloads",
    "WorkloadPatch": "workloadpatches",
}


@dataclass(frozen=True)
class CRSet:
    app: str
    env: str
    namespace: str
    objects: list[dict[str, Any]]

    def strongroom_objects(self) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["apiVersion"] == c.API_VERSION]


def _meta(plan: Plan, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": plan.namespace,
        "labels": naming.labels_for(plan.app, plan.env),
    }
    if annotations:
        meta["annotations"] = annotations
    return meta


def _object(plan: Plan, kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": c.API_VERSION, "kind": kind, "metadata": _meta(plan, name, **meta), "spec": spec}


def _drop_empty(tree: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in tree.items() if value not in (None, {}, [])}


def emit(plan: Plan) -> tuple[CRSet, Problems]:
    problems = Problems()
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": plan.namespace, "labels": naming.labels_for(plan.app, plan.env)},
        }
    ]
    if plan.shared_secrets:
        data = [
            {
                "secretKey": key,
                "secretStoreName": ref.store,
                "remoteRef": _drop_empty({"key": ref.ref, "version": ref.version}),
            }
            for key, ref in sorted(plan.shared_secrets.items())
        ]
        mapping: dict[str, Any] = {"secretName": naming.SHARED_VALUES_SECRET, "secretData": data}
        objects.append(_object(plan, "SecretMapping", naming.SHARED_VALUES_SECRET, mapping))
    for node in sorted(plan.resources.values(), key=lambda n: n.name):
        inputs = _drop_empty({"values": node.values, "secrets": node.secrets, "secretRefs": node.secret_refs})
        spec: dict[str, Any] = {"type": node.uid.type, "id": node.uid.res_id}
        if node.uid.res_class != naming.DEFAULT_CLASS:
            spec["class"] = node.uid.res_class
        # No spec.guresid: the operator derives the same one from the namespace (a hand-set one is refused
        # unless the platform admin allows it).
        spec["driverType"] = node.definition.driver_type
        if inputs:
            spec["driverInputs"] = inputs
        if node.resource_inputs:
            spec["resourceInputs"] = node.resource_inputs
        if node.definition.in_place_driver_change:
            spec["inPlaceDriverChange"] = True
        annotations = {**node.annotations, naming.DEFINITION_ANNOTATION: node.definition.name}
        objects.append(_object(plan, "Resource", node.name, spec, annotations=annotations))
    for workload in sorted(plan.workloads, key=lambda w: w.name):
        objects.append(_object(plan, "Workload", workload.name, copy.deepcopy(workload.spec)))
    for workload in sorted(plan.workloads, key=lambda w: w.name):
        if workload.patch:
            patch = {"workloadName": workload.name, "patches": copy.deepcopy(workload.patch)}
            annotations = {naming.DEFINITION_ANNOTATION: workload.patch_definition or ""}
            name = naming.workload_patch_name(workload.name)
            objects.append(_object(plan, "WorkloadPatch", name, patch, annotations=annotations))
    parsed: dict[tuple[str, str], Any] = {}
    for obj in objects:
        if obj["apiVersion"] != c.API_VERSION:
            continue
        try:
            parsed[(obj["kind"], obj["metadata"]["name"])] = parse_object(obj)
        except pydantic.ValidationError as exc:
            where = f"{obj['kind']} {obj['metadata']['name']}"
            for loc, message in validation_lines(exc):
                problems.add(f"{where}: {loc}", message)
    for workload_node in sorted(plan.workloads, key=lambda w: w.name):
        _check_workload(workload_node, parsed, problems)
    crset = CRSet(plan.app, plan.env, plan.namespace, [_canonical(obj) for obj in objects])
    return crset, problems


def _check_workload(node: WorkloadNode, parsed: dict[tuple[str, str], Any], problems: Problems) -> None:
    """The operator's own checks of a Workload (with its patch), so that what renders here deploys."""
    workload = parsed.get(("Workload", node.name))
    if not isinstance(workload, Workload):
        return  # already reported
    patch = parsed.get(("WorkloadPatch", naming.workload_patch_name(node.name)))
    result = check(workload, [patch] if isinstance(patch, WorkloadPatch) else [])
    for why in result.patch_problems.values():
        problems.add(f"{node.source} (patch from definition {node.patch_definition!r})", why)
    for problem in result.problems:
        problems.add(node.source, problem)


def platform_drivers(plan: Plan, operator_namespace: str) -> list[dict[str, Any]]:
    """The Driver objects the plan's resources use, as the platform admin installs them: in the operator
    namespace, `allowedNamespaces` naming the plan's namespace (beside any the definition file names).

    No app/env labels: a Driver serves many environments and no environment's deploy prunes it.
    """
    drivers = []
    for name, driver in sorted(plan.drivers.items()):
        spec = copy.deepcopy(driver["spec"])
        allowed = set(spec.get("allowedNamespaces") or [])
        if ALL_NAMESPACES not in allowed:
            allowed.add(plan.namespace)
        spec["allowedNamespaces"] = sorted(allowed)
        manifest = {
            "apiVersion": c.API_VERSION,
            "kind": "Driver",
            "metadata": {"name": name, "namespace": operator_namespace},
            "spec": spec,
        }
        parse_object(manifest)  # read from a Driver document and checked when loaded: cannot fail
        drivers.append(_canonical(manifest))
    return drivers


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


# --- YAML -------------------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as literal blocks (templates stay readable in Git)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Lists indented under their key, as kubectl and most Kubernetes YAML write them.
        super().increase_indent(flow, False)


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def to_yaml(obj: Any) -> str:
    text: str = yaml.dump(
        obj, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=100000
    )
    return text


def to_yaml_stream(objects: Iterable[Any]) -> str:
    """Several objects as one YAML stream (`---` between documents)."""
    return "".join(f"---\n{to_yaml(obj)}" for obj in objects)


def file_name(obj: dict[str, Any]) -> str:
    """File of an object in the gitops layout: `<kind>-<name>.yaml` (the Namespace: `namespace.yaml`)."""
    kind = str(obj["kind"]).lower()
    if obj["kind"] == "Namespace":
        return "namespace.yaml"
    return f"{kind}-{obj['metadata']['name']}.yaml"


def files(objects: Sequence[dict[str, Any]]) -> dict[str, str]:
    """The gitops layout of a CR set: file name -> YAML."""
    return {file_name(obj): to_yaml(obj) for obj in objects}
