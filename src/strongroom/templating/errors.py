"""The one exception type callers of strongroom.templating handle."""

from __future__ import annotations


class TemplateError(ValueError):
    """A template failed to parse or to execute, or hit a sandbox limit.

    The message follows Go's shape (`template: NAME:LINE:COL: ...`) and names what failed, but it
    never carries values from the render data: the data may hold secrets, and these messages end up
    in Kubernetes events and logs.
    """

    def __init__(
        self,
        message: str,
        *,
        template_name: str | None = None,
        line: int | None = None,
        column: int | None = None,
        limit_exceeded: bool = False,
    ) -> None:
        super().__init__(message)
        self.template_name = template_name
        self.line = line
        self.column = column
        # True when a sandbox limit (time, size, iterations, depth) stopped the render.
        self.limit_exceeded = limit_exceeded
