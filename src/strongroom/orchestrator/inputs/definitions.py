"""Resource definitions, in two formats, and the Driver objects kept beside them.

Any number of YAML documents per file; a directory is read recursively, `*.yaml` / `*.yml` in name order.
- strongroom's own: `apiVersion: strongroom.dev/v1alpha1`, `kind: ResourceDefinition`, `metadata.name`,
  `spec {type, driverType, driverInputs {values, secrets, secretRefs}, criteria[] {app, env, envType, class,
  resId}, inPlaceDriverChange}`;
- Humanitec's: `apiVersion: entity.humanitec.io/v1b1`, `kind: Definition`, `metadata.id`, `entity {name,
  type, driver_type, driver_inputs {values, secrets, secret_refs}, criteria[] {app_id, env_id, env_type,
  class, res_id}}`.
Both become one `ResourceDefinition`. The same files may hold `Driver` objects (`strongroom.dev/v1alpha1`):
remote drivers that definitions name in `driverType`. They describe platform Drivers, installed once in the
operator namespace by the platform admin (`strongroom render --drivers`); only direct mode calls them from
here. A definition is in Git, so a secret value written in one is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api import constants as c
from strongroom.api.common import ApiModel
from strongroom.api.driver import Driver
from strongroom.api.resource import DriverInputs
from strongroom.orchestrator.inputs.documents import report_validation_errors, yaml_documents
from strongroom.orchestrator.inputs.model import Criterion, Inputs, ResourceDefinition
from strongroom.orchestrator.problems import Problems
from strongroom.reconcile.placeholders import Placeholder, PlaceholderError, parse

HUMANITEC_DEFINITION_API_VERSION = "entity.humanitec.io/v1b1"


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
        report_validation_errors(where, exc, problems)
        return None
    dumped = checked.model_dump(mode="json", by_alias=True, exclude_none=True)
    refs: dict[str, Any] = dumped.get("secretRefs") or {}
    return refs


def _strongroom_definition(where: str, doc: dict[str, Any], problems: Problems) -> ResourceDefinition | None:
    try:
        parsed = _StrongroomDefinition.model_validate(doc)
    except pydantic.ValidationError as exc:
        report_validation_errors(where, exc, problems)
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
        report_validation_errors(where, exc, problems)
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
        report_validation_errors(where, exc, problems)
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
