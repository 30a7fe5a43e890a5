"""A definition's driver inputs for one resource, with every placeholder settled (step 2 of planning).

`${context.*}` and non-secret `${values.*}` become text; `${resources.<type>[.<class>][#<id>].outputs.<key>}`
is rewritten to name the referenced Resource object (which the operator resolves in-cluster) and asks the
planner for that resource, a dependency; a `secrets` leaf that is exactly a secret `${values.KEY}` becomes a
secret reference. Each bad string is one problem and is kept as written. Nothing here reads a secret value.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from typing import Any

from strongroom.api import constants as c
from strongroom.api.resource import derive_guresid
from strongroom.orchestrator import naming
from strongroom.orchestrator.inputs import Inputs
from strongroom.orchestrator.placeholders import Replacement, rewrite, strings_with_paths
from strongroom.orchestrator.plan.model import Plan, ResourceNode, ResUid
from strongroom.orchestrator.problems import Problems
from strongroom.reconcile.placeholders import (
    OUTPUTS,
    RESOURCES,
    Placeholder,
    PlaceholderError,
    parse,
    resource_ref,
    single_placeholder,
)

CONTEXT = "context"
VALUES = "values"

#: Asks the planner for a resource another one depends on: (the resource, who needs it).
RequestDependency = Callable[[ResUid, str], None]


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


def references_resources(tree: Any) -> bool:
    """Whether any string of `tree` holds a `${resources...}` placeholder."""
    for _, text in strings_with_paths(tree or {}):
        try:
            if any(isinstance(seg, Placeholder) and seg.root == RESOURCES for seg in parse(text)):
                return True
        except PlaceholderError:
            continue
    return False


class InputSettler:
    """Settles the placeholders of definitions' driver inputs in one environment (`plan`'s app and env).

    `request` is called for each resource a definition references; without it (a workload-type resource
    evaluated offline) such a reference is a problem. Problems go to `problems`."""

    def __init__(
        self, inputs: Inputs, plan: Plan, problems: Problems, request: RequestDependency | None
    ) -> None:
        self.inputs = inputs
        self.plan = plan
        self.problems = problems
        self.request = request

    def context_value(self, placeholder: Placeholder, uid: ResUid | None) -> str:
        path = placeholder.path[1:]
        known: dict[tuple[str, ...], str] = {
            ("app", "id"): self.plan.app,
            ("env", "id"): self.plan.env,
            ("env", "type"): self.plan.env_type,
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

    # -- a resource's driver inputs --

    def settle(self, node: ResourceNode) -> None:
        """Set the node's values, secrets and secret references from its definition, placeholders settled."""
        definition = node.definition
        where = f"{definition.source} (definition {definition.name!r} for {node.uid.object_name})"
        secrets = copy.deepcopy(definition.secrets)
        extra_refs: dict[str, Any] = {}
        if secrets:
            secrets, extra_refs = _pop_secret_values(secrets, self.inputs, where, self.problems)
        node.values = self.rewrite_inputs(definition.values, node, where, "values")
        node.secrets = self.rewrite_inputs(secrets or None, node, where, "secrets")
        refs = _merge_refs(definition.secret_refs, extra_refs, where, self.problems)
        node.secret_refs = self.rewrite_refs(refs, node, where)

    def rewrite_inputs(self, tree: dict[str, Any] | None, node: ResourceNode, where: str, part: str) -> Any:
        """Driver inputs with placeholders settled; each bad string is one problem (and kept as it was)."""
        if tree is None:
            return None
        result: dict[str, Any] = self.rewrite_collect(
            tree, lambda ph: self.definition_placeholder(ph, node), f"{where}: {part}"
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

    def definition_placeholder(self, ph: Placeholder, node: ResourceNode) -> Replacement:
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
            if self.request is None:
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
