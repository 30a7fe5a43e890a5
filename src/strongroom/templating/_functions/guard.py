"""The guard every template function is wrapped in (see registry.function_map).

It
* converts arguments by the Go parameter types exactly as text/template does (conversion.py), so
  errors happen where Go's happen;
* gives results the Go type the function declares (conversion.py);
* enforces the sandbox: the render deadline, size checks before functions that can multiply their
  input (`repeat`, `indent`, `replace`, `until`, ...) or that print whole structures (prechecks.py),
  and a check of every result's own size (string length, item count);
* turns failures into Go-shaped `error calling NAME: ...` messages without data values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

from gotpl.errors import BudgetExceededError, TemplateExecutionError
from gotpl.runtime.results import FunctionResult

from strongroom.templating._functions.containers import LIST_ARGUMENTS, check_list_kinds
from strongroom.templating._functions.conversion import (
    check_arg_count,
    convert_arg,
    convert_args,
    convert_result,
    result_containers,
)
from strongroom.templating._functions.prechecks import PRECHECKS, check_list_length
from strongroom.templating._limits import GoFunctionError, RenderState, SandboxLimitError, current
from strongroom.templating._signatures import Signature

# A function's implementation, before and after the guard.
Impl = Callable[..., object]

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
        check_list_length(state, len(value))


# Sprig computes these with shopspring/decimal and converts the result to float64.
_DECIMAL_ARITHMETIC: Final = frozenset({"addf", "add1f", "subf", "mulf", "divf"})


def guard(
    name: str,
    impl: Impl,
    signature: Signature | None,
    *,
    with_context: bool = False,
    builtin_parameters: tuple[int, bool, str | None] | None = None,
) -> Impl:
    """`builtin_parameters` (see _builtins.BUILTIN_PARAMETERS) stands in for the signature of
    text/template's builtins, most of whose arguments Go passes unconverted."""
    precheck = PRECHECKS.get(name)
    checks_list_kinds = name in LIST_ARGUMENTS

    def call(*args: object) -> object:
        state = current()
        state.check_time()
        context: tuple[object, ...] = ()
        if with_context:
            context, args = args[:1], args[1:]
        if signature is not None:
            args = convert_args(name, args, signature)
        elif builtin_parameters is not None:
            fixed, variadic, first_type = builtin_parameters
            check_arg_count(name, len(args), fixed, variadic)
            if first_type is not None:
                args = (convert_arg(args[0], first_type), *args[1:])
        if precheck is not None:
            precheck(state, args)
        try:
            if checks_list_kinds:
                check_list_kinds(name, args)
            result = impl(*context, *args)
        except Exception as exc:  # every failure becomes a template error; see _failure
            raise _failure(name, exc) from None
        if isinstance(result, FunctionResult):
            if result.error is not None:
                raise _failure(name, result.error) from None
            result = result.value
        result = result_containers(name, convert_result(result, signature), signature)
        if name in _DECIMAL_ARITHMETIC and result == 0.0:
            result = 0.0  # a decimal zero has no sign: Go prints 0 where float math gives -0
        _check_result(state, name, result)
        return result

    call.__name__ = call.__qualname__ = f"template_function_{name}"
    return call
