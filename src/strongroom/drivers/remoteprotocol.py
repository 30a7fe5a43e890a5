"""The Driver API v0.9.3 as the operator reads it: a request's PUT body, and an answer turned into a result,
a kept cookie or an error.

- `put_body`: `{type, resource, driver: {values, secrets}}`, the secrets revealed only here, for the wire.
- `answer_cookie`: an answer's `Set-Humanitec-Driver-Cookie` replaces the cookie (empty: cleared), no header
  keeps it; one of 10 KiB or more is a protocol error.
- `driver_result`: a 200/201 body `{id, type, resource: {values, secrets}, manifests}`, read leniently
  (drivers/wire.py), checked to be for the request's GUResID and type.
- `driver_error`: which `DriverError` a status means (400 rejected, 401/403 auth, 408/429/5xx unavailable,
  404 a wrong target, anything else a protocol error), with at most a short printable excerpt of a
  structured `{error, message}` body (`error_excerpt`): a driver cannot write arbitrary text into a status.

Every message is redacted with the secrets of the request and of the answer. The HTTP exchange itself is in
drivers/remotehttp.py; the client that puts them together is drivers/remote.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from strongroom.drivers.base import (
    DriverAuthFailed,
    DriverConfigError,
    DriverError,
    DriverProtocolError,
    DriverRejected,
    DriverRequest,
    DriverResult,
    DriverUnavailable,
    Manifest,
    iter_secret_values,
    redact,
    reveal_tree,
    split_update,
    to_secret_tree,
)
from strongroom.drivers.remotehttp import Answer
from strongroom.drivers.wire import (
    COOKIE_MAX_BYTES,
    ERROR_CODE,
    SET_COOKIE_HEADER,
    LenientOutputData,
    field_errors,
)
from strongroom.stores.base import SecretValue

#: How much of a driver's error message reaches a Resource's status (the status is not a channel).
ERROR_EXCERPT_MAX = 200


def put_body(req: DriverRequest) -> dict[str, Any]:
    """The body of a PUT for `req`."""
    return {
        "type": req.type,
        "resource": dict(req.resource_inputs),
        "driver": {"values": dict(req.values), "secrets": reveal_tree(req.secrets)},
    }


def answer_cookie(
    name: str, answer: Answer, req: DriverRequest, previous: SecretValue | None
) -> SecretValue | None:
    """The driver cookie to keep after `answer` (driver `name`), given the one sent (`previous`)."""
    wanted = SET_COOKIE_HEADER.lower().encode()
    found = [value for key, value in answer.headers.raw if key.lower() == wanted]
    if not found:
        return previous
    value = found[-1].strip()
    if len(value) >= COOKIE_MAX_BYTES:
        raise DriverProtocolError(
            f"driver {name!r}: {answer.method} {req.guresid} set a cookie of {len(value)} bytes; "
            f"the Driver API allows less than {COOKIE_MAX_BYTES}",
            status=answer.status,
        )
    return SecretValue(value) if value else None


def driver_result(name: str, answer: Answer, req: DriverRequest, cookie: SecretValue | None) -> DriverResult:
    """The result a 200/201 answer of driver `name` carries; `DriverProtocolError` if it is not one."""
    where = f"driver {name!r}: {answer.method} {req.guresid}"
    try:
        raw = json.loads(answer.body)
    except ValueError:
        raise DriverProtocolError(f"{where}: the answer is not JSON", status=answer.status) from None
    answer_secrets = _raw_secrets(raw)

    def protocol_error(message: str) -> DriverProtocolError:
        return DriverProtocolError(
            redact(f"{where}: {message}", [*req.secret_values(), *answer_secrets]),
            status=answer.status,
        )

    try:
        data = LenientOutputData.model_validate(raw)
    except ValidationError as exc:
        raise protocol_error(f"the answer does not match the Driver API: {field_errors(exc)}") from None
    if data.id is not None and data.id != req.guresid:
        raise protocol_error("the answer is for another GUResID")
    if data.type is not None and data.type != req.type:
        raise protocol_error(f"the answer is for resource type {data.type!r}, not {req.type!r}")
    try:
        manifests = [Manifest(location=item.location, data=item.data) for item in data.normalised_manifests()]
        values, update = split_update(req.type, (data.resource.values if data.resource else None) or {})
    except ValueError as exc:
        raise protocol_error(str(exc)) from None
    return DriverResult(
        id=req.guresid,
        type=req.type,
        values=values,
        secrets=to_secret_tree((data.resource.secrets if data.resource else None) or {}),
        manifests=manifests,
        cookie=cookie,
        update=update,
    )


def driver_error(name: str, answer: Answer, req: DriverRequest) -> DriverError:
    """The error a final answer of driver `name` that is not a success means."""
    status = answer.status
    detail = req.redact(error_excerpt(answer.body, answer.headers.get("content-type")))
    reason = _printable(answer.reason, 40)
    message = f"driver {name!r}: {answer.method} {req.guresid}: {status} {reason}".rstrip()
    if detail:
        message += f": {detail}"
    error: type[DriverError]
    if status == 400:
        error = DriverRejected
    elif status in {401, 403}:
        error = DriverAuthFailed
    elif status in {408, 429} or status >= 500:
        error = DriverUnavailable
    elif status == 404:
        error = DriverConfigError
        message += " (is the Driver's target right?)"
    else:
        error = DriverProtocolError
    return error(message, status=status)


_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]+")


def _printable(text: str, limit: int) -> str:
    """`text` as one line of printable ASCII, at most `limit` characters (`...` marks a cut)."""
    flat = " ".join(_NOT_PRINTABLE.sub(" ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def error_excerpt(body: bytes, content_type: str | None) -> str:
    """What of an error answer may be shown in a Resource's status: `RES-1xx: message` from a structured
    Error body (printable ASCII, cut to `ERROR_EXCERPT_MAX`), else only its size and type. A status is
    read by many; a driver must not be able to write arbitrary text into it. Not yet redacted."""
    if not body:
        return ""
    try:
        loose = json.loads(body)
    except ValueError:
        loose = None
    if isinstance(loose, dict) and isinstance(loose.get("message"), str):
        code = loose.get("error")
        text = loose["message"]
        if isinstance(code, str) and re.fullmatch(ERROR_CODE, code):
            text = f"{code}: {text}"
        return _printable(text, ERROR_EXCERPT_MAX)
    kind = _printable((content_type or "no content type").split(";")[0], 60)
    return f"{len(body)} bytes of {kind}"


def _raw_secrets(raw: Any) -> list[SecretValue]:
    """Secret outputs in an answer, found before validation, so that errors about the answer hide them."""
    if not isinstance(raw, dict):
        return []
    resource = raw.get("resource")
    if not isinstance(resource, dict) or not isinstance(resource.get("secrets"), dict):
        return []
    return list(iter_secret_values(to_secret_tree(resource["secrets"])))


__all__ = [
    "ERROR_EXCERPT_MAX",
    "answer_cookie",
    "driver_error",
    "driver_result",
    "error_excerpt",
    "put_body",
]
