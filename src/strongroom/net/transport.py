"""An httpx2 transport that sends each request with aiohttp, and the lightkube client built on it.

httpx2's client layer (auth, redirects, timeouts, decoding) still runs; only the connection pool and
the HTTP/1.1 parsing move to aiohttp, which does them in C. Errors come back as the httpx2 exceptions
lightkube and our callers already handle (`httpx2.TransportError` and its subclasses).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import urllib.parse
import urllib.request
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import httpx2
from lightkube import AsyncClient
from lightkube.config.client_adapter import verify_cluster
from lightkube.config.kubeconfig import SingleConfig
from lightkube.config.models import User
from yarl import URL

from strongroom.net.fence import ensure_may_write, is_write

# httpx2's default pool size: the most requests the operator has in flight to one server.
MAX_CONNECTIONS = 100


def _as_httpx_error(exc: BaseException, request: httpx2.Request) -> httpx2.TransportError:
    """The httpx2 exception for an aiohttp failure. Messages carry no bodies: nothing secret leaks."""
    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx2.ConnectTimeout(message, request=request)
    if isinstance(exc, TimeoutError):  # with no total timeout, the only other one is the socket read's
        return httpx2.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx2.ConnectError(message, request=request)
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientPayloadError):
        return httpx2.RemoteProtocolError(message, request=request)
    return httpx2.ReadError(message, request=request)


class _ResponseBody(httpx2.AsyncByteStream):
    """An aiohttp response body as httpx2 reads it: chunk by chunk (watches stream for hours)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx2.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _as_httpx_error(exc, self._request) from exc

    async def aclose(self) -> None:
        self._response.release()


async def _fence_on_connection(_: aiohttp.ClientSession, context: Any, __: object) -> None:
    """Ask the write fence once the connection is ready, immediately before the request's bytes go out:
    a write that waited for a connection (or a process paused meanwhile) is checked at the last moment."""
    what = context.trace_request_ctx
    if what is not None:
        ensure_may_write(what)


def _fence_trace() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(_fence_on_connection)
    trace.on_connection_reuseconn.append(_fence_on_connection)
    return trace


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """Sends httpx2 requests over one aiohttp session (created on first use, in the running loop).

    `ssl_context` carries the server's CA and any client certificate (True: the system's CAs,
    False: no verification); `proxy` is the proxy URL to send through, if any (`environment_proxy`).
    Writes (any method but GET/HEAD/OPTIONS/LIST) ask the process's write fence first (`net/fence.py`),
    unless `fenced` is False: only the leader election's own Lease requests are sent that way.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext | bool = True,
        proxy: str | None = None,
        user_agent: str | None = None,
        *,
        fenced: bool = True,
    ) -> None:
        self._ssl_context = ssl_context
        self._proxy = proxy
        self._user_agent = user_agent  # replaces httpx2's own
        self._fenced = fenced
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            # A new loop (one asyncio.run per CLI command) needs its own connections; the old
            # session's sockets belong to a closed loop and are dropped with it.
            connector = aiohttp.TCPConnector(ssl=self._ssl_context, limit=MAX_CONNECTIONS)
            self._session = aiohttp.ClientSession(
                connector=connector,
                # Not trust_env: it re-reads ~/.netrc in a thread for every request.
                trust_env=False,
                auto_decompress=False,  # httpx2 decodes by Content-Encoding itself
                skip_auto_headers=("Content-Type",),
                trace_configs=[_fence_trace()] if self._fenced else None,
            )
            self._loop = loop
        return self._session

    def _fence(self, method: str, host: str | None) -> str | None:
        """Refuse a write now if the fence says so (before anything is read, connected or queued); the
        description to check again once the connection is ready (None: not a fenced write)."""
        if not (self._fenced and is_write(method)):
            return None
        fenced_write = f"{method} {host}"
        ensure_may_write(fenced_write)
        return fenced_write

    async def send_bytes(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        socket_timeouts: aiohttp.ClientTimeout,
    ) -> tuple[int, str, bytes]:
        """One request with a small answer, straight on the session (no httpx2 client layer): the status,
        the Content-Type and the whole body. Fenced and failing like `handle_async_request`."""
        fenced_write = self._fence(method, url.host)
        all_headers = {**headers, "User-Agent": self._user_agent} if self._user_agent else headers
        try:
            async with self._session_now().request(
                method,
                url,
                headers=all_headers,
                data=body,
                allow_redirects=False,
                timeout=socket_timeouts,
                proxy=self._proxy,
                trace_request_ctx=fenced_write,
            ) as response:
                return response.status, response.headers.get("Content-Type", ""), await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _as_httpx_error(exc, httpx2.Request(method, str(url))) from exc

    @contextlib.asynccontextmanager
    async def stream(
        self, url: URL, headers: Mapping[str, str], socket_timeouts: aiohttp.ClientTimeout
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A GET whose answer is read as it arrives (a watch), straight on the session. A read: never fenced.
        Connection failures come as the httpx2 exceptions, like `handle_async_request`'s."""
        all_headers = {**headers, "User-Agent": self._user_agent} if self._user_agent else headers
        try:
            async with self._session_now().get(
                url, headers=all_headers, allow_redirects=False, timeout=socket_timeouts, proxy=self._proxy
            ) as response:
                yield response
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _as_httpx_error(exc, httpx2.Request("GET", str(url))) from exc

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        fenced_write = self._fence(request.method, request.url.host)
        body = await request.aread()
        if self._user_agent is not None:
            request.headers["User-Agent"] = self._user_agent
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw]
        try:
            response = await self._session_now().request(
                request.method,
                URL(str(request.url), encoded=True),  # httpx2 has already encoded it
                headers=headers,
                data=body or None,
                allow_redirects=False,  # httpx2 follows redirects when asked to
                timeout=timeout,
                proxy=self._proxy,
                trace_request_ctx=fenced_write,
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _as_httpx_error(exc, request) from exc
        return httpx2.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_ResponseBody(response, request),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# --- Reading an answer of bounded size ---------------------------------------------------------------------

#: The encodings `read_limited` decodes (send them as `Accept-Encoding`, nothing else).
ACCEPTED_ENCODINGS = "gzip, deflate"


class ResponseTooLarge(Exception):
    """The body is larger than allowed (as sent, or once decompressed)."""

    def __init__(self, limit: int, *, decompressed: bool) -> None:
        after = " once decompressed" if decompressed else ""
        super().__init__(f"the answer is larger than {limit} bytes{after}")
        self.limit = limit


class UnsupportedEncoding(Exception):
    """A Content-Encoding `read_limited` does not decode (only gzip and deflate are asked for)."""


class _Inflater:
    """zlib decompression whose output is bounded per call (`max_length`), so a small compressed chunk
    can never expand into more memory than the caller still allows."""

    def __init__(self, encoding: str) -> None:
        self._raw_fallback = encoding == "deflate"
        # "deflate" is zlib-wrapped per RFC 9110, but servers also send raw deflate: tried on failure.
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        """At most `room` (> 0) bytes of output; what does not fit stays in the decompressor."""
        try:
            out = self._inflate.decompress(data, room)
        except zlib.error:
            if not (self._raw_fallback and not self._started):
                raise
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._inflate.decompress(data, room)
        self._started = True
        return out

    def more(self, room: int) -> bytes:
        """Output still pending from earlier input (empty when there is none). Not `flush()`: its length
        is only a first buffer size, not a bound."""
        if self._inflate.eof and not self._inflate.unconsumed_tail:
            return b""
        return self._inflate.decompress(self._inflate.unconsumed_tail, room)


async def read_limited(response: httpx2.Response, limit: int) -> bytes:
    """The body of a streamed response, decoded (gzip, deflate), refusing more than `limit` bytes.

    The cap holds while reading and after decompression: at most `limit + 1` decoded bytes are ever held,
    whatever the compression ratio (a gzip bomb stops at the cap, not at the size it would inflate to).
    Raises `ResponseTooLarge`, `UnsupportedEncoding`, or `httpx2.DecodingError` for a corrupt stream;
    the caller bounds the time (a trickling server is not stopped here).
    """
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if response.is_stream_consumed:
        # Built in memory (httpx2's mock and ASGI transports): already read and decoded, nothing to stream.
        if len(response.content) > limit:
            raise ResponseTooLarge(limit, decompressed=encoding not in {"", "identity"})
        return response.content
    inflater: _Inflater | None = None
    if encoding in {"gzip", "x-gzip", "deflate"}:
        inflater = _Inflater(encoding)
    elif encoding not in {"", "identity"}:
        raise UnsupportedEncoding(
            f"Content-Encoding {encoding[:40]!r} (only {ACCEPTED_ENCODINGS} were asked for)"
        )
    body = bytearray()
    received = 0
    try:
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > limit:  # compressed or not, more than the cap on the wire is too much
                raise ResponseTooLarge(limit, decompressed=False)
            if inflater is None:
                body += chunk
                continue
            body += inflater.feed(chunk, limit + 1 - len(body))
            while len(body) <= limit:
                pending = inflater.more(limit + 1 - len(body))
                if not pending:
                    break
                body += pending
            if len(body) > limit:
                raise ResponseTooLarge(limit, decompressed=True)
    except zlib.error:
        raise httpx2.DecodingError(f"the {encoding} body is corrupt", request=response.request) from None
    return bytes(body)


def environment_proxy(url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) names for `url`, as httpx2 would use."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.proxy_bypass(parts.netloc):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def kube_transport(
    config: SingleConfig, user_agent: str | None = None, *, fenced: bool = True
) -> AiohttpTransport:
    """The transport (connections, TLS, proxy, fence) of every Kubernetes request to `config`'s cluster."""
    context = verify_cluster(config.cluster, config.user or User(), config.abs_file)
    return AiohttpTransport(context, environment_proxy(config.cluster.server), user_agent, fenced=fenced)


def kube_client(
    config: SingleConfig,
    field_manager: str,
    user_agent: str | None = None,
    *,
    fenced: bool = True,
    transport: AiohttpTransport | None = None,
) -> AsyncClient:
    """A lightkube client for `config` whose requests go through `AiohttpTransport` (`fenced`: see there;
    pass `transport` to share one with `net.kubejson.KubeJson`)."""
    transport = transport or kube_transport(config, user_agent, fenced=fenced)
    return AsyncClient(config, field_manager=field_manager, transport=transport)
