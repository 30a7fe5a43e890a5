"""The driver contract: redaction, secret trees, JSON patch, Echo, the wire models, the registry."""

from __future__ import annotations

import base64
import json
import urllib.parse
from typing import Any

import pytest
from pydantic import ValidationError

from strongroom.api.driver import BUILTIN_DRIVER_TYPES, Driver, DriverSpec, DriverTimeouts, DriverTLS
from strongroom.drivers.base import (
    REDACTED,
    DriverConfigError,
    DriverError,
    DriverNotFound,
    DriverRejected,
    DriverRequest,
    DriverResult,
    DriverUnavailable,
    iter_secret_values,
    redact,
    reveal_tree,
    split_update,
    to_secret_tree,
    validate_json_patch,
)
from strongroom.drivers.echo import EchoDriver
from strongroom.drivers.remote import RemoteDriver
from strongroom.drivers.signing import SigningKey, generate_private_key
from strongroom.drivers.wire import InputData, LenientOutputData, OutputData, field_errors
from strongroom.stores.base import SecretValue

CANARY = "canary-Zq8#x\"y'\n€-secret"


def _request(**overrides: Any) -> DriverRequest:
    fields: dict[str, Any] = {
        "guresid": "abc123",
        "type": "postgres",
        "resource_id": "shared.db",
        "values": {"host": "db.example.com", "port": 5432},
        "secrets": {"credentials": {"password": SecretValue(CANARY)}, "token": SecretValue("tok-123456")},
    }
    fields.update(overrides)
    return DriverRequest(**fields)


# --- redact -----------------------------------------------------------------------------------------------


def test_redact_replaces_every_common_encoding_of_a_secret() -> None:
    secret = SecretValue(CANARY)
    texts = [
        f"plain {CANARY} end",
        "json " + json.dumps({"password": CANARY}),
        "json-utf8 " + json.dumps({"password": CANARY}, ensure_ascii=False),
        f"repr {CANARY!r}",
        "url " + urllib.parse.quote(CANARY, safe=""),
        "form " + urllib.parse.quote_plus(CANARY),
        "b64 " + base64.b64encode(CANARY.encode()).decode(),
        "b64url " + base64.urlsafe_b64encode(CANARY.encode()).decode(),
    ]
    for text in texts:
        cleaned = redact(text, [secret])
        assert REDACTED in cleaned, text
        for line in CANARY.splitlines():
            assert line not in cleaned, text


def test_redact_handles_lines_of_multiline_secrets_and_overlaps() -> None:
    pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n-----END KEY-----\n"
    cleaned = redact("driver said: bad line MIIEvQIBADANBgkqhkiG9w0BAQEFAASC here", [pem])
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in cleaned
    # A secret containing another is removed whole, not left half-visible.
    cleaned = redact("x=abcdefgh-longer y=abcdefgh", ["abcdefgh", b"abcdefgh-longer"])
    assert cleaned == f"x={REDACTED} y={REDACTED}"
    # Empty secrets change nothing; the text without secrets is untouched.
    assert redact("nothing to hide", [SecretValue(""), ""]) == "nothing to hide"


def test_request_redact_covers_driver_secrets_and_cookie() -> None:
    req = _request(cookie=SecretValue("cookie-value-42"))
    text = f"echo: {CANARY} tok-123456 cookie-value-42 db.example.com"
    cleaned = req.redact(text)
    assert CANARY not in cleaned
    assert "tok-123456" not in cleaned
    assert "cookie-value-42" not in cleaned
    assert "db.example.com" in cleaned
    assert len(req.secret_values()) == 3
    assert CANARY not in repr(req)


# --- secret trees and JSON patch --------------------------------------------------------------------------


def test_secret_tree_round_trip() -> None:
    tree = to_secret_tree({"a": "x", "b": {"c": 5, "d": True, "e": None}, "f": ["1", 2]})
    assert isinstance(tree["a"], SecretValue)
    assert reveal_tree(tree) == {"a": "x", "b": {"c": "5", "d": "true"}, "f": '["1",2]'}
    assert sorted(v.reveal_text() for v in iter_secret_values(tree)) == sorted(['["1",2]', "5", "true", "x"])
    assert "x" not in repr(tree["a"])


def test_json_patch_validation() -> None:
    ops = [
        {"op": "add", "path": "/spec/containers/main/variables/X", "value": "1"},
        {"op": "remove", "path": "/spec/a"},
        {"op": "move", "from": "/a", "path": "/b"},
    ]
    assert validate_json_patch(ops) == ops
    for bad, message in [
        ({"op": "add", "path": "/a"}, "needs a value"),
        ({"op": "frobnicate", "path": "/a"}, "op must be one of"),
        ({"op": "remove", "path": "a"}, "JSON pointer"),
        ({"op": "copy", "path": "/a"}, "from must be"),
        ("add /a", "must be an object"),
    ]:
        with pytest.raises(ValueError, match=message):
            validate_json_patch([bad])
    with pytest.raises(ValueError, match="must be a list"):
        validate_json_patch({"op": "add"})


def test_split_update_only_for_workloads() -> None:
    ops = [{"op": "add", "path": "/x", "value": 1}]
    assert split_update("workload", {"update": ops, "a": 1}) == ({"a": 1}, ops)
    assert split_update("postgres", {"update": "kept", "a": 1}) == ({"update": "kept", "a": 1}, None)
    with pytest.raises(ValueError, match="update"):
        split_update("workload", {"update": [{"op": "add"}]})


# --- errors -----------------------------------------------------------------------------------------------


def test_error_classes_carry_reason_and_retryable() -> None:
    assert DriverUnavailable("x").retryable
    assert DriverUnavailable.reason == "DriverUnavailable"
    assert not DriverRejected("x").retryable
    assert DriverNotFound("x").retryable
    custom = DriverError("x", reason="Custom", retryable=False)
    assert custom.reason == "Custom"
    assert not custom.retryable
    assert DriverError.retryable
    error = DriverRejected("bad", status=400)
    assert isinstance(error, DriverError)
    assert error.status == 400
    assert str(error) == "bad"


# --- echo -------------------------------------------------------------------------------------------------


async def test_echo_returns_values_and_secrets_unchanged() -> None:
    req = _request()
    driver = EchoDriver()
    result = await driver.apply(req)
    assert result.id == "abc123"
    assert result.type == "postgres"
    assert result.values == {"host": "db.example.com", "port": 5432}
    assert reveal_tree(result.secrets) == {"credentials": {"password": CANARY}, "token": "tok-123456"}
    assert result.manifests == []
    assert result.cookie is None
    assert result.update is None
    assert await driver.apply(req) == result  # stateless: the same answer again
    await driver.delete(req)  # nothing to undo
    assert CANARY not in repr(result)


async def test_echo_for_workloads_moves_update_out_and_checks_it() -> None:
    ops = [{"op": "add", "path": "/spec/containers/main/variables/A", "value": "b"}]
    result = await EchoDriver().apply(_request(type="workload", values={"update": ops, "x": 1}))
    assert result.update == ops
    assert result.values == {"x": 1}
    with pytest.raises(DriverRejected, match=r"update\[0\]"):
        await EchoDriver().apply(_request(type="workload", values={"update": [{"op": "add", "path": "/a"}]}))


# --- wire models ------------------------------------------------------------------------------------------


def test_input_data_accepts_the_spec_shape_and_reports_fields_without_values() -> None:
    body = {"type": "postgres", "resource": {"a": 1}, "driver": {"values": {"v": 1}, "secrets": {"s": "x"}}}
    parsed = InputData.model_validate(body)
    assert parsed.driver.secrets == {"s": "x"}
    assert InputData.model_validate({"type": "s3"}).driver.values == {}
    with pytest.raises(ValidationError) as info:
        InputData.model_validate({"type": "Bad Type!", "driver": {"values": CANARY, "secrets": {}}})
    message = field_errors(info.value)
    assert "type:" in message
    assert "driver.values:" in message
    assert CANARY not in message


def test_output_data_is_strict_and_lenient_reading_maps_old_names() -> None:
    good = {
        "id": "abc123",
        "type": "postgres",
        "resource": {"values": {"host": "h"}, "secrets": {"password": "p"}},
        "manifests": [{"location": "namespace", "data": {"kind": "ConfigMap"}}],
    }
    assert OutputData.model_validate(good).manifests[0].location == "namespace"
    with pytest.raises(ValidationError):
        OutputData.model_validate({**good, "manifests": [{"location": "container", "data": {}}]})
    old = LenientOutputData.model_validate(
        {
            "id": "abc123",
            "future": True,
            "manifests": [
                {"location": "container", "manifest": {"name": "c"}},
                {"location": "volume", "data": {"name": "v"}},
            ],
        }
    )
    assert [(m.location, m.data) for m in old.normalised_manifests()] == [
        ("containers", {"name": "c"}),
        ("volumes", {"name": "v"}),
    ]
    with pytest.raises(ValueError, match=r"manifests\[0\]"):
        LenientOutputData.model_validate(
            {"manifests": [{"location": "moon", "data": {}}]}
        ).normalised_manifests()


# --- registry ---------------------------------------------------------------------------------------------


def test_registry_resolves_builtins_and_driver_objects() -> None:
    from strongroom.drivers.registry import DriverRegistry
    from strongroom.drivers.template import TemplateDriver

    registry = DriverRegistry()
    for name in BUILTIN_DRIVER_TYPES:
        assert registry.is_builtin(name)
    assert isinstance(registry.resolve("humanitec/echo"), EchoDriver)
    assert isinstance(registry.resolve("strongroom/template"), TemplateDriver)
    with pytest.raises(DriverNotFound) as missing:
        registry.resolve("s3")
    assert missing.value.retryable

    spec = DriverSpec(
        target="https://drivers.example.com/s3/",
        timeouts=DriverTimeouts(request="5s", operation="2m"),
        tls=DriverTLS(insecure_skip_verify=True),
    )
    obj = Driver.model_validate({"metadata": {"name": "s3", "namespace": "team"}, "spec": spec.model_dump()})
    key = SigningKey(generate_private_key(2048), "org")
    remote = registry.resolve("s3", obj, signing_key=key)
    assert isinstance(remote, RemoteDriver)
    assert remote.url("abc123") == "https://drivers.example.com/s3/abc123"
    assert remote.timings.request == 5
    assert remote.timings.operation == 120
    assert remote.verify is False
    assert remote.signing_key is key
    assert remote.name == "team/s3"
    with pytest.raises(DriverConfigError, match="signing key"):
        registry.resolve("s3", obj)
    unsigned = obj.model_copy(update={"spec": spec.model_copy(update={"sign": False})})
    assert registry.resolve("s3", unsigned).signing_key is None  # type: ignore[attr-defined]
    with pytest.raises(DriverConfigError, match="passed for driver type"):
        registry.resolve("other", obj, signing_key=key)


def test_result_repr_hides_secrets() -> None:
    result = DriverResult(id="a", type="t", secrets={"p": SecretValue(CANARY)}, cookie=SecretValue(CANARY))
    assert CANARY not in repr(result)
