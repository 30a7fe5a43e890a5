"""fromYaml and the Template driver's YAML: sigs.k8s.io/yaml.Unmarshal on top of PyYAML's SafeLoader.

The loader scans and resolves as go-yaml v2 does (resolver.py), then the result makes the JSON round
trip sigs.k8s.io/yaml makes (string keys, float64 numbers), counted against a node budget because
aliases can describe far more nodes than the text holds (YamlBudgetExceeded).
"""

from __future__ import annotations

import decimal
import math
import struct
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode

from strongroom.templating._gojson import format_float_g
from strongroom.templating._goyaml.resolver import (
    BOOL,
    FLOAT,
    INT,
    MERGE,
    STR,
    parse_go_int,
    resolve_plain,
)
from strongroom.templating._limits import GoFunctionError
from strongroom.templating._values import GoList, GoMap


class GoYamlLoader(yaml.SafeLoader):
    """SafeLoader whose plain-scalar resolution is go-yaml v2's."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            if value == "<<":
                # go-yaml's decoder recognises merge keys by their text, not by resolution.
                return MERGE
            tag, _ = resolve_plain(value)
            return STR if tag == "timestamp" else tag
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def scan_to_next_token(self) -> None:
        # libyaml's rule, which go-yaml keeps: tabs separate tokens too where no simple key can start (in
        # flow context, after `key:`), so `a:\t1` is {a: 1} in Go where PyYAML stops at the tab.
        if self.index == 0 and self.peek() == "\ufeff":
            self.forward()
        while True:
            tab_is_blank = bool(self.flow_level) or not self.allow_simple_key
            while self.peek() == " " or (self.peek() == "\t" and tab_is_blank):
                self.forward()
            if self.peek() == "#":
                while self.peek() not in "\0\r\n\x85\u2028\u2029":
                    self.forward()
            if not self._line_break():
                return
            if not self.flow_level:
                self.allow_simple_key = True

    def scan_plain_spaces(self, indent: int, start_mark: Any) -> list[str] | None:
        # PyYAML's own, except that tabs are blanks as in libyaml/go-yaml (`a: b\tc` is "b\tc" in Go), and a
        # tab in the indentation of a continuation line is refused as go-yaml refuses it.
        chunks: list[str] = []
        length = 0
        while self.peek(length) in " \t":
            length += 1
        whitespaces = self.prefix(length)
        self.forward(length)
        if self.peek() not in "\r\n\x85\u2028\u2029":
            if whitespaces:
                chunks.append(whitespaces)
            return chunks
        line_break = self._line_break()
        self.allow_simple_key = True
        if self._at_document_marker():
            return None
        breaks: list[str] = []
        while self.peek() in " \t\r\n\x85\u2028\u2029":
            if self.peek() == "\t" and self.column < indent:
                raise yaml.scanner.ScannerError(
                    "while scanning a plain scalar",
                    start_mark,
                    "found a tab character that violates indentation",
                    self.get_mark(),
                )
            if self.peek() in " \t":
                self.forward()
            else:
                breaks.append(self._line_break())
                if self._at_document_marker():
                    return None
        if line_break != "\n":
            chunks.append(line_break)
        elif not breaks:
            chunks.append(" ")
        chunks.extend(breaks)
        return chunks

    def _line_break(self) -> str:
        text: str = self.scan_line_break()  # type: ignore[no-untyped-call]
        return text

    def _at_document_marker(self) -> bool:
        return self.prefix(3) in ("---", "...") and self.peek(3) in "\0 \t\r\n\x85\u2028\u2029"

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        # Keys become strings here, not afterwards: YAML's 1 and true are different keys, but
        # equal as Python dict keys.
        if isinstance(node, MappingNode):
            self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            mapping[_key_text(key)] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_go_int(self, node: ScalarNode) -> object:
        parsed = parse_go_int(str(node.value).replace("_", ""))
        if parsed is not None:
            return parsed
        _, value = resolve_plain(str(node.value))
        return value

    def construct_go_float(self, node: ScalarNode) -> object:
        _, value = resolve_plain(str(node.value))
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(str(node.value))
        except ValueError as exc:
            raise GoFunctionError("cannot decode !!str as a !!float") from exc

    def construct_go_bool(self, node: ScalarNode) -> object:
        tag, value = resolve_plain(str(node.value))
        if tag != BOOL:
            raise GoFunctionError("cannot decode !!str as a !!bool")
        return value


GoYamlLoader.yaml_implicit_resolvers = {}
GoYamlLoader.add_constructor(INT, GoYamlLoader.construct_go_int)
GoYamlLoader.add_constructor(FLOAT, GoYamlLoader.construct_go_float)
GoYamlLoader.add_constructor(BOOL, GoYamlLoader.construct_go_bool)


def _float32_text(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32), which sigs.k8s.io/yaml uses for float keys."""
    try:
        single = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        single = math.copysign(math.inf, value)  # Go's float32 conversion overflows to infinity
    if math.isinf(single):
        return ".inf" if single > 0 else "-.inf"
    for precision in range(1, 10):
        candidate = float(f"{single:.{precision}g}")
        if struct.pack("f", candidate) == struct.pack("f", single):
            return format_float_g(candidate)
    return format_float_g(single)


def _key_text(key: object) -> str:
    if isinstance(key, str):
        return key
    if key is True or key is False:
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return ".nan" if math.isnan(key) else _float32_text(key)
    raise GoFunctionError(f"unsupported map key of type {type(key).__name__}")


class YamlBudgetExceeded(GoFunctionError):
    """The document describes more nodes than the budget allows (aliases expand without bound)."""


def _json_number(value: float) -> int | float:
    """A float64 as encoding/json writes it, as the Python number json.loads would read back: whole
    numbers below 1e21 print without a fraction or exponent, so they are ints (with float64's digits)."""
    if value.is_integer() and abs(value) < 1e21:
        return int(decimal.Decimal(repr(value)))
    return value


def _jsonable(value: object, budget: list[int], *, go: bool = True) -> object:
    """The JSON round trip: keys become strings, every number a float64; NaN/Inf fail.

    `go`: the engine's Go-typed containers and float64s (for templates); otherwise plain dicts, lists and
    JSON numbers (what the JSON text would read back as in Python, for the Template driver's results).
    Counts nodes against `budget`: YAML aliases can describe far more nodes than the text holds
    (go-yaml refuses such documents as "excessive aliasing").
    """
    budget[0] -= 1
    if budget[0] < 0:
        raise YamlBudgetExceeded("yaml: document contains excessive aliasing")
    if isinstance(value, dict):
        items = {_key_text(key): _jsonable(item, budget, go=go) for key, item in value.items()}
        return GoMap(items) if go else items
    if isinstance(value, list):
        converted = [_jsonable(item, budget, go=go) for item in value]
        return GoList(converted) if go else converted
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            raise GoFunctionError("json: unsupported value: non-finite float")
        return number if go else _json_number(number)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise GoFunctionError(f"unsupported YAML value of type {type(value).__name__}")


def parse_yaml(text: str, max_nodes: int, *, go: bool = True) -> object:
    """Load the first document of `text` the way sigs.k8s.io/yaml.Unmarshal sees it.

    At most `max_nodes` nodes, counted after alias expansion (YamlBudgetExceeded past it); `go` as in
    _jsonable."""
    try:
        documents = yaml.load_all(text, Loader=GoYamlLoader)
        first = next(iter(documents), None)
    except yaml.YAMLError as exc:
        raise GoFunctionError(f"yaml: {yaml_problem(exc)}") from None
    except RecursionError:
        raise YamlBudgetExceeded("yaml: document nests too deeply") from None
    try:
        return _jsonable(first, [max_nodes], go=go)
    except RecursionError:
        # A self-referencing alias (`&a [*a]`) or nesting past Python's stack.
        raise YamlBudgetExceeded("yaml: document nests too deeply") from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    # Only the problem and position: PyYAML's full message quotes the offending source text.
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return f"{where}{exc.problem}"
    return "invalid YAML"


def _mapping_error(kind: str) -> str:
    return (
        "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
        f"{kind} into Go value of type map[string]interface {{}}"
    )


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return "number"
    return "object"


def from_yaml(text: str, max_nodes: int) -> dict[str, object]:
    """Helm's fromYaml: a map, or {"Error": message} when the text is not a YAML mapping."""
    try:
        value = parse_yaml(text, max_nodes)
    except GoFunctionError as exc:
        return {"Error": f"error converting YAML to JSON: {exc}"}
    if value is None:
        return {}
    if not isinstance(value, dict):
        return {"Error": _mapping_error(_json_kind(value))}
    return value


def from_yaml_array(text: str, max_nodes: int) -> list[object]:
    """Helm's fromYamlArray: a list, or [message] when the text is not a YAML sequence."""
    try:
        value = parse_yaml(text, max_nodes)
    except GoFunctionError as exc:
        return [f"error converting YAML to JSON: {exc}"]
    if value is None:
        return []
    if not isinstance(value, list):
        return [
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
            f"{_json_kind(value)} into Go value of type []interface {{}}"
        ]
    return value
