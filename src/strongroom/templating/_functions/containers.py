"""Sprig's list and dict functions where gotpl's behaviour differs from Go's.

has/without/uniq compare with reflect.DeepEqual, dig asserts Go types as Sprig does, and the list
functions name the Go kind of a value that is not a list (LIST_ARGUMENTS, checked by the guard).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from strongroom.templating._functions.reflection import deep_equal, go_kind
from strongroom.templating._limits import GoFunctionError
from strongroom.templating._values import go_type_name, is_nil


def _sequence_for(name: str, value: object) -> list[object] | tuple[object, ...]:
    if isinstance(value, (list, tuple)):
        return value
    if is_nil(value):
        # Go calls reflect.TypeOf(nil).Kind() and panics; text/template reports the panic.
        raise GoFunctionError("runtime error: invalid memory address or nil pointer dereference")
    raise GoFunctionError(f"Cannot find {name} on type {go_kind(value)}")


def must_has(needle: object, haystack: object) -> bool:
    if is_nil(haystack):
        return False
    return any(deep_equal(needle, item) for item in _sequence_for("has", haystack))


def has(needle: object, haystack: object) -> bool:
    return must_has(needle, haystack)


def must_without(items: object, *omit: object) -> list[object]:
    return [item for item in _sequence_for("without", items) if not any(deep_equal(item, o) for o in omit)]


def must_uniq(items: object) -> list[object]:
    result: list[object] = []
    for item in _sequence_for("uniq", items):
        if not any(deep_equal(item, seen) for seen in result):
            result.append(item)
    return result


def _interface_conversion(value: object, wanted: str) -> GoFunctionError:
    """The panic of a failed Go type assertion on an interface{} value."""
    actual = "nil" if is_nil(value) else go_type_name(value)
    return GoFunctionError(f"interface conversion: interface {{}} is {actual}, not {wanted}")


def _as_map(value: object) -> Mapping[str, object]:
    if isinstance(value, Mapping) and go_type_name(value) == "map[string]interface {}":
        return value
    raise _interface_conversion(value, "map[string]interface {}")


def dig(*values: object) -> object:
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


# --- Go kinds in the messages of Sprig's list functions -------------------------------------------

# Sprig names the reflect.Kind of a value that is not a list; gotpl's implementations do not know
# that data integers are int64 or that a semver version is a pointer. Function name ->
# (position of the list argument, or None for all arguments; message).
LIST_ARGUMENTS: Final[dict[str, tuple[int | None, str]]] = {
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


def check_list_kinds(name: str, args: tuple[object, ...]) -> None:
    position, message = LIST_ARGUMENTS[name]
    for value in args if position is None else args[position : position + 1]:
        if is_nil(value):
            return  # Go fails on the nil first; gotpl reproduces that panic's message
        if not isinstance(value, (list, tuple)):
            raise GoFunctionError(message.format(go_kind(value)))
