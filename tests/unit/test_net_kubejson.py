"""KubeJson (net/kubejson.py): what it sends, and that its failures are the ones lightkube raises.

A small aiohttp server stands in for the API server's HTTP surface (answers and Status bodies as the API
server writes them); the real API server is exercised by tests/integration/test_secretmappings.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from aiohttp import web
from lightkube.core.exceptions import ApiError

from strongroom.net import AiohttpTransport
from strongroom.net.fence import WriteFenced, install_fence, remove_fence
from strongroom.net.kubejson import MERGE_PATCH, KubeJson, object_path
from testenv.process import LOOPBACK, free_port

SEEN = web.AppKey("seen", list)
TOKENS = web.AppKey("tokens", list)


def status(code: int, reason: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code}
    return web.json_response(body, status=code)


async def _api(request: web.Request) -> web.Response:
    body = await request.read()
    request.app[SEEN].append(
        {
            "method": request.method,
            "path_qs": request.raw_path,
            "content_type": request.headers.get("Content-Type"),
            "authorization": request.headers.get("Authorization"),
            "user_agent": request.headers.get("User-Agent"),
            "body": json.loads(body) if body else None,
        }
    )
    valid = request.app[TOKENS]
    if request.headers.get("Authorization") != f"Bearer {valid[0]}":
        return status(401, "Unauthorized")
    name = request.match_info.get("name", "")
    if name == "missing":
        return status(404, "NotFound")
    if name == "taken":
        return status(409, "AlreadyExists")
    if name == "proxy":
        return web.Response(status=502, text="<html>bad gateway</html>", content_type="text/html")
    return web.json_response({"kind": "Secret", "metadata": {"name": name or "made"}}, status=200)


@dataclass
class FakeApi:
    url: str
    seen: list[dict[str, Any]]
    tokens: list[str]  # the one valid token first
    handed_out: list[str] = field(default_factory=list)

    def authorization(self) -> dict[str, str]:
        token = self.tokens[-1]  # what a token file holds now
        self.handed_out.append(token)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    app = web.Application()
    app[SEEN] = []
    app[TOKENS] = ["t1"]
    app.router.add_route("*", "/api/v1/namespaces/{ns}/secrets", _api)
    app.router.add_route("*", "/api/v1/namespaces/{ns}/secrets/{name}", _api)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, LOOPBACK, port).start()
    try:
        yield FakeApi(f"http://{LOOPBACK}:{port}", app[SEEN], app[TOKENS])
    finally:
        await runner.cleanup()


@pytest.fixture
def no_fence() -> Iterator[None]:
    yield
    remove_fence()


def client(api: FakeApi) -> KubeJson:
    transport = AiohttpTransport(user_agent="strongroom-operator/9")
    return KubeJson(transport, api.url, api.authorization, "strongroom")


def test_paths_quote_every_segment() -> None:
    assert object_path("v1", "secrets", "team-a", "db") == "/api/v1/namespaces/team-a/secrets/db"
    assert object_path("strongroom.dev/v1alpha1", "secretmappings", "ns") == (
        "/apis/strongroom.dev/v1alpha1/namespaces/ns/secretmappings"
    )
    assert object_path("v1", "secrets", "ns", "../x?y") == "/api/v1/namespaces/ns/secrets/..%2Fx%3Fy"


async def test_writes_carry_the_field_manager_credentials_and_user_agent(api: FakeApi) -> None:
    kube = client(api)
    created = await kube.create(object_path("v1", "secrets", "ns"), {"metadata": {"name": "made"}})
    await kube.patch(object_path("v1", "secrets", "ns", "s"), {"data": {"a": None}}, MERGE_PATCH, force=True)
    assert created["metadata"]["name"] == "made"
    post, patch = api.seen
    assert post["method"] == "POST"
    assert post["path_qs"] == "/api/v1/namespaces/ns/secrets?fieldManager=strongroom"
    assert post["body"] == {"metadata": {"name": "made"}}
    assert post["content_type"] == "application/json"
    assert patch["path_qs"] == "/api/v1/namespaces/ns/secrets/s?fieldManager=strongroom&force=true"
    assert patch["content_type"] == MERGE_PATCH
    assert patch["body"] == {"data": {"a": None}}
    assert {r["authorization"] for r in api.seen} == {"Bearer t1"}
    assert {r["user_agent"] for r in api.seen} == {"strongroom-operator/9"}
    assert api.handed_out == ["t1"]  # asked once, not per request


async def test_failures_are_what_lightkube_raises(api: FakeApi) -> None:
    kube = client(api)
    assert await kube.get(object_path("v1", "secrets", "ns", "missing")) is None
    with pytest.raises(ApiError) as taken:  # (the fake answers by the name in the path)
        await kube.request("POST", object_path("v1", "secrets", "ns", "taken"), {})
    assert taken.value.status.code == 409
    assert taken.value.status.reason == "AlreadyExists"
    with pytest.raises(httpx2.HTTPStatusError) as proxy:
        await kube.get(object_path("v1", "secrets", "ns", "proxy"))
    assert not isinstance(proxy.value, ApiError)
    assert proxy.value.response.status_code == 502


async def test_a_rotated_token_is_read_again_after_a_401(api: FakeApi) -> None:
    kube = client(api)
    assert await kube.get(object_path("v1", "secrets", "ns", "s")) is not None
    api.tokens[0] = "t2"  # the API server now wants the new token, which the "file" holds
    api.tokens.append("t2")
    assert await kube.get(object_path("v1", "secrets", "ns", "s")) is not None
    assert api.handed_out == ["t1", "t2"]
    assert [r["authorization"] for r in api.seen] == ["Bearer t1", "Bearer t1", "Bearer t2"]


async def test_writes_are_fenced_reads_are_not(api: FakeApi, no_fence: None) -> None:
    kube = client(api)
    install_fence(lambda: "the lease is lost")
    with pytest.raises(WriteFenced):
        await kube.create(object_path("v1", "secrets", "ns"), {"metadata": {"name": "made"}})
    assert api.seen == []  # refused before anything was sent
    assert await kube.get(object_path("v1", "secrets", "ns", "s")) is not None


async def test_writes_whose_answer_is_not_needed_send_the_same_and_fail_the_same(api: FakeApi) -> None:
    kube = client(api)
    await kube.create_only(object_path("v1", "secrets", "ns"), {"metadata": {"name": "e"}})
    await kube.patch_only(object_path("v1", "secrets", "ns", "s"), {"status": {}}, MERGE_PATCH)
    post, patch = api.seen
    assert (post["method"], post["path_qs"]) == (
        "POST",
        "/api/v1/namespaces/ns/secrets?fieldManager=strongroom",
    )
    assert (patch["method"], patch["path_qs"]) == (
        "PATCH",
        "/api/v1/namespaces/ns/secrets/s?fieldManager=strongroom",
    )
    assert patch["content_type"] == MERGE_PATCH
    with pytest.raises(ApiError) as taken:
        await kube.create_only(object_path("v1", "secrets", "ns", "taken"), {})
    assert taken.value.status.code == 409
    with pytest.raises(ApiError) as missing:
        await kube.patch_only(object_path("v1", "secrets", "ns", "missing"), {}, MERGE_PATCH)
    assert missing.value.status.code == 404
