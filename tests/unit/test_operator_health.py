"""Probe logic: when /healthz and /readyz say yes, and what they answer over HTTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from lightkube.config.kubeconfig import KubeConfig
from lightkube.config.models import Cluster, User

from strongroom.operator import metrics
from strongroom.operator.health import (
    ApiServerProbe,
    HealthState,
    evaluate_readiness,
    health_app,
    metrics_app,
)

STORES = ("strongroom.dev", "secretstores")
MAPPINGS = ("strongroom.dev", "secretmappings")


def _ready(**overrides: object) -> tuple[bool, dict[str, str]]:
    kwargs: dict[str, object] = {
        "started": True,
        "stopping": False,
        "scanned": True,
        "watched": {STORES, MAPPINGS},
        "required": {STORES, MAPPINGS},
        "api_error": None,
    }
    kwargs.update(overrides)
    result = evaluate_readiness(**kwargs)  # type: ignore[arg-type]
    return result.ready, result.checks


def test_ready_when_everything_holds() -> None:
    assert _ready() == (True, {"operator": "ok", "watching": "ok", "apiserver": "ok"})


def test_not_ready_while_starting_or_stopping() -> None:
    assert _ready(started=False) == (False, {"operator": "starting", "watching": "ok", "apiserver": "ok"})
    ready, checks = _ready(stopping=True)
    assert not ready
    assert checks["operator"] == "stopping"


def test_not_ready_before_discovery_or_without_crds() -> None:
    ready, checks = _ready(scanned=False)
    assert not ready
    assert checks["watching"] == "resource discovery has not finished"
    ready, checks = _ready(watched={STORES})
    assert not ready
    assert checks["watching"] == "not served (CRD missing?): secretmappings.strongroom.dev"


def test_extra_watched_kinds_do_not_matter() -> None:
    assert _ready(watched={STORES, MAPPINGS, ("", "namespaces")})[0]


def test_not_ready_when_api_server_fails() -> None:
    assert _ready(api_error="HTTP 401") == (
        False,
        {"operator": "ok", "watching": "ok", "apiserver": "HTTP 401"},
    )


def _state(api: Callable[[], Awaitable[str | None]] | None = None) -> HealthState:
    async def ok() -> str | None:
        return None

    return HealthState(
        required=frozenset({STORES}),
        api_check=api or ok,
        scanned=lambda: True,
        watched=lambda: {STORES},
        started=True,
    )


async def test_liveness_follows_the_heartbeat() -> None:
    state = _state()
    assert state.alive() == (True, "ok")  # no heartbeat yet: nothing to judge
    state.start_heartbeat()
    await asyncio.sleep(0)
    assert state.alive() == (True, "ok")
    await state.stop_heartbeat()
    state.last_beat = asyncio.get_running_loop().time() - 100
    alive, detail = state.alive()
    assert not alive
    assert "heartbeat" in detail


async def test_readiness_skips_the_api_call_while_starting() -> None:
    calls: list[int] = []

    async def api() -> str | None:
        calls.append(1)
        return None

    state = _state(api)
    state.started = False
    assert not (await state.readiness()).ready
    assert calls == []
    state.started = True
    assert (await state.readiness()).ready
    assert calls == [1]


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], HealthState]]:
    state = _state()
    async with TestClient(TestServer(health_app(state))) as test_client:
        yield test_client, state


async def test_http_endpoints(client: tuple[TestClient[web.Request, web.Application], HealthState]) -> None:
    http, state = client
    response = await http.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"alive": True, "detail": "ok"}

    response = await http.get("/readyz")
    assert response.status == 200
    assert await response.json() == {
        "ready": True,
        "role": "leader",
        "checks": {"operator": "ok", "watching": "ok", "apiserver": "ok"},
    }

    # A leader-election standby is Ready: the body says what it is.
    state.role = lambda: "standby"
    response = await http.get("/readyz")
    assert response.status == 200
    assert (await response.json())["role"] == "standby"

    state.stopping = True
    response = await http.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["ready"] is False
    assert body["checks"]["operator"] == "stopping"


async def test_metrics_endpoint() -> None:
    metrics.READY.set(1)
    async with TestClient(TestServer(metrics_app())) as http:
        response = await http.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    assert 'strongroom_operator_build_info{version="0.1.0"} 1.0' in text
    assert "strongroom_operator_ready 1.0" in text


def _probe_for(server: str, **kwargs: float) -> ApiServerProbe:
    config = KubeConfig.from_one(cluster=Cluster(server=server), user=User()).get()
    assert config is not None
    return ApiServerProbe(config, **kwargs)


async def test_api_probe_answers_and_caches() -> None:
    hits: list[str] = []
    status = {"code": 200}

    async def version(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"gitVersion": "v1.37.2"}, status=status["code"])

    app = web.Application()
    app.router.add_get("/version", version)
    async with TestServer(app) as server:
        probe = _probe_for(str(server.make_url("")).rstrip("/"), cache_seconds=60)
        try:
            assert await probe.check() is None
            assert await probe.check() is None  # cached
            assert hits == ["/version"]

            fresh = _probe_for(str(server.make_url("")).rstrip("/"), cache_seconds=0)
            status["code"] = 403
            assert await fresh.check() == "HTTP 403"
            await fresh.aclose()
        finally:
            await probe.aclose()


async def test_api_probe_reports_an_unreachable_server() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port any more.
    probe = _probe_for(f"http://127.0.0.1:{port}", timeout=1.0)
    try:
        result = await probe.check()
    finally:
        await probe.aclose()
    assert result is not None
    assert result.startswith("unreachable: ")
