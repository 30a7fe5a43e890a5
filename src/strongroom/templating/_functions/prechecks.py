"""The guard's size checks before functions whose output can be much larger than their input.

PRECHECKS maps a function name to a check of its (converted) arguments against the render's limits,
made before the function runs, so that `repeat 1000000000 "x"` fails without building anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from strongroom.templating._limits import RenderState, SandboxLimitError, deep_size


def _count(value: object) -> int:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _check_repeat(state: RenderState, args: tuple[object, ...]) -> None:
    state.check_size("repeat", _count(args[0]) * len(_text(args[1])))


def _check_indent(state: RenderState, args: tuple[object, ...]) -> None:
    text = _text(args[1])
    state.check_size("indent", max(_count(args[0]), 0) * (text.count("\n") + 1) + len(text))


def check_list_length(state: RenderState, length: int) -> None:
    if length > state.limits.max_list_items:
        raise SandboxLimitError(f"list of {length} items is over the limit of {state.limits.max_list_items}")


def _check_until(state: RenderState, args: tuple[object, ...]) -> None:
    check_list_length(state, abs(_count(args[0])))


def _check_until_step(state: RenderState, args: tuple[object, ...]) -> None:
    start, stop, step = (_count(a) for a in args[:3])
    if step:
        check_list_length(state, max(0, math.ceil((stop - start) / step)))


def _check_seq(state: RenderState, args: tuple[object, ...]) -> None:
    numbers = [_count(a) for a in args]
    if len(numbers) == 1:
        check_list_length(state, abs(numbers[0]) + 1)
    elif len(numbers) == 2:
        check_list_length(state, abs(numbers[1] - numbers[0]) + 1)
    elif len(numbers) == 3 and numbers[1]:
        check_list_length(state, abs(numbers[2] - numbers[0]) // abs(numbers[1]) + 1)


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
    check_list_length(state, total)


def _check_split(state: RenderState, args: tuple[object, ...]) -> None:
    separator, text = _text(args[0]), _text(args[-1])
    check_list_length(state, text.count(separator) + 1 if separator else len(text))


def _check_regex_split(state: RenderState, args: tuple[object, ...]) -> None:
    # Counting regex matches would cost as much as the call; bound by the input instead.
    text, count = _text(args[1]), _count(args[2])
    if count < 0 or count > state.limits.max_list_items:
        check_list_length(state, len(text) + 1)


def _check_arguments(state: RenderState, args: tuple[object, ...]) -> None:
    """For functions that print whole structures: the structure may have grown through `set`."""
    limit = state.limits.max_value_chars
    state.check_size("formatted value", deep_size(args, limit))


PRECHECKS: Final[dict[str, Callable[[RenderState, tuple[object, ...]], None]]] = {
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
