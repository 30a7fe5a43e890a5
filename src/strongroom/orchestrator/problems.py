"""Problems found in the orchestrator's inputs: collected, then reported one line each.

`strongroom render` is a pre-merge check, so it reports every problem it can find in one run instead of
stopping at the first. A problem names where it is (file, document, field) and what is wrong; it never
quotes a secret value (the orchestrator never reads one while rendering anyway).
"""

from __future__ import annotations

from collections.abc import Iterable


class InputProblems(ValueError):
    """The inputs cannot be rendered; `problems` holds one line per problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        summary = self.problems[0] if count == 1 else f"{count} problems"
        super().__init__(summary)


class Problems:
    """An ordered, de-duplicated list of problem lines."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._seen: set[str] = set()

    def add(self, where: str, message: str) -> None:
        line = f"{where}: {message}" if where else message
        if line not in self._seen:
            self._seen.add(line)
            self._lines.append(line)

    def extend(self, other: Problems) -> None:
        for line in other.lines:
            if line not in self._seen:
                self._seen.add(line)
                self._lines.append(line)

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def __bool__(self) -> bool:
        return bool(self._lines)

    def raise_if_any(self) -> None:
        if self._lines:
            raise InputProblems(self._lines)
