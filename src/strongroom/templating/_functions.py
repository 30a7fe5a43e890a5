"""The template function map: Sprig v3 and Helm-style extras, each behind a guard.

The implementations come from gotpl's Sprig port and HelmExtension, with the ones that differ from
Go replaced here (JSON/YAML encoding and decoding, deep equality, kind names) or in _builtins.py.
`env` and `expandenv` are left out, as Helm leaves them out: a template must not read the operator's
environment (it holds credentials). `getHostByName` answers "" as Helm's does without `--enable-dns`:
no template reaches the network.

Every function is wrapped by `_guard`, which

* converts arguments by the Go parameter types in _signatures.py exactly as text/template does
  (a missing value becomes nil where Go allows nil, an int64 from the data is refused where Go
  wants an int, `wrong number of args` is checked), so errors happen where Go's happen;
* gives results the Go type the function declares: `Int64` for Sprig's int64 math, GoList/GoMap
  (or their []string, []int, map[string]string variants) for containers;
* enforces the sandbox: the render deadline, size checks before functions that can multiply their
  input (`repeat`, `indent`, `replace`, `until`, ...) or that print whole structures, and a check
  of every result's own size (string length, item count);
* turns failures into Go-shaped `error calling NAME: ...` messages without data values.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from gotpl.errors import BudgetExceededError, TemplateExecutionError
from gotpl.exts import ContextFunction
from gotpl.exts.helm import HelmExtension
from gotpl.funcs.sprig.crypto import Certificate
from gotpl.funcs.sprig.numeric import to_float64
from gotpl.funcs.sprig.semver import Version
from gotpl.runtime.gofmt import sprintf
from gotpl.runtime.results import FunctionResult
from gotpl.runtime.values import UNTYPED_NIL

from strongroom.templating import _builtins, _gourl, _goyaml
from strongroom.templating._constants import integral_arguments
from strongroom.templating._gojson import marshal
from strongroom.templating._limits import (
    GoFunctionError,
    RenderState,
    SandboxLimitError,
    current,
    deep_size,
)
from strongroom.templating._signatures import SIGNATURES, Signature
from strongroom.templating._values import (
    GoIntList,
    GoList,
    GoMap,
    GoNilMap,
    GoStringList,
    GoStringMap,
    Int64,
    go_containers,
    go_object_type_name,
    go_type_name,
    is_nil,
)

EXCLUDED: Final = frozenset({"env", "expandenv"})

# Go methods and fields of values functions return (semver's *Version) that templates may use.
ALLOWED_ATTRIBUTES: Final = frozenset({"Major", "Minor", "Patch"})
ALLOWED_METHODS: Final = frozenset(
    {"Prerelease", "Metadata", "Original", "Compare", "String", "LessThan", "GreaterThan", "Equal"}
)


class GoVersion(Version):
    """gotpl's semver version plus the comparison methods Go's *semver.Version has."""

    __slots__ = ()

    def String(self) -> str:
        return str(self)

    def Compare(self, other: Version) -> int:
        return super().Compare(_version_argument(other))

    def LessThan(self, other: Version) -> bool:
        return bool(self < _version_argument(other))

    def GreaterThan(self, other: Version) -> bool:
        return bool(self > _version_argument(other))

    def Equal(self, other: Version) -> bool:
        if is_nil(other):
            return False  # the one comparison Go guards against a nil version
        return bool(self == _version_argument(other))

    def __go_format_value__(self, kind: str, mode: str, *, nested: bool) -> str:
        # gotpl's formatter asks this hook for %T/typeOf, %#v and %v.
        del mode, nested
        if kind == "type":
            return "*semver.Version"
        if kind == "syntax":
            fields = f"major:{self.Major:#x}, minor:{self.Minor:#x}, patch:{self.Patch:#x}, " + ", ".join(
                f"{name}:{sprintf('%q', text)}"
                for name, text in (
                    ("pre", self.Prerelease()),
                    ("metadata", self.Metadata()),
                    ("original", self.Original()),
                )
            )
            return f"&semver.Version{{{fields}}}"
        return str(self)


_Impl = Callable[..., object]


def _version_argument(value: object) -> Version:
    """The *semver.Version parameter of the comparison methods, checked as text/template does."""
    if isinstance(value, Version):
        return value
    if is_nil(value):
        # Go passes a nil pointer, which the method dereferences.
        raise GoFunctionError("runtime error: invalid memory address or nil pointer dereference")
    raise _arg_error(f"wrong type for value; expected *semver.Version; got {go_type_name(value)}")


# --- replacements for gotpl implementations that differ from Go ----------------------------------


def _json_extra(value: object) -> object:
    # Types with their own MarshalJSON in Go: semver's Version marshals as its string form, a
    # time.Time as RFC 3339 with the fraction's trailing zeros cut; a certificate is a struct.
    if isinstance(value, Version):
        return str(value)
    if isinstance(value, datetime):
        return _rfc3339_nano(value)
    if isinstance(value, Certificate):
        return {"Cert": value.Cert, "Key": value.Key}
    return None


def _rfc3339_nano(value: datetime) -> str:
    fraction = f"{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    if not offset:
        zone = "Z"
    else:
        minutes = int(offset.total_seconds()) // 60
        zone = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
        + (f".{fraction}" if fraction else "")
        + zone
    )


def _limit() -> int:
    return current().limits.max_value_chars


def _to_json(value: object) -> str:
    try:
        return marshal(value, limit=_limit(), extra=_json_extra)
    except GoFunctionError:
        return ""  # Sprig ignores the encoder's error


def _must_to_json(value: object) -> str:
    return marshal(value, limit=_limit(), extra=_json_extra)


def _to_pretty_json(value: object) -> str:
    try:
        return _must_to_pretty_json(value)
    except GoFunctionError:
        return ""


def _must_to_pretty_json(value: object) -> str:
    return marshal(value, limit=_limit(), indent="  ", extra=_json_extra)


def _to_raw_json(value: object) -> str:
    try:
        return _must_to_raw_json(value)
    except GoFunctionError:
        return ""


def _must_to_raw_json(value: object) -> str:
    return marshal(value, limit=_limit(), escape_html=False, extra=_json_extra)


def _to_yaml(value: object) -> str:
    try:
        return _goyaml.to_yaml(value, limit=_limit(), extra=_json_extra)
    except GoFunctionError:
        return ""  # Helm's toYaml returns "" when marshalling fails


def _must_to_yaml(value: object) -> str:
    return _goyaml.to_yaml(value, limit=_limit(), extra=_json_extra)


def _reject_constant(name: str) -> object:
    raise ValueError("invalid character in JSON")  # NaN/Infinity are not JSON for Go


def _decode_json(text: str) -> object:
    """encoding/json into interface{}: every number is a float64."""
    try:
        value = json.loads(text, parse_int=float, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid JSON"
        raise GoFunctionError(reason) from None
    return go_containers(value, current().limits.max_list_items * 10)


def _from_yaml(text: str) -> dict[str, object]:
    return _goyaml.from_yaml(text, current().limits.max_list_items * 10)


def _from_yaml_array(text: str) -> list[object]:
    return _goyaml.from_yaml_array(text, current().limits.max_list_items * 10)


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "number"


def _from_json(text: str) -> dict[str, object]:
    try:
        value = _decode_json(text)
    except GoFunctionError as exc:
        return {"Error": str(exc)}
    if value is None:
        return {}
    if not isinstance(value, dict):
        kind = _json_kind(value)
        return {"Error": f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"}
    return value


def _from_json_array(text: str) -> list[object]:
    try:
        value = _decode_json(text)
    except GoFunctionError as exc:
        return [str(exc)]
    if value is None:
        return []
    if not isinstance(value, list):
        return [f"json: cannot unmarshal {_json_kind(value)} into Go value of type []interface {{}}"]
    return value


def _must_from_json(text: str) -> object:
    return _decode_json(text)


def go_kind(value: object) -> str:
    """reflect.Kind name, as Sprig's kindOf reports it."""
    if is_nil(value):
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "int64"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "slice"
    if isinstance(value, Mapping):
        return "map"
    return "ptr" if isinstance(value, Version) else "struct"


def _kind_of(value: object) -> str:
    return go_kind(value)


def _type_of(value: object) -> str:
    """fmt's %T; gotpl does not know the Go names of its date and certificate objects."""
    return go_object_type_name(value) or sprintf("%T", value)


def _type_is(target: str, value: object) -> bool:
    return target == _type_of(value)


def _type_is_like(target: str, value: object) -> bool:
    actual = _type_of(value)
    return actual in (target, f"*{target}")


def _kind_is(target: str, value: object) -> bool:
    return target == go_kind(value)


def deep_equal(a: object, b: object) -> bool:
    """reflect.DeepEqual over template values: the dynamic Go types must match too."""
    if is_nil(a) or is_nil(b):
        return is_nil(a) and is_nil(b)
    if go_type_name(a) != go_type_name(b):
        return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(deep_equal(a[key], b[key]) for key in a)
    return bool(a == b)


def _sequence_for(name: str, value: object) -> list[object] | tuple[object, ...]:
    if isinstance(value, (list, tuple)):
        return value
    if is_nil(value):
        # Go calls reflect.TypeOf(nil).Kind() and panics; text/template reports the panic.
        raise GoFunctionError("runtime error: invalid memory address or nil pointer dereference")
    raise GoFunctionError(f"Cannot find {name} on type {go_kind(value)}")


def _must_has(needle: object, haystack: object) -> bool:
    if is_nil(haystack):
        return False
    return any(deep_equal(needle, item) for item in _sequence_for("has", haystack))


def _has(needle: object, haystack: object) -> bool:
    return _must_has(needle, haystack)


def _must_without(items: object, *omit: object) -> list[object]:
    return [item for item in _sequence_for("without", items) if not any(deep_equal(item, o) for o in omit)]


def _must_uniq(items: object) -> list[object]:
    result: list[object] = []
    for item in _sequence_for("uniq", items):
        if not any(deep_equal(item, seen) for seen in result):
            result.append(item)
    return result


def _round(value: object, places: int, *round_on: float) -> float:
    """Sprig's round: the fraction of the float product decides, as math.Modf sees it.

    (gotpl uses the exact product, so `round 2.675 2` gives 2.67 where Go gives 2.68.)"""
    threshold = round_on[0] if round_on else 0.5
    number = to_float64(value)
    try:
        power = math.pow(10, places)
    except OverflowError:
        power = math.inf
    digit = power * number
    if not math.isfinite(digit):
        return digit / power
    fraction = math.modf(digit)[0]
    rounded = math.ceil(digit) if fraction >= threshold else math.floor(digit)
    return rounded / power


_URL_KEYS: Final = ("scheme", "host", "path", "query", "opaque", "fragment", "userinfo")


def _url_part(parts: Mapping[str, object], key: str) -> str:
    """Sprig's dictGetOrEmpty: a missing key is "", a present one must be a string."""
    if key not in parts:
        return ""
    value = parts[key]
    if is_nil(value):
        # reflect.TypeOf(nil).Kind() dereferences a nil Type; text/template reports the panic.
        raise GoFunctionError("runtime error: invalid memory address or nil pointer dereference")
    if not isinstance(value, str):
        raise GoFunctionError(
            f"unable to parse {key} key, must be of type string, but {go_kind(value)} found"
        )
    return value


def _url_join(parts: Mapping[str, object]) -> str:
    """Sprig's urlJoin: a Go url.URL from the dict's parts, printed by URL.String.

    The userinfo goes through url.Parse("proto://USERINFO@host") first, as in Sprig, so it is
    taken apart (and may fail, or vanish when a `/`, `?` or `#` ends the authority early) the way
    Go parses it, then escaped again."""
    scheme, host, path, query, opaque, fragment, userinfo = (_url_part(parts, key) for key in _URL_KEYS)
    user = None
    if userinfo:
        try:
            user = _gourl.parse(f"proto://{userinfo}@host").user
        except _gourl.URLError as exc:
            raise GoFunctionError(f"unable to parse userinfo in dict: {exc}") from None
    url = _gourl.URL(
        scheme=scheme,
        opaque=opaque,
        user=user,
        host=host.encode(),
        path=path.encode(),
        raw_query=query,
        fragment=fragment.encode(),
    )
    return url.string()


def _interface_conversion(value: object, wanted: str) -> GoFunctionError:
    """The panic of a failed Go type assertion on an interface{} value."""
    actual = "nil" if is_nil(value) else go_type_name(value)
    return GoFunctionError(f"interface conversion: interface {{}} is {actual}, not {wanted}")


def _as_map(value: object) -> Mapping[str, object]:
    if isinstance(value, Mapping) and go_type_name(value) == "map[string]interface {}":
        return value
    raise _interface_conversion(value, "map[string]interface {}")


def _dig(*values: object) -> object:
    """Sprig's dig: type assertions on the dict and the keys, then a walk that stops at the
    first missing key (giving the default) or at a value that is not a dict (an error)."""
    if len(values) < 3:
        raise GoFunctionError("dig needs at least three arguments")
    current = _as_map(values[-1])
    fallback = values[-2]
    keys = values[:-2]
    for key in keys:
        if not isinstance(key, str):
            raise _interface_conversion(key, "string")
    for position, key in enumerate(keys):
        assert isinstance(key, str)
        if key not in current:
            return fallback
        if position == len(keys) - 1:
            return current[key]
        current = _as_map(current[key])
    raise AssertionError("unreachable: dig has at least one key")


def _url_parse(raw: str) -> dict[str, object]:
    """Sprig's urlParse: url.Parse, then the parts as strings (the userinfo escaped again)."""
    try:
        url = _gourl.parse(raw)
    except _gourl.URLError as exc:
        raise GoFunctionError(f"unable to parse url: {exc}") from None
    return {
        "scheme": url.scheme,
        "host": _gourl.text(url.host),
        "hostname": _gourl.text(url.hostname()),
        "path": _gourl.text(url.path),
        "query": url.raw_query,
        "opaque": url.opaque,
        "fragment": _gourl.text(url.fragment),
        "userinfo": url.user.string() if url.user is not None else "",
    }


def _integral(value: object, step: Callable[[float], int]) -> float:
    """math.Ceil/math.Floor: a float, and a zero keeps the argument's sign (ceil -0.5 is -0)."""
    number = to_float64(value)
    if not math.isfinite(number):
        return number
    result = float(step(number))
    return math.copysign(result, number) if result == 0 else result


def _ceil(value: object) -> float:
    return _integral(value, math.ceil)


def _floor(value: object) -> float:
    return _integral(value, math.floor)


_REPLACEMENTS: Final[dict[str, _Impl]] = {
    "urlJoin": _url_join,
    "urlParse": _url_parse,
    "dig": _dig,
    "round": _round,
    "ceil": _ceil,
    "floor": _floor,
    "toJson": _to_json,
    "mustToJson": _must_to_json,
    "toPrettyJson": _to_pretty_json,
    "mustToPrettyJson": _must_to_pretty_json,
    "toRawJson": _to_raw_json,
    "mustToRawJson": _must_to_raw_json,
    "toYaml": _to_yaml,
    "mustToYaml": _must_to_yaml,
    "fromYaml": _from_yaml,
    "fromYamlArray": _from_yaml_array,
    "fromJson": _from_json,
    "fromJsonArray": _from_json_array,
    "mustFromJson": _must_from_json,
    "kindOf": _kind_of,
    "typeOf": _type_of,
    "typeIs": _type_is,
    "typeIsLike": _type_is_like,
    "kindIs": _kind_is,
    "deepEqual": deep_equal,
    "has": _has,
    "mustHas": _must_has,
    "without": _must_without,
    "mustWithout": _must_without,
    "uniq": _must_uniq,
    "mustUniq": _must_uniq,
}


# --- Go kinds in the messages of Sprig's list functions -------------------------------------------

# Sprig names the reflect.Kind of a value that is not a list; gotpl's implementations do not know
# that data integers are int64 or that a semver version is a pointer. Function name ->
# (position of the list argument, or None for all arguments; message).
_LIST_ARGUMENTS: Final[dict[str, tuple[int | None, str]]] = {
    **dict.fromkeys(("first", "mustFirst"), (0, "Cannot find first on type {}")),
    **dict.fromkeys(("last", "mustLast"), (0, "Cannot find last on type {}")),
    **dict.fromkeys(("rest", "mustRest"), (0, "Cannot find rest on type {}")),
    **dict.fromkeys(("initial", "mustInitial"), (0, "Cannot find initial on type {}")),
    **dict.fromkeys(("reverse", "mustReverse"), (0, "Cannot find reverse on type {}")),
    **dict.fromkeys(("append", "push", "mustAppend", "mustPush"), (0, "Cannot push on type {}")),
    **dict.fromkeys(("prepend", "mustPrepend"), (0, "Cannot prepend on type {}")),
    **dict.fromkeys(("compact", "mustCompact"), (0, "Cannot compact on type {}")),
    **dict.fromkeys(("chunk", "mustChunk"), (1, "Cannot chunk type {}")),
    **dict.fromkeys(("slice", "mustSlice"), (0, "list should be type of slice or array but {}")),
    "concat": (None, "Cannot concat type {} as list"),
}


def _check_list_kinds(name: str, args: tuple[object, ...]) -> None:
    position, message = _LIST_ARGUMENTS[name]
    for value in args if position is None else args[position : position + 1]:
        if is_nil(value):
            return  # Go fails on the nil first; gotpl reproduces that panic's message
        if not isinstance(value, (list, tuple)):
            raise GoFunctionError(message.format(go_kind(value)))


# --- size checks before functions whose output can be much larger than their input -------------


def _count(value: object) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _check_repeat(state: RenderState, args: tuple[object, ...]) -> None:
    state.check_size("repeat", _count(args[0]) * len(_text(args[1])))


def _check_indent(state: RenderState, args: tuple[object, ...]) -> None:
    text = _text(args[1])
    state.check_size("indent", max(_count(args[0]), 0) * (text.count("\n") + 1) + len(text))


def _check_list_length(state: RenderState, length: int) -> None:
    if length > state.limits.max_list_items:
        raise SandboxLimitError(f"list of {length} items is over the limit of {state.limits.max_list_items}")


def _check_until(state: RenderState, args: tuple[object, ...]) -> None:
    _check_list_length(state, abs(_count(args[0])))


def _check_until_step(state: RenderState, args: tuple[object, ...]) -> None:
    start, stop, step = (_count(a) for a in args[:3])
    if step:
        _check_list_length(state, max(0, math.ceil((stop - start) / step)))


def _check_seq(state: RenderState, args: tuple[object, ...]) -> None:
    numbers = [_count(a) for a in args]
    if len(numbers) == 1:
        _check_list_length(state, abs(numbers[0]) + 1)
    elif len(numbers) == 2:
        _check_list_length(state, abs(numbers[1] - numbers[0]) + 1)
    elif len(numbers) == 3 and numbers[1]:
        _check_list_length(state, abs(numbers[2] - numbers[0]) // abs(numbers[1]) + 1)


def _check_random(state: RenderState, args: tuple[object, ...]) -> None:
    count, limit = _count(args[0]), state.limits.max_random_chars
    if count > limit:
        raise SandboxLimitError(f"random value of {count} characters is over the limit of {limit}")


def _check_replace(state: RenderState, args: tuple[object, ...]) -> None:
    old, new, text = (_text(a) for a in args[:3])
    occurrences = text.count(old) if old else len(text) + 1
    state.check_size("replace", len(text) + occurrences * len(new))


def _check_wrap_with(state: RenderState, args: tuple[object, ...]) -> None:
    width, separator, text = max(_count(args[0]), 1), _text(args[1]), _text(args[2])
    state.check_size("wrapWith", len(text) + (len(text) // width + 1) * len(separator))


def _check_regex_replace(state: RenderState, args: tuple[object, ...]) -> None:
    text, replacement = _text(args[1]), _text(args[2])
    # Matches do not overlap, so each group reference copies at most the whole input once.
    state.check_size(
        "regexReplaceAll", len(text) * (1 + replacement.count("$")) + (len(text) + 1) * len(replacement)
    )


def _check_join(state: RenderState, args: tuple[object, ...]) -> None:
    separator, items = _text(args[0]), args[1]
    if isinstance(items, (list, tuple)):
        limit = state.limits.max_value_chars
        state.check_size("join", max(len(items) - 1, 0) * len(separator) + deep_size(items, limit))


def _check_concat(state: RenderState, args: tuple[object, ...]) -> None:
    total = sum(len(a) for a in args if isinstance(a, (list, tuple)))
    _check_list_length(state, total)


def _check_split(state: RenderState, args: tuple[object, ...]) -> None:
    separator, text = _text(args[0]), _text(args[-1])
    _check_list_length(state, text.count(separator) + 1 if separator else len(text))


def _check_regex_split(state: RenderState, args: tuple[object, ...]) -> None:
    # Counting regex matches would cost as much as the call; bound by the input instead.
    text, count = _text(args[1]), _count(args[2])
    if count < 0 or count > state.limits.max_list_items:
        _check_list_length(state, len(text) + 1)


def _check_arguments(state: RenderState, args: tuple[object, ...]) -> None:
    """For functions that print whole structures: the structure may have grown through `set`."""
    limit = state.limits.max_value_chars
    state.check_size("formatted value", deep_size(args, limit))


_PRECHECKS: Final[dict[str, Callable[[RenderState, tuple[object, ...]], None]]] = {
    "repeat": _check_repeat,
    "indent": _check_indent,
    "nindent": _check_indent,
    "until": _check_until,
    "untilStep": _check_until_step,
    "seq": _check_seq,
    "randAlpha": _check_random,
    "randAlphaNum": _check_random,
    "randAscii": _check_random,
    "randNumeric": _check_random,
    "randBytes": _check_random,
    "replace": _check_replace,
    "wrapWith": _check_wrap_with,
    "regexReplaceAll": _check_regex_replace,
    "regexReplaceAllLiteral": _check_regex_replace,
    "mustRegexReplaceAll": _check_regex_replace,
    "mustRegexReplaceAllLiteral": _check_regex_replace,
    "join": _check_join,
    "concat": _check_concat,
    "splitList": _check_split,
    "split": _check_split,
    "regexSplit": _check_regex_split,
    "mustRegexSplit": _check_regex_split,
    "regexFindAll": _check_regex_split,
    "mustRegexFindAll": _check_regex_split,
    **{
        name: _check_arguments
        for name in (
            "print",
            "printf",
            "println",
            "toString",
            "toStrings",
            "quote",
            "squote",
            "cat",
        )
    },
}


# --- argument and result conversion by Go type ---------------------------------------------------

_NILLABLE_PREFIXES: Final = ("[]", "map[", "*", "func(")
_UNSIGNED: Final = frozenset({"uint", "uint8", "uint16", "uint32", "uint64"})


def _arg_error(message: str) -> TemplateExecutionError:
    return TemplateExecutionError(message)


def _convert_arg(value: object, go_type: str) -> object:
    if go_type == "interface {}":
        return None if is_nil(value) else value
    if value is None:
        # A nil interface {} from the data (a null field, a range element): Go converts only an untyped
        # nil (a pipeline's result, a missing key, the `nil` keyword) to another parameter type.
        raise _arg_error(f"wrong type for value; expected {go_type}; got interface {{}}")
    if is_nil(value):
        if go_type == "map[string]interface {}":
            return GoNilMap()
        if go_type.startswith(_NILLABLE_PREFIXES):
            return None
        if value is UNTYPED_NIL:  # the `nil` keyword itself
            raise _arg_error(f"cannot assign nil to {go_type}")
        raise _arg_error(f"invalid value; expected {go_type}")
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if go_type == "string":
        ok = isinstance(value, str)
    elif go_type == "int":
        # Template literals and len/atoi results are Go ints; data and Sprig math are int64.
        ok = is_int and not isinstance(value, Int64)
    elif go_type == "int64":
        ok = is_int
    elif go_type in _UNSIGNED:
        ok = is_int and not isinstance(value, Int64) and isinstance(value, int) and value >= 0
    elif go_type == "float64":
        ok = isinstance(value, float) or (is_int and not isinstance(value, Int64))
    elif go_type == "bool":
        ok = isinstance(value, bool)
    elif go_type in ("[]interface {}", "map[string]interface {}"):
        # A []string or map[string]string is not assignable to these in Go.
        ok = isinstance(value, (list, tuple, Mapping)) and go_type_name(value) == go_type
    elif go_type == "time.Time":
        ok = isinstance(value, datetime)
    elif go_type == "sprig.certificate":
        ok = isinstance(value, Certificate)
    else:
        ok = True  # no other parameter type appears in SIGNATURES
    if not ok:
        raise _arg_error(f"wrong type for value; expected {go_type}; got {go_type_name(value)}")
    return value


def _check_arg_count(name: str, count: int, fixed: int, variadic: bool) -> None:
    if variadic and count < fixed:
        raise _arg_error(f"wrong number of args for {name}: want at least {fixed} got {count}")
    if not variadic and count != fixed:
        raise _arg_error(f"wrong number of args for {name}: want {fixed} got {count}")


def _convert_args(name: str, args: tuple[object, ...], signature: Signature) -> tuple[object, ...]:
    params, variadic, _ = signature
    _check_arg_count(name, len(args), len(params) - 1 if variadic else len(params), variadic)
    return tuple(_convert_arg(arg, params[min(i, len(params) - 1)]) for i, arg in enumerate(args))


# Functions that build nested containers of their own; their results are converted all the way down.
_NESTED_RESULTS: Final = frozenset({"deepCopy", "mustDeepCopy", "chunk", "mustChunk", "urlParse"})


_LIST_TYPES: Final[dict[str, type[GoList]]] = {"[]string": GoStringList, "[]int": GoIntList}
_MAP_TYPES: Final[dict[str, type[GoMap]]] = {"map[string]string": GoStringMap}


def _containers(name: str, value: object, signature: Signature | None) -> object:
    """Lists and maps leave the guard as GoList/GoMap (size-checked when printed, typed as the
    Go function's result type), and semver versions as GoVersion."""
    if name in _NESTED_RESULTS:
        return go_containers(value, current().limits.max_list_items * 10)
    go_type = signature[2][0] if signature is not None and signature[2] else ""
    # Exact types only: GoList/GoMap stay as they are (mutating functions return their argument),
    # and gotpl's own typed containers keep their type.
    if type(value) in (list, tuple):
        assert isinstance(value, (list, tuple))
        return _LIST_TYPES.get(go_type, GoList)(value)
    if type(value) is dict:
        assert isinstance(value, dict)
        return _MAP_TYPES.get(go_type, GoMap)(value)
    if type(value) is Version:
        assert isinstance(value, Version)
        return GoVersion(*dataclasses.astuple(value))
    return value


def _convert_result(value: object, signature: Signature | None) -> object:
    if signature is None or not signature[2]:
        return value
    go_type = signature[2][0]
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    if go_type == "int64" and not isinstance(value, Int64):
        return Int64(value)
    if go_type == "int" and isinstance(value, Int64):
        return int(value)
    if go_type == "float64":
        return float(value)
    return value


# --- the guard ---------------------------------------------------------------------------------

# Quoted fragments in messages from gotpl's implementations can echo argument values.
_QUOTED: Final = re.compile(r"'[^']*'|\"[^\"]*\"")
_TEMPLATE_TEXT_MESSAGES: Final = frozenset({"fail", "required"})
# Python's and gotpl's words for failures whose Go text comes from Go's runtime or reflect.
_GO_REASONS: Final = {
    "integer division or modulo by zero": "runtime error: integer divide by zero",  # div
    "integer modulo by zero": "runtime error: integer divide by zero",  # mod
    "slice bounds out of range": "reflect.Value.Slice: slice index out of bounds",
    # chunk sizes the number of chunks with a division by the size, then makes that many.
    "chunk size must be positive": "runtime error: makeslice: len out of range",
}


def _failure(name: str, error: BaseException) -> TemplateExecutionError:
    if isinstance(error, (SandboxLimitError, BudgetExceededError)):
        return error
    if isinstance(error, RecursionError):
        return SandboxLimitError("values nest too deeply")
    if isinstance(error, MemoryError):
        return SandboxLimitError("out of memory")
    if isinstance(error, TemplateExecutionError):
        reason = str(error)  # a nested template (include/tpl); already shaped and scrubbed later
    elif isinstance(error, GoFunctionError) or name in _TEMPLATE_TEXT_MESSAGES:
        reason = str(error)
    elif str(error) in _GO_REASONS:
        reason = _GO_REASONS[str(error)]
    else:
        # An exception without a message would otherwise say nothing; its Python class name
        # would mean nothing to a template author.
        reason = _QUOTED.sub("'…'", str(error)) or "runtime error"
    return TemplateExecutionError(f"error calling {name}: {reason}")


def _check_result(state: RenderState, name: str, value: object) -> None:
    # Only the outer size: nested sizes are checked where values are printed or encoded, which
    # keeps building a list item by item linear instead of quadratic.
    if isinstance(value, str):
        state.check_size(f"result of {name}", len(value))
    elif isinstance(value, (list, tuple, Mapping)):
        _check_list_length(state, len(value))


# Sprig computes these with shopspring/decimal and converts the result to float64.
_DECIMAL_ARITHMETIC: Final = frozenset({"addf", "add1f", "subf", "mulf", "divf"})


def _guard(
    name: str,
    impl: _Impl,
    signature: Signature | None,
    *,
    with_context: bool = False,
    builtin_parameters: tuple[int, bool, str | None] | None = None,
) -> _Impl:
    """`builtin_parameters` (see _builtins.BUILTIN_PARAMETERS) stands in for the signature of
    text/template's builtins, most of whose arguments Go passes unconverted."""
    precheck = _PRECHECKS.get(name)
    checks_list_kinds = name in _LIST_ARGUMENTS

    def call(*args: object) -> object:
        state = current()
        state.check_time()
        context: tuple[object, ...] = ()
        if with_context:
            context, args = args[:1], args[1:]
        if signature is not None:
            args = _convert_args(name, args, signature)
        elif builtin_parameters is not None:
            fixed, variadic, first_type = builtin_parameters
            _check_arg_count(name, len(args), fixed, variadic)
            if first_type is not None:
                args = (_convert_arg(args[0], first_type), *args[1:])
        if precheck is not None:
            precheck(state, args)
        try:
            if checks_list_kinds:
                _check_list_kinds(name, args)
            result = impl(*context, *args)
        except Exception as exc:  # every failure becomes a template error; see _failure
            raise _failure(name, exc) from None
        if isinstance(result, FunctionResult):
            if result.error is not None:
                raise _failure(name, result.error) from None
            result = result.value
        result = _containers(name, _convert_result(result, signature), signature)
        if name in _DECIMAL_ARITHMETIC and result == 0.0:
            result = 0.0  # a decimal zero has no sign: Go prints 0 where float math gives -0
        _check_result(state, name, result)
        return result

    call.__name__ = call.__qualname__ = f"template_function_{name}"
    return call


# mergo allocates a nil destination map when a source map is not nil, so merging into nil works.
_MERGES: Final = frozenset({"merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite"})


def _allocating_merge(impl: _Impl) -> _Impl:
    def merge(destination: object, *sources: object) -> object:
        if isinstance(destination, GoNilMap) and not all(isinstance(s, GoNilMap) for s in sources):
            destination = GoMap()
        return impl(destination, *sources)

    return merge


def _nil_for_empty_list(impl: _Impl) -> _Impl:
    """Sprig's slice returns nil for an empty list before it looks at the indexes."""

    def slice_(items: object, *indexes: object) -> object:
        if isinstance(items, (list, tuple)) and not items:
            return None
        return impl(items, *indexes)

    return slice_


def _tpl_with_integral_constants(impl: ContextFunction) -> ContextFunction:
    """`tpl` compiles its source as render() does: integral float literals are ints for int parameters."""
    assert impl.sync is not None
    render_source = impl.sync
    names = frozenset(SIGNATURES) - EXCLUDED | frozenset(_builtins.BUILTIN_OVERRIDES)

    def tpl(context: Any, source: object, data: object) -> object:
        if isinstance(source, str):
            source = integral_arguments(source, "__helm_tpl__", names).source
        return render_source(context, source, data)

    return ContextFunction(sync=tpl, capabilities=impl.capabilities)


@functools.cache
def function_map() -> dict[str, Callable[..., object]]:
    """The guarded function map handed to gotpl (built once; the guards read per-render state)."""
    helm = HelmExtension(enable_dns=False)
    functions: dict[str, Callable[..., object]] = {}
    for name, signature in SIGNATURES.items():
        if name in EXCLUDED:
            continue
        impl: Any = _REPLACEMENTS.get(name) or helm.functions[name]
        if name in _MERGES:
            impl = _allocating_merge(impl)
        if name in ("slice", "mustSlice"):
            impl = _nil_for_empty_list(impl)
        if name == "tpl":
            impl = _tpl_with_integral_constants(impl)
        if isinstance(impl, ContextFunction):
            assert impl.sync is not None
            functions[name] = ContextFunction(
                sync=_guard(name, impl.sync, signature, with_context=True),
                capabilities=impl.capabilities,
            )
        else:
            functions[name] = _guard(name, impl, signature)
    for name, builtin in _builtins.BUILTIN_OVERRIDES.items():
        functions[name] = _guard(name, builtin, None, builtin_parameters=_builtins.BUILTIN_PARAMETERS[name])
    return functions
