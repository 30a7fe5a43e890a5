"""The Go formatting rules strongroom.templating re-implements: floats, JSON, YAML 1.1 resolution.

Expected values were produced by Go (strconv, encoding/json, sigs.k8s.io/yaml over go-yaml v2) and
are re-checked against Go on every integration run by test_template_fidelity.py.
"""

from __future__ import annotations

from functools import cmp_to_key

import pytest

from strongroom.templating import render
from strongroom.templating._gojson import format_float_g, format_float_json, quote_json_string
from strongroom.templating._goyaml import needs_quotes, resolve_plain
from strongroom.templating._goyaml.dumper import _key_cmp

FLOATS = [0.0, 1.0, 2.5, 100000.0, 1000000.0, 1234567.5, 1e21, 1e20, 1e-7, 0.000001, 0.0001, 0.00001, -0.5]
FLOATS += [123456789012.25, 3.14159, 1 / 3]
GO_PRINT = "0|1|2.5|100000|1e+06|1.2345675e+06|1e+21|1e+20|1e-07|1e-06|0.0001|1e-05|-0.5|"
GO_PRINT += "1.2345678901225e+11|3.14159|0.3333333333333333"
GO_JSON = "0,1,2.5,100000,1000000,1234567.5,1e+21,100000000000000000000,1e-7,0.000001,0.0001,0.00001,-0.5,"
GO_JSON += "123456789012.25,3.14159,0.3333333333333333"
GO_YAML = "0|1|2.5|100000|1000000|1.2345675e+06|1e+21|1e+20|1e-07|1e-06|0.0001|1e-05|-0.5|"
GO_YAML += "1.2345678901225e+11|3.14159|0.3333333333333333"


def test_float_printing_matches_strconv_g() -> None:
    assert "|".join(format_float_g(f) for f in FLOATS) == GO_PRINT
    assert render("{{ range .f }}{{ . }}|{{ end }}", {"f": FLOATS}) == GO_PRINT + "|"


def test_float_json_matches_encoding_json() -> None:
    assert ",".join(format_float_json(f) for f in FLOATS) == GO_JSON
    assert render("{{ toJson .f }}", {"f": FLOATS}) == f"[{GO_JSON}]"


def test_float_yaml_goes_through_json_like_sigs_yaml() -> None:
    # 1000000.0 is "1000000" in JSON, which go-yaml reads back as an integer.
    assert render("{{ toYaml .f }}", {"f": FLOATS}) == "\n".join(f"- {x}" for x in GO_YAML.split("|"))


def test_json_string_escapes() -> None:
    assert quote_json_string('a"\\\n\t\b\f\x01<>&\u2028é', escape_html=True) == (
        '"a\\"\\\\\\n\\t\\b\\f\\u0001\\u003c\\u003e\\u0026\\u2028é"'
    )
    assert quote_json_string("<>&", escape_html=False) == '"<>&"'


@pytest.mark.parametrize(
    ("text", "tag", "value"),
    [
        ("y", "bool", True),
        ("No", "bool", False),
        ("off", "bool", False),
        ("~", "null", None),
        ("", "null", None),
        ("0o17", "int", 15),
        ("017", "int", 15),
        ("0x1F", "int", 31),
        ("1_000", "int", 1000),
        ("0b101", "int", 5),
        ("1e3", "float", 1000.0),
        (".5", "float", 0.5),
        ("1e400", "str", "1e400"),  # out of range is a ParseFloat error in Go
        ("2001-12-14", "timestamp", "2001-12-14"),
        ("2001-13-14", "str", "2001-13-14"),
        ("<<", "str", "<<"),  # only looked up by go-yaml when the first byte is a hint
        ("NaN", "str", "NaN"),
        ("0o7 ", "str", "0o7 "),
    ],
)
def test_plain_scalar_resolution_is_go_yaml_v2(text: str, tag: str, value: object) -> None:
    resolved_tag, resolved = resolve_plain(text)
    assert resolved_tag.rsplit(":", 1)[-1] == tag
    assert resolved == value


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("y", True),
        ("yes", True),
        ("1:20", True),
        ("12:30:00", True),
        ("x", False),
        ("<<", False),
        ("a:b", False),
    ],
)
def test_strings_quoted_when_go_yaml_would_misread_them(text: str, quoted: bool) -> None:
    assert needs_quotes(text) is quoted


def test_yaml_key_order_is_go_yaml_natural_order() -> None:
    keys = ["b10", "b9", "a", "A", "_", "0", "00", "9", "10", "Z1", "z", "é"]
    assert sorted(keys, key=cmp_to_key(_key_cmp)) == [
        "_",
        "0",
        "00",
        "9",
        "10",
        "A",
        "Z1",
        "a",
        "b9",
        "b10",
        "z",
        "é",
    ]


def test_from_yaml_numbers_are_float64_and_keys_yaml11_strings() -> None:
    # `n` is a YAML 1.1 boolean to go-yaml v2, so that key becomes "false".
    source = "{{ range $k, $v := fromYaml .y }}{{ $k }}={{ $v }}({{ typeOf $v }}) {{ end }}"
    rendered = render(source, {"y": "1: a\ntrue: b\nn: 3\nbig: 1000000"})
    assert rendered == "1=a(string) big=1e+06(float64) false=3(float64) true=b(string) "


def test_to_yaml_document_end_marker_is_dropped() -> None:
    assert render("{{ toYaml .v }}", {"v": "plain"}) == "plain"
    assert render("{{ toYaml .v }}", {"v": {"k": "\n"}}) == "k: |2+\n"


def test_parse_yaml_has_the_engine_budget() -> None:
    from dataclasses import replace

    from strongroom.templating import DEFAULT_LIMITS, TemplateError, parse_yaml

    small = replace(DEFAULT_LIMITS, max_list_items=10)  # 100 nodes
    document = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    with pytest.raises(TemplateError, match="excessive aliasing") as info:
        parse_yaml(document, limits=small)
    assert info.value.limit_exceeded
    assert parse_yaml("a: &a [1, 2]\nb: *a\n", limits=small) == {"a": [1, 2], "b": [1, 2]}

    with pytest.raises(TemplateError, match="nests too deeply") as info:
        parse_yaml("a: &a [*a]\n")  # refers to itself: endless, however it is counted
    assert info.value.limit_exceeded
    with pytest.raises(TemplateError, match="nests too deeply"):
        parse_yaml("[" * 5000 + "]" * 5000)
    with pytest.raises(TemplateError, match="over the limit") as info:
        parse_yaml("x" * 101, limits=replace(DEFAULT_LIMITS, max_output_chars=100))
    assert info.value.limit_exceeded


def test_parse_yaml_errors_name_the_line_not_the_text() -> None:
    from strongroom.templating import TemplateError, parse_yaml

    with pytest.raises(TemplateError) as info:
        parse_yaml("a: 1\nb: [secret-text\n")
    assert "line" in str(info.value)
    assert "secret-text" not in str(info.value)
    assert not info.value.limit_exceeded
