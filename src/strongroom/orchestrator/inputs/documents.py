"""Input files as located YAML documents (`file.yaml#2`), each file in the dialect its own tools read.

The two dialects live side by side because the difference between them is the point (see below). The
Score, definition and values loaders take their documents from here, and report model validation errors
the one way defined here (located by field, never quoting the input).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import yaml

from strongroom.api.common import validation_lines
from strongroom.orchestrator.problems import Problems
from strongroom.templating import TemplateError, parse_yaml

# Two dialects, each the one the files' own tools read:
# - Score files as score-go reads them (gopkg.in/yaml.v3, the YAML 1.2 core schema): `on`, `yes`, `y` and
#   timestamps are text, only `true`/`false` are booleans;
# - definition and values files as Kubernetes tooling reads them (sigs.k8s.io/yaml: go-yaml v2 resolution,
#   numbers through float64), which is the project's one YAML dialect, `strongroom.templating.parse_yaml`.


class _ScoreLoader(yaml.SafeLoader):
    """YAML as score-go reads it: plain scalars resolve by the YAML 1.2 core schema; a key given twice in
    one mapping is an error (merged `<<` keys may be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable: refused by the construction below
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping key {key!r} already defined", key_node.start_mark
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


_ScoreLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("int", r"^(?:[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _ScoreLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))


def _read_text(path: Path, problems: Problems) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(str(path), f"cannot read: {exc.__class__.__name__}: {exc}")
        return None


def _yaml_error(path: Path, exc: yaml.YAMLError, problems: Problems) -> None:
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    problems.add(where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")


def _located(path: Path, docs: list[Any]) -> Iterator[tuple[str, Any]]:
    count = sum(doc is not None for doc in docs)
    index = 0
    for doc in docs:
        if doc is None:
            continue
        index += 1
        yield (f"{path}#{index}" if count > 1 else str(path)), doc


def score_documents(path: Path, problems: Problems) -> Iterator[tuple[str, Any]]:
    """(where, document) for each non-empty YAML document of a Score file."""
    text = _read_text(path, problems)
    if text is None:
        return
    try:
        docs = list(yaml.load_all(text, Loader=_ScoreLoader))
    except yaml.YAMLError as exc:
        _yaml_error(path, exc, problems)
        return
    yield from _located(path, docs)


def yaml_documents(path: Path, problems: Problems) -> Iterator[tuple[str, Any]]:
    """(where, document) for each non-empty YAML document of a definitions, values or object file, read by
    `strongroom.templating.parse_yaml` (which reads one document: the stream is cut where the YAML parser
    puts each document's root node)."""
    text = _read_text(path, problems)
    if text is None:
        return
    try:
        roots = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        _yaml_error(path, exc, problems)
        return
    docs: list[Any] = []
    for root in roots:
        if root is None:
            docs.append(None)
            continue
        start = root.start_mark
        # Pad with the lines before the root, so indentation and line numbers stay those of the file.
        piece = "\n" * start.line + " " * start.column + text[start.index : root.end_mark.index]
        try:
            docs.append(parse_yaml(piece))
        except TemplateError as exc:
            problems.add(f"{path}:{start.line + 1}", f"not valid YAML: {exc}")
            return
    yield from _located(path, docs)


def report_validation_errors(where: str, exc: pydantic.ValidationError, problems: Problems) -> None:
    """One problem per validation error, located by field, without the offending input."""
    for loc, message in validation_lines(exc):
        problems.add(f"{where}: {loc}" if loc else where, message)
