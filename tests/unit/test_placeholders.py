"""Placeholders: parsing, escaping, resource references, lookup and substitution."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.reconcile.placeholders import (
    Placeholder,
    PlaceholderError,
    ResourceRef,
    Text,
    lookup,
    parse,
    placeholders,
    referenced_resources,
    resource_ref,
    resource_references,
    single_placeholder,
    substitute,
    substitute_tree,
    substitute_value,
    to_text,
)


def paths(text: str) -> list[tuple[str, ...]]:
    return [p.path for p in placeholders(text)]


# --- parsing ----------------------------------------------------------------------------------------------


def test_text_without_placeholders_is_one_literal() -> None:
    assert parse("plain text, costs $5 and $") == [Text("plain text, costs $5 and $")]
    assert parse("") == []


def test_single_placeholder_keeps_its_source_text() -> None:
    assert parse("${resources.db.host}") == [Placeholder(("resources", "db", "host"), "${resources.db.host}")]


def test_mixed_text_and_placeholders_in_order() -> None:
    segments = parse("postgres://${resources.db.host}:${resources.db.port}/app")
    assert segments == [
        Text("postgres://"),
        Placeholder(("resources", "db", "host"), "${resources.db.host}"),
        Text(":"),
        Placeholder(("resources", "db", "port"), "${resources.db.port}"),
        Text("/app"),
    ]


def test_double_dollar_brace_is_a_literal_placeholder_opening() -> None:
    assert parse("$${metadata.name}") == [Text("${metadata.name}")]
    assert parse("a $${x} b ${metadata.name}") == [
        Text("a ${x} b "),
        Placeholder(("metadata", "name"), "${metadata.name}"),
    ]


def test_only_double_dollar_brace_is_an_escape() -> None:
    # `$$` alone (a shell PID, say) is left as it is.
    assert parse("echo $$ $$HOME") == [Text("echo $$ $$HOME")]


def test_escaped_and_real_placeholder_side_by_side() -> None:
    assert parse("$${a}${metadata.b}") == [Text("${a}"), Placeholder(("metadata", "b"), "${metadata.b}")]


def test_nested_keys_and_escaped_dots() -> None:
    assert paths("${resources.db.conn.primary.host}") == [("resources", "db", "conn", "primary", "host")]
    assert paths(r"${resources.cert.tls\.crt}") == [("resources", "cert", "tls.crt")]


def test_quoted_keys_may_hold_dots_and_hashes() -> None:
    assert paths("${resources['db.v2'].outputs['tls.crt']}") == [("resources", "db.v2", "outputs", "tls.crt")]
    assert paths('${resources["postgres.default#db"].outputs.host}') == [
        ("resources", "postgres.default#db", "outputs", "host")
    ]


def test_annotation_keys_with_slashes() -> None:
    assert paths("${metadata.annotations.example\\.com/team}") == [
        ("metadata", "annotations", "example.com/team")
    ]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("${resources.db.host", "missing closing"),
        ("${}", "empty placeholder"),
        ("${resources..host}", "empty key"),
        ("${resources.db.}", "empty key"),
        ("${.resources}", "empty key"),
        ("${resources.db host}", "whitespace"),
        ("${resources.${x}}", "nested"),
        ("${resources['db}", "unterminated"),
        ("${resources[db]}", "quoted"),
        ("${resources['']}", "empty quoted"),
        ("${resources['db']x}", "after a quoted key"),
        ("${resources.db]}", "unexpected ']'"),
        ("${['x']}", "cannot start"),
        ("${resources.db\\", "backslash"),
    ],
)
def test_malformed_placeholders_raise_a_clear_error(text: str, why: str) -> None:
    with pytest.raises(PlaceholderError, match="malformed placeholder") as info:
        parse(text)
    assert why in str(info.value)


def test_error_names_the_text_where_it_starts() -> None:
    with pytest.raises(PlaceholderError) as info:
        parse("prefix ${resources.db")
    assert "'${resources.db'" in str(info.value)


def test_single_placeholder_only_when_nothing_else() -> None:
    assert single_placeholder(parse("${metadata.name}")) is not None
    assert single_placeholder(parse(" ${metadata.name}")) is None
    assert single_placeholder(parse("${metadata.a}${metadata.b}")) is None
    assert single_placeholder(parse("$${metadata.name}")) is None


# --- resource references ----------------------------------------------------------------------------------


def ref(text: str, *, dotted_names: bool = False) -> ResourceRef | None:
    return resource_ref(placeholders(text)[0], dotted_names=dotted_names)


def test_score_and_humanitec_forms_mean_the_same_output() -> None:
    assert ref("${resources.db.host}") == ResourceRef("db", ("host",), "score")
    assert ref("${resources.db.outputs.host}") == ResourceRef("db", ("host",), "humanitec")
    assert ref("${resources.db.conn.host}") == ResourceRef("db", ("conn", "host"), "score")
    assert ref("${resources.db.outputs.conn.host}") == ResourceRef("db", ("conn", "host"), "humanitec")


def test_whole_resource_reference_has_an_empty_key() -> None:
    assert ref("${resources.data}") == ResourceRef("data", (), "score")


def test_outputs_without_a_key_is_refused() -> None:
    with pytest.raises(PlaceholderError, match="names no output key"):
        ref("${resources.db.outputs}")
    with pytest.raises(PlaceholderError, match="names no resource"):
        ref("${resources}")


def test_non_resource_placeholders_are_not_resource_references() -> None:
    assert ref("${metadata.name}") is None
    assert ref("${context.app.id}") is None


def test_dotted_resource_names_for_resource_to_resource_references() -> None:
    assert ref("${resources.db.v2.outputs.host}", dotted_names=True) == ResourceRef(
        "db.v2", ("host",), "humanitec"
    )
    assert ref("${resources['db.v2'].outputs.host}", dotted_names=True) == ResourceRef(
        "db.v2", ("host",), "humanitec"
    )
    # Workloads: resource names have no dots, so the same text means resource `db`, key v2.outputs.host.
    assert ref("${resources.db.v2.outputs.host}") == ResourceRef("db", ("v2", "outputs", "host"), "score")


def test_resource_references_walks_a_tree_sorted_and_unique() -> None:
    inputs: dict[str, Any] = {
        "values": {
            "url": "https://${resources.dns.outputs.host}/x",
            "list": ["${resources.db.outputs.port}", 5, None, {"deep": "${resources.db.outputs.host}"}],
            "again": "${resources.dns.outputs.host}",
            "context": "${context.env.id}",
        }
    }
    assert resource_references(inputs, dotted_names=True) == [
        ResourceRef("db", ("host",), "humanitec"),
        ResourceRef("db", ("port",), "humanitec"),
        ResourceRef("dns", ("host",), "humanitec"),
    ]
    assert referenced_resources(inputs, dotted_names=True) == ["db", "dns"]


def test_resource_references_reports_malformed_text() -> None:
    with pytest.raises(PlaceholderError):
        resource_references({"a": ["${resources.db"]})


# --- lookup and substitution ------------------------------------------------------------------------------


def test_lookup_nested_dotted_and_indexed() -> None:
    data = {"conn": {"host": "h", "ports": [5432, 5433]}, "tls.crt": "PEM", "tls": {"key": "k"}}
    assert lookup(data, ["conn", "host"]) == "h"
    assert lookup(data, ["conn", "ports", "1"]) == 5433
    assert lookup(data, ["tls", "crt"]) == "PEM"  # the dotted key is found when no nested one matches
    assert lookup(data, ["tls", "key"]) == "k"
    assert lookup(data, []) == data
    for missing in (["nope"], ["conn", "port"], ["conn", "ports", "7"], ["conn", "host", "x"]):
        with pytest.raises(KeyError):
            lookup(data, missing)


def test_to_text_writes_non_strings_as_json() -> None:
    assert to_text("s") == "s"
    assert to_text(5432) == "5432"
    assert to_text(True) == "true"
    assert to_text(None) == "null"
    assert to_text({"b": 1, "a": [1, "x"]}) == '{"a":[1,"x"],"b":1}'


def resolver(values: dict[str, Any]) -> Any:
    def resolve(placeholder: Placeholder) -> Any:
        key = ".".join(placeholder.path)
        if key not in values:
            raise PlaceholderError(f"unknown placeholder {placeholder.source}")
        return values[key]

    return resolve


def test_substitute_replaces_every_placeholder_and_undoes_escapes() -> None:
    resolve = resolver({"resources.db.host": "db.local", "resources.db.port": 5432})
    text = "postgres://${resources.db.host}:${resources.db.port}/x?opt=$${literal}"
    assert substitute(text, resolve) == "postgres://db.local:5432/x?opt=${literal}"


def test_substitute_value_keeps_the_type_of_a_lone_placeholder() -> None:
    resolve = resolver({"resources.db.port": 5432, "resources.db.opts": {"ssl": True}})
    assert substitute_value("${resources.db.port}", resolve) == 5432
    assert substitute_value("${resources.db.opts}", resolve) == {"ssl": True}
    assert substitute_value("port ${resources.db.port}", resolve) == "port 5432"


def test_substitute_tree_leaves_keys_and_non_strings_alone() -> None:
    resolve = resolver({"resources.db.port": 5432})
    tree = {"${k}": ["${resources.db.port}", 1, {"x": "p=${resources.db.port}"}], "n": None}
    assert substitute_tree(tree, resolve) == {"${k}": [5432, 1, {"x": "p=5432"}], "n": None}


def test_unknown_placeholder_error_comes_from_the_resolver() -> None:
    with pytest.raises(PlaceholderError, match=r"unknown placeholder \$\{context.app.id\}"):
        substitute("${context.app.id}", resolver({}))
