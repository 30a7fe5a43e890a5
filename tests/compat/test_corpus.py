"""The compatibility corpus: Resource Definitions for the Template driver in every form Humanitec documents.

Each file in definitions/ is a Humanitec Resource Definition (`entity.driver_inputs`) written for this
project, plus a `compat` block saying how to call it (GUResID, resource type and inputs). Every one is
rendered twice by strongroom's Template driver (in its render processes, as the operator runs it) — the
second time with the cookie the first call produced — and by the Go oracle (testenv/gobuild/gotemplate,
driver.go: Go text/template + Sprig, every rendered text read by sigs.k8s.io/yaml), and the results are
compared field by field: output values (with a workload's `update`), output secrets, manifests by name
(location and object), and the cookie.

`test_the_corpus_covers_every_documented_form` keeps the corpus honest: each form the Humanitec
documentation describes appears in it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from strongroom.drivers.base import DriverRequest, DriverResult, TemplateFailed, reveal_tree, to_secret_tree
from strongroom.drivers.template import TemplateDriver, render_request
from strongroom.stores.base import SecretValue
from testenv.gotemplate import GoTemplateOracle
from tests.compat.compare import assert_same

pytestmark = pytest.mark.integration

DEFINITIONS = sorted((Path(__file__).resolve().parent / "definitions").glob("*.yaml"))
TEMPLATE_KEYS = ("init", "manifests", "outputs", "secrets", "cookie")


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def _request(definition: dict[str, Any], cookie: SecretValue | None = None) -> DriverRequest:
    entity, call = definition["entity"], definition["compat"]
    inputs = entity["driver_inputs"]
    return DriverRequest(
        guresid=call["guresid"],
        type=entity["type"],
        resource_id=call.get("resource_id", f"modules.app.externals.{entity['type']}"),
        resource_class="default",
        resource_inputs=call.get("resource", {}),
        values=inputs.get("values", {}),
        secrets=to_secret_tree(inputs.get("secrets", {})),
        cookie=cookie,
    )


def _plain(result: DriverResult) -> dict[str, Any]:
    """Our result in the oracle's shape."""
    values = dict(result.values)
    if result.update is not None:
        values["update"] = result.update
    return {
        "values": values,
        "secrets": reveal_tree(result.secrets),
        "manifests": {m.name: {"location": m.location, "data": m.data} for m in result.manifests},
        "cookie": None if result.cookie is None else json.loads(result.cookie.reveal()),
    }


def _go(go: GoTemplateOracle, definition: dict[str, Any], cookie: Any) -> dict[str, Any]:
    inputs = definition["entity"]["driver_inputs"]
    call = definition["compat"]
    answer = go.run_driver(
        guresid=call["guresid"],
        resource=call.get("resource", {}),
        values=inputs.get("values", {}),
        secrets=inputs.get("secrets", {}),
        cookie=cookie,
    )
    assert answer.output is not None, f"Go failed: {answer.error}"
    decoded: dict[str, Any] = json.loads(answer.output)
    return decoded


@pytest.fixture(scope="module")
def driver() -> Iterator[TemplateDriver]:
    template_driver = TemplateDriver()
    yield template_driver
    template_driver.pool.close()


def test_the_corpus_is_well_formed() -> None:
    assert len(DEFINITIONS) >= 8
    ids = set()
    for path in DEFINITIONS:
        definition = _load(path)
        assert definition["kind"] == "Definition", path.name
        assert definition["entity"]["driver_type"] == "humanitec/template", path.name
        assert set(definition["compat"]) <= {"guresid", "resource", "resource_id"}, path.name
        ids.add(definition["metadata"]["id"])
    assert len(ids) == len(DEFINITIONS), "duplicate definition ids"


@pytest.mark.parametrize("path", DEFINITIONS, ids=[path.stem for path in DEFINITIONS])
async def test_definition_renders_as_in_go(driver: TemplateDriver, go: GoTemplateOracle, path: Path) -> None:
    definition = _load(path)
    first = await driver.apply(_request(definition))
    expected = _go(go, definition, cookie=None)
    assert_same(_plain(first), expected)

    # The cookie comes back: ours as the operator stores it, Go's as the JSON it produced.
    second = await driver.apply(_request(definition, cookie=first.cookie))
    assert_same(_plain(second), _go(go, definition, cookie=expected["cookie"]))


def test_the_corpus_covers_every_documented_form() -> None:
    forms: set[str] = set()
    for path in DEFINITIONS:
        definition = _load(path)
        inputs = definition["entity"]["driver_inputs"]
        for side in ("values", "secrets"):
            templates = inputs.get(side, {}).get("templates", {})
            for key, template in templates.items():
                kind = "string" if isinstance(template, str) else "object"
                forms.add(f"{side}.templates.{key}")
                forms.add(f"{kind} template")
                if key == "manifests" and isinstance(template, dict):
                    for entry in template.values():
                        data_kind = "string" if isinstance(entry["data"], str) else "object"
                        forms.add(f"object manifests, {data_kind} data")
                elif key == "manifests":
                    forms.add("string manifests")
        result = render_request(_request(definition))
        forms.update(f"location {m.location}" for m in result.manifests)
        if result.update is not None:
            forms.add("workload update")
        # A definition whose second call differs from its first read its cookie back.
        if result.cookie is not None and _plain(
            render_request(_request(definition, cookie=result.cookie))
        ) != _plain(result):
            forms.add("cookie read back")
    required = {
        *(f"values.templates.{key}" for key in TEMPLATE_KEYS),
        "secrets.templates.outputs",
        "string template",
        "object template",
        "string manifests",
        "object manifests, string data",
        "object manifests, object data",
        *(f"location {where}" for where in ("namespace", "cluster", "containers", "volumes")),
        "workload update",
        "cookie read back",
    }
    assert required <= forms, f"not in the corpus: {sorted(required - forms)}"


@pytest.mark.parametrize(
    "outputs",
    ["null: a\n", "~: a\n", "a:\n  ? null\n  : b\n"],
    ids=["null-key", "tilde-key", "nested-null-key"],
)
async def test_a_null_key_is_refused_by_both(
    driver: TemplateDriver, go: GoTemplateOracle, outputs: str
) -> None:
    definition = {
        "entity": {"type": "config", "driver_inputs": {"values": {"templates": {"outputs": outputs}}}},
        "compat": {"guresid": "null-key"},
    }
    answer = go.run_driver(
        guresid="null-key", resource={}, values={"templates": {"outputs": outputs}}, secrets={}
    )
    assert answer.error is not None
    assert "unsupported map key" in answer.error
    with pytest.raises(TemplateFailed, match="unsupported map key"):
        await driver.apply(_request(definition))
