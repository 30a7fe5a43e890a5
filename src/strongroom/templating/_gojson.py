"""Go's encoding/json and strconv float formatting, for the values templates handle.

Python's json module differs from Go's in the details that show up in rendered manifests: Go
writes 1000000.0 as `1000000` and 1e-7 as `1e-7`, escapes `<`, `>` and `&` (json.Marshal's
default), escapes U+2028/U+2029, and prints control characters as lowercase `\\u00XX`. Every
encoder here also stops once its output passes a size limit, so a template cannot make one
`toJson` call build gigabytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Final

from gotpl.runtime.values import INVALID, UNTYPED_NIL

from strongroom.templating._limits import GoFunctionError, SandboxLimitError
from strongroom.templating._values import GoNilMap, go_type_name


def shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |value| and the decimal point position.

    `value == 0.DIGITS * 10**point`. Python's repr and Go's strconv both produce the shortest
    digit string that reads back to the same float, so the digits agree.
    """
    if value == 0:
        return "0", 1
    sign, digits, exponent = Decimal(repr(abs(value))).as_tuple()
    del sign
    assert isinstance(exponent, int)
    text = "".join(str(d) for d in digits).rstrip("0")
    stripped = len(digits) - len(text)
    return text, len(text) + exponent + stripped


def _format_e(negative: bool, digits: str, point: int, upper: bool = False) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = point - 1 if digits != "0" else 0
    sign = "-" if exp < 0 else "+"
    marker = "E" if upper else "e"
    return f"{'-' if negative else ''}{mantissa}{marker}{sign}{abs(exp):02d}"


def _format_f(negative: bool, digits: str, point: int) -> str:
    if point <= 0:
        text = "0." + "0" * (-point) + digits if digits != "0" else "0"
    elif point >= len(digits):
        text = digits + "0" * (point - len(digits))
    else:
        text = digits[:point] + "." + digits[point:]
    return ("-" if negative else "") + text


def format_float_g(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 64): what fmt's %v prints for a float64."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    negative = math.copysign(1.0, value) < 0
    digits, point = shortest_digits(value)
    exp = point - 1
    # For the shortest form Go decides between %e and %f as if the precision were 6, whatever
    # the number of digits: 100000 stays, 1e+06 and 1.2345675e+06 switch.
    if digits != "0" and (exp < -4 or exp >= 6):
        return _format_e(negative, digits, point)
    return _format_f(negative, digits, point)


def format_float_json(value: float) -> str:
    """encoding/json's float64 encoding (non-finite values are an error there)."""
    if math.isnan(value) or math.isinf(value):
        raise GoFunctionError("json: unsupported value: non-finite float")
    negative = math.copysign(1.0, value) < 0
    digits, point = shortest_digits(value)
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = _format_e(negative, digits, point)
        # Go trims the exponent's leading zero: 1e-07 -> 1e-7.
        head, _, tail = text.partition("e")
        sign, number = tail[0], tail[1:].lstrip("0") or "0"
        return f"{head}e{sign}{number}"
    return _format_f(negative, digits, point)


_SHORT_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_HTML_ESCAPES: Final = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def quote_json_string(text: str, escape_html: bool) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif code < 0x20 or ch in "\u2028\u2029":
            out.append(f"\\u{code:04x}")
        elif escape_html and ch in _HTML_ESCAPES:
            out.append(_HTML_ESCAPES[ch])
        elif 0xD800 <= code <= 0xDFFF:
            # A lone surrogate is invalid UTF-8 on the Go side, which encodes it as U+FFFD.
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class _Writer:
    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit

    def write(self, text: str) -> None:
        self.size += len(text)
        if self.size > self.limit:
            raise SandboxLimitError(f"encoded value is over the limit of {self.limit} characters")
        self.parts.append(text)


# Values without a JSON form of their own (semver versions, dates) supply one through this hook.
Marshaler = Callable[[object], object]


def marshal(
    value: object,
    *,
    limit: int,
    escape_html: bool = True,
    indent: str | None = None,
    extra: Marshaler | None = None,
) -> str:
    """json.Marshal (or MarshalIndent with prefix "" and `indent`) of a template value.

    Raises GoFunctionError where Go's encoder returns an error and SandboxLimitError past `limit`.
    """
    writer = _Writer(limit)
    _encode(value, writer, escape_html, indent, 0, extra)
    return "".join(writer.parts)


def _encode(
    value: object, w: _Writer, escape_html: bool, indent: str | None, level: int, extra: Marshaler | None
) -> None:
    if value is None or value is INVALID or value is UNTYPED_NIL or isinstance(value, GoNilMap):
        w.write("null")
    elif value is True:
        w.write("true")
    elif value is False:
        w.write("false")
    elif isinstance(value, int):
        w.write(int.__repr__(value))
    elif isinstance(value, float):
        w.write(format_float_json(value))
    elif isinstance(value, str):
        w.write(quote_json_string(value, escape_html))
    elif isinstance(value, Mapping):
        _encode_object(value, w, escape_html, indent, level, extra)
    elif isinstance(value, (list, tuple)):
        _encode_array(value, w, escape_html, indent, level, extra)
    else:
        replacement = extra(value) if extra is not None else None
        if replacement is None:
            raise GoFunctionError(f"json: unsupported type: {go_type_name(value)}")
        _encode(replacement, w, escape_html, indent, level, extra)


def _newline(w: _Writer, indent: str | None, level: int) -> None:
    if indent is not None:
        w.write("\n" + indent * level)


def _encode_object(
    value: Mapping[object, object],
    w: _Writer,
    escape_html: bool,
    indent: str | None,
    level: int,
    extra: Marshaler | None,
) -> None:
    if not value:
        w.write("{}")
        return
    w.write("{")
    # Go sorts map keys by their UTF-8 bytes, which for valid text is code point order.
    for index, key in enumerate(sorted(value, key=str)):
        if index:
            w.write(",")
        _newline(w, indent, level + 1)
        w.write(quote_json_string(str(key), escape_html))
        w.write(": " if indent is not None else ":")
        _encode(value[key], w, escape_html, indent, level + 1, extra)
    _newline(w, indent, level)
    w.write("}")


def _encode_array(
    value: list[object] | tuple[object, ...],
    w: _Writer,
    escape_html: bool,
    indent: str | None,
    level: int,
    extra: Marshaler | None,
) -> None:
    if not value:
        w.write("[]")
        return
    w.write("[")
    for index, item in enumerate(value):
        if index:
            w.write(",")
        _newline(w, indent, level + 1)
        _encode(item, w, escape_html, indent, level + 1, extra)
    _newline(w, indent, level)
    w.write("]")
