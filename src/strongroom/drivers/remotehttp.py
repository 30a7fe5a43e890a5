"""The HTTP side of a remote driver: one client for the driver's lifetime and one bounded exchange.

`DriverHTTP` is what a `RemoteDriver` (drivers/remote.py) sends its requests through. It holds:
- the HTTP client (aiohttp underneath, `strongroom.net`), built on first use and kept, so requests to a
  driver reuse kept-alive connections and one TLS context; `close()` never fails a call in progress (the
  last operation running closes it);
- one exchange (`exchange`): a fresh signed JWT per request, the driver cookie as a header (checked: under
  10 KiB, a valid header value), one deadline for the whole exchange (connecting, headers and the complete
  body), the answer read up to the size cap (as sent and decoded), and every transport failure turned into
  a `DriverError` whose message holds no secret.

It knows nothing of what a request or an answer means (drivers/remoteprotocol.py) nor of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import re
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx2

from strongroom import __version__
from strongroom.drivers.base import (
    DriverAnswerTooLarge,
    DriverConfigError,
    DriverProtocolError,
    DriverRequest,
    DriverTimeout,
    DriverUnavailable,
)
from strongroom.drivers.signing import SigningKey
from strongroom.drivers.wire import COOKIE_HEADER, COOKIE_MAX_BYTES
from strongroom.net import AiohttpTransport, environment_proxy
from strongroom.net.transport import (
    ACCEPTED_ENCODINGS,
    ResponseTooLarge,
    UnsupportedEncoding,
    read_limited,
)
from strongroom.stores.base import SecretValue

# Header values must be visible ASCII (and spaces/tabs inside); anything else cannot go on the wire as is.
_HEADER_VALUE = re.compile(rb"^[\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?$")


@dataclass(frozen=True)
class Answer:
    """A driver's answer, read whole within the limits."""

    method: str
    status: int
    reason: str
    headers: httpx2.Headers
    body: bytes


class DriverHTTP:
    """The HTTP client of one remote driver and the bounded exchange of one request with it."""

    def __init__(
        self,
        target: str,
        *,
        name: str,
        signing_key: SigningKey | None,
        request_timeout: float,
        max_response_bytes: int,
        verify: ssl.SSLContext | bool,
        transport: httpx2.AsyncBaseTransport | None,
    ) -> None:
        self.target = target
        self.name = name
        self.signing_key = signing_key
        self.request_timeout = request_timeout
        self.max_response_bytes = max_response_bytes
        self.verify = verify
        self._transport = transport
        self._client: httpx2.AsyncClient | None = None
        self._active = 0  # operations running now (they hold the client)
        self._closed = False

    def url(self, guresid: str) -> str:
        return f"{self.target}{guresid}"

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

    # --- one exchange ----------------------------------------------------------------------------------

    async def exchange(
        self,
        jar: httpx2.Cookies,
        method: str,
        req: DriverRequest,
        body: dict[str, Any] | None,
        cookie: SecretValue | None,
        deadline: float,
    ) -> Answer:
        """Send `method` for `req` once, on the driver's client, and read the whole answer.

        `jar`: the HTTP cookies of this operation (never shared between Resources); `cookie`: the driver
        cookie to send; `deadline`: the operation's (monotonic clock), which no request goes past."""
        client = self._client_now()
        self._active += 1
        try:
            return await self._send(client, jar, method, req, body, cookie, deadline)
        finally:
            self._active -= 1
            if self._closed and self._active == 0:
                # Closing only releases connections: a failure there must not replace the operation's
                # own answer or error.
                with contextlib.suppress(Exception):
                    await self._drop_client()

    async def _send(
        self,
        client: httpx2.AsyncClient,
        jar: httpx2.Cookies,
        method: str,
        req: DriverRequest,
        body: dict[str, Any] | None,
        cookie: SecretValue | None,
        deadline: float,
    ) -> Answer:
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
        limit = min(self.request_timeout, remaining)
        cap = self.max_response_bytes
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
        return Answer(method, response.status_code, response.reason_phrase, response.headers, content)


__all__ = ["Answer", "DriverHTTP"]
