"""AiohttpTransport against a real local HTTP server: what httpx2 sends arrives as sent, and back."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx2
import pytest
from aiohttp import web

from strongroom.net import AiohttpTransport, environment_proxy
from testenv.process import LOOPBACK, free_port

RELEASE = web.AppKey("release", asyncio.Event)


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path_qs": request.raw_path,
            "body": body.decode(),
            "content_type": request.headers.get("Content-Type"),
            "token": request.headers.get("X-Token"),
            "user_agent": request.headers.get("User-Agent"),
        },
        status=201,
        headers={"X-Answer": "42"},
    )


async def _gzipped(request: web.Request) -> web.Response:
    return web.Response(body=gzip.compress(b'{"packed": true}'), headers={"Content-Encoding": "gzip"})


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    await response.write(b"first\n")
    await request.app[RELEASE].wait()  # the client must see the first line before the second exists
    await response.write(b"second\n")
    await response.write_eof()
    return response


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(1.5)
    return web.Response(text="late")


@dataclass
class Server:
    url: str
    release: asyncio.Event  # lets /stream send its second line


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    app = web.Application()
    release = asyncio.Event()
    app[RELEASE] = release
    app.router.add_route("*", "/echo", _echo)
    app.router.add_get("/gzip", _gzipped)
    app.router.add_get("/stream", _stream)
    app.router.add_get("/slow", _slow)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, LOOPBACK, port).start()
    try:
        yield Server(f"http://{LOOPBACK}:{port}", release)
    finally:
        await runner.cleanup()


def _client(base_url: str, timeout: float = 5.0) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(base_url=base_url, transport=AiohttpTransport(), timeout=timeout)


async def test_request_and_response_pass_through_unchanged(server: Server) -> None:
    async with _client(server.url) as client:
        response = await client.patch(
            "/echo",
            params={"labelSelector": "a=b,c in (d)", "watch": "true"},
            content=b'{"x": 1}',
            headers={"Content-Type": "application/merge-patch+json", "X-Token": "t"},
        )
    assert response.status_code == 201
    assert response.headers["X-Answer"] == "42"
    seen = response.json()
    assert seen["method"] == "PATCH"
    # Encoded once by httpx2, not again by aiohttp.
    assert seen["path_qs"] == "/echo?labelSelector=a%3Db%2Cc+in+%28d%29&watch=true"
    assert seen["body"] == '{"x": 1}'
    assert seen["content_type"] == "application/merge-patch+json"
    assert seen["token"] == "t"


async def test_a_transport_user_agent_replaces_httpx2s() -> None:
    app = web.Application()
    app.router.add_get("/echo", _echo)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, LOOPBACK, port).start()
    transport = AiohttpTransport(user_agent="strongroom-operator/1.2.3")
    try:
        async with httpx2.AsyncClient(base_url=f"http://{LOOPBACK}:{port}", transport=transport) as client:
            seen = (await client.get("/echo")).json()
    finally:
        await runner.cleanup()
    assert seen["user_agent"] == "strongroom-operator/1.2.3"


async def test_get_sends_no_body_and_no_invented_content_type(server: Server) -> None:
    async with _client(server.url) as client:
        seen = (await client.get("/echo")).json()
    assert seen["body"] == ""
    assert seen["content_type"] is None


async def test_compressed_answers_are_decoded_once(server: Server) -> None:
    async with _client(server.url) as client:
        response = await client.get("/gzip")
    assert response.json() == {"packed": True}


async def test_bodies_stream_as_they_arrive(server: Server) -> None:
    async with _client(server.url) as client, client.stream("GET", "/stream") as response:
        lines = response.aiter_lines()
        assert await asyncio.wait_for(anext(lines), 5) == "first"
        server.release.set()
        assert await asyncio.wait_for(anext(lines), 5) == "second"


async def test_refused_connection_is_an_httpx_connect_error() -> None:
    async with _client(f"http://{LOOPBACK}:{free_port()}") as client:
        with pytest.raises(httpx2.ConnectError):
            await client.get("/")


async def test_slow_answer_is_an_httpx_read_timeout(server: Server) -> None:
    async with _client(server.url, timeout=0.3) as client:
        with pytest.raises(httpx2.ReadTimeout):
            await client.get("/slow")


async def test_one_connection_is_reused(server: Server) -> None:
    transport = AiohttpTransport()
    async with httpx2.AsyncClient(base_url=server.url, transport=transport) as client:
        for _ in range(5):
            (await client.get("/echo")).raise_for_status()
        session = transport._session
        assert session is not None
        connector = session.connector
        assert connector is not None
        assert sum(len(conns) for conns in connector._conns.values()) == 1


def test_environment_proxy_honours_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("https_proxy", "http_proxy", "no_proxy", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert environment_proxy("https://kube.example:6443") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert environment_proxy("https://kube.example:6443") == "http://proxy.example:3128"
    monkeypatch.setenv("NO_PROXY", "kube.example")
    assert environment_proxy("https://kube.example:6443") is None
