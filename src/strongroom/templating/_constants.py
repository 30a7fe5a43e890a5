"""Go's untyped numeric constants for integer parameters.

Go's text/template passes a number literal written as an argument of a function straight to the
parameter's type: `{{ until 2.0 }}` and `{{ trunc 1e3 .s }}` call with the int 2 and 1000, because
the constant is integral (parse.NumberNode.IsInt). gotpl evaluates every literal with a `.`, `e` or
`p` to a Python float before the call, so the call would see a float64. `integral_arguments`
rewrites such literals, where they are direct arguments of a function whose parameter is an
integer, to their decimal integer text before gotpl compiles the source. A literal that is not
integral stays a float and is refused as in Go; one that is assigned to a variable, parenthesized or
piped is a float64 in Go as well and is left alone.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterator
from typing import Final

from gotpl.errors import TemplateSyntaxError
from gotpl.parse.nodes import (
    ActionNode,
    BlockNode,
    CommandNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NumberNode,
    ParenthesizedNode,
    ParsedTemplate,
    PipeNode,
    RangeNode,
    TemplateCallNode,
    WithNode,
)
from gotpl.parse.parser import parse_template
from gotpl.runtime.values import number_value

from strongroom.templating._signatures import SIGNATURES

_INTEGER_TYPES: Final = frozenset({"int", "int64"})
_UNSIGNED_TYPES: Final = frozenset({"uint", "uint8", "uint16", "uint32", "uint64"})
_INT64_RANGE: Final = (-(2**63), 2**63)
# Text that may be part of a float literal (`2.0`, `.5`, `1e3`, `0x1p4`). A source without any is
# compiled as it is, without parsing it twice.
_MAYBE_FLOAT: Final = re.compile(r"[0-9]\.|\.[0-9]|[0-9][eE]|0[xX]")


@dataclasses.dataclass(frozen=True, slots=True)
class Rewrite:
    """A source with integral float literals as integers, and where its text moved."""

    source: str
    edits: tuple[tuple[int, int, int], ...]  # (start in the new source, new end, length change)

    def original_column(self, line: int, column: int) -> int:
        """The column in the original source of a (line, column) that gotpl reports."""
        line_start = 0
        for _ in range(line - 1):
            line_start = self.source.index("\n", line_start) + 1
        position = line_start + column - 1
        shift = sum(delta for start, end, delta in self.edits if end <= position)
        return column - shift


def integral_arguments(source: str, name: str, functions: Collection[str]) -> Rewrite:
    """`source` with each integral float literal passed to an integer parameter written as an int."""
    if not _MAYBE_FLOAT.search(source):
        return Rewrite(source, ())
    try:
        parsed = parse_template(source, name=name, functions=functions)
    except TemplateSyntaxError:
        return Rewrite(source, ())  # gotpl reports the error from the unchanged source
    # A set: a `block` body is both in the tree and among the definitions.
    replacements = sorted(set(_replacements(parsed)))
    if not replacements:
        return Rewrite(source, ())
    parts: list[str] = []
    edits: list[tuple[int, int, int]] = []
    cursor = shift = 0
    for start, end, text in replacements:
        parts.append(source[cursor:start])
        parts.append(text)
        new_start = start + shift
        delta = len(text) - (end - start)
        shift += delta
        edits.append((new_start, new_start + len(text), delta))
        cursor = end
    parts.append(source[cursor:])
    return Rewrite("".join(parts), tuple(edits))


def _replacements(parsed: ParsedTemplate) -> Iterator[tuple[int, int, str]]:
    lists = [parsed.root, *(definition.body for definition in parsed.definitions)]
    for command in _commands(lists):
        head = command.arguments[0] if command.arguments else None
        if not isinstance(head, IdentifierNode) or head.name not in SIGNATURES:
            continue
        params, variadic, _ = SIGNATURES[head.name]
        for index, argument in enumerate(command.arguments[1:]):
            if not isinstance(argument, NumberNode):
                continue
            if index >= len(params) and not variadic:
                continue  # a wrong argument count, reported at the call
            go_type = params[min(index, len(params) - 1)]
            integer = _integral(argument.text, unsigned=go_type in _UNSIGNED_TYPES)
            if integer is not None and go_type in _INTEGER_TYPES | _UNSIGNED_TYPES:
                yield argument.start, argument.end, str(integer)


def _integral(text: str, *, unsigned: bool) -> int | None:
    """The integer a float constant stands for, as parse.NumberNode computes IsInt/IsUint."""
    value = number_value(text, is_complex=False)
    if not isinstance(value, float) or not value.is_integer():
        return None
    low, high = (0, 2**64) if unsigned else _INT64_RANGE
    integer = int(value)
    return integer if low <= integer < high else None


def _commands(lists: list[ListNode]) -> Iterator[CommandNode]:
    """Every command in the parse tree, those of nested (parenthesized) pipelines included."""
    pipes: list[PipeNode] = []
    while lists:
        for node in lists.pop().nodes:
            with_pipeline = (ActionNode, IfNode, WithNode, RangeNode, BlockNode, TemplateCallNode)
            if isinstance(node, with_pipeline) and node.pipeline is not None:
                pipes.append(node.pipeline)
            if isinstance(node, (IfNode, WithNode, RangeNode)):
                lists.extend(body for body in (node.body, node.else_body) if body is not None)
            elif isinstance(node, BlockNode):
                lists.append(node.body)
    while pipes:
        for command in pipes.pop().commands:
            yield command
            pipes.extend(arg.pipeline for arg in command.arguments if isinstance(arg, ParenthesizedNode))
