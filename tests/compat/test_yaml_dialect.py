"""Rendered YAML is read as sigs.k8s.io/yaml reads it: strongroom's loader against the real Go one.

Every text is parsed by `strongroom.templating.parse_yaml` (what the Template driver and `fromYaml` use)
and by sigs.k8s.io/yaml.Unmarshal into an interface{} in the Go oracle; both must fail or give the same
JSON value, field by field (a boolean key is the string "true", every number goes through float64).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from strongroom.templating import TemplateError, parse_yaml
from testenv.gotemplate import GoTemplateOracle
from tests.compat.compare import assert_same

pytestmark = pytest.mark.integration

# Keys that are not plain strings in YAML 1.1 become their JSON text; a null key has none and is refused.
KEYS = [
    "null: a",
    "~: a",
    "Null: a",
    "'null': a",
    "y: 1",
    "Y: 1",
    "n: 1",
    "yes: no",
    "on: off",
    "Off: 1",
    "true: false",
    "1e3: x",
    "1.5: d",
    "0x1F: a",
    "0o17: b",
    "017: c",
    "1_000: d",
    "-.inf: x",
    ".nan: v",
    "2001-12-14: d",
    # Keys equal as YAML values are one key (the last wins). `1` and `'1'` are different YAML keys that
    # collide as strings: Go then keeps either, depending on map order (docs/templates.md).
    "y: a\ntrue: b",
    "? [1, 2]\n: a",
    "? {x: 1}\n: a",
    "a: 1\na: 2",
]
# Scalars: go-yaml v2's resolution (YAML 1.1 booleans, its number forms; timestamps stay strings).
SCALARS = [
    "a: 1e3",
    "a: 1E3",
    "a: 1e+3",
    "a: 1.e3",
    "a: .1e3",
    "a: '1e3'",
    "a: 1.0",
    "a: 0.1e+2",
    "a: 6.02e23",
    "a: 1e20",
    "a: 1e21",
    "a: 1e-7",
    "a: 5e-324",
    "a: 1e400",
    "a: 12345678901234567890",
    "a: 9007199254740993",
    "a: 123456789.123456789",
    "a: -0",
    "a: 0.0",
    "a: -0.0",
    "a: +12",
    "a: .5",
    "a: 1.",
    "a: 07",
    "a: 08",
    "a: 0o8",
    "a: 0b101",
    "a: -0x1F",
    "a: 0x_1F",
    "a: 1__0",
    "a: 1_0.5",
    "a: +.inf",
    "a: .NaN",
    "a: 2024-01-02",
    "a: 2024-01-02T10:00:00Z",
    "a: 12:30",
    "a: 1:20:30",
    "a: ~",
    "a: Null",
    "a: NULL",
    "a: nULL",
    "a: Off",
    "a: OFF",
    "a: oN",
    "a: yEs",
    "a: 'y'",
    'a: "on"',
    "a: !!str 12",
    "a: !!float 1",
    "a: !!int '7'",
    "a: !!binary aGVsbG8=",
]
# Documents, anchors, merge keys, block scalars, and go-yaml's (libyaml's) tab rules.
STRUCTURE = [
    "",
    "# only a comment",
    "just a string",
    "- a\n- b",
    "a: 1\n---\nb: 2",
    "a: [1, 2.5, 'x']",
    "base: &b {x: 1}\nc:\n  <<: *b\n  z: 2",
    "x: &a 1\ny: *a",
    "a: |\n  text\n",
    "a: >\n  folded\n  text\n",
    "a:\t1",
    "a: \t1",
    "a: [1,\t2]",
    "{a:\t1}",
    "a: {b:\t1,\tc: 2}",
    "a: 1\t",
    "a: 1 \t# c",
    "a:\t\n  b: 1",
    "a:\t'x'",
    "a:\t|\n  t\n",
    "a:\t&x 1\nb: *x",
    "a\t: 1",
    "- a\t\n- b",
    "a: b\tc",
    "a: b\t\tc d",
    "a: b\t# c",
    "a: b\n\tc",
    "a:\n  b\n \tc",
    "a:\n  b\n\t c",
    "a: b\t\n  c",
    "{a: b\tc}",
    "- \ta",
    "-\ta",
    "\ta: 1",
    "a:\n\t- 1",
    "? a\n:\tb",
]


def _ours(text: str) -> tuple[Any, str | None]:
    try:
        return parse_yaml(text), None
    except TemplateError as exc:
        return None, str(exc)


@pytest.mark.parametrize("text", [*KEYS, *SCALARS, *STRUCTURE])
def test_parse_matches_sigs_k8s_yaml(go: GoTemplateOracle, text: str) -> None:
    expected = go.parse_yaml(text)
    ours, error = _ours(text)
    if expected.error is not None:
        assert error is not None, f"Go refused it ({expected.error}) but we read {ours!r}"
        return
    assert error is None, f"we refused it ({error}) but Go read {expected.output}"
    assert expected.output is not None
    assert_same(ours, json.loads(expected.output))


def test_the_case_lists_hold_what_they_say(go: GoTemplateOracle) -> None:
    # The lists are meant to pin the surprising readings; make sure they do (a list of texts Go reads as
    # plain strings would compare nothing interesting).
    def go_value(text: str) -> Any:
        result = go.parse_yaml(text)
        return None if result.output is None else json.loads(result.output)

    assert go.parse_yaml("null: a").error is not None
    assert go_value("y: 1") == {"true": 1}
    assert go_value("1e3: x") == {"1000": "x"}
    assert go_value("a: 12345678901234567890") == {"a": 12345678901234567000}
    assert go_value("a:\t1") == {"a": 1}
    assert go_value("a: 2024-01-02") == {"a": "2024-01-02"}


def test_keys_that_collide_as_text_are_one_key(go: GoTemplateOracle) -> None:
    # `1` and `1.0` are two keys in YAML but one ("1") in JSON. sigs.k8s.io/yaml converts a Go map, whose
    # iteration order is random, so which value survives differs from run to run in Go itself (seen in
    # CI): both sides must read one key holding one of the two values, not the same one.
    text = "1: a\n1.0: b"
    expected = go.parse_yaml(text)
    assert expected.output is not None
    assert json.loads(expected.output) in ({"1": "a"}, {"1": "b"})
    ours, error = _ours(text)
    assert error is None
    assert ours in ({"1": "a"}, {"1": "b"})
