"""Rewriting placeholders: resolve what the orchestrator knows, rename what the operator will resolve.

The orchestrator replaces some placeholders with text (`${context.app.id}`, non-secret shared values) and
rewrites others so they name the objects it emits (`${resources['postgres-instance#shared.pg'].outputs.host}`
in a resource definition becomes `${resources.postgres-instance-shared-pg.outputs.host}`). Parsing is the
operator's own parser (`strongroom.reconcile.placeholders`), so what the orchestrator writes is read back
exactly as intended; this module only adds the way back from segments to text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from strongroom.reconcile.placeholders import ESCAPE, OPEN, Placeholder, PlaceholderError, Text, parse

_BARE_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")

#: What a rewrite callback returns for one placeholder: None keeps it, a `str` replaces it with literal
#: text, a tuple of segments replaces it with another placeholder.
Replacement = str | tuple[str, ...] | None


def format_placeholder(path: tuple[str, ...]) -> str:
    """`${...}` text for a path; segments that are not plain words are written quoted (`['tls.crt']`)."""
    if not path or not _BARE_SEGMENT.fullmatch(path[0]):
        raise PlaceholderError(f"cannot write a placeholder starting with {path[:1]!r}")
    out = [path[0]]
    for segment in path[1:]:
        if _BARE_SEGMENT.fullmatch(segment):
            out.append(f".{segment}")
        elif "']" not in segment:
            out.append(f"['{segment}']")
        elif '"]' not in segment:
            out.append(f'["{segment}"]')
        else:
            raise PlaceholderError(f"cannot quote the placeholder key {segment!r}")
    return OPEN + "".join(out) + "}"


def escape_literal(text: str) -> str:
    """Literal text as it must be written so that the placeholder parser reads it back unchanged."""
    return text.replace(OPEN, ESCAPE)


def rewrite(text: str, replace: Callable[[Placeholder], Replacement], *, score: bool = False) -> str:
    """`text` with each placeholder kept, replaced by literal text, or replaced by another placeholder.

    `score`: `text` is Score text (`$$` is a literal `$`, see `parse`); the result is always written for
    the Humanitec parser that reads Resource inputs.

    Raises PlaceholderError for malformed placeholders (from the parser) and for the one thing that cannot
    be written: literal text ending in `$` right before a placeholder (`$` + `${` would read as `$${`).
    """
    chunks: list[tuple[bool, str]] = []  # (is_placeholder, text)
    for segment in parse(text, score=score):
        if isinstance(segment, Text):
            chunks.append((False, segment.text))
            continue
        result = replace(segment)
        if result is None:
            chunks.append((True, format_placeholder(segment.path)))
        elif isinstance(result, str):
            chunks.append((False, result))
        else:
            chunks.append((True, format_placeholder(result)))
    merged: list[tuple[bool, str]] = []
    for is_placeholder, part in chunks:
        if merged and not is_placeholder and not merged[-1][0]:
            merged[-1] = (False, merged[-1][1] + part)
        else:
            merged.append((is_placeholder, part))
    out: list[str] = []
    for index, (is_placeholder, part) in enumerate(merged):
        if is_placeholder:
            out.append(part)
            continue
        literal = escape_literal(part)
        if literal.endswith("$") and index + 1 < len(merged):
            raise PlaceholderError(
                f"in {text[:60]!r}: a literal '$' directly before a placeholder cannot be written"
            )
        out.append(literal)
    return "".join(out)


def rewrite_tree(value: Any, replace: Callable[[Placeholder], Replacement], *, score: bool = False) -> Any:
    """A copy of a JSON tree with `rewrite` applied to every string (keys are left alone)."""
    if isinstance(value, str):
        return rewrite(value, replace, score=score)
    if isinstance(value, dict):
        return {key: rewrite_tree(item, replace, score=score) for key, item in value.items()}
    if isinstance(value, list):
        return [rewrite_tree(item, replace, score=score) for item in value]
    return value


def strings_with_paths(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Every string leaf of a JSON tree with its dotted path, in key order (for error messages)."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        found.append((prefix, value))
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            found.extend(strings_with_paths(value[key], f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(strings_with_paths(item, f"{prefix}[{index}]"))
    return found
