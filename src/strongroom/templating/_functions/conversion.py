"""Arguments and results of template functions converted by their Go types, as text/template does.

Arguments by the parameter types in _signatures.py (a missing value becomes nil where Go allows nil, an
int64 from the data is refused where Go wants an int, `wrong number of args` is checked); results get
the Go type the function declares: `Int64` for Sprig's int64 math, GoList/GoMap (or their []string,
[]int, map[string]string variants) for containers, GoVersion for semver versions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from gotpl.errors import TemplateExecutionError
from gotpl.funcs.sprig.crypto import Certificate
from gotpl.funcs.sprig.semver import Version
from gotpl.runtime.values import UNTYPED_NIL

from strongroom.templating._functions.semver import GoVersion
from strongroom.templating._limits import current
from strongroom.templating._signatures import Signature
from strongroom.templating._values import (
    GoIntList,
    GoList,
    GoMap,
    GoNilMap,
    GoStringList,
    GoStringMap,
    Int64,
    go_containers,
    go_type_name,
    is_nil,
)

_NILLABLE_PREFIXES: Final = ("[]", "map[", "*", "func(")
_UNSIGNED: Final = frozenset({"uint", "uint8", "uint16", "uint32", "uint64"})


def _arg_error(message: str) -> TemplateExecutionError:
    return TemplateExecutionError(message)


def convert_arg(value: object, go_type: str) -> object:
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


def check_arg_count(name: str, count: int, fixed: int, variadic: bool) -> None:
    if variadic and count < fixed:
        raise _arg_error(f"wrong number of args for {name}: want at least {fixed} got {count}")
    if not variadic and count != fixed:
        raise _arg_error(f"wrong number of args for {name}: want {fixed} got {count}")


def convert_args(name: str, args: tuple[object, ...], signature: Signature) -> tuple[object, ...]:
    params, variadic, _ = signature
    check_arg_count(name, len(args), len(params) - 1 if variadic else len(params), variadic)
    return tuple(convert_arg(arg, params[min(i, len(params) - 1)]) for i, arg in enumerate(args))


# Functions that build nested containers of their own; their results are converted all the way down.
_NESTED_RESULTS: Final = frozenset({"deepCopy", "mustDeepCopy", "chunk", "mustChunk", "urlParse"})


_LIST_TYPES: Final[dict[str, type[GoList]]] = {"[]string": GoStringList, "[]int": GoIntList}
_MAP_TYPES: Final[dict[str, type[GoMap]]] = {"map[string]string": GoStringMap}


def result_containers(name: str, value: object, signature: Signature | None) -> object:
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


def convert_result(value: object, signature: Signature | None) -> object:
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
