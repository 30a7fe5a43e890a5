"""Building blocks shared by all kinds: the model base, object metadata, status, conditions, references.

Every model here is both the parser reconcilers use (`Kind.model_validate(obj)`) and the source of the CRD
schema (`strongroom.api.crds`). So: constraints go on fields (they become `pattern`, `maxLength`, ...),
cross-field rules go in `x-kubernetes-validations` (CEL, checked by the API server) *and* in a model
validator (checked in code), and defaults live only in code, never in the schema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, TypeAlias, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict
from pydantic_core import ErrorDetails
from typing_extensions import TypeAliasType

from strongroom.api import constants as c


class ApiModel(BaseModel):
    """Base of every API model: camelCase on the wire, snake_case in Python, unknown fields rejected.

    Unknown fields are rejected (not ignored) so a typo in a manifest fails in unit tests and in
    `strongroom` commands instead of being silently dropped; the operator and its CRDs are generated from
    the same models, so objects read from the cluster never carry fields the models do not know.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )


def cel(rule: str, message: str, *, field_path: str | None = None, reason: str | None = None) -> JsonDict:
    """One `x-kubernetes-validations` entry (a CEL rule the API server evaluates on create and update)."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


def exactly_one_of_rule(*fields: str) -> str:
    """CEL that holds when exactly one of `fields` is present on `self`."""
    present = ", ".join(f"has(self.{name})" for name in fields)
    return f"[{present}].filter(x, x).size() == 1"


def count_set(model: BaseModel, *fields: str) -> int:
    """How many of `fields` (Python names) are set to something other than None."""
    return sum(getattr(model, name) is not None for name in fields)


def validation_lines(exc: ValidationError) -> list[tuple[str, str]]:
    """(where, what) for each error of a model validation, without the offending input.

    Locations read as the YAML is written (`containers.main.image`); a map key that breaks a rule reads as
    `containers.Web: name must ...`; tagged unions' tags and pydantic's "Value error, " are left out."""
    lines: list[tuple[str, str]] = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"] if part not in ("leaf", "branch")]
        message = _too_long(error) or str(error["msg"]).removeprefix("Value error, ")
        if loc and loc[-1] == "[key]":
            loc.pop()
            message = f"name {message}"
        lines.append((".".join(loc), message))
    return lines


def _too_long(error: ErrorDetails) -> str | None:
    """A size bound's message naming the bound (pydantic's says "should have at most 32 items after
    validation, not more")."""
    context = error.get("ctx") or {}
    limit = context.get("max_length")
    if error["type"] == "string_too_long":
        return f"is over the limit of {limit} characters"
    if error["type"] == "too_long":
        actual = context.get("actual_length")
        return (
            f"has {actual} entries, over the limit of {limit}"
            if actual
            else f"is over the limit of {limit} entries"
        )
    return None


# --- Durations --------------------------------------------------------------------------------------------

Duration = Annotated[
    str,
    Field(
        pattern=c.DURATION,
        max_length=c.DURATION_MAX,
        description="A duration in Go syntax, e.g. 30s, 5m, 1h30m.",
    ),
]

_SECONDS_PER_UNIT = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")


_NANOSECONDS_PER_UNIT = {"ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration ("1h30m", "90s", "0") as the schema accepts it."""
    if not re.fullmatch(c.DURATION, text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h30m)")
    if text == "0":
        return timedelta(0)
    seconds = sum(float(number) * _SECONDS_PER_UNIT[unit] for number, unit in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def duration_nanoseconds(text: str) -> int:
    """A duration in whole nanoseconds, exactly (Go truncates fractions the same way): `1ns` is 1, not
    the 0 a timedelta makes of it."""
    if not re.fullmatch(c.DURATION, text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h30m)")
    total = 0
    for number, unit in _DURATION_PART.findall(text):
        whole, _, fraction = number.partition(".")
        scale = _NANOSECONDS_PER_UNIT[unit]
        total += int(whole) * scale + (int(fraction) * scale // 10 ** len(fraction) if fraction else 0)
    return total


def bounded_duration(
    *, minimum: str | None = None, maximum: str, zero: str | None = None, description: str
) -> Any:
    """A Duration field type with a floor and a ceiling, checked by the API server (CEL `duration()`) at
    apply time and by the model (objects stored before the bounds existed get InvalidSpec).

    `zero`: what a zero duration means (e.g. "never"), when zero is allowed below `minimum`.
    The result is an `Annotated` type; mypy sees it as `str` when declared under `if TYPE_CHECKING`
    (api/secretmapping.py shows how).
    """
    rule_parts = [f"duration(self) <= duration('{maximum}')"]
    if minimum is not None:
        rule_parts.insert(0, f"duration(self) >= duration('{minimum}')")
    rule = " && ".join(rule_parts)
    if zero is not None:
        rule = f"duration(self) == duration('0s') || ({rule})"
    bounds = f"between {minimum} and {maximum}" if minimum is not None else f"at most {maximum}"
    message = f"must be 0 ({zero}) or {bounds}" if zero is not None else f"must be {bounds}"
    low = duration_nanoseconds(minimum) if minimum is not None else 0
    high = duration_nanoseconds(maximum)

    def check(text: str) -> str:
        value = duration_nanoseconds(text)
        if (zero is not None and value == 0) or low <= value <= high:
            return text
        raise ValueError(f"{text!r} {message}")

    return Annotated[
        str,
        Field(
            pattern=c.DURATION,
            max_length=c.DURATION_MAX,
            description=description,
            json_schema_extra={"x-kubernetes-validations": [cel(rule, message)]},
        ),
        AfterValidator(check),
    ]


# --- Names ------------------------------------------------------------------------------------------------

ObjectName = Annotated[str, Field(pattern=c.DNS1123_SUBDOMAIN, max_length=c.DNS1123_SUBDOMAIN_MAX)]
NamespaceName = Annotated[str, Field(pattern=c.DNS1123_LABEL, max_length=c.DNS1123_LABEL_MAX)]
SecretDataKey = Annotated[str, Field(pattern=c.DATA_KEY, max_length=c.DATA_KEY_MAX)]
PemCertificates = Annotated[
    str,
    Field(
        pattern=c.PEM_CERTIFICATES,
        max_length=c.PEM_MAX,
        description="PEM-encoded CA certificates to trust, in addition to the system roots.",
    ),
]
HttpUrl = Annotated[str, Field(pattern=c.HTTP_URL, max_length=c.URL_MAX)]

#: A free-form JSON object (the API server keeps its fields as they are).
FreeForm = dict[str, Any]


class SecretKeySelector(ApiModel):
    """A key in a Kubernetes Secret in the namespace of the object that refers to it."""

    name: ObjectName
    """Name of the Secret."""
    key: SecretDataKey
    """Key within the Secret's data."""


class LocalObjectReference(ApiModel):
    """A named object in the same namespace."""

    name: ObjectName
    """Name of the object."""


class ObjectReference(ApiModel):
    """An object the operator applied or rendered."""

    api_version: str = Field(min_length=1, max_length=253)
    """apiVersion of the object, e.g. `apps/v1`."""
    kind: str = Field(min_length=1, max_length=63)
    """Kind of the object, e.g. `Deployment`."""
    # Not a DNS-1123 pattern: a driver may emit objects such as ClusterRoles, whose names may contain ":".
    name: str = Field(min_length=1, max_length=253)
    """Name of the object."""
    namespace: NamespaceName | None = None
    """Namespace of the object; absent for cluster-scoped objects."""


# --- Secret references ------------------------------------------------------------------------------------


class SecretReference(ApiModel):
    """Where one secret value lives: a store and the secret's key (and version) in that store."""

    store: ObjectName
    """Name of the SecretStore (this namespace first, then the operator namespace)."""
    ref: str = Field(min_length=1, max_length=1024)
    """Key of the secret in the store, in the store's own format."""
    version: str | None = Field(default=None, max_length=256)
    """Version of the secret in the store; absent or empty means the latest."""


# Leaf detection for secret reference trees: a node that carries any of a reference's own keys is a leaf.
_REFERENCE_KEYS = frozenset({"store", "ref", "version"})


def _secret_ref_node_tag(value: Any) -> str:
    if isinstance(value, SecretReference):
        return "leaf"
    if isinstance(value, Mapping) and _REFERENCE_KEYS.intersection(value):
        return "leaf"
    return "branch"


if TYPE_CHECKING:
    # mypy reads the plain recursive alias; pydantic needs TypeAliasType to build a recursive validator.
    SecretRefNode: TypeAlias = SecretReference | dict[str, "SecretRefNode"]
else:
    SecretRefNode = TypeAliasType(
        "SecretRefNode",
        Annotated[
            Annotated[SecretReference, Tag("leaf")] | Annotated[dict[str, "SecretRefNode"], Tag("branch")],
            Discriminator(_secret_ref_node_tag),
        ],
    )

SECRET_REF_TREE_MAX_KEYS = 128

# A recursive tree cannot be written as a structural schema (no $ref in CRDs), so the API server checks the
# first level only: each top-level value must be an object whose store/ref/version are well-formed; deeper
# levels are kept as they are and checked by the models when the operator reads the object.
_SECRET_REF_TREE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Tree of secret references: nested objects whose leaves are {store, ref, version}. The keys "
        "store, ref and version are reserved for leaves. The API server checks the first level; the "
        "operator checks the whole tree."
    ),
    "maxProperties": SECRET_REF_TREE_MAX_KEYS,
    "additionalProperties": {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "properties": {
            "store": {
                "type": "string",
                "description": "In a leaf: name of the SecretStore.",
                "pattern": c.DNS1123_SUBDOMAIN,
                "maxLength": c.DNS1123_SUBDOMAIN_MAX,
            },
            "ref": {
                "type": "string",
                "description": "In a leaf: key of the secret in the store.",
                "minLength": 1,
                "maxLength": 1024,
            },
            "version": {
                "type": "string",
                "description": "In a leaf: version of the secret; absent or empty means the latest.",
                "maxLength": 256,
            },
        },
        "x-kubernetes-validations": [
            cel(
                "has(self.store) == has(self.ref)",
                "a secret reference needs both store and ref",
            ),
            cel("!has(self.version) || has(self.ref)", "version is only allowed in a secret reference"),
        ],
    },
}

SecretRefTree = Annotated[dict[str, SecretRefNode], WithJsonSchema(_SECRET_REF_TREE_SCHEMA)]


def iter_secret_refs(
    tree: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], SecretReference]]:
    """Flatten a parsed secret reference tree into (path, reference) pairs, in key order."""
    found: list[tuple[tuple[str, ...], SecretReference]] = []
    for key in sorted(tree):
        node = tree[key]
        if isinstance(node, SecretReference):
            found.append(((*prefix, key), node))
        elif isinstance(node, Mapping):
            found.extend(iter_secret_refs(node, (*prefix, key)))
    return found


# --- Status -----------------------------------------------------------------------------------------------

ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """One aspect of the object's state, kstatus style (same shape as metav1.Condition)."""

    type: str = Field(pattern=c.CONDITION_TYPE, max_length=316)
    """Type of condition: `Ready`, `Reconciling` or `Stalled`."""
    status: ConditionStatus
    """Whether the condition holds."""
    reason: str = Field(pattern=c.CONDITION_REASON, max_length=1024)
    """Machine-readable CamelCase reason for the last transition."""
    message: str = Field(default="", max_length=32768)
    """Human-readable detail; never contains a secret value."""
    last_transition_time: datetime
    """When the status last changed."""
    observed_generation: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int64"})
    """metadata.generation this condition was computed from."""


class ObjectStatus(ApiModel):
    """Status common to every kind."""

    observed_generation: int | None = Field(default=None, ge=0, json_schema_extra={"format": "int64"})
    """The metadata.generation the operator last reconciled."""
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    """Current state: `Ready` (plus `Reconciling` / `Stalled` while relevant)."""

    def condition(self, condition_type: str) -> Condition | None:
        """The condition of this type, if present."""
        return next((cond for cond in self.conditions if cond.type == condition_type), None)


# --- Objects ----------------------------------------------------------------------------------------------


class ObjectMeta(ApiModel):
    """The parts of Kubernetes object metadata the operator reads; everything else is kept as is."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    owner_references: list[dict[str, Any]] | None = None


SpecT = TypeVar("SpecT", bound=ApiModel)
StatusT = TypeVar("StatusT", bound=ObjectStatus)


class KubeObject(ApiModel, Generic[SpecT, StatusT]):
    """A whole custom resource object: apiVersion, kind, metadata, spec, status.

    Subclasses pin `kind` to a Literal and set the class variables the CRD generator and clients need.
    """

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]

    api_version: Literal["strongroom.dev/v1alpha1"] = Field(
        default="strongroom.dev/v1alpha1", alias="apiVersion"
    )
    """Always `strongroom.dev/v1alpha1`."""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""
    spec: SpecT
    status: StatusT | None = None

    @property
    def name(self) -> str:
        """metadata.name (empty if unset)."""
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        """metadata.namespace (empty if unset)."""
        return self.metadata.namespace or ""

    def to_dict(self) -> dict[str, Any]:
        """The object as JSON-ready data with camelCase keys, leaving out unset optional fields."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data
