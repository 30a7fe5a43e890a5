"""Helm's `toYaml`/`fromYaml` as Go computes them, on top of PyYAML's emitter and parser.

Helm (and our Go oracle) use sigs.k8s.io/yaml, which goes through JSON in both directions with
go-yaml v2 (YAML 1.1) underneath. That decides what the output looks like:

* toYaml: json.Marshal first, so floats that print without a fraction (`2.0`, `1000000.0`) come
  back as integers and other floats are printed in Go's shortest `%g` form (`1e-06`,
  `1.2345675e+06`); keys are ordered by go-yaml's "natural" order (`item2` before `item10`,
  `_x` before digits); a string is double-quoted when go-yaml v2 would read it back as something
  else (`"y"`, `"n"`, `"on"`, `"1e3"`, `"0o17"`, `"1:20"`), and block-literal when it has a newline.
* fromYaml: plain scalars resolve by go-yaml v2's rules (`y`/`n`/`on`/`off` are booleans,
  `0o17`/`1_000`/`1e3` are numbers, dates stay strings) and then every number becomes a float64
  and every key a string, because the result went through JSON.

PyYAML's emitter is a port of the same libyaml emitter go-yaml v2 ported, so with the resolution
and representation choices above made here, its layout (indentation, quoting fallbacks, folding
at 80 columns) matches.
"""

from __future__ import annotations

import calendar
import decimal
import io
import math
import re
import struct
import unicodedata
from functools import cmp_to_key
from typing import Any, Final

import yaml
from yaml.events import ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from strongroom.templating._gojson import Marshaler, format_float_g, marshal
from strongroom.templating._limits import GoFunctionError, SandboxLimitError
from strongroom.templating._values import GoList, GoMap

_STR: Final = "tag:yaml.org,2002:str"
_INT: Final = "tag:yaml.org,2002:int"
_FLOAT: Final = "tag:yaml.org,2002:float"
_BOOL: Final = "tag:yaml.org,2002:bool"
_NULL: Final = "tag:yaml.org,2002:null"
_MERGE: Final = "tag:yaml.org,2002:merge"
_MAP: Final = "tag:yaml.org,2002:map"
_SEQ: Final = "tag:yaml.org,2002:seq"

# go-yaml v2's fixed words (YAML 1.1 booleans, nulls, special floats). Its table also has "<<",
# but only text starting with one of these characters is ever looked up, so "<<" stays a string.
_WORDS: Final[dict[str, tuple[str, object]]] = {
    **{w: (_BOOL, True) for w in ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")},
    **{
        w: (_BOOL, False)
        for w in ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
    },
    **{w: (_NULL, None) for w in ("", "~", "null", "Null", "NULL")},
    **{w: (_FLOAT, float("nan")) for w in (".nan", ".NaN", ".NAN")},
    **{w: (_FLOAT, float("inf")) for w in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{w: (_FLOAT, float("-inf")) for w in ("-.inf", "-.Inf", "-.INF")},
}
_WORD_START: Final = frozenset("yYnNtTfFoO~")
_NUMBER_START: Final = frozenset("+-0123456789")
_YAML_FLOAT: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT: Final = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_BASE60_FLOAT: Final = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_DATE_PREFIX: Final = re.compile(r"[0-9]{4}-")
# go-yaml tries time.Parse with "2006-1-2T15:4:5.999999999Z07:00" (also with a lower-case t),
# "2006-1-2 15:4:5.999999999" and "2006-1-2"; the groups mirror those layouts.
_TIMESTAMP: Final = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})(?:[.,][0-9]+)?"
    r"(?P<zone>Z|[-+](?P<zh>[0-9]{2}):(?P<zm>[0-9]{2}))?)?"
)
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_UINT64_MAX: Final = (1 << 64) - 1


_GO_INT: Final = re.compile(
    r"[-+]?(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
    r"|0(?P<legacy>[0-7]+)|(?P<dec>[0-9]+))"
)


def _parse_go_int(text: str) -> int | None:
    """strconv.ParseInt, or ParseUint, with base 0, on text whose underscores are already gone."""
    match = _GO_INT.fullmatch(text)
    if match is None:
        return None
    if match["hex"] is not None:
        magnitude = int(match["hex"], 16)
    elif match["oct"] is not None:
        magnitude = int(match["oct"], 8)
    elif match["bin"] is not None:
        magnitude = int(match["bin"], 2)
    elif match["legacy"] is not None:
        magnitude = int(match["legacy"], 8)
    else:
        magnitude = int(match["dec"], 10)
    value = -magnitude if text.startswith("-") else magnitude
    if _INT64_MIN <= value <= _INT64_MAX or (value >= 0 and value <= _UINT64_MAX):
        return value
    return None


def _looks_like_timestamp(text: str) -> bool:
    if not _DATE_PREFIX.match(text):
        return False  # go-yaml's quick check: four digits and a dash
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return False
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year or 2000, month)[1]:
        return False
    if match["sep"] is None:
        return True
    if int(match["h"]) > 23 or int(match["mi"]) > 59 or int(match["s"]) > 59:
        return False
    # The T/t layouts need a zone; the space layout must not have one.
    if (match["sep"] == " ") == (match["zone"] is not None):
        return False
    return match["zh"] is None or (int(match["zh"]) <= 24 and int(match["zm"]) <= 60)


def resolve_plain(text: str) -> tuple[str, object]:
    """go-yaml v2's resolution of an untagged plain scalar: (tag, Python value)."""
    if text in _WORDS:
        return _WORDS[text]
    first = text[:1]
    if first == ".":
        if _DOT_FLOAT.fullmatch(text) and not math.isinf(float(text)):
            return _FLOAT, float(text)
        return _STR, text
    if first in _NUMBER_START:
        if _looks_like_timestamp(text):
            # Decoded into interface{}, go-yaml keeps timestamps as strings (but quotes them when
            # writing, see needs_quotes).
            return "timestamp", text
        plain = text.replace("_", "")
        as_int = _parse_go_int(plain)
        if as_int is not None:
            return _INT, as_int
        # Out-of-range floats are a ParseFloat error in Go, so the text stays a string.
        if _YAML_FLOAT.fullmatch(plain) and not math.isinf(float(plain)):
            return _FLOAT, float(plain)
        for prefix, sign in (("0b", 1), ("-0b", -1)):
            digits = plain[len(prefix) :]
            if plain.startswith(prefix) and digits and set(digits) <= {"0", "1"}:
                return _INT, sign * int(digits, 2)
        return _STR, text
    return _STR, text


def needs_quotes(text: str) -> bool:
    """Whether go-yaml v2 double-quotes a single-line string so it reads back as a string."""
    tag, _ = resolve_plain(text)
    if tag != _STR:
        return True
    return text[:1] in _NUMBER_START and ":" in text and bool(_BASE60_FLOAT.fullmatch(text))


# --- toYaml ---------------------------------------------------------------------------------


def _is_go_letter(ch: str) -> bool:
    return unicodedata.category(ch).startswith("L")


def _is_go_digit(ch: str) -> bool:
    return unicodedata.category(ch) == "Nd"


def _wrap_int64(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= (1 << 63) else value


def _key_less(a: str, b: str) -> bool:
    """go-yaml v2's order of string map keys: letters by code point, digit runs by number."""
    for i in range(min(len(a), len(b))):
        ca, cb = a[i], b[i]
        if ca == cb:
            continue
        a_letter, b_letter = _is_go_letter(ca), _is_go_letter(cb)
        if a_letter and b_letter:
            return ca < cb
        if a_letter or b_letter:
            return b_letter
        an = bn = 0
        if ca == "0" or cb == "0":
            # A zero after a non-zero digit run is part of a larger number, not a leading zero.
            j = i - 1
            while j >= 0 and _is_go_digit(a[j]):
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and _is_go_digit(a[ai]):
            an = _wrap_int64(an * 10 + ord(a[ai]) - 48)
            ai += 1
        bi = i
        while bi < len(b) and _is_go_digit(b[bi]):
            bn = _wrap_int64(bn * 10 + ord(b[bi]) - 48)
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ca < cb
    return len(a) < len(b)


def _key_cmp(a: str, b: str) -> int:
    if _key_less(a, b):
        return -1
    if _key_less(b, a):
        return 1
    return 0


_KEY_ORDER: Final = cmp_to_key(_key_cmp)


class _Dumper(yaml.SafeDumper):
    """Emits nodes built by _node; no implicit resolvers, so every scalar's style is ours."""

    def check_simple_key(self) -> bool:
        # go-yaml writes `key: value` for single-line keys of up to 128 UTF-8 bytes (an empty key
        # too); PyYAML's limit is 127 characters including the tag, and it excludes empty keys.
        if isinstance(self.event, ScalarEvent):
            if self.analysis is None:
                self.analysis = self.analyze_scalar(self.event.value)
            return not self.analysis.multiline and len(self.event.value.encode()) <= 128
        result: bool = super().check_simple_key()
        return result

    def analyze_scalar(self, scalar: str) -> Any:
        analysis = super().analyze_scalar(scalar)
        if any(ord(ch) > 0xFFFF for ch in scalar):
            # go-yaml's printable check does not cover 4-byte UTF-8 (emoji and the like), so such
            # text is "special" and only double quotes (with \U escapes) can carry it.
            analysis.allow_flow_plain = analysis.allow_block_plain = False
            analysis.allow_single_quoted = analysis.allow_block = False
        return analysis

    def write_double_quoted(self, text: str, split: bool = True) -> None:
        """go-yaml's double-quoted writer: folds at a space past the width (the space becomes the
        line break), escapes what it cannot print, and, because its BOM test looks at the start
        of the string, escapes every character of a string that begins with U+FEFF."""
        self.write_indicator('"', True)
        escape_all = text.startswith("\ufeff")
        spaces = False
        last = len(text) - 1
        for i, ch in enumerate(text):
            if escape_all or _go_double_quote_escape(ch):
                self._write_text(_go_escape(ch))
                spaces = False
            elif ch == " ":
                if split and not spaces and self.column > self.best_width and 0 < i < last:
                    self.write_indent()
                    if text[i + 1] == " ":
                        self._write_text("\\")
                else:
                    self._write_text(" ")
                spaces = True
            else:
                self._write_text(ch)
                spaces = False
        self.write_indicator('"', False)

    def _write_text(self, data: str) -> None:
        self.column += len(data)
        self.whitespace = False
        self.indention = False
        self.stream.write(data)

    def write_single_quoted(self, text: str, split: bool = True) -> None:
        # After a trailing Unicode line break (U+0085/2028/2029) PyYAML indents the closing quote;
        # go-yaml only indents before more text. Render into a buffer and drop that indentation.
        if not text or text[-1] not in "\x85\u2028\u2029":
            super().write_single_quoted(text, split)
            return
        stream, self.stream = self.stream, io.StringIO()
        try:
            super().write_single_quoted(text, split)
            written = self.stream.getvalue()
        finally:
            self.stream = stream
        trimmed = written[:-1].rstrip(" ") + written[-1:]
        self.column -= len(written) - len(trimmed)
        stream.write(trimmed)


_Dumper.yaml_implicit_resolvers = {}


def _string_node(text: str) -> ScalarNode:
    if "\n" in text:
        style: str | None = "|"
    elif needs_quotes(text):
        style = '"'
    else:
        style = None
    return ScalarNode(_STR, text, style=style)


_GO_ESCAPES: Final = {
    "\0": "0",
    "\a": "a",
    "\b": "b",
    "\t": "t",
    "\n": "n",
    "\v": "v",
    "\f": "f",
    "\r": "r",
    "\x1b": "e",
    '"': '"',
    "\\": "\\",
    "\x85": "N",
    "\xa0": "_",
    "\u2028": "L",
    "\u2029": "P",
}


def _go_double_quote_escape(ch: str) -> bool:
    code = ord(ch)
    printable = (
        ch == "\n"
        or 0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
    )
    return not printable or ch in '"\\\r\n\x85\u2028\u2029'


def _go_escape(ch: str) -> str:
    if ch in _GO_ESCAPES:
        return "\\" + _GO_ESCAPES[ch]
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def _node(value: object) -> Node:
    # `value` is JSON read back as YAML, so it is one of the JSON types.
    if isinstance(value, dict):
        pairs = [(_string_node(key), _node(value[key])) for key in sorted(value, key=_KEY_ORDER)]
        return MappingNode(_MAP, pairs, flow_style=False)
    if isinstance(value, list):
        return SequenceNode(_SEQ, [_node(item) for item in value], flow_style=False)
    if isinstance(value, str):
        return _string_node(value)
    if value is None:
        text = "null"
    elif value is True or value is False:
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    else:
        assert isinstance(value, float)
        text = format_float_g(value)
    return ScalarNode(_STR, text, style=None)


def to_yaml(value: object, *, limit: int, extra: Marshaler | None = None) -> str:
    """sigs.k8s.io/yaml.Marshal(value) without the final newline, as Helm's toYaml returns it."""
    encoded = marshal(value, limit=limit, extra=extra)
    # Go reads the JSON text back with go-yaml, and that step has visible effects: characters
    # json.Marshal leaves raw but YAML forbids (DEL, C1 controls) make it fail, and a raw U+0085 is
    # a line break that folds to a space. PyYAML's reader and scanner behave the same way.
    try:
        tree = yaml.load(encoded, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise GoFunctionError(f"yaml: {_yaml_problem(exc)}") from None
    text: str = yaml.serialize(_node(tree), Dumper=_Dumper, allow_unicode=True, indent=2, width=80)
    if text.endswith("\n...\n"):
        # PyYAML ends a document whose last scalar is open-ended (a plain root scalar, a `|+`
        # block) with a "..." marker; go-yaml does not. Content never has "..." at column 0.
        text = text[: -len("...\n")]
    if len(text) > limit:
        raise SandboxLimitError(f"encoded value is over the limit of {limit} characters")
    return text.removesuffix("\n")


# --- fromYaml ---------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader whose plain-scalar resolution is go-yaml v2's."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            if value == "<<":
                # go-yaml's decoder recognises merge keys by their text, not by resolution.
                return _MERGE
            tag, _ = resolve_plain(value)
            return _STR if tag == "timestamp" else tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def scan_to_next_token(self) -> None:
        # libyaml's rule, which go-yaml keeps: tabs separate tokens too where no simple key can start (in
        # flow context, after `key:`), so `a:\t1` is {a: 1} in Go where PyYAML stops at the tab.
        if self.index == 0 and self.peek() == "\ufeff":
            self.forward()
        while True:
            tab_is_blank = bool(self.flow_level) or not self.allow_simple_key
            while self.peek() == " " or (self.peek() == "\t" and tab_is_blank):
                self.forward()
            if self.peek() == "#":
                while self.peek() not in "\0\r\n\x85\u2028\u2029":
                    self.forward()
            if not self._line_break():
                return
            if not self.flow_level:
                self.allow_simple_key = True

    def scan_plain_spaces(self, indent: int, start_mark: Any) -> list[str] | None:
        # PyYAML's own, except that tabs are blanks as in libyaml/go-yaml (`a: b\tc` is "b\tc" in Go), and a
        # tab in the indentation of a continuation line is refused as go-yaml refuses it.
        chunks: list[str] = []
        length = 0
        while self.peek(length) in " \t":
            length += 1
        whitespaces = self.prefix(length)
        self.forward(length)
        if self.peek() not in "\r\n\x85\u2028\u2029":
            if whitespaces:
                chunks.append(whitespaces)
            return chunks
        line_break = self._line_break()
        self.allow_simple_key = True
        if self._at_document_marker():
            return None
        breaks: list[str] = []
        while self.peek() in " \t\r\n\x85\u2028\u2029":
            if self.peek() == "\t" and self.column < indent:
                raise yaml.scanner.ScannerError(
                    "while scanning a plain scalar",
                    start_mark,
                    "found a tab character that violates indentation",
                    self.get_mark(),
                )
            if self.peek() in " \t":
                self.forward()
            else:
                breaks.append(self._line_break())
                if self._at_document_marker():
                    return None
        if line_break != "\n":
            chunks.append(line_break)
        elif not breaks:
            chunks.append(" ")
        chunks.extend(breaks)
        return chunks

    def _line_break(self) -> str:
        text: str = self.scan_line_break()  # type: ignore[no-untyped-call]
        return text

    def _at_document_marker(self) -> bool:
        return self.prefix(3) in ("---", "...") and self.peek(3) in "\0 \t\r\n\x85\u2028\u2029"

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        # Keys become strings here, not afterwards: YAML's 1 and true are different keys, but
        # equal as Python dict keys.
        if isinstance(node, MappingNode):
            self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            mapping[_key_text(key)] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_go_int(self, node: ScalarNode) -> object:
        parsed = _parse_go_int(str(node.value).replace("_", ""))
        if parsed is not None:
            return parsed
        _, value = resolve_plain(str(node.value))
        return value

    def construct_go_float(self, node: ScalarNode) -> object:
        _, value = resolve_plain(str(node.value))
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(str(node.value))
        except ValueError as exc:
            raise GoFunctionError("cannot decode !!str as a !!float") from exc

    def construct_go_bool(self, node: ScalarNode) -> object:
        tag, value = resolve_plain(str(node.value))
        if tag != _BOOL:
            raise GoFunctionError("cannot decode !!str as a !!bool")
        return value


_Loader.yaml_implicit_resolvers = {}
_Loader.add_constructor(_INT, _Loader.construct_go_int)
_Loader.add_constructor(_FLOAT, _Loader.construct_go_float)
_Loader.add_constructor(_BOOL, _Loader.construct_go_bool)


def _float32_text(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32), which sigs.k8s.io/yaml uses for float keys."""
    try:
        single = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        single = math.copysign(math.inf, value)  # Go's float32 conversion overflows to infinity
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    for precision in range(1, 10):
        candidate = float(f"{single:.{precision}g}")
        if struct.pack("f", candidate) == struct.pack("f", single):
            return format_float_g(candidate)
    return format_float_g(single)


def _key_text(key: object) -> str:
    if isinstance(key, str):
        return key
    if key is True or key is False:
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return ".nan" if math.isnan(key) else _float32_text(key)
    raise GoFunctionError(f"unsupported map key of type {type(key).__name__}")


class YamlBudgetExceeded(GoFunctionError):
    """The document describes more nodes than the budget allows (aliases expand without bound)."""


def _json_number(value: float) -> int | float:
    """A float64 as encoding/json writes it, as the Python number json.loads would read back: whole
    numbers below 1e21 print without a fraction or exponent, so they are ints (with float64's digits)."""
    if value.is_integer() and abs(value) < 1e21:
        return int(decimal.Decimal(repr(value)))
    return value


def _jsonable(value: object, budget: list[int], *, go: bool = True) -> object:
    """The JSON round trip: keys become strings, every number a float64; NaN/Inf fail.

    `go`: the engine's Go-typed containers and float64s (for templates); otherwise plain dicts, lists and
    JSON numbers (what the JSON text would read back as in Python, for the Template driver's results).
    Counts nodes against `budget`: YAML aliases can describe far more nodes than the text holds
    (go-yaml refuses such documents as "excessive aliasing").
    """
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlBudgetExceeded("yaml: document contains excessive aliasing")
    if isinstance(value, dict):
        items = {_key_text(key): _jsonable(item, budget, go=go) for key, item in value.items()}
        return GoMap(items) if go else items
    if isinstance(value, list):
        converted = [_jsonable(item, budget, go=go) for item in value]
        return GoList(converted) if go else converted
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise GoFunctionError("json: unsupported value: non-finite float")
        return number if go else _json_number(number)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise GoFunctionError(f"unsupported YAML value of type {type(value).__name__}")


def parse_yaml(text: str, max_nodes: int, *, go: bool = True) -> object:
    """Load the first document of `text` the way sigs.k8s.io/yaml.Unmarshal sees it.

    At most `max_nodes` nodes, counted after alias expansion (YamlBudgetExceeded past it); `go` as in
    _jsonable."""
    try:
        documents = yaml.load_all(text, Loader=_Loader)
        first = next(iter(documents), None)
    except yaml.YAMLError as exc:
        raise GoFunctionError(f"yaml: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise YamlBudgetExceeded("yaml: document nests too deeply") from None
    try:
        return _jsonable(first, [max_nodes], go=go)
    except RecursionError:
        # A self-referencing alias (`&a [*a]`) or nesting past Python's stack.
        raise YamlBudgetExceeded("yaml: document nests too deeply") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    # Only the problem and position: PyYAML's full message quotes the offending source text.
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return f"{where}{exc.problem}"
    return "invalid YAML"


def _mapping_error(kind: str) -> str:
    return (
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
        f"{kind} into Go value of type map[string]interface {{}}"
    )


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return "number"
    return "object"


def from_yaml(text: str, max_nodes: int) -> dict[str, object]:
    """Helm's fromYaml: a map, or {"Error": message} when the text is not a YAML mapping."""
    try:
        value = parse_yaml(text, max_nodes)
    except GoFunctionError as exc:
        return {"Error": f"error converting YAML to JSON: {exc}"}
    if value is None:
        return {}
    if not isinstance(value, dict):
        return {"Error": _mapping_error(_json_kind(value))}
    return value


def from_yaml_array(text: str, max_nodes: int) -> list[object]:
    """Helm's fromYamlArray: a list, or [message] when the text is not a YAML sequence."""
    try:
        value = parse_yaml(text, max_nodes)
    except GoFunctionError as exc:
        return [f"error converting YAML to JSON: {exc}"]
    if value is None:
        return []
    if not isinstance(value, list):
        return [
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
            f"{_json_kind(value)} into Go value of type []interface {{}}"
        ]
    return value
