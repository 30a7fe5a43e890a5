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

Nothing that leaves this module as an exception holds a secret: driver error bodies are redacted with
every secret of the request (and of the answer), validation errors are reported without inputs, and
exceptions are raised `from None` so no chained exception carries the original text.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import random
import re
import ssl
import time
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any

import httpx2
from pydantic import ValidationError

from strongroom import __version__
from strongroom.api import constants as c
from strongroom.api.common import parse_duration
from strongroom.api.driver import DriverSpec
from strongroom.drivers.base import (
    DriverAnswerTooLarge,
    DriverAuthFailed,
    DriverConfigError,
    DriverError,
    DriverOperation,
    DriverProtocolError,
    DriverRejected,
    DriverRequest,
    DriverResult,
    DriverTimeout,
    DriverUnavailable,
    Manifest,
    OperationInProgress,
    iter_secret_values,
    redact,
    reveal_tree,
    split_update,
    to_secret_tree,
)
from strongroom.drivers.signing import SigningKey
from strongroom.drivers.wire import (
    COOKIE_HEADER,
    COOKIE_MAX_BYTES,
    ERROR_CODE,
    SET_COOKIE_HEADER,
    LenientOutputData,
    field_errors,
)
from strongroom.net import AiohttpTransport, environment_proxy
from strongroom.net.transport import (
    ACCEPTED_ENCODINGS,
    ResponseTooLarge,
    UnsupportedEncoding,
    read_limited,
)
from strongroom.stores.base import SecretValue

_GURESID = re.compile(c.GURESID)
# Header values must be visible ASCII (and spaces/tabs inside); anything else cannot go on the wire as is.
_HEADER_VALUE = re.compile(rb"^[\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?$")
#: How much of a driver's error message reaches a Resource's status (the status is not a channel).
ERROR_EXCERPT_MAX = 200
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


@dataclass(frozen=True)
class _Answer:
    """A driver's answer, read whole within the limits."""

    method: str
    status: int
    reason: str
    headers: httpx2.Headers
    body: bytes


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
        self._transport = transport
        self._client: httpx2.AsyncClient | None = None
        self._active = 0  # operations running now (they hold the client)
        self._closed = False

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
        """Close the HTTP client and its connections; safe to call more than once.

        Never fails a call in progress: operations still running (a Driver object changed while a Resource
        was being provisioned, which can take minutes of polling) keep the client, and the last of them
        closes it. An operation started after `close` gets a client of its own, closed when it ends.
        """
        self._closed = True
        if self._active == 0:
            await self._drop_client()

    async def __aenter__(self) -> RemoteDriver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _client_now(self) -> httpx2.AsyncClient:
        # Built on first use rather than in __init__: the aiohttp session underneath belongs to the event
        # loop that runs the requests, and drivers that are resolved but never called cost nothing.
        if self._client is None:
            transport = self._transport
            if transport is None:
                # Proxy variables (HTTPS_PROXY, NO_PROXY) are honoured: clusters often reach outside
                # drivers through one. `verify` True means aiohttp's one shared default context.
                transport = AiohttpTransport(self.verify, environment_proxy(self.target))
            self._client = httpx2.AsyncClient(
                transport=transport,
                follow_redirects=False,
                # The client is shared by every Resource of this driver: a cookie one answer sets must
                # not ride along with another Resource's requests. Cookies are kept per operation instead.
                cookies=http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
            )
        return self._client

    async def _drop_client(self) -> None:
        client, self._client = self._client, None  # before awaiting: a new operation builds a new one
        if client is not None:
            await client.aclose()

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
                return self._result(answer, req, cookie)
            raise self._error(answer, req)
        except (DriverError, OperationInProgress):
            raise
        except Exception as exc:
            raise self._unexpected(req, exc) from None

    async def apply(self, req: DriverRequest) -> DriverResult:
        try:
            answer, cookie = await self._operation("PUT", req)
            if answer.status in {200, 201}:
                return self._result(answer, req, cookie)
            raise self._error(answer, req)
        except (DriverError, OperationInProgress):
            raise
        except Exception as exc:
            raise self._unexpected(req, exc) from None

    async def delete(self, req: DriverRequest) -> None:
        try:
            answer, _ = await self._operation("DELETE", req)
            if answer.status not in {200, 204, 404}:
                raise self._error(answer, req)
        except (DriverError, OperationInProgress):
            raise
        except Exception as exc:
            raise self._unexpected(req, exc) from None

    def _unexpected(self, req: DriverRequest, exc: Exception) -> DriverError:
        # Anything not foreseen still leaves as a DriverError with a redacted message (raised `from None`
        # by the caller, so the original exception and its text are not chained).
        message = f"driver {self.name!r}: unexpected {type(exc).__name__}: {exc}"
        return DriverProtocolError(req.redact(message))

    # --- HTTP -----------------------------------------------------------------------------------------

    def url(self, guresid: str) -> str:
        return f"{self.target}{guresid}"

    async def _operation(self, method: str, req: DriverRequest) -> tuple[_Answer, SecretValue | None]:
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
    ) -> tuple[_Answer, SecretValue | None]:
        """Send the request once for `operation`; the final answer, or OperationInProgress."""
        if not _GURESID.fullmatch(req.guresid) or len(req.guresid) > c.GURESID_MAX:
            raise DriverConfigError(f"driver {self.name!r}: {req.guresid!r} is not a valid GUResID")
        body = None
        if method == "PUT":
            body = {
                "type": req.type,
                "resource": dict(req.resource_inputs),
                "driver": {"values": dict(req.values), "secrets": reveal_tree(req.secrets)},
            }
        timings = self.timings
        if operation.started is None:
            operation.started = time.monotonic()
        deadline = operation.started + timings.operation
        cookie = operation.cookie if operation.cookie_set else req.cookie
        # HTTP cookies of this operation only (polls of one operation may need a load balancer's affinity).
        jar: httpx2.Cookies = operation.state.setdefault("http_cookies", httpx2.Cookies())
        client = self._client_now()
        self._active += 1
        try:
            answer = await self._send(client, jar, method, req, body, cookie, deadline)
        finally:
            self._active -= 1
            if self._closed and self._active == 0:
                # Closing only releases connections: a failure there must not replace the operation's
                # own answer or error.
                with contextlib.suppress(Exception):
                    await self._drop_client()
        cookie = self._cookie(answer, req, cookie)
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

    async def _send(
        self,
        client: httpx2.AsyncClient,
        jar: httpx2.Cookies,
        method: str,
        req: DriverRequest,
        body: dict[str, Any] | None,
        cookie: SecretValue | None,
        deadline: float,
    ) -> _Answer:
        url = self.url(req.guresid)
        headers = {
            "Accept": "application/json",
            "Accept-Encoding": ACCEPTED_ENCODINGS,
            "User-Agent": f"strongroom/{__version__}",
        }
        if self.signing_key is not None:
            headers["Authorization"] = self.signing_key.authorization(
                audience=self.target, subject=req.subject, method=method, url=url
            )
        if cookie is not None and len(cookie):
            raw = cookie.reveal()
            if len(raw) >= COOKIE_MAX_BYTES:
                raise DriverConfigError(
                    f"driver {self.name!r}: the stored cookie has {len(raw)} bytes; "
                    f"the Driver API allows less than {COOKIE_MAX_BYTES}"
                )
            if not _HEADER_VALUE.fullmatch(raw):
                raise DriverConfigError(
                    f"driver {self.name!r}: the stored cookie is not a valid header value "
                    "(was it set by another driver?)"
                )
            headers[COOKIE_HEADER] = raw.decode("ascii")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DriverTimeout(f"driver {self.name!r}: {method} {req.guresid} ran out of time")
        limit = min(self.timings.request, remaining)
        cap = self.timings.max_response_bytes
        try:
            # One deadline for the whole exchange: httpx2's and aiohttp's own timeouts are per read, so a
            # server sending a byte a second would never trip them.
            async with asyncio.timeout(limit):
                request = client.build_request(
                    method, url, headers=headers, json=body, timeout=httpx2.Timeout(limit)
                )
                jar.set_cookie_header(request)
                response = await client.send(request, stream=True)
                try:
                    jar.extract_cookies(response)
                    content = await read_limited(response, cap)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx2.TimeoutException):
            raise DriverUnavailable(
                f"driver {self.name!r}: {method} {req.guresid}: no complete answer within {limit:g}s "
                "(timeouts.request)"
            ) from None
        except ResponseTooLarge as exc:
            raise DriverAnswerTooLarge(
                f"driver {self.name!r}: {method} {req.guresid}: {exc}, the most the operator reads "
                "(maxResponseBytes of the Driver, or the operator's --driver-max-response-bytes)",
                status=response.status_code,
            ) from None
        except UnsupportedEncoding as exc:
            raise DriverProtocolError(
                f"driver {self.name!r}: {method} {req.guresid}: {exc}", status=response.status_code
            ) from None
        except (httpx2.InvalidURL, httpx2.UnsupportedProtocol) as exc:
            raise DriverConfigError(req.redact(f"driver {self.name!r}: bad URL: {exc}")) from None
        except httpx2.HTTPError as exc:
            raise DriverUnavailable(
                req.redact(
                    f"driver {self.name!r}: {method} {req.guresid} failed: {type(exc).__name__}: {exc}"
                )
            ) from None
        return _Answer(method, response.status_code, response.reason_phrase, response.headers, content)

    def _cookie(
        self, answer: _Answer, req: DriverRequest, previous: SecretValue | None
    ) -> SecretValue | None:
        wanted = SET_COOKIE_HEADER.lower().encode()
        found = [value for key, value in answer.headers.raw if key.lower() == wanted]
        if not found:
            return previous
        value = found[-1].strip()
        if len(value) >= COOKIE_MAX_BYTES:
            raise DriverProtocolError(
                f"driver {self.name!r}: {answer.method} {req.guresid} set a cookie of {len(value)} bytes; "
                f"the Driver API allows less than {COOKIE_MAX_BYTES}",
                status=answer.status,
            )
        return SecretValue(value) if value else None

    # --- answers --------------------------------------------------------------------------------------

    def _result(self, answer: _Answer, req: DriverRequest, cookie: SecretValue | None) -> DriverResult:
        where = f"driver {self.name!r}: {answer.method} {req.guresid}"
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
            manifests = [
                Manifest(location=item.location, data=item.data) for item in data.normalised_manifests()
            ]
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

    def _error(self, answer: _Answer, req: DriverRequest) -> DriverError:
        status = answer.status
        detail = req.redact(error_excerpt(answer.body, answer.headers.get("content-type")))
        reason = _printable(answer.reason, 40)
        message = f"driver {self.name!r}: {answer.method} {req.guresid}: {status} {reason}".rstrip()
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


def _retry_after(answer: _Answer, *, floor: float, ceiling: float) -> float | None:
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
