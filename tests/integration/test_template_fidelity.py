"""strongroom.templating against real Go: text/template + Sprig v3.3.0 + the Helm-style extras.

Every case in tests/fixtures/templates/cases.yaml is rendered by the Go oracle
(testenv/gobuild/gotemplate, built once and cached by testenv.gobuild, one process for the whole
module) and by strongroom.templating. Outputs must be byte-identical, or both must fail (errors are
compared loosely: both fail, and our message names the template and what went wrong). Known
differences are strict xfails that docs/templates.md lists. A seeded random sweep adds values with
awkward strings and numbers through toYaml/toJson/fromYaml and the printer.
"""

from __future__ import annotations

import random
import re
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from strongroom.templating import TemplateError, render
from strongroom.templating._builtins import BUILTIN_OVERRIDES
from strongroom.templating._functions import EXCLUDED, function_map
from strongroom.templating._signatures import SIGNATURES
from testenv.gotemplate import GoResult, GoTemplateOracle, oracle

pytestmark = pytest.mark.integration

CASES_FILE = Path(__file__).resolve().parent.parent / "fixtures" / "templates" / "cases.yaml"
CASES: list[dict[str, Any]] = yaml.safe_load(CASES_FILE.read_text())
_LOCATION = re.compile(r"^template: [^:]+:\d+(:\d+)?: ")


@pytest.fixture(scope="module")
def go() -> GoTemplateOracle:
    if shutil.which("go") is None:
        pytest.skip("Go is not installed; the differential tests need it (see README)")
    return oracle()


def _python(case: dict[str, Any]) -> tuple[str | None, TemplateError | None]:
    try:
        return render(
            case["template"], case.get("data") or {}, missing_key=case.get("missingkey", "default")
        ), None
    except TemplateError as exc:
        return None, exc


def _go(go: GoTemplateOracle, case: dict[str, Any]) -> GoResult:
    return go.render(case["template"], case.get("data") or {}, missingkey=case.get("missingkey", "default"))


def _param(case: dict[str, Any]) -> Any:
    marks = [pytest.mark.xfail(reason=case["xfail"], strict=True)] if case.get("xfail") else []
    return pytest.param(case, id=case["id"], marks=marks)


def test_case_table_is_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 40
    allowed = {"id", "template", "data", "missingkey", "expect", "message", "same_message", "shape", "xfail"}
    for case in CASES:
        assert set(case) <= allowed, case["id"]


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_matches_go(go: GoTemplateOracle, case: dict[str, Any]) -> None:
    expected = _go(go, case)
    output, error = _python(case)
    if case.get("shape"):
        # Nondeterministic functions: both sides succeed and have the same shape.
        assert expected.output is not None, expected.error
        assert error is None, str(error)
        assert output is not None
        assert re.fullmatch(case["shape"], expected.output), expected.output
        assert re.fullmatch(case["shape"], output), output
    elif case.get("expect") == "error":
        assert expected.error is not None, f"Go did not fail: {expected.output!r}"
        assert error is not None, f"Go failed with {expected.error!r} but we rendered {output!r}"
        _assert_informative(error, case)
        if case.get("same_message"):
            assert message_shape(str(error)) == message_shape(expected.error)
    else:
        if expected.error is not None:
            assert error is not None, f"Go failed with {expected.error!r} but we rendered {output!r}"
        else:
            assert error is None, f"we failed with {error} but Go rendered {expected.output!r}"
            assert output == expected.output


# Go's location prefix: `template: NAME:LINE:COL: executing "NAME" at <NODE>: ` (ours has no node).
_MESSAGE_PREFIX = re.compile(r'^template: [^:]+:\d+(?::\d+)?: (?:executing "[^"]*"(?: at <.*?>)?: )?')
_GO_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def message_shape(message: str) -> str:
    """An error message without its location, every quoted string as "…".

    Go quotes input values in some messages (`parse "proto://user:pw@host": ...`, `invalid port
    ":x" after host`); strongroom writes "…" there, because these messages reach events and logs.
    Everything else must be the same words."""
    return _GO_QUOTED.sub('"…"', _MESSAGE_PREFIX.sub("", message))


def _assert_informative(error: TemplateError, case: dict[str, Any]) -> None:
    message = str(error)
    assert _LOCATION.match(message), f"no template location in {message!r}"
    assert error.template_name == "template"
    assert error.line is not None
    assert error.line >= 1
    if case.get("message"):
        assert case["message"] in message


def test_function_set_matches_go(go: GoTemplateOracle) -> None:
    """Same names as Go's map minus the excluded ones; text/template's builtins come on top."""
    go_names = set(go.signatures())
    ours = set(function_map()) - set(BUILTIN_OVERRIDES)
    assert ours == go_names - EXCLUDED


def test_signature_table_matches_go(go: GoTemplateOracle) -> None:
    for name, signature in go.signatures().items():
        params = list(signature["in"])
        if signature["variadic"]:
            params[-1] = params[-1].removeprefix("[]")
        assert SIGNATURES[name] == (tuple(params), signature["variadic"], tuple(signature["out"])), name
    assert set(SIGNATURES) == set(go.signatures())


# --- seeded random sweep ---------------------------------------------------------------------

_PIECES = [
    *"abcXYZ019 _-:#'\"\n\t{}[],&*!|>%@`?~.=<+\\/é✓\u00a0\u2028\ufeff\x7f\x01\U0001f600\x85\u2029",
    "yes",
    "no",
    "on",
    "null",
    "true",
    "0x1F",
    "1e3",
    "1.5",
    "-",
    "---",
    "...",
    "0o7",
    "1_0",
    "2001-12-14",
    "12:30",
    "y",
    "n",
]
_SWEEP_TEMPLATES = [
    "{{ toYaml .v }}",
    "{{ toJson .v }}",
    "{{ toPrettyJson .v }}",
    "{{ toRawJson .v }}",
    "{{ .v }}",
    "{{ toYaml .v | fromYaml | toJson }}",
    '{{ printf "%v|%s|%d" .v .v .v }}',
    '{{ toYaml (dict "k" .v) | fromYaml | toYaml }}',
]


def _random_string(rnd: random.Random) -> str:
    size = rnd.choice([0, 1, 2, 3, 5, 8, 20, 90, 150])
    if size < 50:
        return "".join(rnd.choice(_PIECES) for _ in range(size))
    words = ("".join(rnd.choice("abcdefghij") for _ in range(rnd.randint(1, 12))) for _ in range(size // 6))
    return " ".join(words)


def _random_value(rnd: random.Random, depth: int = 0) -> Any:
    roll = rnd.random()
    if depth > 3 or roll < 0.45:
        return rnd.choice(
            [
                _random_string(rnd),
                _random_string(rnd),
                rnd.randint(-(10**12), 10**12),
                rnd.random() * 10 ** rnd.randint(-9, 25),
                True,
                None,
                0.0,
                rnd.choice([1e21, 1e-7, 123456.0, 100000.0, 1.0]),
            ]
        )
    if roll < 0.7:
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return {(_random_string(rnd) or "k"): _random_value(rnd, depth + 1) for _ in range(rnd.randint(0, 4))}


@pytest.mark.parametrize("seed", range(4))
def test_random_values_match_go(go: GoTemplateOracle, seed: int) -> None:
    rnd = random.Random(seed)
    mismatches = []
    for _ in range(60):
        data = {"v": _random_value(rnd)}
        for template in _SWEEP_TEMPLATES:
            expected = go.render(template, data)
            output, error = _python({"template": template, "data": data})
            same = (expected.error is not None and error is not None) or (
                expected.error is None and error is None and expected.output == output
            )
            if not same:
                mismatches.append((template, data, expected, output or str(error)))
    assert not mismatches, mismatches[:3]


# --- urlJoin against Go's net/url: every character in every part -------------------------------

_URL_CHARACTERS = [chr(code) for code in range(0x20, 0x7F)] + [
    "\t",
    "\x01",
    "\x7f",
    "é",
    "✓",
    "\U0001f600",
    "\u00a0",
]
_URL_PARTS = ("scheme", "user", "password", "host", "path", "query", "fragment", "opaque")
# Every part set, so that a probed part also meets its neighbours (the `/` before a relative path,
# `//` only with a host, path or userinfo, `./` before a colon in a first segment...).
_URL_FULL = {
    "scheme": "https",
    "userinfo": "u:p",
    "host": "example.com",
    "path": "/p",
    "query": "q=1",
    "fragment": "f",
}


def _url_probe(base: dict[str, str], part: str, text: str) -> dict[str, str]:
    parts = dict(base)
    if part == "user":
        parts["userinfo"] = text + (":p" if base else "")
    elif part == "password":
        parts["userinfo"] = "u:" + text
    else:
        parts[part] = text
    return parts


def _compare_url_join(go: GoTemplateOracle, parts: dict[str, Any]) -> tuple[bool, GoResult, str]:
    template = "{{ urlJoin .parts }}"
    expected = go.render(template, {"parts": parts})
    output, error = _python({"template": template, "data": {"parts": parts}})
    if expected.error is not None:
        same = error is not None and message_shape(str(error)) == message_shape(expected.error)
    else:
        same = error is None and output == expected.output
    return same, expected, str(error) if error is not None else str(output)


def test_url_join_matches_go_for_every_character(go: GoTemplateOracle) -> None:
    """Each printable ASCII character and a few others, alone, inside text and doubled, in each
    part of the URL, with the other parts empty or all set: same URL as Go, or the same error."""
    mismatches = []
    outcomes = {"output": 0, "error": 0}
    for character in _URL_CHARACTERS:
        for text in (character, f"a{character}b", character * 2):
            for base in ({}, _URL_FULL):
                for part in _URL_PARTS:
                    parts = _url_probe(base, part, text)
                    same, expected, ours = _compare_url_join(go, parts)
                    outcomes["output" if expected.ok else "error"] += 1
                    if not same:
                        mismatches.append((parts, expected, ours))
    assert not mismatches, (len(mismatches), mismatches[:5])
    # Both sides of the comparison were exercised: escaping, and userinfo that Go refuses.
    assert outcomes["output"] > 4000
    assert outcomes["error"] > 100


_URL_PIECES = [
    *"ab:@/?#%[]. -+*'\"<>!$&()=,;~_\\",
    *("%25", "%2", "%zz", "%41", "%e9", "%C3%A9", "é", "\x01", "//", "*", "0", ":80"),
    *("::1", "fe80::1", "1.2.3.4", "[::1]", "[fe80::1%25en0]", "[1.2.3.4]", "http", "https"),
]


@pytest.mark.parametrize("seed", range(2))
def test_url_join_random_parts_match_go(go: GoTemplateOracle, seed: int) -> None:
    """Random combinations of awkward pieces in random parts, and now and then a value that is
    not a string: the parts interact (a `/` in the userinfo ends Go's authority early)."""
    rnd = random.Random(seed)
    keys = ("scheme", "host", "path", "query", "opaque", "fragment", "userinfo")
    mismatches = []
    for _ in range(1500):
        parts: dict[str, Any] = {
            key: "".join(rnd.choice(_URL_PIECES) for _ in range(rnd.choice([0, 1, 2, 3, 5])))
            for key in keys
            if rnd.random() < 0.5
        }
        if rnd.random() < 0.05:
            parts[rnd.choice(keys)] = rnd.choice([None, 0, 1, 1.5, True, [], ["a"], {}, {"a": 1}])
        same, expected, ours = _compare_url_join(go, parts)
        if not same:
            mismatches.append((parts, expected, ours))
    assert not mismatches, (len(mismatches), mismatches[:5])


_IP_PIECES = [
    "0",
    "1",
    "f",
    "F",
    "ffff",
    "12345",
    "00",
    "255",
    "256",
    ":",
    "::",
    ".",
    "%25",
    "a",
    "z",
    "%41",
    "é",
    "%",
]


def test_url_join_userinfo_ip_literals_match_go(go: GoTemplateOracle) -> None:
    """A `/`, `?` or `#` in the userinfo makes Go parse what precedes it as the host: bracketed
    ones go through netip.ParseAddr, whose every refusal has its own reason."""
    rnd = random.Random(0)
    mismatches = []
    for _ in range(2000):
        literal = "".join(rnd.choice(_IP_PIECES) for _ in range(rnd.randint(0, 9)))
        userinfo = f"[{literal}]{rnd.choice(['', ':1', ':x'])}{rnd.choice('/?#')}"
        same, expected, ours = _compare_url_join(go, {"userinfo": userinfo, "host": "h"})
        if not same:
            mismatches.append((userinfo, expected, ours))
    assert not mismatches, (len(mismatches), mismatches[:5])


_URL_TEXT_PIECES = [
    *"ab:@/?#%[]. -+*'\"<>!$&()=,;~_\\",
    *("%25", "%2", "%zz", "%41", "%C3%A9", "é", "\x01", "//", "*", "0", ":80"),
    *("http:", "https://", "mailto:", "HTTP:", "::1", "[::1]", "[fe80::1%25en0]", "1.2.3.4"),
]


@pytest.mark.parametrize("seed", range(2))
def test_url_parse_matches_go(go: GoTemplateOracle, seed: int) -> None:
    """urlParse takes a URL apart as url.Parse does (or fails with its reason), and urlJoin puts
    the parts back together as URL.String does."""
    rnd = random.Random(seed)
    template = "{{ $u := urlParse .u }}{{ toJson $u }} {{ urlJoin (omit $u `hostname`) }}"
    mismatches = []
    for _ in range(1500):
        url = "".join(rnd.choice(_URL_TEXT_PIECES) for _ in range(rnd.randint(0, 7)))
        if not _unescapes_to_utf8(url):
            continue  # a known difference: case known-url-escape-of-invalid-utf8
        expected = go.render(template, {"u": url})
        output, error = _python({"template": template, "data": {"u": url}})
        if expected.error is not None:
            same = error is not None and message_shape(str(error)) == message_shape(expected.error)
        else:
            same = error is None and output == expected.output
        if not same:
            mismatches.append((url, expected, output or str(error)))
    assert not mismatches, (len(mismatches), mismatches[:5])


def _unescapes_to_utf8(url: str) -> bool:
    try:
        urllib.parse.unquote_to_bytes(url).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
