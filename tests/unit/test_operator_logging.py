"""Log lines of the operator process: JSON fields, text form, objects named not quoted."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator

import pytest

from strongroom.operator.config import LogFormat, LogLevel
from strongroom.operator.logging import configure_logging

REF = {
    "apiVersion": "strongroom.dev/v1alpha1",
    "kind": "SecretStore",
    "namespace": "team-a",
    "name": "vault",
    "uid": "u-1",
}
SECRET = "s3cr3t-value"


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _json_logging(level: LogLevel = LogLevel.DEBUG) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(LogFormat.JSON, level, stream)
    return stream


@pytest.mark.usefixtures("restore_root")
def test_json_line_fields() -> None:
    stream = _json_logging(LogLevel.INFO)
    logging.getLogger("strongroom.reconcile").info("synced %d keys", 3, extra={"store": "vault"})
    (line,) = _lines(stream)
    assert list(line)[:4] == ["time", "level", "logger", "message"]
    assert line["level"] == "info"
    assert line["logger"] == "strongroom.reconcile"
    assert line["message"] == "synced 3 keys"
    assert line["store"] == "vault"
    assert isinstance(line["time"], str)
    assert line["time"].endswith("Z")


@pytest.mark.usefixtures("restore_root")
def test_per_object_records_name_the_object() -> None:
    stream = _json_logging()
    logging.getLogger("strongroom.controller.secretstore").warning("went wrong", extra={"k8s_ref": REF})
    (line,) = _lines(stream)
    assert line["object"] == {k: REF[k] for k in ("apiVersion", "kind", "namespace", "name")}
    assert "k8s_ref" not in line
    assert line["level"] == "warning"


@pytest.mark.usefixtures("restore_root")
def test_exceptions_are_one_field_of_one_line() -> None:
    stream = _json_logging()
    try:
        raise RuntimeError("kaput")
    except RuntimeError:
        logging.getLogger("strongroom.x").exception("failed")
    (line,) = _lines(stream)
    assert "RuntimeError: kaput" in str(line["exception"])
    assert stream.getvalue().count("\n") == 1


@pytest.mark.usefixtures("restore_root")
def test_non_json_extras_do_not_break_a_line() -> None:
    stream = _json_logging()
    logging.getLogger("strongroom.x").info("path", extra={"where": object()})
    (line,) = _lines(stream)
    assert str(line["where"]).startswith("<object object")


@pytest.mark.usefixtures("restore_root")
def test_text_format() -> None:
    stream = io.StringIO()
    configure_logging(LogFormat.TEXT, LogLevel.INFO, stream)
    logging.getLogger("strongroom.controller.secretstore").warning("went wrong", extra={"k8s_ref": REF})
    logging.getLogger("strongroom.x").debug("hidden")
    logging.getLogger("strongroom.x").info("plain %s", "line")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("WARNING strongroom.controller.secretstore [team-a/vault] went wrong")
    assert second.endswith("INFO    strongroom.x plain line")


@pytest.mark.usefixtures("restore_root")
def test_configuring_twice_does_not_double_lines() -> None:
    first = _json_logging()
    second = _json_logging()
    logging.getLogger("strongroom.x").info("once")
    assert first.getvalue() == ""
    assert len(_lines(second)) == 1


@pytest.mark.usefixtures("restore_root")
def test_python_warnings_become_log_records() -> None:
    stream = _json_logging(LogLevel.INFO)
    warnings.warn("old API", DeprecationWarning, stacklevel=1)
    (line,) = _lines(stream)
    assert line["logger"] == "py.warnings"
    assert "DeprecationWarning: old API" in str(line["message"])


@pytest.mark.usefixtures("restore_root")
def test_library_chatter_is_quiet_unless_debugging() -> None:
    stream = _json_logging(LogLevel.INFO)
    logging.getLogger("httpx2").info("HTTP Request: GET /version")
    logging.getLogger("aiohttp.access").info("GET /readyz 200")
    logging.getLogger("httpcore2.connection").debug("connect_tcp.started")
    assert stream.getvalue() == ""


def test_store_sdks_never_log_below_warning_even_at_debug() -> None:
    """botocore logs whole response bodies (secret values) at debug level: it must stay quiet."""
    import io

    from strongroom.operator.config import LogFormat, LogLevel
    from strongroom.operator.logging import NEVER_DEBUG_LOGGERS, configure_logging

    stream = io.StringIO()
    handler = configure_logging(LogFormat.JSON, LogLevel.DEBUG, stream=stream)
    try:
        logging.getLogger("botocore.parsers").debug("Response body: {'SecretString': 'canary-123'}")
        logging.getLogger("azure.core.pipeline").info("Request body: canary-456")
        logging.getLogger("strongroom.test").debug("our own debug line")
        assert "canary" not in stream.getvalue()
        assert "our own debug line" in stream.getvalue()
        levels = [logging.getLogger(name).getEffectiveLevel() for name in NEVER_DEBUG_LOGGERS]
        assert all(level >= logging.WARNING for level in levels)
    finally:
        logging.getLogger().removeHandler(handler)
