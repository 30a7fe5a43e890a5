"""The Template driver: inputs, context, order, results, and errors that name templates, not values."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from strongroom.drivers.base import DriverRequest, TemplateFailed, reveal_tree
from strongroom.drivers.template import TemplateDriver
from strongroom.stores.base import SecretValue

CANARY = "canary-tpl-91ab77"

TEMPLATES = {
    "init": "name: {{ .id }}-config\nport: 5432\n",
    "manifests": (
        "config.yaml:\n"
        "  location: namespace\n"
        "  data:\n"
        "    apiVersion: v1\n"
        "    kind: ConfigMap\n"
        "    metadata:\n"
        "      name: {{ .init.name }}\n"
        "    data:\n"
        "      DB_HOST: {{ .driver.values.dbHost | quote }}\n"
        "      APP: {{ .resource.app | quote }}\n"
        "sidecar:\n"
        "  location: containers\n"
        "  data:\n"
        "    name: proxy\n"
        "    image: proxy:1\n"
    ),
    "outputs": "configMap: {{ .init.name }}\nport: {{ .init.port }}\nday: 2024-01-02\n",
    "cookie": "renders: {{ if .cookie }}{{ add1 .cookie.renders }}{{ else }}1{{ end }}\n",
}
SECRET_TEMPLATES = {
    "init": "generated: {{ .driver.secrets.token | sha256sum | trunc 16 }}\n",
    "outputs": "token: {{ .driver.secrets.token | quote }}\nderived: {{ .init.generated | quote }}\n",
}


def _request(
    values: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None, **kw: Any
) -> DriverRequest:
    fields: dict[str, Any] = {
        "guresid": "abc123",
        "type": "config",
        "resource_id": "modules.api.externals.config",
        "resource_inputs": {"app": "api"},
        "values": {"dbHost": "db.internal", "templates": TEMPLATES} if values is None else values,
        "secrets": {
            "token": SecretValue(CANARY),
            "templates": {key: SecretValue(text) for key, text in SECRET_TEMPLATES.items()},
        }
        if secrets is None
        else secrets,
    }
    fields.update(kw)
    return DriverRequest(**fields)


def _only_values(templates: dict[str, Any], **kw: Any) -> DriverRequest:
    return _request(values={"templates": templates}, secrets={"token": SecretValue(CANARY)}, **kw)


async def test_full_render() -> None:
    driver = TemplateDriver()
    result = await driver.apply(_request())
    assert result.id == "abc123"
    assert result.values == {"configMap": "abc123-config", "port": 5432, "day": "2024-01-02"}
    secrets = reveal_tree(result.secrets)
    assert secrets["token"] == CANARY
    assert len(secrets["derived"]) == 16
    assert [(m.name, m.location) for m in result.manifests] == [
        ("config.yaml", "namespace"),
        ("sidecar", "containers"),
    ]
    config = result.manifests[0].data
    assert config["metadata"]["name"] == "abc123-config"
    assert config["data"] == {"DB_HOST": "db.internal", "APP": "api"}
    assert result.cookie is not None
    assert json.loads(result.cookie.reveal()) == {"renders": 1}
    assert result.update is None
    assert CANARY not in repr(result)

    # The cookie comes back as `.cookie` next time.
    again = await driver.apply(_request(cookie=result.cookie))
    assert again.cookie is not None
    assert json.loads(again.cookie.reveal()) == {"renders": 2}

    assert await driver.apply(_request()) == result  # rendering has no side effects
    await driver.delete(_request())  # nothing to undo


async def test_no_templates_no_outputs() -> None:
    result = await TemplateDriver().apply(_request(values={}, secrets={}))
    assert result.values == {}
    assert result.secrets == {}
    assert result.manifests == []
    assert result.cookie is None


async def test_object_templates_render_leaves_as_strings() -> None:
    templates = {"outputs": {"host": "{{ .driver.values.host }}", "port": "5432", "nested": ["{{ .id }}"]}}
    req = _request(values={"host": "h1", "templates": templates}, secrets={})
    assert (await TemplateDriver().apply(req)).values == {"host": "h1", "port": "5432", "nested": ["abc123"]}


async def test_secrets_init_is_merged_into_init() -> None:
    req = _request(
        values={
            "templates": {"init": "a: 1\nb: {x: 1}\n", "outputs": "a: {{ .init.a }}\nbx: {{ .init.b.x }}\n"}
        },
        secrets={"templates": {"init": SecretValue("b: {x: 2}\n")}},
    )
    assert (await TemplateDriver().apply(req)).values == {"a": 1, "bx": 2}


async def test_workload_update_output() -> None:
    outputs = (
        "update:\n"
        "- op: add\n"
        "  path: /spec/containers/main/variables/OTEL_ENDPOINT\n"
        "  value: http://{{ .id }}:4317\n"
        "url: x\n"
    )
    result = await TemplateDriver().apply(_only_values({"outputs": outputs}, type="workload"))
    assert result.update == [
        {"op": "add", "path": "/spec/containers/main/variables/OTEL_ENDPOINT", "value": "http://abc123:4317"}
    ]
    assert result.values == {"url": "x"}
    with pytest.raises(TemplateFailed, match=r"values.templates.outputs: update\[0\]"):
        await TemplateDriver().apply(
            _only_values({"outputs": "update:\n- op: add\n  path: /x\n"}, type="workload")
        )


def _clean(exc: BaseException) -> str:
    text = str(exc)
    assert CANARY not in text
    assert CANARY not in repr(exc.args)
    # Nothing chained that could carry the original text.
    assert exc.__cause__ is None
    assert exc.__suppress_context__ or exc.__context__ is None
    return text


async def test_template_errors_name_the_template_and_line() -> None:
    broken = {"outputs": "a: 1\nb: {{ .id \n"}
    with pytest.raises(TemplateFailed) as info:
        await TemplateDriver().apply(_only_values(broken))
    text = _clean(info.value)
    assert "values.templates.outputs" in text
    assert ":2" in text
    assert not info.value.retryable


async def test_failures_that_quote_secrets_are_redacted() -> None:
    templates = {"outputs": '{{ fail (printf "no good: %s" .driver.secrets.token) }}'}
    with pytest.raises(TemplateFailed) as info:
        await TemplateDriver().apply(_only_values(templates))
    text = _clean(info.value)
    assert "values.templates.outputs" in text
    assert "no good" in text  # the author's message survives, the secret in it does not

    # A secret template whose own error would show a generated secret from init.
    req = _request(
        values={},
        secrets={
            "token": SecretValue(CANARY),
            "templates": {
                "init": SecretValue("pw: generated-{{ .driver.secrets.token | sha256sum | trunc 12 }}\n"),
                "outputs": SecretValue('{{ fail (printf "bad %s" .init.pw) }}'),
            },
        },
    )
    with pytest.raises(TemplateFailed) as info:
        await TemplateDriver().apply(req)
    text = _clean(info.value)
    assert "secrets.templates.outputs" in text
    assert "generated-" not in text


async def test_invalid_yaml_names_the_line_of_the_rendered_text() -> None:
    with pytest.raises(TemplateFailed) as info:
        await TemplateDriver().apply(
            _only_values({"outputs": "a: 1\nb: [unclosed\nc: {{ .driver.secrets.token }}\n"})
        )
    text = _clean(info.value)
    assert "values.templates.outputs" in text
    assert "not valid YAML" in text
    assert "line" in text


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ({"outputs": "- a\n- b\n"}, "values.templates.outputs must produce a YAML mapping, not a list"),
        ({"manifests": "x:\n  location: moon\n  data: {}\n"}, r"manifests[x].location must be one of"),
        ({"manifests": "x:\n  location: namespace\n  data: '- kind: A'\n"}, "data must be a mapping"),
        (
            {"manifests": {"x": {"location": "volumes", "data": "name: [v"}}},
            "manifests[x].data: rendered text",
        ),
        ({"secrets": "- a\n"}, "values.templates.secrets must produce a YAML mapping, not a list"),
        ({"manifests": "x:\n  location: cluster\n"}, "data must be a mapping (the object) or YAML text"),
        ({"manifests": "- a\n"}, "must produce a YAML mapping"),
        ({"outputs": 5}, "values.templates.outputs must produce a YAML mapping, not a int"),
    ],
)
async def test_shape_errors(templates: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateFailed) as info:
        await TemplateDriver().apply(_only_values(templates))
    assert message in _clean(info.value)


async def test_templates_must_be_an_object() -> None:
    with pytest.raises(TemplateFailed, match=r"values\.templates must be an object"):
        await TemplateDriver().apply(_request(values={"templates": "outputs: x"}, secrets={}))


async def test_a_foreign_cookie_is_handed_over_as_text() -> None:
    req = _only_values({"outputs": "seen: {{ .cookie | quote }}\n"}, cookie=SecretValue("b2xkLWNvb2tpZQ=="))
    assert (await TemplateDriver().apply(req)).values == {"seen": "b2xkLWNvb2tpZQ=="}


async def test_rendered_yaml_is_read_as_go_yaml_reads_it() -> None:
    # sigs.k8s.io/yaml: go-yaml v2 resolves y/on/off as booleans, 1e3 and 0o17 as numbers, keys become
    # strings (y, 1, 1.5), and every number goes through float64 (whole ones print without a fraction).
    outputs = (
        "flag: y\nswitch: off\nexp: 1e3\noctal: 0o17\nhalf: 0.5\nday: 2024-01-02\n"
        "keys: {y: b, 1: c, 1.5: d}\nbig: 12345678901234567890\nquoted: 'y'\n"
    )
    result = await TemplateDriver().apply(_only_values({"outputs": outputs}))
    assert result.values == {
        "flag": True,
        "switch": False,
        "exp": 1000,
        "octal": 15,
        "half": 0.5,
        "day": "2024-01-02",
        "keys": {"true": "b", "1": "c", "1.5": "d"},
        "big": 12345678901234567000,  # float64's digits, as Go's JSON prints them
        "quoted": "y",
    }
    assert isinstance(result.values["exp"], int)


async def test_a_null_key_is_refused_as_go_refuses_it() -> None:
    with pytest.raises(TemplateFailed, match=r"not valid YAML.*unsupported map key") as info:
        await TemplateDriver().apply(_only_values({"outputs": "~: a\n"}))
    assert info.value.reason == "TemplateError"


async def test_only_the_first_rendered_document_counts() -> None:
    result = await TemplateDriver().apply(_only_values({"outputs": "a: 1\n---\nb: 2\n"}))
    assert result.values == {"a": 1}


async def test_values_secrets_template_feeds_the_secret_outputs() -> None:
    # The form of Humanitec's in-cluster resource packs: a password generated in values `init`, handed out
    # through `values.templates.secrets`; never an output value.
    templates = {
        "init": "user: app\npassword: {{ .driver.secrets.token | sha256sum | trunc 20 }}\n",
        "outputs": "user: {{ .init.user }}\n",
        "secrets": "password: {{ .init.password }}\nnested:\n  url: 'pg://{{ .init.user }}@db'\nport: 5432\n",
    }
    result = await TemplateDriver().apply(_only_values(templates))
    assert result.values == {"user": "app"}
    secrets = reveal_tree(result.secrets)
    assert secrets == {
        "password": hashlib.sha256(CANARY.encode()).hexdigest()[:20],
        "nested": {"url": "pg://app@db"},
        "port": "5432",  # a secret is text: other scalars become their JSON text
    }
    assert CANARY not in repr(result)


async def test_secret_outputs_merge_values_secrets_then_secrets_side() -> None:
    req = _request(
        values={
            "templates": {"secrets": {"a": "from-values", "b": "from-values", "deep": {"p": "1", "q": "1"}}}
        },
        secrets={
            "templates": {
                "secrets": SecretValue("b: from-secrets-secrets\ndeep: {q: '2'}\n"),
                "outputs": SecretValue("c: from-outputs\n"),
            }
        },
    )
    result = await TemplateDriver().apply(req)
    assert result.values == {}
    assert reveal_tree(result.secrets) == {
        "a": "from-values",
        "b": "from-secrets-secrets",
        "c": "from-outputs",
        "deep": {"p": "1", "q": "2"},
    }


async def test_a_failing_template_after_secrets_does_not_show_them() -> None:
    templates = {
        "init": "pw: {{ .driver.secrets.token | sha256sum | trunc 24 }}\n",
        "secrets": "password: {{ .init.pw }}\n",
        "cookie": '{{ fail (printf "cookie broke near %s" .init.pw) }}',
    }
    with pytest.raises(TemplateFailed) as info:
        await TemplateDriver().apply(_only_values(templates))
    text = _clean(info.value)
    assert "values.templates.cookie" in text
    assert "cookie broke near" in text


OBJECT_MANIFESTS = {
    "app.yaml": {
        "location": "namespace",
        "data": (
            "{{- /* a comment before the object, as the examples write it */ -}}\n"
            "apiVersion: v1\n"
            "kind: ConfigMap\n"
            "metadata:\n"
            "  name: {{ .id }}-cfg\n"
            "data:\n"
            "  port: {{ .init.port | quote }}\n"
        ),
    },
    "ns.yaml": {
        "location": "cluster",
        "data": "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-{{ .id }}}\n",
    },
    "sidecar.yaml": {
        "location": "containers",
        "data": "name: proxy\nimage: proxy:{{ .driver.values.tag }}\n",
    },
    "vol.yaml": {"location": "volumes", "data": {"name": "v-{{ .id }}", "emptyDir": {}}},
}


async def test_object_manifests_with_template_string_data_are_parsed() -> None:
    req = _request(
        values={"tag": "1.2", "templates": {"init": "port: 8080\n", "manifests": OBJECT_MANIFESTS}},
        secrets={},
    )
    result = await TemplateDriver().apply(req)
    assert [(m.name, m.location, m.data) for m in result.manifests] == [
        (
            "app.yaml",
            "namespace",
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "abc123-cfg"},
                "data": {"port": "8080"},
            },
        ),
        ("ns.yaml", "cluster", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-abc123"}}),
        ("sidecar.yaml", "containers", {"name": "proxy", "image": "proxy:1.2"}),
        ("vol.yaml", "volumes", {"name": "v-abc123", "emptyDir": {}}),
    ]


async def test_string_data_inside_a_string_template_is_parsed_too() -> None:
    manifests = "cm:\n  location: namespace\n  data: |\n    kind: ConfigMap\n    data: {on: y}\n"
    result = await TemplateDriver().apply(_only_values({"manifests": manifests}))
    assert result.manifests[0].data == {"kind": "ConfigMap", "data": {"true": True}}


async def test_init_and_cookie_numbers_are_go_float64s() -> None:
    templates = {
        "init": "big: 1000000\nport: 5432\n",
        "outputs": (
            "big: {{ .init.big | quote }}\nport: {{ .init.port | quote }}\ntype: {{ typeOf .init.port }}\n"
            "cookieType: {{ if .cookie }}{{ typeOf .cookie.renders }}{{ end }}\n"
            "inputType: {{ typeOf .driver.values.replicas }}\n"
        ),
        "cookie": "renders: {{ if .cookie }}{{ add1 .cookie.renders }}{{ else }}1{{ end }}\n",
    }
    req = _request(values={"replicas": 3, "templates": templates}, secrets={})
    first = await TemplateDriver().apply(req)
    # Go prints a float64 1000000 as 1e+06; driver inputs keep Kubernetes' int64.
    assert first.values == {
        "big": "1e+06",
        "port": "5432",
        "type": "float64",
        "cookieType": None,
        "inputType": "int64",
    }
    again = await TemplateDriver().apply(
        _request(values={"replicas": 3, "templates": templates}, secrets={}, cookie=first.cookie)
    )
    assert again.values["cookieType"] == "float64"
    assert again.cookie is not None
    assert json.loads(again.cookie.reveal()) == {"renders": 2}


async def test_other_keys_are_ignored_as_humanitec_ignores_them() -> None:
    # A snippet kept beside the templates and used through tpl; an extra key in a manifest entry.
    templates = {
        "helpers": "{{ .id | upper }}",
        "outputs": "name: {{ tpl .driver.values.templates.helpers . }}\n",
        "manifests": "x:\n  location: volumes\n  data: {name: v}\n  note: kept for people\n",
    }
    result = await TemplateDriver().apply(_only_values(templates))
    assert result.values == {"name": "ABC123"}
    assert [(m.name, m.data) for m in result.manifests] == [("x", {"name": "v"})]


async def test_a_template_that_is_a_plain_value_is_that_value() -> None:
    result = await TemplateDriver().apply(
        _only_values({"init": 3, "cookie": True, "outputs": "count: {{ .init }}\n"})
    )
    assert result.values == {"count": 3}
    assert result.cookie is not None
    assert json.loads(result.cookie.reveal()) is True
