"""render(): Go text/template + Sprig on gotpl, sandboxed, with Go-shaped errors."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final, Literal

from gotpl import Environment, SandboxPolicy, Template
from gotpl.errors import (
    BudgetExceededError,
    SandboxViolationError,
    TemplateExecutionError,
    TemplateSyntaxError,
)
from gotpl.errors import TemplateError as GotplError

from strongroom.templating import _nil
from strongroom.templating._constants import Rewrite, integral_arguments
from strongroom.templating._functions import ALLOWED_ATTRIBUTES, ALLOWED_METHODS, function_map
from strongroom.templating._goyaml import YamlBudgetExceeded
from strongroom.templating._goyaml import parse_yaml as _parse_yaml
from strongroom.templating._limits import (
    DEFAULT_LIMITS,
    GoFunctionError,
    Limits,
    SandboxLimitError,
    rendering,
)
from strongroom.templating._values import import_data
from strongroom.templating.errors import TemplateError

_nil.install()

MissingKey = Literal["default", "zero", "error"]
_MISSING_KEYS: Final = ("default", "zero", "error")

# Data strings shorter than this are not scrubbed from messages: they would match ordinary words
# ("true", "app") and are too short to be a credential worth hiding.
_MIN_SCRUBBED_CHARS: Final = 4
_REDACTED: Final = "[redacted]"
# Templates small enough to keep compiled; bigger ones are compiled per call.
_CACHED_SOURCE_CHARS: Final = 64 * 1024


def render(
    source: str,
    data: Mapping[str, Any],
    *,
    name: str = "template",
    missing_key: MissingKey = "default",
    limits: Limits | None = None,
) -> str:
    """Execute `source` as a Go text/template with the Sprig function map on `data`.

    Output is what Go's text/template would produce for the same template and data, where data is
    JSON-shaped (ints are Go int64, floats float64, mappings map[string]interface{}).
    `missing_key` is text/template's `missingkey` option. Raises TemplateError for parse and
    execution errors and when a sandbox limit stops the render (see Limits and docs/templates.md).
    """
    limits = limits or DEFAULT_LIMITS
    if missing_key not in _MISSING_KEYS:
        raise TemplateError(f"missing_key must be one of {', '.join(_MISSING_KEYS)}, not {missing_key!r}")
    if len(source) > limits.max_template_chars:
        raise TemplateError(
            f"template: {name}: source is {len(source)} characters, over the limit of "
            f"{limits.max_template_chars}",
            template_name=name,
            limit_exceeded=True,
        )
    values = import_data(data, name)
    failure: TemplateError
    rewrite = Rewrite(source, ())
    with rendering(limits):
        try:
            template, rewrite = _compile(source, name, missing_key, limits)
            return template.render(values)
        except TemplateSyntaxError as exc:
            failure = _syntax_error(exc, name, _secrets(values, source))
        except GotplError as exc:
            failure = _execution_error(exc, name, _secrets(values, source), rewrite)
        except RecursionError:
            failure = TemplateError(
                f"template: {name}: template or values nest too deeply",
                template_name=name,
                limit_exceeded=True,
            )
        except MemoryError:
            failure = TemplateError(
                f"template: {name}: out of memory", template_name=name, limit_exceeded=True
            )
    # Raised outside the except blocks so the original exception, whose text or arguments may
    # hold data values, is not chained as __context__.
    raise failure


def parse_yaml(text: str, *, limits: Limits | None = None) -> Any:
    """The first YAML document of `text` as JSON data, read the way sigs.k8s.io/yaml reads it (go-yaml
    v2's rules: `y`/`on` are booleans, `1e3` a number; every number through float64; keys strings).

    The one YAML dialect of the project: `fromYaml` uses the same loader and the same budget of
    `limits.max_list_items * 10` nodes after alias expansion. Raises TemplateError naming the line of a
    syntax error (never the text), with `limit_exceeded` when the budget or the nesting is exceeded.
    """
    limits = limits or DEFAULT_LIMITS
    if len(text) > limits.max_output_chars:
        raise TemplateError(
            f"is {len(text)} characters, over the limit of {limits.max_output_chars}", limit_exceeded=True
        )
    try:
        return _parse_yaml(text, limits.max_list_items * 10, go=False)
    except YamlBudgetExceeded as exc:
        detail = str(exc).removeprefix("yaml: ")
        if "aliasing" in detail:
            detail += f" (more than {limits.max_list_items * 10} nodes once aliases are expanded)"
        raise TemplateError(detail, limit_exceeded=True) from None
    except GoFunctionError as exc:
        raise TemplateError(str(exc).removeprefix("yaml: ")) from None


def _compile(source: str, name: str, missing_key: MissingKey, limits: Limits) -> tuple[Template, Rewrite]:
    if len(source) <= _CACHED_SOURCE_CHARS:
        return _compile_cached(source, name, missing_key, limits)
    return _compile_uncached(source, name, missing_key, limits)


def _compile_uncached(
    source: str, name: str, missing_key: MissingKey, limits: Limits
) -> tuple[Template, Rewrite]:
    rewrite = integral_arguments(source, name, function_map())
    return _environment(missing_key, limits).from_string(rewrite.source, name=name), rewrite


# gotpl templates are immutable and safe to share between threads and renders.
_compile_cached = functools.lru_cache(maxsize=512)(_compile_uncached)


@functools.lru_cache(maxsize=16)
def _environment(missing_key: MissingKey, limits: Limits) -> Environment:
    functions = function_map()
    sandbox = SandboxPolicy(
        allow_functions=functions,
        # Only the Go-named members of the semver version object; nothing of Python's str, dict
        # or list (gotpl would otherwise let `.s.upper` call str.upper).
        allow_attributes=ALLOWED_ATTRIBUTES,
        allow_methods=ALLOWED_METHODS,
        allow_context_capabilities={"render-associated", "render-dynamic-source"},
        max_template_chars=limits.max_template_chars,
        default_budget=limits.budget(),
    )
    return Environment(functions=functions, missing_key=missing_key, sandbox=sandbox, budget=limits.budget())


def _secrets(values: object, source: str) -> frozenset[str]:
    """Data strings to hide in an error message (text that is also in the template is not secret)."""
    return frozenset(
        text for text in _strings(values) if len(text) >= _MIN_SCRUBBED_CHARS and text not in source
    )


def _strings(value: object) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _scrub(message: str, secrets: frozenset[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in message:
            message = message.replace(secret, _REDACTED)
    return message


_SYNTAX_PREFIX: Final = re.compile(r"^template:\d+:\d+: ")
# Python classes of template values that gotpl names in its messages, as Go names their types.
_PYTHON_TYPES: Final = {
    "str": "string",
    "int": "int",
    "Int64": "int64",
    "float": "float64",
    "bool": "bool",
    "NoneType": "<nil>",
    "_InvalidValue": "<nil>",
    "_UntypedNil": "<nil>",
    "dict": "map[string]interface {}",
    "GoMap": "map[string]interface {}",
    "GoNilMap": "map[string]interface {}",
    "GoStringMap": "map[string]string",
    "list": "[]interface {}",
    "tuple": "[]interface {}",
    "GoList": "[]interface {}",
    "GoStringList": "[]string",
    "GoIntList": "[]int",
    "bytes": "[]uint8",
    "Version": "*semver.Version",
    "GoVersion": "*semver.Version",
    "datetime": "time.Time",
    "Certificate": "sprig.certificate",
}
# gotpl's phrasing of errors that Go words differently; rewritten so messages read like Go's.
_GO_WORDING: Final = (
    (re.compile(r"missing key or attribute '([^']*)'"), r'map has no entry for key "\1"'),
    (re.compile(r"function '([^']*)' (?:is )?not defined"), r'function "\1" not defined'),
    (re.compile(r"undefined variable '([^']*)'"), r'undefined variable "\1"'),
    (re.compile(r"template '([^']*)' is not defined"), r'template "\1" not defined'),
    (re.compile(r"(?:attribute|method|property) '([^']*)' is not allowed"), r"can't evaluate field \1"),
    (re.compile(r"range cannot iterate over (\w+)"), lambda m: f"range can't iterate over {_go_type(m[1])}"),
    (re.compile(r"value of type (\w+) has no length"), lambda m: f"len of type {_go_type(m[1])}"),
    (
        re.compile(r"function '(and|or)' requires an argument"),
        r"wrong number of args for \1: want at least 1 got 0",
    ),
    # gotpl's wrapper around a failing function; Go says "error calling NAME: ...".
    (re.compile(r"function '([^']*)' failed: "), r"error calling \1: "),
)


# gotpl's budget messages (`iteration budget exceeded: limit 100000, requested 100001`), said as the
# engine's own limits are, naming what was limited (docs/templates.md, "Sandbox limits").
_LIMIT_WORDING: Final = (
    (
        re.compile(r"output character budget exceeded: limit (\d+), requested (\d+)"),
        r"rendered output would be \2 characters, over the limit of \1",
    ),
    (
        re.compile(r"iteration budget exceeded: limit (\d+), requested \d+"),
        r"range iterations in one render are over the limit of \1",
    ),
    (
        re.compile(r"function-call budget exceeded: limit (\d+), requested \d+"),
        r"function calls in one render are over the limit of \1",
    ),
    (
        re.compile(r"template-depth budget exceeded: limit (\d+), requested \d+"),
        r"template/include/tpl calls nest deeper than the limit of \1",
    ),
)


def _go_type(python_name: str) -> str:
    return _PYTHON_TYPES.get(python_name, python_name)


def _go_wording(text: str) -> str:
    for pattern, replacement in _GO_WORDING:
        text = pattern.sub(replacement, text)
    return text


def _syntax_error(exc: TemplateSyntaxError, name: str, secrets: frozenset[str]) -> TemplateError:
    # gotpl says "template:LINE:COL: msg"; Go says "template: NAME:LINE: msg".
    detail = _go_wording(_SYNTAX_PREFIX.sub("", str(exc)))
    message = f"template: {name}:{exc.line}:{exc.column}: {_scrub(detail, secrets)}"
    limited = "nesting limit" in detail  # gotpl's parser refuses absurdly deep nesting
    return TemplateError(
        message, template_name=name, line=exc.line, column=exc.column, limit_exceeded=limited
    )


def _execution_error(exc: GotplError, name: str, secrets: frozenset[str], rewrite: Rewrite) -> TemplateError:
    line = column = None
    text = str(exc)
    if isinstance(exc, TemplateExecutionError):
        line, column = exc.line, exc.column
        if rewrite.edits and line is not None and column is not None:
            # Report the column of the source the user wrote, not of the rewritten one.
            moved = rewrite.original_column(line, column)
            text = text.replace(f"{name}:{line}:{column}:", f"{name}:{line}:{moved}:", 1)
            column = moved
    limited = isinstance(exc, (SandboxLimitError, BudgetExceededError)) or (
        isinstance(exc, SandboxViolationError) and "limit" in text
    )
    # Among others, the sandbox refusing a Python attribute becomes Go's "can't evaluate field".
    text = _go_wording(text)
    if limited:
        for pattern, replacement in _LIMIT_WORDING:
            text = pattern.sub(replacement, text)
    own_prefix = f"template: {name}:"
    if text.startswith(own_prefix):
        message = own_prefix + _scrub(text[len(own_prefix) :], secrets)
    else:
        message = f"template: {name}: {_scrub(text, secrets)}"
    return TemplateError(message, template_name=name, line=line, column=column, limit_exceeded=limited)
