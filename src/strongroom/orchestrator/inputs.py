"""Reading what the orchestrator renders from: Score files, resource definitions, shared values.

- **Score files** (`score.dev/v1b1`): one workload each, read as score-go reads YAML and validated by the
  Workload model (the Score schema's rules) plus the Score-only rules the Workload API does not have
  (resource ids). `--image` options set container images first. A file's `source` is read relative to the
  Score file and inlined (`content`, or `binaryContent` when it is not UTF-8 text), because the operator
  cannot read the developer's disk.
- **Resource definitions**, in two formats (any number of YAML documents per file; a directory is read
  recursively, `*.yaml` / `*.yml` in name order):
  - strongroom's own: `apiVersion: strongroom.dev/v1alpha1`, `kind: ResourceDefinition`,
    `metadata.name`, `spec {type, driverType, driverInputs {values, secrets, secretRefs}, criteria[]
    {app, env, envType, class, resId}, inPlaceDriverChange}`;
  - Humanitec's: `apiVersion: entity.humanitec.io/v1b1`, `kind: Definition`, `metadata.id`, `entity
    {name, type, driver_type, driver_inputs {values, secrets, secret_refs}, criteria[] {app_id, env_id,
    env_type, class, res_id}}`.
  The same files may hold `Driver` objects (`strongroom.dev/v1alpha1`): remote drivers that definitions
  name in `driverType`. They describe platform Drivers, installed once in the operator namespace by the
  platform admin (`strongroom render --drivers`); only direct mode calls them from here.
- **Shared values** (`--values`): a YAML mapping `KEY: value`, where a value is text (numbers and booleans
  are written as text) or a secret reference `{store, ref, version}`.

Every problem is collected (see `problems.py`); nothing here reads a secret value.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api import constants as c
from strongroom.api.common import ApiModel, SecretReference, validation_lines
from strongroom.api.driver import Driver
from strongroom.api.resource import DriverInputs
from strongroom.api.workload import PLACEHOLDER_IMAGE, SCORE_RESOURCE_ID, SCORE_RESOURCE_ID_MAX, WorkloadSpec
from strongroom.orchestrator.problems import Problems
from strongroom.reconcile.placeholders import Placeholder, PlaceholderError, parse
from strongroom.templating import TemplateError, parse_yaml

SCORE_API_VERSION = "score.dev/v1b1"
HUMANITEC_DEFINITION_API_VERSION = "entity.humanitec.io/v1b1"

#: Keys of shared values: they become keys of a Kubernetes Secret and of echo driver inputs.
VALUE_KEY = c.DATA_KEY


# --- Parsed inputs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Criterion:
    """One matching criterion of a definition; an unset field matches anything (class: see matching)."""

    app: str | None = None
    env: str | None = None
    env_type: str | None = None
    res_class: str | None = None
    res_id: str | None = None


@dataclass(frozen=True)
class ResourceDefinition:
    """A resource definition, whichever format it was written in."""

    name: str
    source: str
    """Where it was read (`file.yaml#2`), for messages."""
    type: str
    driver_type: str
    values: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None
    secret_refs: dict[str, Any] | None = None
    """Secret reference tree as plain data (`{store, ref, version}` leaves), already validated."""
    criteria: tuple[Criterion, ...] = ()
    in_place_driver_change: bool = False
    builtin: bool = False
    """True for the orchestrator's own fallback definitions (they lose against any user definition)."""


@dataclass(frozen=True)
class ScoreWorkload:
    name: str
    source: str
    spec: dict[str, Any]
    """The Score document without apiVersion, validated and in wire form (camelCase, maps)."""


@dataclass(frozen=True)
class SharedValue:
    key: str
    text: str | None = None
    ref: SecretReference | None = None

    @property
    def is_secret(self) -> bool:
        return self.ref is not None


@dataclass
class Inputs:
    workloads: list[ScoreWorkload] = field(default_factory=list)
    definitions: list[ResourceDefinition] = field(default_factory=list)
    drivers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Driver objects by name, as plain manifests (metadata reduced to the name)."""
    values: dict[str, SharedValue] = field(default_factory=dict)


# --- YAML -------------------------------------------------------------------------------------------------
#
# Two dialects, each the one the files' own tools read:
# - Score files as score-go reads them (gopkg.in/yaml.v3, the YAML 1.2 core schema): `on`, `yes`, `y` and
#   timestamps are text, only `true`/`false` are booleans;
# - definition and values files as Kubernetes tooling reads them (sigs.k8s.io/yaml: go-yaml v2 resolution,
#   numbers through float64), which is the project's one YAML dialect, `strongroom.templating.parse_yaml`.


class _ScoreLoader(yaml.SafeLoader):
    """YAML as score-go reads it: plain scalars resolve by the YAML 1.2 core schema; a key given twice in
    one mapping is an error (merged `<<` keys may be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable: refused by the construction below
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping key {key!r} already defined", key_node.start_mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


_ScoreLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _ScoreLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


def _read_text(path: Path, problems: Problems) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(str(path), f"cannot read: {exc.__class__.__name__}: {exc}")
        return None


def _yaml_error(path: Path, exc: yaml.YAMLError, problems: Problems) -> None:
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problems.add(where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")


def _located(path: Path, docs: list[Any]) -> Iterator[tuple[str, Any]]:
    count = sum(doc is not None for doc in docs)
    index = 0
    for doc in docs:
        if doc is None:
            continue
        index += 1
        yield (f"{path}#{index}" if count > 1 else str(path)), doc


def _score_documents(path: Path, problems: Problems) -> Iterator[tuple[str, Any]]:
    """(where, document) for each non-empty YAML document of a Score file."""
    text = _read_text(path, problems)
    if text is None:
        return
    try:
        docs = list(yaml.load_all(text, Loader=_ScoreLoader))
    except yaml.YAMLError as exc:
        _yaml_error(path, exc, problems)
        return
    yield from _located(path, docs)


def yaml_documents(path: Path, problems: Problems) -> Iterator[tuple[str, Any]]:
    """(where, document) for each non-empty YAML document of a definitions, values or object file, read by
    `strongroom.templating.parse_yaml` (which reads one document: the stream is cut where the YAML parser
    puts each document's root node)."""
    text = _read_text(path, problems)
    if text is None:
        return
    try:
        roots = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        _yaml_error(path, exc, problems)
        return
    docs: list[Any] = []
    for root in roots:
        if root is None:
            docs.append(None)
            continue
        start = root.start_mark
        # Pad with the lines before the root, so indentation and line numbers stay those of the file.
        piece = "\n" * start.line + " " * start.column + text[start.index : root.end_mark.index]
        try:
            docs.append(parse_yaml(piece))
        except TemplateError as exc:
            problems.add(f"{path}:{start.line + 1}", f"not valid YAML: {exc}")
            return
    yield from _located(path, docs)


def _validation_lines(where: str, exc: pydantic.ValidationError, problems: Problems) -> None:
    """One problem per validation error, located by field, without the offending input."""
    for loc, message in validation_lines(exc):
        problems.add(f"{where}: {loc}" if loc else where, message)


# --- Score ------------------------------------------------------------------------------------------------


def _inline_sources(doc: dict[str, Any], base: Path, where: str, problems: Problems) -> None:
    """Replace every container file's `source` with its content (in place)."""
    containers = doc.get("containers")
    if not isinstance(containers, dict):
        return
    for cname, container in containers.items():
        files = container.get("files") if isinstance(container, dict) else None
        entries: list[dict[str, Any]] = []
        if isinstance(files, list):
            entries = [entry for entry in files if isinstance(entry, dict)]
        elif isinstance(files, dict):
            entries = [entry for entry in files.values() if isinstance(entry, dict)]
        for entry in entries:
            source = entry.get("source")
            if not isinstance(source, str):
                continue
            path = (base / source).resolve()
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.add(f"{where}: containers.{cname}.files", f"source {source!r}: {exc.strerror}")
                continue
            del entry["source"]
            try:
                entry["content"] = data.decode("utf-8")
            except UnicodeDecodeError:
                entry["binaryContent"] = base64.b64encode(data).decode()
                entry.pop("noExpand", None)


@dataclass(frozen=True)
class ImageOverride:
    """One `--image [WORKLOAD[.CONTAINER]=]IMAGE` option: score-k8s's `--image`, per workload or container."""

    image: str
    workload: str | None = None
    container: str | None = None

    @property
    def option(self) -> str:
        """The option as written, for messages."""
        target = ".".join(part for part in (self.workload, self.container) if part)
        return f"--image {target}={self.image}" if target else f"--image {self.image}"


def parse_image_option(text: str) -> ImageOverride:
    """`IMAGE` (every workload's `.` images), `WORKLOAD=IMAGE` (that workload's `.` images) or
    `WORKLOAD.CONTAINER=IMAGE` (that container's image, whatever the Score file says). Images hold no
    `=`, so the first `=` separates the target. Raises ValueError with a readable message."""
    target, equals, image = text.partition("=")
    if not equals:
        target, image = "", text
    if not image or image != image.strip() or any(ch.isspace() for ch in image):
        raise ValueError(f"{text!r}: the image must be non-empty and without whitespace")
    if not equals:
        return ImageOverride(image)
    workload, dot, container = target.partition(".")
    if not workload or (dot and not container):
        raise ValueError(f"{text!r}: expected IMAGE, WORKLOAD=IMAGE or WORKLOAD.CONTAINER=IMAGE")
    return ImageOverride(image, workload, container or None)


def _apply_images(
    doc: dict[str, Any], name: str, where: str, images: Sequence[ImageOverride], problems: Problems
) -> set[ImageOverride]:
    """Set container images from `images` (in place); the overrides that name this workload (and one of its
    containers, for the per-container form)."""
    containers = doc.get("containers")
    if not isinstance(containers, dict):
        return set()
    named = {o for o in images if o.workload == name and (o.container is None or o.container in containers)}
    for cname, container in containers.items():
        if not isinstance(container, dict):
            continue
        exact = [o for o in images if o.workload == name and o.container == cname]
        placeholder = [o for o in images if o.workload == name and o.container is None]
        placeholder = placeholder or [o for o in images if o.workload is None]
        chosen = exact or (placeholder if container.get("image") == PLACEHOLDER_IMAGE else [])
        if len({o.image for o in chosen}) > 1:
            problems.add(
                f"{where}: containers.{cname}.image",
                f"{' and '.join(sorted({o.option for o in chosen}))} give different images",
            )
            continue
        if chosen:
            container["image"] = chosen[0].image
    return named


def _score_file_problems(doc: Mapping[str, Any], where: str, problems: Problems) -> bool:
    """Rules of the Score schema that the Workload API does not have (it holds what the orchestrator
    writes, e.g. a resource id `shared.<id>` longer than Score's 63 characters). True if none."""
    ok = True
    resources = doc.get("resources")
    for rname, resource in resources.items() if isinstance(resources, dict) else ():
        res_id = resource.get("id") if isinstance(resource, dict) else None
        if isinstance(res_id, str) and not (
            2 <= len(res_id) <= SCORE_RESOURCE_ID_MAX and re.fullmatch(SCORE_RESOURCE_ID, res_id)
        ):
            problems.add(
                f"{where}: resources.{rname}.id",
                f"must be 2 to {SCORE_RESOURCE_ID_MAX} characters: labels of lower-case letters, digits and "
                "'-' (not at either end) separated by '.' (Score)",
            )
            ok = False
    return ok


def load_score(
    path: Path, problems: Problems, images: Sequence[ImageOverride] = ()
) -> tuple[ScoreWorkload | None, set[ImageOverride]]:
    """The workload of one Score file (None if it has problems), and the `images` that name it."""
    before = len(problems.lines)
    docs = list(_score_documents(path, problems))
    if not docs:
        if len(problems.lines) == before:  # not already reported as unreadable
            problems.add(str(path), "no Score workload in this file")
        return None, set()
    if len(docs) > 1:
        problems.add(str(path), "a Score file holds one workload; found several YAML documents")
        return None, set()
    where, doc = docs[0]
    if not isinstance(doc, dict):
        problems.add(where, "a Score file must be a YAML mapping")
        return None, set()
    doc = dict(doc)
    api_version = doc.pop("apiVersion", None)
    if api_version != SCORE_API_VERSION:
        problems.add(where, f"apiVersion must be {SCORE_API_VERSION}, not {api_version!r}")
        return None, set()
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
    if not isinstance(name, str) or not name:
        problems.add(where, "metadata.name is required")
        return None, set()
    used = _apply_images(doc, name, where, images, problems)
    _inline_sources(doc, path.parent, where, problems)
    if not _score_file_problems(doc, where, problems):
        return None, used
    try:
        spec = WorkloadSpec.model_validate(doc)
    except pydantic.ValidationError as exc:
        _validation_lines(where, exc, problems)
        return None, used
    data: dict[str, Any] = spec.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude_defaults=True
    )
    return ScoreWorkload(name=name, source=where, spec=data), used


# --- Resource definitions ---------------------------------------------------------------------------------


class _StrongroomCriterion(ApiModel):
    app: str | None = Field(default=None, min_length=1)
    env: str | None = Field(default=None, min_length=1)
    env_type: str | None = Field(default=None, min_length=1)
    class_: str | None = Field(default=None, alias="class", pattern=c.RESOURCE_ID)
    res_id: str | None = Field(default=None, pattern=c.RESOURCE_ID)


class _StrongroomDefinitionSpec(ApiModel):
    type: str = Field(pattern=c.RESOURCE_TYPE, max_length=100)
    driver_type: str = Field(pattern=c.DRIVER_TYPE, max_length=253)
    driver_inputs: DriverInputs | None = None
    criteria: list[_StrongroomCriterion] = Field(default_factory=list)
    in_place_driver_change: bool = False


class _StrongroomMetadata(ApiModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(pattern=c.DNS1123_SUBDOMAIN, max_length=253)


class _StrongroomDefinition(ApiModel):
    api_version: Literal["strongroom.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["ResourceDefinition"]
    metadata: _StrongroomMetadata
    spec: _StrongroomDefinitionSpec


class _Snake(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _HumanitecCriterion(_Snake):
    id: str | None = None  # the criterion's own id in Humanitec's API; not used for matching
    app_id: str | None = Field(default=None, min_length=1)
    env_id: str | None = Field(default=None, min_length=1)
    env_type: str | None = Field(default=None, min_length=1)
    class_: str | None = Field(default=None, alias="class", pattern=c.RESOURCE_ID)
    res_id: str | None = Field(default=None, pattern=c.RESOURCE_ID)


class _HumanitecDriverInputs(_Snake):
    values: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None
    secret_refs: dict[str, Any] | None = None


class _HumanitecEntity(_Snake):
    name: str | None = None
    type: str = Field(pattern=c.RESOURCE_TYPE, max_length=100)
    driver_type: str = Field(pattern=c.DRIVER_TYPE, max_length=253)
    driver_inputs: _HumanitecDriverInputs | None = None
    criteria: list[_HumanitecCriterion] = Field(default_factory=list)
    driver_account: str | None = None
    provision: dict[str, Any] | None = None


class _HumanitecMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=253)


class _HumanitecDefinition(_Snake):
    api_version: Literal["entity.humanitec.io/v1b1"] = Field(alias="apiVersion")
    kind: Literal["Definition"]
    metadata: _HumanitecMetadata
    entity: _HumanitecEntity


#: Drivers whose `secrets.templates` are templates (text that is in Git anyway), not secret values.
TEMPLATE_DRIVER_TYPES = frozenset({"humanitec/template", "strongroom/template"})
#: Placeholder roots that stand for a value kept elsewhere (a store, another resource's outputs).
_REFERENCE_ROOTS = frozenset({"resources", "values"})


def _literal_secrets(secrets: Any, driver_type: str, field_name: str) -> list[str]:
    """Paths of `driver_inputs.secrets` leaves that hold a value written out in the definition.

    A definition is in Git, and its secrets become the Resource's spec: a secret written there is a
    secret in Git. Every leaf must name where its value comes from (`${values.KEY}` of a secret shared
    value, `${resources...}` of a secret output); `${context...}` alone resolves to known text. The
    Template driver's `templates` are template text, not values."""
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key in sorted(node):
                if path == field_name and key == "templates" and driver_type in TEMPLATE_DRIVER_TYPES:
                    continue
                walk(node[key], f"{path}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{path}[{index}]")
        elif isinstance(node, str):
            try:
                segments = parse(node)
            except PlaceholderError:
                return  # reported where the strings are rewritten
            if not any(isinstance(s, Placeholder) and s.root in _REFERENCE_ROOTS for s in segments):
                found.append(path)
        elif node is not None:
            found.append(path)

    walk(secrets or {}, field_name)
    return found


def _refuse_literal_secrets(
    secrets: Any, driver_type: str, where: str, field_name: str, problems: Problems
) -> bool:
    """Report each literal secret (one line each, naming the path, never the value); True if none."""
    paths = _literal_secrets(secrets, driver_type, field_name)
    for path in paths:
        problems.add(
            f"{where}: {path}",
            "a secret value written in the definition would be kept in Git and in the Resource; put it "
            "in a store and reference it (secret_refs, or ${values.KEY} of a secret shared value)",
        )
    return not paths


def _check_secret_refs(tree: Any, where: str, problems: Problems) -> dict[str, Any] | None:
    """Validate a secret reference tree (Humanitec's `value` leaves are refused: no plaintext in inputs)."""
    if tree is None:
        return None

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict) and "value" in node and not {"store", "ref"} & set(node):
            problems.add(
                f"{where}: {path}",
                "a plaintext `value` in secret_refs is not supported: put the secret in a store and "
                "reference it with {store, ref}",
            )
        elif isinstance(node, dict) and not {"store", "ref", "version"} & set(node):
            for key in sorted(node):
                walk(node[key], f"{path}.{key}")

    walk(tree, "secret_refs")
    try:
        checked = DriverInputs.model_validate({"secretRefs": tree})
    except pydantic.ValidationError as exc:
        _validation_lines(where, exc, problems)
        return None
    dumped = checked.model_dump(mode="json", by_alias=True, exclude_none=True)
    refs: dict[str, Any] = dumped.get("secretRefs") or {}
    return refs


def _strongroom_definition(where: str, doc: dict[str, Any], problems: Problems) -> ResourceDefinition | None:
    try:
        parsed = _StrongroomDefinition.model_validate(doc)
    except pydantic.ValidationError as exc:
        _validation_lines(where, exc, problems)
        return None
    spec = parsed.spec
    inputs = spec.driver_inputs
    if inputs is not None and not _refuse_literal_secrets(
        inputs.secrets, spec.driver_type, f"{where} (definition {parsed.metadata.name!r})",
        "spec.driverInputs.secrets", problems,
    ):  # fmt: skip
        return None
    refs = None
    if inputs is not None and inputs.secret_refs is not None:
        dumped = inputs.model_dump(mode="json", by_alias=True, exclude_none=True)
        refs = dumped.get("secretRefs")
    return ResourceDefinition(
        name=parsed.metadata.name,
        source=where,
        type=spec.type,
        driver_type=spec.driver_type,
        values=inputs.values if inputs else None,
        secrets=inputs.secrets if inputs else None,
        secret_refs=refs,
        criteria=tuple(
            Criterion(app=cr.app, env=cr.env, env_type=cr.env_type, res_class=cr.class_, res_id=cr.res_id)
            for cr in spec.criteria
        ),
        in_place_driver_change=spec.in_place_driver_change,
    )


def _humanitec_definition(where: str, doc: dict[str, Any], problems: Problems) -> ResourceDefinition | None:
    try:
        parsed = _HumanitecDefinition.model_validate(doc)
    except pydantic.ValidationError as exc:
        _validation_lines(where, exc, problems)
        return None
    entity = parsed.entity
    ok = True
    if entity.driver_account is not None:
        problems.add(
            f"{where}: entity.driver_account",
            "cloud accounts are not supported; give the driver its credentials as secret_refs",
        )
        ok = False
    if entity.provision:
        problems.add(
            f"{where}: entity.provision",
            "co-provisioning is not supported; reference the other resource's outputs with a placeholder "
            "(${resources.<type>.outputs.<key>}), which provisions it as a dependency",
        )
        ok = False
    inputs = entity.driver_inputs
    if inputs is not None and not _refuse_literal_secrets(
        inputs.secrets, entity.driver_type, f"{where} (definition {parsed.metadata.id!r})",
        "entity.driver_inputs.secrets", problems,
    ):  # fmt: skip
        ok = False
    refs = _check_secret_refs(inputs.secret_refs, where, problems) if inputs else None
    if inputs is not None and inputs.secret_refs is not None and refs is None:
        ok = False
    if not ok:
        return None
    return ResourceDefinition(
        name=parsed.metadata.id,
        source=where,
        type=entity.type,
        driver_type=entity.driver_type,
        values=inputs.values if inputs else None,
        secrets=inputs.secrets if inputs else None,
        secret_refs=refs,
        criteria=tuple(
            Criterion(
                app=cr.app_id, env=cr.env_id, env_type=cr.env_type, res_class=cr.class_, res_id=cr.res_id
            )
            for cr in entity.criteria
        ),
    )


def _driver_object(where: str, doc: dict[str, Any], problems: Problems) -> tuple[str, dict[str, Any]] | None:
    try:
        driver = Driver.model_validate(doc)
    except pydantic.ValidationError as exc:
        _validation_lines(where, exc, problems)
        return None
    if not driver.name:
        problems.add(where, "metadata.name is required")
        return None
    # Only the name and spec travel: the orchestrator sets namespace and labels; status is the operator's.
    manifest = {
        "apiVersion": c.API_VERSION,
        "kind": "Driver",
        "metadata": {"name": driver.name},
        "spec": driver.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    return driver.name, manifest


def _definition_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml"))
    return [path]


def load_definitions(paths: list[Path], inputs: Inputs, problems: Problems) -> None:
    names: dict[str, str] = {}
    drivers: dict[str, str] = {}
    for root in paths:
        if not root.exists():
            problems.add(str(root), "no such file or directory")
            continue
        for path in _definition_files(root):
            for where, doc in yaml_documents(path, problems):
                if not isinstance(doc, dict):
                    problems.add(where, "expected a YAML mapping")
                    continue
                api_version, kind = doc.get("apiVersion"), doc.get("kind")
                if api_version == HUMANITEC_DEFINITION_API_VERSION and kind == "Definition":
                    definition = _humanitec_definition(where, doc, problems)
                elif api_version == c.API_VERSION and kind == "ResourceDefinition":
                    definition = _strongroom_definition(where, doc, problems)
                elif api_version == c.API_VERSION and kind == "Driver":
                    found = _driver_object(where, doc, problems)
                    if found is not None:
                        name, manifest = found
                        if name in drivers:
                            problems.add(where, f"Driver {name!r} is also defined in {drivers[name]}")
                        else:
                            drivers[name] = where
                            inputs.drivers[name] = manifest
                    continue
                else:
                    problems.add(
                        where,
                        f"not a resource definition (apiVersion {api_version!r}, kind {kind!r}); expected "
                        f"{c.API_VERSION} ResourceDefinition or Driver, or "
                        f"{HUMANITEC_DEFINITION_API_VERSION} Definition",
                    )
                    continue
                if definition is None:
                    continue
                if definition.name in names:
                    problems.add(
                        where, f"definition {definition.name!r} is also defined in {names[definition.name]}"
                    )
                    continue
                names[definition.name] = where
                inputs.definitions.append(definition)


# --- Shared values ----------------------------------------------------------------------------------------


def load_values(path: Path, inputs: Inputs, problems: Problems) -> None:
    docs = list(yaml_documents(path, problems))
    if not docs:
        return
    if len(docs) > 1:
        problems.add(str(path), "the values file must be one YAML mapping")
        return
    where, doc = docs[0]
    if not isinstance(doc, Mapping):
        problems.add(where, "the values file must be a YAML mapping of KEY: value")
        return
    key_pattern = re.compile(VALUE_KEY)
    for key in sorted(doc, key=str):
        value = doc[key]
        at = f"{where}: {key}"
        if not isinstance(key, str) or not key_pattern.fullmatch(key):
            problems.add(at, "a value's key may hold letters, digits, '-', '_' and '.' only")
            continue
        if isinstance(value, Mapping):
            try:
                ref = SecretReference.model_validate(dict(value))
            except pydantic.ValidationError as exc:
                _validation_lines(at, exc, problems)
                continue
            inputs.values[key] = SharedValue(key, ref=ref)
        elif isinstance(value, bool):
            inputs.values[key] = SharedValue(key, text="true" if value else "false")
        elif isinstance(value, str | int | float):
            inputs.values[key] = SharedValue(key, text=str(value))
        else:
            problems.add(at, "a value must be text, a number, a boolean or a secret reference {store, ref}")


def load_inputs(
    score_files: list[Path],
    definition_paths: list[Path],
    values_file: Path | None,
    images: Sequence[ImageOverride] = (),
) -> tuple[Inputs, Problems]:
    """Read every input; problems are collected, not raised."""
    problems = Problems()
    inputs = Inputs()
    seen: dict[str, str] = {}
    used: set[ImageOverride] = set()
    for path in score_files:
        workload, applied = load_score(path, problems, images)
        used |= applied
        if workload is None:
            continue
        if workload.name in seen:
            problems.add(
                workload.source, f"workload {workload.name!r} is also defined in {seen[workload.name]}"
            )
            continue
        seen[workload.name] = workload.source
        inputs.workloads.append(workload)
    for override in images:
        if override.workload is not None and override not in used:
            named = f"workload {override.workload!r}"
            if override.container is not None:
                named += f" with a container {override.container!r}"
            problems.add(override.option, f"no Score file has a {named}")
    load_definitions(definition_paths, inputs, problems)
    if values_file is not None:
        load_values(values_file, inputs, problems)
    inputs.workloads.sort(key=lambda w: w.name)
    return inputs, problems
