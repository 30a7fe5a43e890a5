"""Sprig's and Helm's JSON and YAML functions, as Go's encoders and decoders compute them.

gotpl's versions use Python's json/yaml; these go through _gojson (encoding/json) and _goyaml
(sigs.k8s.io/yaml over go-yaml v2), with the sandbox's size limits, and give Go's error texts.
"""

from __future__ import annotations

import json
from datetime import datetime

from gotpl.funcs.sprig.crypto import Certificate
from gotpl.funcs.sprig.semver import Version

from strongroom.templating import _goyaml
from strongroom.templating._gojson import marshal
from strongroom.templating._limits import GoFunctionError, current
from strongroom.templating._values import go_containers


def _json_extra(value: object) -> object:
    # Types with their own MarshalJSON in Go: semver's Version marshals as its string form, a
    # time.Time as RFC 3339 with the fraction's trailing zeros cut; a certificate is a struct.
    if isinstance(value, Version):
        return str(value)
    if isinstance(value, datetime):
        return _rfc3339_nano(value)
    if isinstance(value, Certificate):
        return {"Cert": value.Cert, "Key": value.Key}
    return None


def _rfc3339_nano(value: datetime) -> str:
    fraction = f"{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    if not offset:
        zone = "Z"
    else:
        minutes = int(offset.total_seconds()) // 60
        zone = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
        + (f".{fraction}" if fraction else "")
        + zone
    )


def _limit() -> int:
    return current().limits.max_value_chars


def to_json(value: object) -> str:
    try:
        return marshal(value, limit=_limit(), extra=_json_extra)
    except GoFunctionError:
        return ""  # Sprig ignores the encoder's error


def must_to_json(value: object) -> str:
    return marshal(value, limit=_limit(), extra=_json_extra)


def to_pretty_json(value: object) -> str:
    try:
        return must_to_pretty_json(value)
    except GoFunctionError:
        return ""


def must_to_pretty_json(value: object) -> str:
    return marshal(value, limit=_limit(), indent="  ", extra=_json_extra)


def to_raw_json(value: object) -> str:
    try:
        return must_to_raw_json(value)
    except GoFunctionError:
        return ""


def must_to_raw_json(value: object) -> str:
    return marshal(value, limit=_limit(), escape_html=False, extra=_json_extra)


def to_yaml(value: object) -> str:
    try:
        return _goyaml.to_yaml(value, limit=_limit(), extra=_json_extra)
    except GoFunctionError:
        return ""  # Helm's toYaml returns "" when marshalling fails


def must_to_yaml(value: object) -> str:
    return _goyaml.to_yaml(value, limit=_limit(), extra=_json_extra)


def _reject_constant(name: str) -> object:
    raise ValueError("invalid character in JSON")  # NaN/Infinity are not JSON for Go


def _decode_json(text: str) -> object:
    """encoding/json into interface{}: every number is a float64."""
    try:
        value = json.loads(text, parse_int=float, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid JSON"
        raise GoFunctionError(reason) from None
    return go_containers(value, current().limits.max_list_items * 10)


def from_yaml(text: str) -> dict[str, object]:
    return _goyaml.from_yaml(text, current().limits.max_list_items * 10)


def from_yaml_array(text: str) -> list[object]:
    return _goyaml.from_yaml_array(text, current().limits.max_list_items * 10)


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "number"


def from_json(text: str) -> dict[str, object]:
    try:
        value = _decode_json(text)
    except GoFunctionError as exc:
        return {"Error": str(exc)}
    if value is None:
        return {}
    if not isinstance(value, dict):
        kind = _json_kind(value)
        return {"Error": f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"}
    return value


def from_json_array(text: str) -> list[object]:
    try:
        value = _decode_json(text)
    except GoFunctionError as exc:
        return [str(exc)]
    if value is None:
        return []
    if not isinstance(value, list):
        return [f"json: cannot unmarshal {_json_kind(value)} into Go value of type []interface {{}}"]
    return value


def must_from_json(text: str) -> object:
    return _decode_json(text)
