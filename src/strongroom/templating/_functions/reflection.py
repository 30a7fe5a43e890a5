"""Sprig's reflection functions (kindOf, typeOf, kindIs, typeIs, typeIsLike, deepEqual) with Go's
kind and type names, which gotpl does not know for data int64s, semver versions, dates, certificates.
"""

from __future__ import annotations

from collections.abc import Mapping

from gotpl.funcs.sprig.semver import Version
from gotpl.runtime.gofmt import sprintf

from strongroom.templating._values import Int64, go_object_type_name, go_type_name, is_nil


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


def kind_of(value: object) -> str:
    return go_kind(value)


def type_of(value: object) -> str:
    """fmt's %T; gotpl does not know the Go names of its date and certificate objects."""
    return go_object_type_name(value) or sprintf("%T", value)


def type_is(target: str, value: object) -> bool:
    return target == type_of(value)


def type_is_like(target: str, value: object) -> bool:
    actual = type_of(value)
    return actual in (target, f"*{target}")


def kind_is(target: str, value: object) -> bool:
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
