"""Client for remote drivers speaking the Driver API v0.9.3: `PUT|GET|DELETE {target}{guresid}`.

- PUT body `{type, resource, driver: {values, secrets}}`; 200/201 answer
  `{id, type, resource: {values, secrets}, manifests: [{location, data}]}`.
- 202 (working on it) and 409 (an operation that cannot be interrupted is running): send the same request
  again, with bounded exponential backoff (plus jitter, honouring `Retry-After`), until the operation
  deadline; then `DriverTimeout` (retryable: the next reconcile picks the operation up again). A request
  that carries a `DriverOperation` (the operator's) is answered at once: `OperationInProgress` says when
  to send it again, and the operation keeps the backoff, the deadline and the cookie between calls, so
  the caller waits on a timer instead of in a parked task. Without one (the CLI), this module polls.
- 400: `DriverRejected` (not retryable); 401/403: `DriverAuthFailed` (not retryable); 404: GET -> None,
  DELETE -> done; 405: GET -> None (drivers written to the older spec have no GET, and the operator then
  applies, which is idempotent); 408, 429, 5xx and network errors: `DriverUnavailable` (retryable).
- Cookie: the request carries `Humanitec-Driver-Cookie` (the value the driver set last, byte for byte;
  drivers choose the encoding, base64 is what the spec suggests); an answer's `Set-Humanitec-Driver-Cookie`
  replaces it (empty: cleared), no header keeps it. Cookies of 10 KiB or more are refused both ways.
- Each HTTP request gets a fresh signed JWT (`Authorization: Bearer`) bound to it (audience = target,
  subject = the Resource, a unique id, method and URL: `strongroom.drivers.signing`), the TLS settings of
  the Driver object, and one deadline (`timeouts.request`, never past the operation deadline) for the
  whole exchange: connecting, headers and the complete body, so a server trickling bytes ends there.
- Answers are read up to `max_response_bytes` (as sent and after gzip/deflate decoding, checked while
  streaming): a larger one is `DriverAnswerTooLarge`. Error bodies reach the Resource's status only as a
  short printable excerpt of a structured `{error, message}` (never as arbitrary text).
- Connections: each `RemoteDriver` keeps one HTTP client (aiohttp underneath, `strongroom.net`) for its
  lifetime, so requests to a driver reuse kept-alive connections and one TLS context; whoever owns the
  `RemoteDriver` calls `close()` when done with it. Standard HTTP cookies (`Set-Cookie`, e.g. a load
  balancer's affinity cookie) live for one operation, as they did with a client per operation: they are
  never shared between Resources.

This module is the client: the Driver protocol's calls, the operation (one step, or polling) and the
configuration from a Driver object. The HTTP exchange and the client's lifetime are in `remotehttp`;
what a request sends and what an answer means in `remoteprotocol` (both in `strongroom.drivers`).

Nothing that leaves these modules as an exception holds a secret: driver error bodies are redacted with
every secret of the request (and of the answer), validation errors are reported without inputs, and
exceptions are raised `from None` so no chained exception carries the original text.
"""

from __future__ import annotations

import asyncio
import random
import re
import ssl
import time
import urllib.parse
from dataclasses import dataclass, replace

import httpx2

from strongroom.api import constants as c
from strongroom.api.common import parse_duration
from strongroom.api.driver import DriverSpec
from strongroom.drivers.base import (
    DriverConfigError,
    DriverError,
    DriverOperation,
    DriverProtocolError,
    DriverRequest,
    DriverResult,
    DriverTimeout,
    OperationInProgress,
)
from strongroom.drivers.remotehttp import Answer, DriverHTTP
from strongroom.drivers.remoteprotocol import (
    ERROR_EXCERPT_MAX,
    answer_cookie,
    driver_error,
    driver_result,
    error_excerpt,
    put_body,
)
from strongroom.drivers.signing import SigningKey
from strongroom.stores.base import SecretValue

_GURESID = re.compile(c.GURESID)
_POLL_STATUSES = frozenset({202, 409})
#: The answer size cap when neither the operator nor the Driver sets one.
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class RemoteTimings:
    """Time limits (seconds), polling, and the answer size cap for one remote driver."""

    request: float = 30.0
    """One HTTP request: connecting, sending, the headers and the whole body of the answer."""
    operation: float = 900.0
    """A whole PUT/GET/DELETE, polling after 202/409 included."""
    poll_initial: float = 1.0
    poll_max: float = 30.0
    poll_factor: float = 2.0
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """Largest answer read, as sent and after decompression."""


class RemoteDriver:
    """One remote driver (a Driver object): implements the `Driver` protocol over HTTP."""

    in_process = False

    def __init__(
        self,
        target: str,
        *,
        signing_key: SigningKey | None = None,
        timings: RemoteTimings | None = None,
        verify: ssl.SSLContext | bool = True,
        name: str | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        """`target`: base URL; resources live at `{target}{guresid}` (so it normally ends with `/`).
        `transport`: an httpx2 transport to use instead of the network (tests, in-process drivers); by
        default requests go through an `AiohttpTransport` with `verify` and the environment's proxy."""
        parsed = urllib.parse.urlsplit(target)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise DriverConfigError(f"driver target must be an http(s) URL, not {_display_url(target)!r}")
        self.target = target
        self.signing_key = signing_key
        self.timings = timings or RemoteTimings()
        self.verify = verify
        self.name = name or _display_url(target)
        self._http = DriverHTTP(
            target,
            name=self.name,
            signing_key=signing_key,
            request_timeout=self.timings.request,
            max_response_bytes=self.timings.max_response_bytes,
            verify=verify,
            transport=transport,
        )

    @classmethod
    def from_spec(
        cls,
        spec: DriverSpec,
        *,
        name: str,
        signing_key: SigningKey | None,
        defaults: RemoteTimings | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> RemoteDriver:
        """From a Driver object's spec. `signing_key` is required when `spec.sign` is true (the default)."""
        base = defaults or RemoteTimings()
        timings = base
        if spec.timeouts is not None:
            timings = replace(
                timings,
                request=_seconds(spec.timeouts.request, base.request, "timeouts.request"),
                operation=_seconds(spec.timeouts.operation, base.operation, "timeouts.operation"),
            )
        if spec.max_response_bytes is not None:
            timings = replace(timings, max_response_bytes=spec.max_response_bytes)
        if spec.sign and signing_key is None:
            raise DriverConfigError(f"driver {name!r} signs requests but no signing key is configured")
        return cls(
            spec.target,
            signing_key=signing_key if spec.sign else None,
            timings=timings,
            verify=_tls_verify(spec, name),
            name=name,
            transport=transport,
        )

    # --- lifetime --------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the HTTP client and its connections; safe to call more than once. Never fails a call in
        progress: the last operation running closes it (`DriverHTTP.close`)."""
        await self._http.close()

    async def __aenter__(self) -> RemoteDriver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- the Driver protocol --------------------------------------------------------------------------

    async def observe(self, req: DriverRequest) -> DriverResult | None:
        """The Driver API's `GET`: the resource's outputs, None when it does not exist or the driver has no
        GET (404/405). Not part of the Driver protocol (drivers/base.py says why) and not called by the
        operator; it is the client of the SDK's GET for tools and conformance tests."""
        try:
            answer, cookie = await self._operation("GET", req)
            if answer.status in {404, 405}:
                return None
            if answer.status in {200, 201}:
                return driver_result(self.name, answer, req, cookie)
            raise driver_error(self.name, answer, req)
        except (DriverError, OperationInProgress):
            raise
        except Exception as exc:
            raise self._unexpected(req, exc) from None

    async def apply(self, req: DriverRequest) -> DriverResult:
        try:
            answer, cookie = await self._operation("PUT", req)
            if answer.status in {200, 201}:
                return driver_result(self.name, answer, req, cookie)
            raise driver_error(self.name, answer, req)
        except (DriverError, OperationInProgress):
            raise
        except Exception as exc:
            raise self._unexpected(req, exc) from None

    async def delete(self, req: DriverRequest) -> None:
        try:
            answer, _ = await self._operation("DELETE", req)
            if answer.status not in {200, 204, 404}:
                raise driver_error(self.name, answer, req)
        except (DriverError, OperationInProgress):
            raise
        except Exception as exc:
            raise self._unexpected(req, exc) from None

    def _unexpected(self, req: DriverRequest, exc: Exception) -> DriverError:
        # Anything not foreseen still leaves as a DriverError with a redacted message (raised `from None`
        # by the caller, so the original exception and its text are not chained).
        message = f"driver {self.name!r}: unexpected {type(exc).__name__}: {exc}"
        return DriverProtocolError(req.redact(message))

    # --- the operation ----------------------------------------------------------------------------------

    def url(self, guresid: str) -> str:
        return self._http.url(guresid)

    async def _operation(self, method: str, req: DriverRequest) -> tuple[Answer, SecretValue | None]:
        """The final answer (neither 202 nor 409) and the cookie to keep.

        With `req.operation`: one step, `OperationInProgress` while the driver works. Without: steps of a
        fresh operation, sleeping between them, until the answer is final."""
        if req.operation is not None:
            if req.operation.method != method:
                raise DriverConfigError(
                    f"driver {self.name!r}: a {req.operation.method} operation cannot continue with {method}"
                )
            return await self._step(method, req, req.operation)
        operation = DriverOperation(method)
        while True:
            try:
                return await self._step(method, req, operation)
            except OperationInProgress as working:
                await asyncio.sleep(working.retry_after)

    async def _step(
        self, method: str, req: DriverRequest, operation: DriverOperation
    ) -> tuple[Answer, SecretValue | None]:
        """Send the request once for `operation`; the final answer, or OperationInProgress."""
        if not _GURESID.fullmatch(req.guresid) or len(req.guresid) > c.GURESID_MAX:
            raise DriverConfigError(f"driver {self.name!r}: {req.guresid!r} is not a valid GUResID")
        body = put_body(req) if method == "PUT" else None
        timings = self.timings
        if operation.started is None:
            operation.started = time.monotonic()
        deadline = operation.started + timings.operation
        cookie = operation.cookie if operation.cookie_set else req.cookie
        # HTTP cookies of this operation only (polls of one operation may need a load balancer's affinity).
        jar: httpx2.Cookies = operation.state.setdefault("http_cookies", httpx2.Cookies())
        answer = await self._http.exchange(jar, method, req, body, cookie, deadline)
        cookie = answer_cookie(self.name, answer, req, cookie)
        if answer.status not in _POLL_STATUSES:
            return answer, cookie
        operation.cookie, operation.cookie_set = cookie, True
        operation.polls += 1
        delay: float = operation.state.get("delay", timings.poll_initial)
        wait = _retry_after(answer, floor=timings.poll_initial, ceiling=timings.poll_max)
        if wait is None:
            wait = delay * random.uniform(0.8, 1.2)  # jitter: many Resources share one driver
            operation.state["delay"] = min(delay * timings.poll_factor, timings.poll_max)
        if time.monotonic() + wait >= deadline:
            raise DriverTimeout(
                f"driver {self.name!r}: {method} {req.guresid} still in progress "
                f"({answer.status}) after {timings.operation:g}s"
            )
        raise OperationInProgress(
            f"driver {self.name!r} is working on {method} {req.guresid} ({answer.status}); "
            f"asking again in {wait:.0f}s",
            wait,
        )


def _retry_after(answer: Answer, *, floor: float, ceiling: float) -> float | None:
    # Bounded both ways: "Retry-After: 0" from a busy driver must not turn polling into a busy loop.
    value = answer.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(floor, min(float(value), ceiling))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _seconds(duration: str | None, default: float, field: str) -> float:
    if duration is None:
        return default
    try:
        seconds = parse_duration(duration).total_seconds()
    except ValueError as exc:
        raise DriverConfigError(f"{field}: {exc}") from None
    if seconds <= 0:
        # Never "the default" nor "no limit": the schema's floor (1s) should have refused it already.
        raise DriverConfigError(f"{field}: {duration} is not a usable time limit")
    return seconds


def _tls_verify(spec: DriverSpec, name: str) -> ssl.SSLContext | bool:
    if spec.tls is None:
        return True
    if spec.tls.insecure_skip_verify:
        return False
    if spec.tls.ca_bundle:
        context = ssl.create_default_context()  # system roots, plus the bundle
        try:
            context.load_verify_locations(cadata=spec.tls.ca_bundle)
        except (ssl.SSLError, ValueError) as exc:
            raise DriverConfigError(f"driver {name!r}: tls.caBundle cannot be loaded: {exc}") from None
        return context
    return True


def _display_url(url: str) -> str:
    """The URL without user info, query or fragment (they may hold credentials)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ERROR_EXCERPT_MAX",
    "RemoteDriver",
    "RemoteTimings",
    "error_excerpt",
]
