"""Sandbox limits and the per-render state that enforces them.

gotpl's ExecutionBudget already counts loop iterations, function calls, output characters and
template nesting. What it cannot see is the cost inside one function call (`repeat 1000000000 "x"`,
`randAlpha` of a huge count, a printf width of a billion) or wall-clock time, so every function
goes through a guard (see _functions/guard.py) that checks a deadline and the size of what it is about to
build and what it built.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from gotpl import ExecutionBudget
from gotpl.errors import TemplateExecutionError


@dataclass(frozen=True)
class Limits:
    """Bounds on one render. The defaults fit Template-driver inputs with a wide margin."""

    max_template_chars: int = 1_000_000
    max_output_chars: int = 4_000_000
    # One string built by a function, and anything printed or encoded in one go.
    max_value_chars: int = 4_000_000
    max_list_items: int = 100_000  # items in one list or map built by a function
    max_iterations: int = 100_000  # range iterations, summed over the render
    max_function_calls: int = 200_000
    max_template_depth: int = 100  # template/include/tpl nesting
    max_random_chars: int = 10_000  # randAlpha & co. are slow per character
    timeout_seconds: float = 5.0

    def budget(self) -> ExecutionBudget:
        return ExecutionBudget(
            max_output_chars=self.max_output_chars,
            max_iterations=self.max_iterations,
            max_template_depth=self.max_template_depth,
            max_function_calls=self.max_function_calls,
        )


DEFAULT_LIMITS = Limits()


class SandboxLimitError(TemplateExecutionError):
    """A limit stopped the render. Subclassing gotpl's error lets it pass through the VM unwrapped
    and get the template location attached."""


class GoFunctionError(Exception):
    """A function failed the way its Go counterpart returns an error; the message holds no data."""


@dataclass
class RenderState:
    limits: Limits
    deadline: float

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise SandboxLimitError(f"render took longer than the limit of {self.limits.timeout_seconds:g}s")

    def check_size(self, what: str, size: int) -> None:
        if size > self.limits.max_value_chars:
            raise SandboxLimitError(
                f"{what} would be {size} characters, over the limit of {self.limits.max_value_chars}"
            )


_STATE: contextvars.ContextVar[RenderState | None] = contextvars.ContextVar(
    "strongroom_template_render", default=None
)


def current_or_none() -> RenderState | None:
    return _STATE.get()


def current() -> RenderState:
    state = _STATE.get()
    if state is None:
        # Functions are only reachable through render(); a bare call means a bug, not a user error.
        raise RuntimeError("template function called outside strongroom.templating.render")
    return state


@contextmanager
def rendering(limits: Limits) -> Iterator[RenderState]:
    state = RenderState(limits, time.monotonic() + limits.timeout_seconds)
    token = _STATE.set(state)
    try:
        yield state
    finally:
        _STATE.reset(token)


def deep_size(value: object, limit: int) -> int:
    """Characters `value` would take when printed, counted until `limit` is passed.

    Stops early, so a list holding the same huge string a million times costs two steps, not a
    million; shared sub-structures are counted every time they appear, as printing would.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 1
        elif isinstance(item, Mapping):
            total += 2
            for key, child in item.items():
                total += len(key) + 1 if isinstance(key, str) else 8
                stack.append(child)
        elif isinstance(item, (list, tuple)):
            total += 2 + len(item)
            stack.extend(item)
        else:
            total += 8
        if total > limit:
            return total
    return total
