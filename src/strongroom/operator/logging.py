"""Log output of the operator process: one JSON object per line (or plain text), for every logger.

Object bodies never reach the logs: lines name objects (`object`: apiVersion, kind, namespace, name), never
quote them, because a log pipeline is a much wider audience than the cluster's RBAC. Libraries that would
print request or response bodies stay at WARNING whatever the level (`NEVER_DEBUG_LOGGERS`).
"""

from __future__ import annotations

import datetime
import logging
import sys
from typing import Any, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from strongroom.operator.config import LogFormat, LogLevel

# The attribute a controller's per-object record carries (Controller.log); rendered as `object` below.
_REF_EXTRAS = frozenset({"k8s_ref"})


def _object_ref(record: logging.LogRecord) -> dict[str, str] | None:
    """The object a per-object record is about, without uid noise or empty fields."""
    ref = getattr(record, "k8s_ref", None)
    if not isinstance(ref, dict):
        return None
    return {key: str(ref[key]) for key in ("apiVersion", "kind", "namespace", "name") if ref.get(key)}


class JsonLineFormatter(JsonFormatter):
    """`{"time", "level", "logger", "message", ["object"], ["exception"], extras...}` per line."""

    def __init__(self) -> None:
        super().__init__(
            reserved_attrs=[*RESERVED_ATTRS, *_REF_EXTRAS],
            # Non-JSON extras (an exception object, a Path) must not break a log line.
            json_default=str,
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        # Fixed keys first, so lines read the same in a terminal and sort the same in a pipeline.
        log_data["time"] = (
            datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        log_data["level"] = record.levelname.lower()
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage()
        ref = _object_ref(record)
        if ref:
            log_data["object"] = ref
        super().add_fields(log_data, record, message_dict)
        # The parent copies `message` again and adds `exc_info` under that name; rename for readers.
        if "exc_info" in log_data:
            log_data["exception"] = log_data.pop("exc_info")
        if "stack_info" in log_data:
            log_data["stack"] = log_data.pop("stack_info")


class TextLineFormatter(logging.Formatter):
    """`time level logger [namespace/name] message` for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return (
            datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )

    def format(self, record: logging.LogRecord) -> str:
        ref = _object_ref(record)
        if ref and ref.get("name"):
            where = f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else ref["name"]
            record = logging.makeLogRecord(record.__dict__)
            record.msg = f"[{where}] {record.getMessage()}"
            record.args = None
        return super().format(record)


class _OperatorStreamHandler(logging.StreamHandler[TextIO]):
    """Marks our handler so a second `configure_logging` call replaces it instead of doubling lines."""


def make_formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonLineFormatter() if log_format is LogFormat.JSON else TextLineFormatter()


#: Loggers that may print request or response bodies (so secret values) at debug/info level.
NEVER_DEBUG_LOGGERS = (
    "httpcore",
    "httpcore2",
    "botocore",
    "aiobotocore",
    "boto3",
    "s3transfer",
    "urllib3",
    "azure",
    "msal",
    "google",
    "grpc",
    "hvac",
    "hpack",
    "psycopg",
)


def configure_logging(
    log_format: LogFormat, log_level: LogLevel, stream: TextIO | None = None
) -> logging.Handler:
    """Route every logger (ours and the libraries') through one handler on the root logger."""
    handler = _OperatorStreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _OperatorStreamHandler)]
    root.addHandler(handler)
    root.setLevel(log_level.number)
    # Python warnings (deprecations from libraries) would otherwise be bare text on stderr, breaking
    # the one-JSON-object-per-line contract.
    logging.captureWarnings(True)
    # Only our messages are about the operator; library chatter (asyncio's slow-callback
    # notes, aiohttp's per-request access log, httpx request lines) stays out unless debugging.
    quiet = logging.DEBUG if log_level is LogLevel.DEBUG else logging.WARNING
    for name in ("asyncio", "aiohttp.access", "httpx", "httpx2"):
        logging.getLogger(name).setLevel(quiet)
    # Connection-level tracing (every TLS handshake and header block) is too much even for debug.
    # The secret store SDKs go further: at debug level botocore logs whole response bodies (secret
    # values included), and the Azure, Google and Vault clients log request/response details. They
    # stay at WARNING whatever --log-level says; tests/integration/test_secretmappings.py runs the
    # operator at debug level with canary values to keep it that way.
    for name in NEVER_DEBUG_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
