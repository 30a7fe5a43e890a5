"""Go's two nils in gotpl's evaluator: the untyped nil of a pipeline and the nil interface of the data.

Go's text/template has two values where gotpl has one. A JSON null reached through a field chain
(`.a` with `a: null`), a `range` element or a missingkey=zero lookup is a nil `interface {}`: asking it
for a field is an error (`nil pointer evaluating interface {}.f`). But every *pipeline* ends by
unwrapping an empty interface (exec.go, evalPipeline), so a nil pipeline result is the invalid
value, which has no type: asking it for a field gives the invalid value again, printed as
`<no value>` (or `nil data; no entry for key "f"` under missingkey=error). A variable (`$v := .a`), a
`template`'s dot (`{{ template "x" .a }}`; no argument at all is the invalid value too), `$` and the
dot of `include`/`tpl`, and a parenthesized pipeline (`(.a).f`) all hold pipeline results.

gotpl represents the nil interface as None and the invalid value as INVALID, but lets pipelines
return None, and starts templates with None as their dot, so `{{ template "x" }}` with `{{ .f }}`
inside failed where Go prints `<no value>`. It also uses INVALID to mean "nothing piped in", so an
invalid value piped into a function (`{{ (.missing) | print "a" }}`) was dropped from its arguments,
where Go passes it as nil. And it printed the `nil` keyword's value as the error Go gives for `nil`
used as a command, so `{{ and nil .x }}` failed while `{{ if nil }}` passed; in Go it is the other
way round.

`install()` replaces the few functions of gotpl's synchronous VM that decide this, once, at import of
the engine: commands leave INVALID for None (and for the `nil` keyword) and pipe a separate "nothing"
marker, a `nil` command is refused, contexts start with INVALID for a None dot, and a field of None is
Go's nil-pointer error; strongroom's function guard refuses None for a parameter that is not
`interface {}` (_functions/conversion.py). The replacements keep gotpl's structure (it is pinned, see
pyproject.toml); the differential suite (tests/integration/test_template_fidelity.py, the `nil-*` and
`error-nil-*` cases) pins the behaviour against Go. Only the synchronous VM is patched: strongroom never
renders through gotpl's async one.
"""

from __future__ import annotations

from typing import Any, Final

from gotpl.compile.instructions import OperandKind
from gotpl.errors import TemplateExecutionError
from gotpl.runtime import sync_vm
from gotpl.runtime.linked import LinkedConstantOperand, LinkedFunctionCommand
from gotpl.runtime.values import INVALID, UNTYPED_NIL, ValueAdapter, is_bound_method

# Go's missingVal: no value is piped into the first command of a pipeline. Not INVALID, which is a
# value that can be piped (an untyped nil).
_NOTHING_PIPED: Final = object()

_original_lookup = ValueAdapter.lookup
_original_context_init = sync_vm._ExecutionContext.__post_init__


def _untyped(value: object) -> object:
    """A command's result as Go's evalPipeline leaves it: a nil interface (or the `nil` keyword, which
    `and`/`or` may return) becomes the invalid value."""
    return INVALID if value is None or value is UNTYPED_NIL else value


def _nil_command() -> TemplateExecutionError:
    # exec.go evalCommand: the `nil` keyword may be an argument, never a command (`{{ nil }}`,
    # `{{ if nil }}`, `{{ $x := nil }}`).
    return TemplateExecutionError("nil is not a command")


def _bind(pipeline: Any, context: Any, value: object) -> None:
    for binding in pipeline.bindings:
        context.set_variable(binding, value, assignment=pipeline.is_assignment)


def _lookup(self: ValueAdapter, value: object, field: str) -> object:
    if value is None:
        # exec.go evalField: a nil interface has no fields; the missingkey option does not apply.
        raise TemplateExecutionError(f"nil pointer evaluating interface {{}}.{field}")
    if value is INVALID and self.missing_key == "error":
        raise TemplateExecutionError(f'nil data; no entry for key "{field}"')
    return _original_lookup(self, value, field)


def _context_init(self: Any) -> None:
    # A template's dot and `$` come from a pipeline (or are absent): never a nil interface.
    _original_context_init(self)
    self.root = _untyped(self.root)
    self.dot = _untyped(self.dot)


def _evaluate_pipeline(pipeline: Any, context: Any, *, bind: bool = True) -> object:
    if context.location is not None:
        context.location.position = pipeline.source_start
    value: object = _NOTHING_PIPED
    for command in pipeline.commands:
        # Go unwraps after every command, so what is piped on is untyped too.
        value = _untyped(_evaluate_command(command, context, piped=value))
    if value is _NOTHING_PIPED:
        value = INVALID
    if bind:
        _bind(pipeline, context, value)
    return value


def _evaluate_command(command: Any, context: Any, *, piped: object) -> object:
    first = command.arguments[0]
    if first.kind is OperandKind.NIL:
        raise _nil_command()
    if first.kind is OperandKind.FUNCTION:
        name = first.value
        if not isinstance(name, str):
            raise TemplateExecutionError("invalid compiled function name")
        if name in context.logical_builtins:
            return _evaluate_logical(name, command, context, piped=piped)
        function = context.functions.get(name)
        if function is None:
            raise TemplateExecutionError(f"function {name!r} is not defined")
        arguments = [sync_vm._evaluate_argument(item, context) for item in command.arguments[1:]]
        if piped is not _NOTHING_PIPED:
            arguments.append(piped)
        spec = context.call_specs[name]
        return sync_vm._invoke_registered_function(name, function, arguments, spec, context)
    arguments = [sync_vm._evaluate_operand(first, context)]
    arguments.extend(sync_vm._evaluate_argument(item, context) for item in command.arguments[1:])
    if piped is not _NOTHING_PIPED:
        arguments.append(piped)
    return _call_or_value(arguments, context)


def _call_or_value(arguments: list[object], context: Any) -> object:
    first_value = arguments[0]
    if is_bound_method(first_value):
        method_name = getattr(first_value, "__name__", "method")
        return sync_vm._invoke_registered_function(
            method_name if isinstance(method_name, str) else "method",
            first_value,
            arguments[1:],
            sync_vm._UNPREPARED_CALL,
            context,
        )
    if len(arguments) != 1:
        raise TemplateExecutionError("non-callable command has arguments")
    return first_value


def _evaluate_logical(name: str, command: Any, context: Any, *, piped: object) -> object:
    operands = command.arguments[1:]
    if not operands and piped is _NOTHING_PIPED:
        raise TemplateExecutionError(f"function {name!r} requires an argument")
    value: object = INVALID
    for operand in operands:
        value = sync_vm._evaluate_operand(operand, context)
        truth = context.adapter.is_true(value)
        if (name == "and" and not truth) or (name == "or" and truth):
            return value
    if piped is not _NOTHING_PIPED:
        return piped
    return value


def _evaluate_linked_pipeline(pipeline: Any, context: Any, *, bind: bool = True) -> object:
    if context.location is not None:
        context.location.position = pipeline.source_start
    value: object = _NOTHING_PIPED
    for command in pipeline.commands:
        if isinstance(command, LinkedFunctionCommand):
            arguments = [sync_vm._evaluate_linked_argument(item, context) for item in command.operands]
            if value is not _NOTHING_PIPED:
                arguments.append(value)
            value = _untyped(
                sync_vm._invoke_linked_direct_function(
                    command.name, command.function, arguments, context.budget_state
                )
                if command.direct
                else sync_vm._invoke_registered_function(
                    command.name, command.function, arguments, command.spec, context
                )
            )
            continue
        first = command.operands[0]
        if isinstance(first, LinkedConstantOperand) and first.value is UNTYPED_NIL:
            raise _nil_command()
        arguments = [sync_vm._evaluate_linked_operand(first, context)]
        arguments.extend(sync_vm._evaluate_linked_argument(item, context) for item in command.operands[1:])
        if value is not _NOTHING_PIPED:
            arguments.append(value)
        value = _untyped(_call_or_value(arguments, context))
    if value is _NOTHING_PIPED:
        value = INVALID
    if bind:
        _bind(pipeline, context, value)
    return value


def _finish_linked_lookup_pipeline(pipeline: Any, value: object, context: Any, *, bind: bool) -> object:
    # A field or variable, then functions of one argument (`.a | upper | quote`).
    if is_bound_method(value):
        value = _call_or_value([value], context)
    value = _untyped(value)
    for function in pipeline.functions:
        value = _untyped(
            sync_vm._invoke_linked_unary_function(
                function.name, function.function, value, context.budget_state
            )
        )
    if bind:
        _bind(pipeline, context, value)
    return value


_installed = False


def install() -> None:
    """Put Go's nil semantics into gotpl's synchronous VM (idempotent; the engine calls it on import)."""
    global _installed
    if _installed:
        return
    ValueAdapter.lookup = _lookup  # type: ignore[method-assign]
    sync_vm._ExecutionContext.__post_init__ = _context_init  # type: ignore[method-assign]
    sync_vm._evaluate_pipeline = _evaluate_pipeline
    sync_vm._evaluate_command = _evaluate_command
    sync_vm._evaluate_logical = _evaluate_logical
    sync_vm._evaluate_linked_pipeline = _evaluate_linked_pipeline
    sync_vm._finish_linked_lookup_pipeline = _finish_linked_lookup_pipeline
    _installed = True
