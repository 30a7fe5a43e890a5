"""toYaml: sigs.k8s.io/yaml.Marshal on top of PyYAML's emitter.

The value is encoded as JSON (_gojson), read back as YAML (loader.py), and emitted with go-yaml v2's
choices: keys in its "natural" order, strings quoted when they would read back as something else
(resolver.needs_quotes), block literals for multi-line text, and its quoting and escaping rules
where PyYAML's emitter (a port of the same libyaml emitter) differs.
"""

from __future__ import annotations

import io
import unicodedata
from functools import cmp_to_key
from typing import Any, Final

import yaml
from yaml.events import ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from strongroom.templating._gojson import Marshaler, format_float_g, marshal
from strongroom.templating._goyaml.loader import GoYamlLoader, yaml_problem
from strongroom.templating._goyaml.resolver import MAP, SEQ, STR, needs_quotes
from strongroom.templating._limits import GoFunctionError, SandboxLimitError


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
    return ScalarNode(STR, text, style=style)


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
        return MappingNode(MAP, pairs, flow_style=False)
    if isinstance(value, list):
        return SequenceNode(SEQ, [_node(item) for item in value], flow_style=False)
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
    return ScalarNode(STR, text, style=None)


def to_yaml(value: object, *, limit: int, extra: Marshaler | None = None) -> str:
    """sigs.k8s.io/yaml.Marshal(value) without the final newline, as Helm's toYaml returns it."""
    encoded = marshal(value, limit=limit, extra=extra)
    # Go reads the JSON text back with go-yaml, and that step has visible effects: characters
    # json.Marshal leaves raw but YAML forbids (DEL, C1 controls) make it fail, and a raw U+0085 is
    # a line break that folds to a space. PyYAML's reader and scanner behave the same way.
    try:
        tree = yaml.load(encoded, Loader=GoYamlLoader)  # noqa: S506 - GoYamlLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise GoFunctionError(f"yaml: {yaml_problem(exc)}") from None
    text: str = yaml.serialize(_node(tree), Dumper=_Dumper, allow_unicode=True, indent=2, width=80)
    if text.endswith("\n...\n"):
        # PyYAML ends a document whose last scalar is open-ended (a plain root scalar, a `|+`
        # block) with a "..." marker; go-yaml does not. Content never has "..." at column 0.
        text = text[: -len("...\n")]
    if len(text) > limit:
        raise SandboxLimitError(f"encoded value is over the limit of {limit} characters")
    return text.removesuffix("\n")
