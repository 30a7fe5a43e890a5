"""docs/api.md, generated from the CRD schemas (and so from the models).

`python -m strongroom.api.reference > docs/api.md` rewrites it; a unit test fails while it is stale.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

from strongroom.api import constants as c
from strongroom.api.crds import KIND_DEFINITIONS, KindDefinition, openapi_schema

_INTRO = f"""\
# API reference: `{c.API_VERSION}`

Generated from `strongroom.api` by `python -m strongroom.api.reference > docs/api.md`; do not edit.

All kinds are namespaced and belong to the category `strongroom` (`kubectl get strongroom` lists them).
Field names follow the Humanitec Operator's CRDs, so its manifests port by changing `apiVersion` from
`humanitec.io/v1alpha1` to `{c.API_VERSION}`. Examples of every kind are in `examples/`.

Conventions:

- **No server-side defaults.** Where a field says what applies "if absent", that default is applied by
  the operator in code; the API server never adds fields, so what is in Git is what is stored and Argo CD or
  Flux see no drift.
- **Status.** Every kind has a `status` subresource with `observedGeneration` and kstatus-style
  `conditions` (`Ready`, plus `Reconciling` / `Stalled` while relevant); `kubectl get` shows `READY`,
  `REASON` and `AGE`.
- **Secrets.** Objects hold references to secrets (`{{store, ref, version}}`), never values. A `store` is
  looked up in the object's namespace first, then in the operator namespace.
- **Default store.** The SecretStore labelled `{c.DEFAULT_STORE_LABEL}: "true"` (or
  `{c.HUMANITEC_DEFAULT_STORE_LABEL}: "true"`) receives driver secret outputs and driver cookies.
- **Rules.** Patterns, enums and lengths below are checked by the API server; so are the rules listed
  under each kind (CEL). A few checks cannot be written as CRD schema or CEL (secret reference trees below
  their first level, whether a JSON-Patch operation has a `value`); the models check those when the
  operator reads the object.

Notation: `a.b` is a field, `a[]` an item of a list, `a.<key>` a value of a map. "Required" means
required whenever the field's parent is present. `any` means any JSON value; `object (free-form)` an
object whose fields are kept as they are.
"""


def _escape(text: str) -> str:
    """Make text safe inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _type_of(node: Mapping[str, Any]) -> str:
    node_type = node.get("type")
    if node_type is None:
        return "any"
    if "enum" in node:
        return " \\| ".join(f"`{value}`" for value in node["enum"])
    if node_type == "array":
        return f"list of {_type_of(node['items'])}"
    if node_type == "object":
        if isinstance(node.get("additionalProperties"), Mapping):
            return f"map of {_type_of(node['additionalProperties'])}"
        if node.get("x-kubernetes-preserve-unknown-fields") and "properties" not in node:
            return "object (free-form)"
        return "object"
    if node.get("format") == "date-time":
        return "timestamp"
    return str(node_type)


def _constraints(node: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    if "pattern" in node:
        found.append(f"pattern `{node['pattern']}`")
    for keyword, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("minProperties", "min keys"),
        ("maxProperties", "max keys"),
    ):
        if keyword in node:
            found.append(f"{label} {node[keyword]}")
    if "minimum" in node:
        found.append(f"{'>' if node.get('exclusiveMinimum') else '≥'} {node['minimum']}")
    if "maximum" in node:
        found.append(f"≤ {node['maximum']}")
    if node.get("x-kubernetes-list-type") == "map":
        found.append(f"unique by {', '.join(node['x-kubernetes-list-map-keys'])}")
    elif node.get("x-kubernetes-list-type") == "set":
        found.append("unique items")
    return found


def _rows(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    """(path, node, required) for every field under `node`, depth first, in name order."""
    required = set(node.get("required", []))
    for name in sorted(node.get("properties", {})):
        child = node["properties"][name]
        child_path = f"{path}.{name}"
        yield child_path, child, name in required
        yield from _children(child, child_path)


def _children(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    if "properties" in node:
        yield from _rows(node, path)
    elif isinstance(node.get("additionalProperties"), Mapping):
        value = node["additionalProperties"]
        yield from _children(value, f"{path}.<key>")
    elif isinstance(node.get("items"), Mapping):
        yield from _children(node["items"], f"{path}[]")


def _rules(node: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
    for rule in node.get("x-kubernetes-validations", []):
        yield path, rule["message"]
    for name in sorted(node.get("properties", {})):
        yield from _rules(node["properties"][name], f"{path}.{name}")
    if isinstance(node.get("additionalProperties"), Mapping):
        yield from _rules(node["additionalProperties"], f"{path}.<key>")
    if isinstance(node.get("items"), Mapping):
        yield from _rules(node["items"], f"{path}[]")


def _table(node: Mapping[str, Any], path: str) -> list[str]:
    lines = ["| Field | Type | Required | Description |", "|---|---|---|---|"]
    for row_path, child, required in _rows(node, path):
        details = [child.get("description", "")]
        constraints = _constraints(child)
        if constraints:
            details.append(f"({'; '.join(constraints)})")
        description = _escape(" ".join(part for part in details if part))
        lines.append(f"| `{row_path}` | {_type_of(child)} | {'yes' if required else ''} | {description} |")
    return lines


def _kind_section(definition: KindDefinition) -> list[str]:
    schema = openapi_schema(definition.model)
    spec = schema["properties"]["spec"]
    status = schema["properties"]["status"]
    columns = ", ".join(column.name.upper() for column in definition.columns if not column.priority)
    lines = [
        f"## {definition.kind}",
        "",
        _escape(schema.get("description", "")),
        "",
        f"Plural `{definition.plural}`, short name `{'`, `'.join(definition.short_names)}`."
        + (f" Extra columns: {columns}." if columns else ""),
        "",
        "### spec",
        "",
        _escape(spec.get("description", "")),
        "",
        *_table(spec, "spec"),
        "",
    ]
    rules = list(_rules(spec, "spec"))
    if rules:
        lines += ["Rules checked by the API server:", ""]
        lines += [f"- `{path}`: {_escape(message)}" for path, message in rules]
        lines.append("")
    lines += ["### status", "", *_table(status, "status"), ""]
    return lines


def render_api_markdown() -> str:
    """The whole of docs/api.md."""
    lines = [_INTRO]
    lines += ["Kinds: " + ", ".join(f"[{d.kind}](#{d.kind.lower()})" for d in KIND_DEFINITIONS) + ".", ""]
    for definition in KIND_DEFINITIONS:
        lines += _kind_section(definition)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_api_markdown())
