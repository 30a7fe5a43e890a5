"""How Python values stand in for the Go values text/template sees.

Data handed to `render` is JSON-shaped: the Go side of the contract decodes it the way Kubernetes
decodes unstructured objects, so an integer is an `int64` and every other number a `float64`. In
Go that distinction is visible (an `int64` cannot be passed where a function wants `int`; `typeOf`
says `int64`), while template literals and `len` produce plain `int`. Python has one integer type,
so integers that Go would hold as `int64` are marked with the `Int64` subclass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Final

from gotpl.funcs.sprig.crypto import Certificate
from gotpl.funcs.sprig.semver import Version
from gotpl.runtime.gofmt import sprintf
from gotpl.runtime.values import INVALID, UNTYPED_NIL

from strongroom.templating import _limits
from strongroom.templating.errors import TemplateError

# Nesting deeper than this in the input data is refused rather than risking Python's recursion limit
# in the formatters; real driver inputs are a handful of levels deep.
MAX_DATA_DEPTH: Final = 200
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1


class Int64(int):
    """An integer Go holds as int64: data values and the results of Sprig's integer math."""

    __slots__ = ()

    def __repr__(self) -> str:
        return int.__repr__(self)

    def __go_format_value__(self, kind: str, mode: str, *, nested: bool) -> str:
        # gotpl's formatter asks this hook for %T/typeOf and for %v.
        del mode, nested
        return "int64" if kind == "type" else int.__repr__(self)


class GoList(list[Any]):
    """A []interface{} value. Printing one checks its size first (see _format_container)."""

    __slots__ = ()
    go_type: ClassVar[str] = "[]interface {}"

    def __go_format_value__(self, kind: str, mode: str, *, nested: bool) -> str:
        del mode
        return _format_container(self, list(self), kind, nested, self.go_type)


class GoStringList(GoList):
    """[]string, as splitList, keys, sortAlpha and toStrings return (typeOf tells them apart)."""

    __slots__ = ()
    go_type: ClassVar[str] = "[]string"


class GoIntList(GoList):
    """[]int, as until and untilStep return."""

    __slots__ = ()
    go_type: ClassVar[str] = "[]int"


class GoMap(dict[str, Any]):
    """A map[string]interface{} value. Printing one checks its size first."""

    __slots__ = ()
    go_type: ClassVar[str] = "map[string]interface {}"

    def __go_format_value__(self, kind: str, mode: str, *, nested: bool) -> str:
        del mode
        return _format_container(self, dict(self), kind, nested, self.go_type)


class GoNilMap(GoMap):
    """A nil map[string]interface{}: what Go passes for a nil or missing argument of that type.

    Reading it finds nothing (`keys` is empty, `get` is ""), deleting from it does nothing, and
    writing to it fails as Go's runtime does. encoding/json writes it as null."""

    __slots__ = ()

    def __setitem__(self, key: str, value: Any) -> None:
        # The only way Sprig's functions write to a map (set, merge's destination).
        raise _limits.GoFunctionError("assignment to entry in nil map")


class GoStringMap(GoMap):
    """map[string]string, as split and splitn return."""

    __slots__ = ()
    go_type: ClassVar[str] = "map[string]string"


def _format_container(value: object, plain: object, kind: str, nested: bool, go_type: str) -> str:
    # A list can hold the same map a million times, and `set` can grow that map afterwards, so a
    # small-looking value may print as gigabytes. Check before formatting, at the outermost level
    # (nested elements are covered by that check).
    if kind == "type":
        return go_type
    state = _limits.current_or_none()
    if not nested and state is not None:
        limit = state.limits.max_value_chars
        state.check_size("printed value", _limits.deep_size(value, limit))
    return sprintf("%#v" if kind == "syntax" else "%v", plain)


def go_containers(value: object, budget: int) -> object:
    """Plain lists/dicts (from gotpl or parsers) as GoList/GoMap, all the way down.

    Visits at most `budget` nodes: input with aliases (YAML anchors) can describe far more nodes
    than it has, and each is copied here.
    """
    remaining = [budget]

    def convert(item: object) -> object:
        remaining[0] -= 1
        if remaining[0] < 0:
            raise _limits.GoFunctionError("value has too many elements (excessive aliasing?)")
        if isinstance(item, Mapping) and not isinstance(item, GoMap):
            return GoMap({key: convert(child) for key, child in item.items()})
        if isinstance(item, (list, tuple)) and not isinstance(item, GoList):
            return GoList(convert(child) for child in item)
        return item

    return convert(value)


def is_nil(value: object) -> bool:
    """Go's invalid or nil value: a missing key, JSON null, or the `nil` keyword."""
    return value is None or value is INVALID or value is UNTYPED_NIL


def go_type_name(value: object) -> str:
    """The Go dynamic type text/template would report for `value` (for messages)."""
    if is_nil(value):
        return "<nil>"
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
    if isinstance(value, (GoList, GoMap)):
        return value.go_type
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    return go_object_type_name(value) or "struct"


# The Go types of the objects gotpl's Sprig functions return (semver, date and certificate
# functions), for messages and typeOf.
_FUNCTION_RESULT_TYPES: Final[dict[type, str]] = {
    Version: "*semver.Version",
    datetime: "time.Time",
    Certificate: "sprig.certificate",
}


def go_object_type_name(value: object) -> str | None:
    """The Go type of a function-result object (a subclass counts), or None for other values."""
    for python_type, go_type in _FUNCTION_RESULT_TYPES.items():
        if isinstance(value, python_type):
            return go_type
    return None


def import_data(data: Mapping[str, Any], name: str = "template") -> GoMap:
    """Copy caller data into template values, refusing anything JSON cannot express.

    The copy also keeps the caller's objects safe from Sprig's in-place `set`/`unset`/`merge`.
    Error messages name the path, never the value.
    """
    if not isinstance(data, Mapping):
        raise TemplateError(f"template: {name}: data must be a mapping, not {type(data).__name__}")
    try:
        converted = _import(data, ".", 0)
    except _DataError as exc:
        message = f"template: {name}: data {exc}"
        raise TemplateError(message, template_name=name, limit_exceeded=exc.limit_exceeded) from None
    assert isinstance(converted, GoMap)
    return converted


class _DataError(Exception):
    def __init__(self, message: str, *, limit_exceeded: bool = False) -> None:
        super().__init__(message)
        self.limit_exceeded = limit_exceeded


def _import(value: object, path: str, depth: int) -> object:
    if depth > MAX_DATA_DEPTH:
        raise _DataError(
            f"nests deeper than the limit of {MAX_DATA_DEPTH} levels at {path}", limit_exceeded=True
        )
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return Int64(value)
        return float(value)  # as Go's decoder does with integers that do not fit an int64
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise _DataError(f"holds a non-finite number at {path}")
        return value
    if isinstance(value, Mapping):
        result = GoMap()
        for key, item in value.items():
            if not isinstance(key, str):
                raise _DataError(f"has a non-string key of type {type(key).__name__} at {path}")
            result[key] = _import(item, _join(path, key), depth + 1)
        return result
    if isinstance(value, (list, tuple)):
        return GoList(_import(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
    raise _DataError(f"holds an unsupported {type(value).__name__} at {path}")


def _join(path: str, key: str) -> str:
    return f"{path}{key}" if path == "." else f"{path}.{key}"
