"""text/template builtins whose gotpl versions differ from Go, reimplemented from Go's semantics.

* eq/ne/lt/le/gt/ge: Go compares only basic kinds (bool, integers, floats, strings). A missing or
  nil operand makes `eq` false instead of an error, an int and a float are incomparable, and maps
  or lists are an error.
* len: Go's messages (`len of type int64`, `len of nil pointer`), which name Go types.
* index: map keys must be strings (`index .m 1` is an error in Go), a missing map key yields the
  zero value, and indexing through nil is an error.
* print/printf/println: a missing value reaches Go's fmt as nil and prints `<nil>`.
* printf: widths and precisions are bounded (a sandbox limit), and `%08.3f` of a negative number
  puts the sign before the zeros as Go does.

Error messages follow Go's but never include the operands, which may be secret data.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

from gotpl.funcs.sprig.semver import Version
from gotpl.runtime.gofmt import sprintf
from gotpl.runtime.values import INVALID, UNTYPED_NIL

from strongroom.templating._limits import GoFunctionError, SandboxLimitError, current
from strongroom.templating._values import go_object_type_name, go_type_name, is_nil

_BOOL, _INT, _FLOAT, _STRING, _OTHER = "bool", "int", "float", "string", "other"


def _kind(value: object) -> str:
    if is_nil(value):
        return _OTHER
    if isinstance(value, bool):
        return _BOOL
    if isinstance(value, int):
        return _INT
    if isinstance(value, float):
        return _FLOAT
    if isinstance(value, str):
        return _STRING
    return _OTHER


def eq(first: object, *others: object) -> bool:
    if not others:
        raise GoFunctionError("missing argument for comparison")
    k1 = _kind(first)
    for other in others:
        k2 = _kind(other)
        if k1 != k2:
            if not is_nil(first) and not is_nil(other):
                raise GoFunctionError(
                    f"incompatible types for comparison: {go_type_name(first)} and {go_type_name(other)}"
                )
            truth = False
        elif k1 != _OTHER:
            truth = first == other
        elif is_nil(first) or is_nil(other):
            truth = is_nil(first) and is_nil(other)
        else:
            truth = _compare_composites(first, other)
        if truth:
            return True
    return False


def _compare_composites(first: object, other: object) -> bool:
    """eq of two values that are not basic kinds, as Go's: the reflect kinds must match, a map or
    a slice never compares, values of different types are unequal, a pointer (*semver.Version) is
    equal only to itself and a struct compares its fields. Go's messages print the values; these
    print "…" in their place."""
    first_kind, other_kind = _composite_kind(first), _composite_kind(other)
    if first_kind != other_kind:
        raise GoFunctionError(f"non-comparable types …: {go_type_name(first)}, {go_type_name(other)}: …")
    if first_kind in ("map", "slice"):
        raise GoFunctionError(f"non-comparable type …: {go_type_name(other)}")
    if go_type_name(first) != go_type_name(other):
        return False
    if isinstance(first, Version):
        return first is other
    if isinstance(first, datetime) and isinstance(other, datetime):
        return first == other and first.utcoffset() == other.utcoffset()
    return first == other


def _composite_kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, (list, tuple)):
        return "slice"
    return "ptr" if isinstance(value, Version) else "struct"


def ne(first: object, second: object) -> bool:
    return not eq(first, second)


def lt(first: object, second: object) -> bool:
    k1, k2 = _kind(first), _kind(second)
    if k1 == _OTHER or k2 == _OTHER:
        raise GoFunctionError("invalid type for comparison")
    if k1 != k2:
        raise GoFunctionError(
            f"incompatible types for comparison: {go_type_name(first)} and {go_type_name(second)}"
        )
    if k1 == _BOOL:
        raise GoFunctionError("invalid type for comparison")
    if isinstance(first, str) and isinstance(second, str):
        return first < second
    assert isinstance(first, (int, float))
    assert isinstance(second, (int, float))
    return first < second


def le(first: object, second: object) -> bool:
    return lt(first, second) or eq(first, second)


def gt(first: object, second: object) -> bool:
    return not le(first, second)


def ge(first: object, second: object) -> bool:
    return not lt(first, second)


def index(item: object, *indexes: object) -> object:
    if is_nil(item):
        raise GoFunctionError("index of untyped nil")
    is_byte = False  # an item taken from a string is a Go uint8, which cannot be indexed
    for key in indexes:
        if is_nil(item):
            raise GoFunctionError("index of nil pointer")
        if is_byte:
            raise GoFunctionError("can't index item of type uint8")
        if isinstance(item, (str, list, tuple)):
            sequence: bytes | list[object] | tuple[object, ...] = (
                item.encode() if isinstance(item, str) else item
            )
            position = _position(key, len(sequence))
            if position == len(sequence):
                # Go's bound check lets the length itself through; reflect then panics.
                kind = "string" if isinstance(item, str) else "slice"
                raise GoFunctionError(f"reflect: {kind} index out of range")
            is_byte = isinstance(item, str)
            item = sequence[position]
        elif isinstance(item, Mapping):
            if is_nil(key):
                raise GoFunctionError("value is nil; should be of type string")
            if not isinstance(key, str):
                raise GoFunctionError(f"value has type {go_type_name(key)}; should be string")
            # A missing key gives the map's zero value, nil, which prints as <no value>.
            item = item.get(key)
        else:
            # index looks through a pointer first, as len does.
            raise GoFunctionError(f"can't index item of type {go_type_name(item).removeprefix('*')}")
    return item


def _position(key: object, length: int) -> int:
    if is_nil(key):
        raise GoFunctionError("cannot index slice/array with nil")
    if isinstance(key, bool) or not isinstance(key, int):
        raise GoFunctionError(f"cannot index slice/array with type {go_type_name(key)}")
    if key < 0 or key > length:
        raise GoFunctionError(f"index out of range: {int(key)}")
    return int(key)


def length(item: object) -> int:
    if item is INVALID or item is UNTYPED_NIL:
        # Go asks the type of the invalid reflect.Value and text/template reports the panic.
        raise GoFunctionError("reflect: call of reflect.Value.Type on zero Value")
    if item is None:
        # A null from the data is a nil interface{} in Go, which len reports as a nil pointer.
        raise GoFunctionError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, (list, tuple, Mapping)):
        return len(item)
    # len looks through a pointer first: a *semver.Version is "len of type semver.Version".
    raise GoFunctionError(f"len of type {go_type_name(item).removeprefix('*')}")


def _fmt_args(values: tuple[object, ...]) -> tuple[object, ...]:
    # Go passes a missing value to fmt as nil; gotpl would print "<no value>".
    return tuple(UNTYPED_NIL if value is INVALID or value is None else value for value in values)


def print_(*values: object) -> str:
    return _joined(_fmt_args(values))


def _joined(values: tuple[object, ...]) -> str:
    # fmt.Sprint: a space between operands when neither side is a string.
    out: list[str] = []
    for position, value in enumerate(values):
        if position and not isinstance(value, str) and not isinstance(values[position - 1], str):
            out.append(" ")
        out.append(sprintf("%v", value))
    return "".join(out)


def println(*values: object) -> str:
    return " ".join(sprintf("%v", value) for value in _fmt_args(values)) + "\n"


# One fmt directive: flags, width (digits, * or [n]*), precision, optional [n], verb.
_DIRECTIVE: Final = re.compile(
    r"%(?P<flags>[-+# 0]*)"
    r"(?P<width>\[\d+\]\*|\*|\d+)?"
    r"(?P<dot>\.(?P<precision>\[\d+\]\*|\*|\d+)?)?"
    r"(?P<argindex>\[\d+\])?"
    r"(?P<verb>.?)",
    re.DOTALL,
)
_FLOAT_VERBS: Final = frozenset("eEfFgG")


def printf(format_string: object, *values: object) -> str:
    args = _fmt_args(values)
    if not isinstance(format_string, str):
        return sprintf(format_string, *args)
    limit = current().limits.max_value_chars
    if "[" in format_string:
        # Explicit argument indexes: only bound the sizes, leave the formatting to gotpl.
        _check_widths(format_string, args, limit, indexed=True)
        return sprintf(format_string, *args)
    return _printf_positional(format_string, args, limit)


def _check_widths(format_string: str, args: tuple[object, ...], limit: int, *, indexed: bool) -> None:
    for match in _DIRECTIVE.finditer(format_string):
        for part in (match["width"], match["precision"]):
            if part and part.isdigit() and int(part) > limit:
                raise SandboxLimitError(f"printf width or precision over the limit of {limit}")
    if indexed and "*" in format_string:
        for value in args:
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limit:
                raise SandboxLimitError(f"printf width or precision over the limit of {limit}")


_ABSENT: Final = object()  # a directive without an operand; gotpl prints %!d(MISSING)
# fmt's %v is the type's default verb; spelling it out lets width and precision work like Go's.
_DEFAULT_VERBS: Final = ((bool, "t"), (int, "d"), (float, "g"), (str, "s"))


def _printf_positional(format_string: str, args: tuple[object, ...], limit: int) -> str:
    """Format with gotpl, after rewriting the directives where its output differs from Go's.

    A directive is either kept, given a different verb, or replaced by text formatted here (its
    operand is then dropped from the argument list).
    """
    _check_widths(format_string, args, limit, indexed=False)
    pieces: list[str] = []
    new_args: list[object] = []
    position = 0  # next argument
    cursor = 0
    for match in _DIRECTIVE.finditer(format_string):
        if match["verb"] in ("%", ""):
            continue
        width_text, precision_text, verb = match["width"], match["precision"], match["verb"]
        start_position = position
        stars = []
        for part in (width_text, precision_text):
            if part == "*":
                stars.append(args[position] if position < len(args) else _ABSENT)
                position += 1
        for star in stars:
            if isinstance(star, int) and not isinstance(star, bool) and abs(star) > limit:
                raise SandboxLimitError(f"printf width or precision over the limit of {limit}")
        operand = args[position] if position < len(args) else _ABSENT
        position += 1
        if stars or operand is _ABSENT:
            new_args.extend(args[start_position:position])
            continue
        flags = match["flags"]
        precision = (precision_text or "0") if match["dot"] else None
        literal, verb = _rewrite(flags, width_text, precision, verb, operand)
        pieces.append(format_string[cursor : match.start()])
        cursor = match.end()
        if literal is not None:
            pieces.append(literal.replace("%", "%%"))
            new_args.extend(args[start_position : position - 1])
        else:
            pieces.append(_spec(flags, width_text, precision, verb))
            new_args.extend(args[start_position:position])
    pieces.append(format_string[cursor:])
    new_args.extend(args[position:])
    return sprintf("".join(pieces), *new_args)


def _rewrite(
    flags: str, width: str | None, precision: str | None, verb: str, operand: object
) -> tuple[str | None, str]:
    """(replacement text or None, verb to use) for one directive with a known operand."""
    if verb == "T":
        go_type = go_object_type_name(operand)  # gotpl would print the Python class name
        if go_type is not None:
            return _pad_text(
                go_type[: int(precision)] if precision is not None else go_type, flags, width
            ), verb
    if isinstance(operand, (list, tuple, Mapping)):
        if verb not in "vT" or (verb == "v" and (width or precision) and not set(flags) & {"#", "+"}):
            # Go applies the directive to each element; gotpl formats the whole value.
            return _per_element(_spec(flags, width, precision, verb), operand), verb
        return None, verb
    if verb == "v" and "#" not in flags:
        for kind, default in _DEFAULT_VERBS:
            if isinstance(operand, kind):
                verb = default
                break
    if verb in _FLOAT_VERBS and isinstance(operand, float) and "0" in flags and "-" not in flags and width:
        # gotpl pads "-3.500" to "00-3.500"; Go writes "-003.500".
        return _zero_padded_float(flags, int(width), precision, verb, operand), verb
    if verb in "xX" and isinstance(operand, str) and (" " in flags or "#" in flags):
        return _hex_string(flags, width, precision, verb, operand), verb
    if verb == "U" and "#" in flags and isinstance(operand, int) and not isinstance(operand, bool):
        return _unicode_with_char(flags, width, operand), verb
    return None, verb


def _hex_string(flags: str, width: str | None, precision: str | None, verb: str, text: str) -> str:
    data = text.encode()
    if precision is not None:
        data = data[: int(precision)]
    prefix = ("0X" if verb == "X" else "0x") if "#" in flags else ""
    digits = "{:02X}" if verb == "X" else "{:02x}"
    if " " in flags:
        body = " ".join(prefix + digits.format(b) for b in data)
    else:
        body = prefix + "".join(digits.format(b) for b in data) if data else ""
    return _pad_text(body, flags, width)


def _unicode_with_char(flags: str, width: str | None, code: int) -> str:
    body = f"U+{code:04X}"
    if 0 <= code <= 0x10FFFF and chr(code).isprintable():
        body += f" '{chr(code)}'"
    return _pad_text(body, flags, width)


def _pad_text(body: str, flags: str, width: str | None) -> str:
    size = int(width) if width else 0
    return body.ljust(size) if "-" in flags else body.rjust(size)


def _spec(flags: str, width: str | None, precision: str | None, verb: str) -> str:
    return f"%{flags}{width or ''}" + (f".{precision}" if precision is not None else "") + verb


def _per_element(spec: str, value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_per_element(spec, item) for item in value) + "]"
    if isinstance(value, Mapping):
        keys = sorted(value, key=str)
        return (
            "map[" + " ".join(f"{_per_element(spec, k)}:{_per_element(spec, value[k])}" for k in keys) + "]"
        )
    if is_nil(value):
        return "<nil>"  # fmt prints a nil element inside a container the same for every verb
    return sprintf(spec, value)


def _zero_padded_float(flags: str, width: int, precision: str | None, verb: str, value: float) -> str:
    core = sprintf(_spec(flags.replace("0", ""), None, precision, verb), value)
    if len(core) >= width:
        return core
    if value != value or value in (float("inf"), float("-inf")):
        return core.rjust(width)  # Go pads infinities and NaN with spaces
    if core[:1] in "+- ":
        return core[0] + core[1:].rjust(width - 1, "0")
    return core.rjust(width, "0")


# Go's parameters of the builtins: (fixed count, variadic, the type of the first parameter when
# text/template converts it, as printf's `format string`; the others are reflect.Values or `any`).
BUILTIN_PARAMETERS: Final[dict[str, tuple[int, bool, str | None]]] = {
    "eq": (1, True, None),
    "ne": (2, False, None),
    "lt": (2, False, None),
    "le": (2, False, None),
    "gt": (2, False, None),
    "ge": (2, False, None),
    "index": (1, True, None),
    "len": (1, False, None),
    "print": (0, True, None),
    "printf": (1, True, "string"),
    "println": (0, True, None),
}

BUILTIN_OVERRIDES: Final[dict[str, Callable[..., object]]] = {
    "eq": eq,
    "ne": ne,
    "lt": lt,
    "le": le,
    "gt": gt,
    "ge": ge,
    "index": index,
    "len": length,
    "print": print_,
    "printf": printf,
    "println": println,
}
