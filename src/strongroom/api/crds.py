"""CustomResourceDefinitions generated from the API models.

The models are the single source: pydantic produces a JSON schema, and this module turns it into a
*structural* OpenAPI v3 schema as `apiextensions.k8s.io/v1` requires:

- every `$ref` is inlined (CRD schemas cannot refer to anything);
- `Optional[X]` becomes plain X, left out of `required` (no `nullable`, no `anyOf`);
- defaults are dropped: defaults live in code, so the API server never writes a field the manifest in Git
  does not have, and Argo CD / Flux never see drift;
- free-form maps and `Any` become `x-kubernetes-preserve-unknown-fields`;
- constraints pydantic writes in newer JSON Schema dialects (`const`, numeric `exclusiveMinimum`,
  `propertyNames`) are rewritten into what Kubernetes understands (`enum`, boolean exclusive bounds, CEL).

Anything else that is not structural raises `CrdSchemaError` here, instead of being rejected by the API
server at install time.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from strongroom.api import constants as c
from strongroom.api.driver import Driver
from strongroom.api.kinds import AnyKubeObject
from strongroom.api.resource import Resource
from strongroom.api.secretmapping import SecretMapping
from strongroom.api.secretstore import SecretStore
from strongroom.api.workload import Workload, WorkloadPatch

CATEGORY = "strongroom"


class CrdSchemaError(ValueError):
    """A model produced a schema that cannot be expressed as a structural CRD schema."""


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry (a column of `kubectl get`)."""

    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0

    def to_dict(self) -> dict[str, Any]:
        column: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            column["priority"] = self.priority
        return column


@dataclass(frozen=True)
class KindDefinition:
    """What a CRD needs beyond the model's schema."""

    model: type[AnyKubeObject]
    singular: str
    short_names: tuple[str, ...]
    columns: tuple[PrinterColumn, ...] = field(default=())

    @property
    def kind(self) -> str:
        return self.model.KIND

    @property
    def plural(self) -> str:
        return self.model.PLURAL

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{c.GROUP}"


_COMMON_COLUMNS = (
    PrinterColumn(
        "Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Whether the object is ready"
    ),
    PrinterColumn(
        "Reason", "string", '.status.conditions[?(@.type=="Ready")].reason', "Reason for the Ready state"
    ),
    PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation"),
)

KIND_DEFINITIONS: tuple[KindDefinition, ...] = (
    KindDefinition(
        SecretStore,
        "secretstore",
        ("srstore",),
        (
            PrinterColumn("Store Type", "string", ".status.storeType", "Backend of the store"),
            PrinterColumn(
                "Default",
                "string",
                ".metadata.labels.strongroom\\.dev/default-store",
                "Whether the store receives driver secret outputs",
            ),
        ),
    ),
    KindDefinition(
        SecretMapping,
        "secretmapping",
        ("srmap",),
        (
            PrinterColumn("Secret", "string", ".spec.secretName", "Kubernetes Secret written"),
            PrinterColumn("Last Sync", "date", ".status.lastSyncTime", "Time of the last sync", priority=1),
        ),
    ),
    KindDefinition(
        Driver,
        "driver",
        ("srdriver",),
        (PrinterColumn("Target", "string", ".spec.target", "Base URL of the driver"),),
    ),
    KindDefinition(
        Resource,
        "resource",
        ("srres",),
        (
            PrinterColumn("Type", "string", ".spec.type", "Resource type"),
            PrinterColumn("Class", "string", ".spec.class", "Resource class"),
            PrinterColumn("Driver", "string", ".spec.driverType", "Driver type"),
            PrinterColumn("Secret", "string", ".status.secretName", "Secret with the outputs", priority=1),
        ),
    ),
    KindDefinition(Workload, "workload", ("srwl",)),
    KindDefinition(
        WorkloadPatch,
        "workloadpatch",
        ("srwlp",),
        (
            PrinterColumn("Workload", "string", ".spec.workloadName", "Workload patched"),
            PrinterColumn("Priority", "integer", ".spec.priority", "Order among patches", priority=1),
        ),
    ),
)


# --- JSON schema -> structural schema ---------------------------------------------------------------------


class _CrdJsonSchemaGenerator(GenerateJsonSchema):
    """pydantic's generator, minus the parts CRD schemas must not have."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        # Optional fields are simply left out of `required`; null is never a valid value.
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        # Drop the default: defaults are applied in code only (see module docstring).
        return self.generate_inner(schema["schema"])

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


# Keywords a structural schema may carry (besides the x-kubernetes-* extensions).
_ALLOWED_KEYWORDS = frozenset(
    {
        "type",
        "format",
        "description",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "enum",
        "pattern",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
    }
)
_DROPPED_KEYWORDS = frozenset({"title", "default", "$defs", "examples"})
PRESERVE = "x-kubernetes-preserve-unknown-fields"


def _inline(node: Mapping[str, Any], defs: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Replace a `$ref` (or a one-element allOf around one) by the definition, keeping sibling keywords."""
    result = dict(node)
    ref_holder: Mapping[str, Any] | None = None
    if "$ref" in result:
        ref_holder = result
    elif "allOf" in result and len(result["allOf"]) == 1 and "$ref" in result["allOf"][0]:
        ref_holder = result.pop("allOf")[0]
    if ref_holder is None:
        return result
    ref = str(ref_holder["$ref"])
    name = ref.rsplit("/", 1)[-1]
    if name not in defs:
        raise CrdSchemaError(f"{where}: unresolvable $ref {ref}")
    result.pop("$ref", None)
    # Keywords next to the $ref (a field's description, CEL rules, ...) win over the definition's own.
    return {**copy.deepcopy(defs[name]), **result}


def _key_rule(names: Mapping[str, Any], where: str) -> dict[str, str]:
    """CEL rule for `propertyNames` (which structural schemas lack): check every key of the map."""
    checks: list[str] = []
    described: list[str] = []
    if "minLength" in names:
        checks.append(f"size(k) >= {int(names['minLength'])}")
        minimum = int(names["minLength"])
        described.append("not be empty" if minimum == 1 else f"have at least {minimum} characters")
    if "maxLength" in names:
        checks.append(f"size(k) <= {int(names['maxLength'])}")
        described.append(f"have at most {int(names['maxLength'])} characters")
    if "pattern" in names:
        pattern = str(names["pattern"])
        if "'" in pattern:
            raise CrdSchemaError(f"{where}: key pattern {pattern!r} cannot be quoted in CEL")
        checks.append(f"k.matches(r'{pattern}')")
        described.insert(0, f"match {pattern}")
    unknown = set(names) - {"minLength", "maxLength", "pattern", "type"}
    if unknown or not checks:
        raise CrdSchemaError(f"{where}: unsupported propertyNames {dict(names)}")
    return {"rule": f"self.all(k, {' && '.join(checks)})", "message": f"keys must {' and '.join(described)}"}


def structural(node: Mapping[str, Any], defs: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """Turn one pydantic JSON-schema node (and everything under it) into a structural CRD schema node."""
    result = dict(node)
    while (inlined := _inline(result, defs, where)) != result:  # a definition may itself be a $ref
        result = inlined

    for keyword in _DROPPED_KEYWORDS:
        result.pop(keyword, None)
    if result.get("additionalProperties") is False:
        # Unknown fields are pruned by the API server anyway; `false` is not allowed next to properties.
        del result["additionalProperties"]
    if "const" in result:
        result["enum"] = [result.pop("const")]
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(result.get(bound), int | float) and not isinstance(result.get(bound), bool):
            result[inclusive] = result[bound]
            result[bound] = True
    # pydantic writes a key pattern as patternProperties and other key constraints as propertyNames;
    # structural schemas have neither, so the values become additionalProperties and the keys a CEL rule.
    key_constraints: dict[str, Any] = dict(result.pop("propertyNames", {}))
    if "patternProperties" in result:
        pattern_properties = result.pop("patternProperties")
        if len(pattern_properties) != 1 or "additionalProperties" in result:
            raise CrdSchemaError(f"{where}: only maps with one key pattern can be expressed")
        ((key_pattern, value_schema),) = pattern_properties.items()
        key_constraints["pattern"] = key_pattern
        result["additionalProperties"] = value_schema
    if key_constraints:
        rules = list(result.get("x-kubernetes-validations", []))
        rules.append(_key_rule(key_constraints, where))
        result["x-kubernetes-validations"] = rules

    # Free-form values: `Any` ({}) and maps of Any (additionalProperties: true / {}).
    if not (set(result) - {"description"}):
        result[PRESERVE] = True
        return result
    if result.get("additionalProperties") in (True, {}):
        del result["additionalProperties"]
        result[PRESERVE] = True

    if "properties" in result:
        result["properties"] = {
            name: structural(prop, defs, f"{where}.{name}") for name, prop in result["properties"].items()
        }
    if isinstance(result.get("additionalProperties"), Mapping):
        result["additionalProperties"] = structural(result["additionalProperties"], defs, f"{where}.*")
    if "items" in result:
        result["items"] = structural(result["items"], defs, f"{where}[*]")

    unknown = {key for key in result if not key.startswith("x-kubernetes-")} - _ALLOWED_KEYWORDS
    if unknown:
        raise CrdSchemaError(f"{where or '<root>'}: not structural, has {sorted(unknown)}")
    if "type" not in result and not (result.get(PRESERVE) or result.get("x-kubernetes-int-or-string")):
        raise CrdSchemaError(f"{where or '<root>'}: no type")
    if "properties" in result and "additionalProperties" in result:
        raise CrdSchemaError(f"{where}: properties and additionalProperties exclude each other in a CRD")
    return result


def openapi_schema(model: type[AnyKubeObject]) -> dict[str, Any]:
    """The structural `openAPIV3Schema` for a kind."""
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_CrdJsonSchemaGenerator)
    schema = structural(raw, raw.get("$defs", {}))
    properties = schema["properties"]
    # The API server owns these three; the schema only names their types.
    properties["apiVersion"] = {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an object.",
    }
    properties["kind"] = {
        "type": "string",
        "description": "Kind is a string value representing the REST resource.",
    }
    properties["metadata"] = {"type": "object"}
    schema["required"] = ["spec"]
    return schema


def crd(definition: KindDefinition) -> dict[str, Any]:
    """One CustomResourceDefinition as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": definition.crd_name,
            "labels": {"app.kubernetes.io/name": "strongroom", c.PART_OF_LABEL: c.PART_OF_VALUE},
        },
        "spec": {
            "group": c.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": definition.kind,
                "listKind": f"{definition.kind}List",
                "plural": definition.plural,
                "singular": definition.singular,
                "shortNames": list(definition.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": c.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        column.to_dict() for column in (*definition.columns, *_COMMON_COLUMNS)
                    ],
                    "schema": {"openAPIV3Schema": openapi_schema(definition.model)},
                }
            ],
        },
    }


def crd_dicts() -> list[dict[str, Any]]:
    """All CRDs, sorted by name."""
    return sorted(
        (crd(definition) for definition in KIND_DEFINITIONS), key=lambda obj: obj["metadata"]["name"]
    )


def render_crds_yaml() -> str:
    """All CRDs as one multi-document YAML string; the same models always give the same bytes."""
    # A JSON round trip turns tuples and other non-YAML-native values into plain lists and scalars, so the
    # dump never contains Python-specific tags.
    documents = json.loads(json.dumps(crd_dicts()))
    body = yaml.safe_dump_all(
        documents, sort_keys=True, explicit_start=True, width=1_000_000, allow_unicode=True
    )
    return "# Generated from strongroom.api by `strongroom crds`; do not edit.\n" + body
