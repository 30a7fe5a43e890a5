"""Placeholders `${...}` in Workloads (Score) and Resource driver inputs (Humanitec): parse, list, substitute.

Syntax (docs/workloads.md has the full story):

- `${metadata.name}`, `${metadata.annotations.<key>}`, `${metadata.<key>...}` — the Score workload metadata;
- `${resources.<name>.<key>...}` (Score form) and `${resources.<name>.outputs.<key>...}` (Humanitec form);
- keys may be nested (`${resources.db.conn.host}`); a dot inside one key is written `\\.`, or the key is
  quoted: `${resources['db'].outputs['tls.crt']}`; an unquoted dotted key also matches when no nested
  path does (`${resources.cert.tls.crt}` finds the output `tls.crt`);
- `$${` is a literal `${`; any other `$` is just a dollar sign. In Score text (`parse(text, score=True)`:
  Workload variables, file content, volume sources, resource params) `$$` is a literal `$`, as score-go
  reads it, so `$${` is a literal `${` there too.

The parser only splits text into literal text and placeholders; what a placeholder means is decided by
the caller through a `resolve` function. That keeps one parser for both places placeholders appear: the
Workload renderer and the Resource controller (which resolves Resource -> Resource references).

Error messages quote the placeholder as written (spec text, never a resolved value).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

ESCAPE = "$${"
OPEN = "${"
#: Score's escape of one `$` (score-go un-escapes `$$` to `$` wherever it substitutes).
SCORE_ESCAPE = "$$"


class PlaceholderError(ValueError):
    """A placeholder that is malformed or cannot be resolved; the message names it, never a value."""


@dataclass(frozen=True)
class Text:
    """Literal text between placeholders (escapes already undone)."""

    text: str


@dataclass(frozen=True)
class Placeholder:
    """One `${...}`: its path segments and the text as written (for error messages)."""

    path: tuple[str, ...]
    source: str

    @property
    def root(self) -> str:
        return self.path[0]


Segment = Text | Placeholder


# --- Parsing ----------------------------------------------------------------------------------------------


def _fail(text: str, start: int, why: str) -> PlaceholderError:
    snippet = text[start : start + 60]
    return PlaceholderError(f"malformed placeholder {snippet!r}: {why}")


def _parse_body(text: str, start: int, *, score: bool = False) -> tuple[tuple[str, ...], int]:
    """Parse the path after `${` (at `start - 2`); return the segments and the index after `}`.

    `score`: whitespace is part of a key, as score-go reads everything up to `}` (so `${ resources.x}`
    names an unknown root rather than being malformed)."""
    opened = start - 2
    parts: list[str] = []
    current: list[str] = []
    # True right after `]`: the next thing must be `.`, `[` or `}`, and no unquoted text may follow.
    after_bracket = False
    i = start
    while i < len(text):
        char = text[i]
        if char == "}":
            if current:
                parts.append("".join(current))
            elif not after_bracket:
                raise _fail(text, opened, "empty placeholder" if not parts else "ends with a dot")
            return tuple(parts), i + 1
        if char == ".":
            if current:
                parts.append("".join(current))
                current = []
            elif not after_bracket:
                raise _fail(text, opened, "empty key between dots")
            after_bracket = False
            i += 1
            # A dot must be followed by a key, not by a bracket or the end.
            if i < len(text) and text[i] in "[}.":
                raise _fail(text, opened, "empty key between dots")
            continue
        if char == "[":
            if current:
                parts.append("".join(current))
                current = []
            elif not parts and not after_bracket:
                raise _fail(text, opened, "a placeholder cannot start with '['")
            quote = text[i + 1] if i + 1 < len(text) else ""
            if quote not in ("'", '"'):
                raise _fail(text, opened, "a key in brackets must be quoted, e.g. ['tls.crt']")
            close = text.find(quote + "]", i + 2)
            if close < 0:
                raise _fail(text, opened, "unterminated quoted key")
            key = text[i + 2 : close]
            if not key:
                raise _fail(text, opened, "empty quoted key")
            parts.append(key)
            after_bracket = True
            i = close + 2
            continue
        if after_bracket:
            raise _fail(text, opened, f"unexpected {char!r} after a quoted key")
        if char == "\\":
            if i + 1 >= len(text):
                raise _fail(text, opened, "ends with a backslash")
            current.append(text[i + 1])
            i += 2
            continue
        if char == "]":
            raise _fail(text, opened, "unexpected ']'")
        if char.isspace() and not score:
            raise _fail(text, opened, "whitespace is not allowed in a placeholder")
        if char == "$" and text.startswith(OPEN, i):
            raise _fail(text, opened, "placeholders cannot be nested")
        current.append(char)
        i += 1
    raise _fail(text, opened, "missing closing '}'")


def parse(text: str, *, score: bool = False) -> list[Segment]:
    """Split `text` into literal text and placeholders. Adjacent literal text is merged.

    `score`: Score's escaping, where `$$` is a literal `$` (score-go's substitution); otherwise only `$${`
    is an escape (a literal `${`) and `$$` stays `$$` (Humanitec's driver inputs). Raises PlaceholderError
    for a malformed placeholder.
    """
    segments: list[Segment] = []
    literal: list[str] = []
    i = 0
    while True:
        dollar = text.find("$", i)
        if dollar < 0:
            literal.append(text[i:])
            break
        literal.append(text[i:dollar])
        if score and text.startswith(SCORE_ESCAPE, dollar):
            literal.append("$")
            i = dollar + len(SCORE_ESCAPE)
        elif text.startswith(ESCAPE, dollar):
            literal.append(OPEN)
            i = dollar + len(ESCAPE)
        elif text.startswith(OPEN, dollar):
            path, end = _parse_body(text, dollar + len(OPEN), score=score)
            if any(literal):
                segments.append(Text("".join(literal)))
            literal = []
            segments.append(Placeholder(path, text[dollar:end]))
            i = end
        else:
            literal.append("$")
            i = dollar + 1
    if any(literal):
        segments.append(Text("".join(literal)))
    return segments


def placeholders(text: str, *, score: bool = False) -> list[Placeholder]:
    """The placeholders in `text`, in order of appearance (`score` as in `parse`)."""
    return [segment for segment in parse(text, score=score) if isinstance(segment, Placeholder)]


def single_placeholder(segments: Sequence[Segment]) -> Placeholder | None:
    """The placeholder if the text is exactly one placeholder and nothing else."""
    if len(segments) == 1 and isinstance(segments[0], Placeholder):
        return segments[0]
    return None


# --- Resource references ----------------------------------------------------------------------------------

RESOURCES = "resources"
METADATA = "metadata"
OUTPUTS = "outputs"


@dataclass(frozen=True, order=True)
class ResourceRef:
    """A placeholder's reference to a resource output: which resource, which key path."""

    resource: str
    key: tuple[str, ...]
    """Output key path; empty for `${resources.<name>}` (the resource itself, e.g. a volume source)."""
    form: Literal["score", "humanitec"] = "score"

    @property
    def key_text(self) -> str:
        """The key path joined with dots, e.g. `conn.host` (the flat key of a secret output)."""
        return ".".join(self.key)


def resource_ref(placeholder: Placeholder, *, dotted_names: bool = False) -> ResourceRef | None:
    """What resource output `placeholder` refers to, or None if it is not a `${resources...}` placeholder.

    `dotted_names=False` (Workloads): the resource name is one segment, as Score resource names have no
    dots. `dotted_names=True` (Resource driver inputs): the name is everything up to the first `outputs`
    segment, because Resource object names may contain dots (`${resources.db.v2.outputs.host}`); quote
    such a name to be explicit: `${resources['db.v2'].outputs.host}`.

    In both modes `outputs` right after the name marks the Humanitec form and is not part of the key.
    """
    path = placeholder.path
    if path[0] != RESOURCES:
        return None
    if len(path) < 2:
        raise PlaceholderError(f"placeholder {placeholder.source} names no resource")
    name_end = 2
    if dotted_names and OUTPUTS in path[2:]:
        name_end = path.index(OUTPUTS, 2)
    name = ".".join(path[1:name_end])
    rest = path[name_end:]
    if len(rest) >= 2 and rest[0] == OUTPUTS:
        return ResourceRef(name, rest[1:], "humanitec")
    if rest == (OUTPUTS,):
        # The Humanitec form with its key left out. It could also be read as a Score reference to an output
        # called "outputs"; refusing is clearer than guessing which one was meant.
        raise PlaceholderError(
            f"placeholder {placeholder.source} names no output key: use ${{resources.{name}.outputs.<key>}}"
        )
    return ResourceRef(name, rest, "score")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key in sorted(value, key=str):
            yield from _strings(value[key])
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def resource_references(value: Any, *, dotted_names: bool = False) -> list[ResourceRef]:
    """Every resource output referenced by a placeholder anywhere in `value` (a string or a JSON tree).

    Sorted and without duplicates. Raises PlaceholderError for a malformed placeholder. Use it to find the
    dependencies of a Resource (its driver inputs) or of a Workload before resolving anything.
    """
    found: set[ResourceRef] = set()
    for text in _strings(value):
        for placeholder in placeholders(text):
            ref = resource_ref(placeholder, dotted_names=dotted_names)
            if ref is not None:
                found.add(ref)
    return sorted(found)


def referenced_resources(value: Any, *, dotted_names: bool = False) -> list[str]:
    """Names of the resources referenced anywhere in `value`, sorted, without duplicates."""
    return sorted({ref.resource for ref in resource_references(value, dotted_names=dotted_names)})


# --- Looking up and substituting --------------------------------------------------------------------------


class _Missing:
    pass


_MISSING = _Missing()


def _lookup(data: Any, path: Sequence[str]) -> Any:
    if not path:
        return data
    if isinstance(data, Mapping):
        # The longest dotted prefix that is a key wins, so an output called `tls.crt` is found by
        # `${resources.cert.tls.crt}` even though dots normally separate nested keys.
        for cut in range(len(path), 0, -1):
            key = ".".join(path[:cut])
            if key in data:
                found = _lookup(data[key], path[cut:])
                if found is not _MISSING:
                    return found
        return _MISSING
    if isinstance(data, list) and path[0].isdigit():
        index = int(path[0])
        return _lookup(data[index], path[1:]) if index < len(data) else _MISSING
    return _MISSING


def lookup(data: Any, path: Sequence[str]) -> Any:
    """The value at `path` inside nested mappings (and lists, by index). Raises KeyError if absent."""
    found = _lookup(data, path)
    if found is _MISSING:
        raise KeyError(".".join(path))
    return found


def to_text(value: Any) -> str:
    """How a resolved value is written into a string: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def substitute(text: str, resolve: Callable[[Placeholder], Any]) -> str:
    """`text` with every placeholder replaced by `to_text(resolve(placeholder))`."""
    return "".join(
        segment.text if isinstance(segment, Text) else to_text(resolve(segment)) for segment in parse(text)
    )


def substitute_value(text: str, resolve: Callable[[Placeholder], Any]) -> Any:
    """Like `substitute`, but a text that is exactly one placeholder becomes the value itself (a number
    stays a number, an object stays an object), as driver inputs expect."""
    segments = parse(text)
    only = single_placeholder(segments)
    if only is not None:
        return resolve(only)
    return "".join(
        segment.text if isinstance(segment, Text) else to_text(resolve(segment)) for segment in segments
    )


def substitute_tree(value: Any, resolve: Callable[[Placeholder], Any]) -> Any:
    """A copy of a JSON tree with `substitute_value` applied to every string (keys are left alone)."""
    if isinstance(value, str):
        return substitute_value(value, resolve)
    if isinstance(value, Mapping):
        return {key: substitute_tree(item, resolve) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [substitute_tree(item, resolve) for item in value]
    return value


__all__ = [
    "METADATA",
    "OUTPUTS",
    "RESOURCES",
    "SCORE_ESCAPE",
    "Placeholder",
    "PlaceholderError",
    "ResourceRef",
    "Segment",
    "Text",
    "lookup",
    "parse",
    "placeholders",
    "referenced_resources",
    "resource_ref",
    "resource_references",
    "single_placeholder",
    "substitute",
    "substitute_tree",
    "substitute_value",
    "to_text",
]
