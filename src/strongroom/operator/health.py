"""Liveness, readiness and metrics over HTTP, served from the operator's own event loop.

* `/healthz` (liveness) answers from the event loop, so an answer at all means the loop runs; it
  also fails when the loop's heartbeat task lags (something blocks the loop for long stretches), so
  the kubelet restarts a wedged process instead of leaving it half-alive.
* `/readyz` (readiness) means "this process is doing its job": it started, every kind it serves has
  been listed once in every watched namespace (the CRDs are installed, RBAC allows it, the caches hold
  what exists), and the API server answers with our credentials. A leader-election standby is
  Ready too (its job is to be warm); the body's `role` says `leader` or `standby`.
* `/metrics` (Prometheus text format) on its own port, so the probe port can stay private.

Response bodies name checks and reasons only; nothing here ever prints configuration or objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

import httpx2
from aiohttp import web
from lightkube.config.client_adapter import AsyncClient as lightkube_http_client
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import SingleConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from strongroom.operator import metrics

logger = logging.getLogger(__name__)

# (group, plural) of a kind the operator has handlers for.
Kind = tuple[str, str]


@dataclass(frozen=True)
class Readiness:
    ready: bool
    # check name -> "ok" or a short reason
    checks: dict[str, str]


def evaluate_readiness(
    *,
    started: bool,
    stopping: bool,
    scanned: bool,
    watched: Collection[Kind],
    required: Collection[Kind],
    api_error: str | None,
) -> Readiness:
    """Pure decision behind `/readyz`, kept free of I/O so it can be tested exhaustively."""
    checks: dict[str, str] = {}
    if stopping:
        checks["operator"] = "stopping"
    elif not started:
        checks["operator"] = "starting"
    else:
        checks["operator"] = "ok"
    if not scanned:
        checks["watching"] = "resource discovery has not finished"
    else:
        missing = sorted(f"{plural}.{group}" for group, plural in set(required) - set(watched))
        checks["watching"] = "ok" if not missing else "not served (CRD missing?): " + ", ".join(missing)
    checks["apiserver"] = "ok" if api_error is None else api_error
    return Readiness(ready=all(v == "ok" for v in checks.values()), checks=checks)


class ApiServerProbe:
    """Asks the API server `/version` with the operator's own credentials, at most every few seconds.

    The kubelet probes every few seconds and several probes may overlap; they share one request.
    """

    def __init__(
        self,
        config: SingleConfig,
        *,
        timeout: float = 3.0,
        cache_seconds: float = 5.0,
    ) -> None:
        self._config = config
        self._timeout = timeout
        self._cache_seconds = cache_seconds
        self._client: httpx2.AsyncClient | None = None
        self._lock = asyncio.Lock()
        self._checked_at: float | None = None
        self._last: str | None = "not checked yet"

    async def check(self) -> str | None:
        """None if the API server answered 2xx, else a short reason."""
        async with self._lock:
            now = asyncio.get_running_loop().time()
            if self._checked_at is not None and now - self._checked_at < self._cache_seconds:
                return self._last
            self._last = await self._request()
            self._checked_at = asyncio.get_running_loop().time()
            return self._last

    async def _request(self) -> str | None:
        try:
            if self._client is None:
                # Built lazily: creating the SSL context reads CA files, which may not exist yet
                # when a pod's projected volume is still being populated.
                params = ConnectionParams(timeout=httpx2.Timeout(self._timeout))
                self._client = lightkube_http_client(self._config, params)
            response = await self._client.get("/version")
        except (httpx2.HTTPError, OSError, ValueError) as exc:
            return f"unreachable: {type(exc).__name__}"
        if response.is_success:
            return None
        return f"HTTP {response.status_code}"

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass
class HealthState:
    """What the probes look at; the operator runner updates it as the process starts and stops."""

    required: frozenset[Kind]
    api_check: Callable[[], Awaitable[str | None]]
    # Whether every watch has listed once, and which (group, plural) are watched.
    scanned: Callable[[], bool] = lambda: False
    watched: Callable[[], Collection[Kind]] = lambda: ()
    # "leader" (it writes; also every process without leader election) or "standby" (Ready, writes nothing).
    role: Callable[[], str] = lambda: "leader"
    started: bool = False
    stopping: bool = False
    # Event-loop heartbeat (loop.time()); see `heartbeat`.
    last_beat: float | None = None
    max_lag: float = 30.0
    _beat_task: asyncio.Task[None] | None = field(default=None, repr=False)

    def alive(self) -> tuple[bool, str]:
        if self.last_beat is None:
            return True, "ok"
        lag = asyncio.get_running_loop().time() - self.last_beat
        if lag > self.max_lag:
            return False, f"event loop heartbeat is {lag:.0f}s old"
        return True, "ok"

    async def readiness(self) -> Readiness:
        # Skip the network round-trip while starting or stopping: the answer is "no" anyway.
        api_error = await self.api_check() if self.started and not self.stopping else "not checked"
        return evaluate_readiness(
            started=self.started,
            stopping=self.stopping,
            scanned=self.scanned(),
            watched=self.watched(),
            required=self.required,
            api_error=api_error,
        )

    async def heartbeat(self, interval: float = 0.1) -> None:
        """Beat every `interval` and record how late each beat came: the event loop's lag."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + interval
            self.last_beat = loop.time()
            await asyncio.sleep(interval)
            metrics.EVENT_LOOP_LAG.observe(max(0.0, loop.time() - due))

    def start_heartbeat(self) -> None:
        self._beat_task = asyncio.create_task(self.heartbeat(), name="strongroom heartbeat")

    async def stop_heartbeat(self) -> None:
        if self._beat_task is not None:
            self._beat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat_task
            self._beat_task = None


def _json(status: int, payload: dict[str, object]) -> web.Response:
    return web.Response(status=status, text=json.dumps(payload) + "\n", content_type="application/json")


def health_app(state: HealthState) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        ok, detail = state.alive()
        return _json(200 if ok else 503, {"alive": ok, "detail": detail})

    async def readyz(_: web.Request) -> web.Response:
        result = await state.readiness()
        metrics.READY.set(1 if result.ready else 0)
        # A standby is Ready (200, "role": "standby"): it watches and would take over within a lease
        # duration, and rolling updates and PodDisruptionBudgets count on Ready pods (docs/operator.md).
        payload = {"ready": result.ready, "role": state.role(), "checks": result.checks}
        return _json(200 if result.ready else 503, payload)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


def metrics_app() -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


class HttpServers:
    """The probe and metrics listeners; started before the watches, stopped after them."""

    def __init__(self) -> None:
        self._runners: list[web.AppRunner] = []

    async def start(self, app: web.Application, host: str, port: int, name: str) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runners.append(runner)
        logger.info("%s server listening on %s:%d", name, host, port)

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
