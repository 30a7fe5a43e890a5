"""The operator's most frequent Kubernetes requests, as JSON straight over the transport's aiohttp session.

A Secret's get, create, apply and patch, a status patch and an Event are what every synced object costs;
the watches of the operator's own kinds deliver two events per synced object (`watch`).
Sent through lightkube and httpx2, building one request took more CPU than sending it: httpx2 parses each
URL three times in pure Python (measured on this 2-core machine: a GET cost the operator 0.79 ms of CPU
through lightkube, 0.36 ms this way; a status patch 1.0 ms against 0.58 ms). On a small machine the
operator's CPU is taken from the API server, so these few calls skip that layer; everything else stays on
lightkube.

What stays the same: the connections, TLS, proxy and write fence (the same `AiohttpTransport`), the
User-Agent, the field manager, and the errors: lightkube's `ApiError` for an answer with a Kubernetes
Status, the httpx2 exceptions for everything else, as lightkube raises them.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import httpx2
from lightkube.core.exceptions import ApiError
from yarl import URL

from strongroom.net.transport import AiohttpTransport

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: server-side apply takes it as it is
# lightkube's default: 10 s to connect and 10 s for each read.
DEFAULT_TIMEOUT = 10.0
# The largest watch event read: etcd refuses objects over 1.5 MiB by default (--max-request-bytes); a line
# beyond this is not an object of this cluster but a broken stream, and ends the watch.
MAX_WATCH_EVENT_BYTES = 16 * 1024 * 1024


def object_path(api_version: str, plural: str, namespace: str, name: str | None = None) -> str:
    """The URL path of a namespaced collection or object, each segment quoted (names come from specs)."""
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    segments = [namespace, plural, *([name] if name is not None else [])]
    quoted = [urllib.parse.quote(segment, safe="") for segment in segments]
    return f"{prefix}/namespaces/{quoted[0]}/{'/'.join(quoted[1:])}"


class KubeJson:
    """JSON requests to one API server on `transport`, authenticated by `authorization` (the headers to send;
    asked again once after a 401, so a rotated service account token is read anew)."""

    def __init__(
        self,
        transport: AiohttpTransport,
        server: str,
        authorization: Callable[[], Mapping[str, str]],
        field_manager: str,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._transport = transport
        self._server = URL(server)
        self._authorization = authorization
        self._headers: Mapping[str, str] | None = None
        self._field_manager = field_manager
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)

    async def get(self, path: str) -> dict[str, Any] | None:
        """The object at `path`; None if there is none (404)."""
        try:
            return await self.request("GET", path)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise

    async def create(self, path: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        """POST `obj` to the collection at `path`; the created object."""
        return await self.request("POST", path, obj, params={"fieldManager": self._field_manager})

    async def patch(
        self, path: str, patch: Mapping[str, Any], content_type: str, *, force: bool = False
    ) -> dict[str, Any]:
        """PATCH the object at `path` (`MERGE_PATCH`, or `APPLY_PATCH` with `force` to take fields over)."""
        return await self.request("PATCH", path, patch, content_type, self._patch_params(force))

    async def patch_only(self, path: str, patch: Mapping[str, Any], content_type: str) -> None:
        """`patch`, when the patched object is not needed: the answer is checked, not decoded. A status
        patch is answered with the whole object, managedFields and all; decoding answers nobody read was
        a few per cent of the operator's CPU in a burst of new SecretMappings."""
        await self._exchange("PATCH", path, patch, content_type, self._patch_params(False))

    async def create_only(self, path: str, obj: Mapping[str, Any]) -> None:
        """`create`, when the created object is not needed (checked, not decoded, as `patch_only`)."""
        await self._exchange("POST", path, obj, JSON, {"fieldManager": self._field_manager})

    def _patch_params(self, force: bool) -> dict[str, str]:
        return {"fieldManager": self._field_manager, **({"force": "true"} if force else {})}

    async def watch(
        self, path: str, params: Mapping[str, str], read_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of a watch of the collection at `path` (`params`: resourceVersion, timeoutSeconds, ...),
        each as it arrives: one JSON object per line. Ends when the API server ends the watch; an answer
        that is not 200 raises like `request` (a 401 also drops the cached credentials, for the next try)."""
        url = self._server.with_path(path, encoded=True).with_query({**params, "watch": "true"})
        if self._headers is None:
            self._headers = dict(self._authorization())
        headers = {**self._headers, "Accept": JSON, "Accept-Encoding": "identity"}
        timeouts = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeout.sock_connect, sock_read=read_timeout
        )
        async with self._transport.stream(url, headers, timeouts) as response:
            if response.status != 200:
                if response.status == 401:
                    self._headers = None
                body = await response.content.read(64 * 1024)
                raise _status_error(
                    "GET", url, response.status, response.headers.get("Content-Type", ""), body
                )
            pending = b""
            async for chunk in response.content.iter_any():
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                if len(pending) > MAX_WATCH_EVENT_BYTES:
                    raise ValueError(f"a watch event of {path} is over {MAX_WATCH_EVENT_BYTES} bytes")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
            if pending.strip():
                yield json.loads(pending)

    async def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        content_type: str = JSON,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Send a request; the object the API server answered with."""
        found: dict[str, Any] = json.loads(await self._exchange(method, path, body, content_type, params))
        return found

    async def _exchange(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        content_type: str,
        params: Mapping[str, str] | None,
    ) -> bytes:
        url = self._server.with_path(path, encoded=True)
        if params:
            url = url.with_query(params)
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        status, answer_type, answer = await self._send(method, url, data, content_type, fresh=False)
        if status == 401:  # the token may have been rotated: read the credentials again, once
            status, answer_type, answer = await self._send(method, url, data, content_type, fresh=True)
        if status >= 400:
            raise _status_error(method, url, status, answer_type, answer)
        return answer

    async def _send(
        self, method: str, url: URL, data: bytes | None, content_type: str, *, fresh: bool
    ) -> tuple[int, str, bytes]:
        if self._headers is None or fresh:
            self._headers = dict(self._authorization())
        headers = {**self._headers, "Accept": JSON, "Accept-Encoding": "identity"}
        if data is not None:
            headers["Content-Type"] = content_type
        return await self._transport.send_bytes(method, url, headers, data, self._timeout)


def _status_error(method: str, url: URL, status: int, content_type: str, body: bytes) -> Exception:
    """What lightkube raises for this answer: ApiError when it is a Kubernetes Status, else httpx2's error."""
    request = httpx2.Request(method, str(url))
    response = httpx2.Response(status, headers={"Content-Type": content_type}, content=body, request=request)
    if content_type.split(";")[0].strip() == JSON:
        return ApiError(request=request, response=response)
    return httpx2.HTTPStatusError(
        f"{status} answer to {method} {url.path}", request=request, response=response
    )
