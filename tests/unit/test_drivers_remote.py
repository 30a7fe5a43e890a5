"""The remote driver client against SDK apps and scripted answers, in process (httpx2 transports)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from collections.abc import Callable, Coroutine
from typing import Any, cast

import httpx2
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from strongroom.api.driver import DriverSpec
from strongroom.drivers.base import (
    DriverAnswerTooLarge,
    DriverAuthFailed,
    DriverConfigError,
    DriverError,
    DriverNotAllowed,
    DriverOperation,
    DriverProtocolError,
    DriverRejected,
    DriverRequest,
    DriverTimeout,
    DriverUnavailable,
    OperationInProgress,
    SigningKeyNotAllowed,
    reveal_tree,
)
from strongroom.drivers.registry import DriverRegistry
from strongroom.drivers.remote import ERROR_EXCERPT_MAX, RemoteDriver, RemoteTimings
from strongroom.drivers.sdk import (
    DriverApp,
    DriverFailure,
    DriverResponse,
    InProgress,
    PutRequest,
    ResourceRequest,
    in_progress,
)
from strongroom.drivers.signing import SigningKey, generate_private_key, private_key_pem
from strongroom.operator.drivercache import DriverCache
from strongroom.operator.kube import Kube
from strongroom.stores.base import SecretValue

CANARY = "canary-7f3a9-do-not-leak"
FAST = RemoteTimings(request=5, operation=5, poll_initial=0.01, poll_max=0.05)
TARGET = "http://driver.test/pg/"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_private_key(2048)


@pytest.fixture(scope="module")
def signer(key: rsa.RSAPrivateKey) -> SigningKey:
    return SigningKey(key, "org-1")


def _request(**overrides: Any) -> DriverRequest:
    fields: dict[str, Any] = {
        "guresid": "abc-123",
        "type": "postgres",
        "resource_id": "shared.db",
        "values": {"size": "small"},
        "secrets": {"admin": {"password": SecretValue(CANARY)}},
        "resource_inputs": {"app": "api"},
    }
    fields.update(overrides)
    return DriverRequest(**fields)


class Memory:
    """A tiny driver: resources in a dict, a counter in the cookie."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.seen: list[PutRequest] = []

    async def put(self, request: PutRequest) -> DriverResponse:
        self.seen.append(request)
        count = json.loads(request.cookie)["count"] + 1 if request.cookie else 1
        self.resources[request.guresid] = {"values": request.values, "type": request.type}
        return DriverResponse(
            values={"echo": request.values, "app": request.resource.get("app")},
            secrets={"password": request.secrets["admin"]["password"]},
            manifests=[{"location": "namespace", "data": {"kind": "ConfigMap", "metadata": {"name": "x"}}}],
            cookie=json.dumps({"count": count}),
        )

    async def get(self, request: ResourceRequest) -> DriverResponse | None:
        found = self.resources.get(request.guresid)
        if found is None:
            return None
        return DriverResponse(type=found["type"], values={"echo": found["values"]})

    async def delete(self, request: ResourceRequest) -> None:
        self.resources.pop(request.guresid, None)


def _remote(app: Any, signer: SigningKey | None, timings: RemoteTimings = FAST) -> RemoteDriver:
    return RemoteDriver(TARGET, signing_key=signer, timings=timings, transport=httpx2.ASGITransport(app=app))


def _app(memory: Memory, key: rsa.RSAPrivateKey, **kwargs: Any) -> DriverApp:
    options: dict[str, Any] = {
        "put": memory.put,
        "get": memory.get,
        "delete": memory.delete,
        "public_keys": [key.public_key()],
        "prefix": "/pg/",
        "audience": TARGET,
    }
    options.update(kwargs)
    return DriverApp(**options)


def _assert_clean(exc: BaseException) -> None:
    """No secret in the exception, its args, or anything chained to it."""
    seen: BaseException | None = exc
    while seen is not None:
        assert CANARY not in str(seen)
        assert CANARY not in repr(seen.args)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


async def test_put_get_delete_round_trip_with_cookie(key: rsa.RSAPrivateKey, signer: SigningKey) -> None:
    memory = Memory()
    remote = _remote(_app(memory, key, org_id="org-1"), signer)
    req = _request()

    result = await remote.apply(req)
    assert result.id == "abc-123"
    assert result.values == {"echo": {"size": "small"}, "app": "api"}
    assert reveal_tree(result.secrets) == {"password": CANARY}
    assert [(m.location, m.data["kind"]) for m in result.manifests] == [("namespace", "ConfigMap")]
    assert result.cookie is not None
    # The client keeps the header value as it came: base64, as the SDK writes it.
    assert json.loads(base64.b64decode(result.cookie.reveal())) == {"count": 1}
    assert memory.seen[0].secrets == {"admin": {"password": CANARY}}
    assert memory.seen[0].claims["orgID"] == "org-1"

    again = await remote.apply(_request(cookie=result.cookie))
    assert again.cookie is not None
    assert json.loads(base64.b64decode(again.cookie.reveal())) == {"count": 2}
    assert memory.seen[1].cookie == b'{"count": 1}'

    observed = await remote.observe(req)
    assert observed is not None
    assert observed.values == {"echo": {"size": "small"}}
    # GET sets no cookie, so the one the request carried is kept.
    kept = await remote.observe(_request(cookie=again.cookie))
    assert kept is not None
    assert kept.cookie == again.cookie

    await remote.delete(req)
    assert memory.resources == {}
    assert await remote.observe(req) is None
    await remote.delete(req)  # already gone: still fine


async def test_driver_without_get_is_observed_as_absent(key: rsa.RSAPrivateKey, signer: SigningKey) -> None:
    memory = Memory()
    remote = _remote(_app(memory, key, get=None), signer)
    await remote.apply(_request())
    assert await remote.observe(_request()) is None


class Scripted:
    """Answers PUT with the scripted results in turn, recording each request."""

    def __init__(self, *answers: DriverResponse | InProgress) -> None:
        self.answers = list(answers)
        self.requests: list[PutRequest] = []

    async def put(self, request: PutRequest) -> DriverResponse | InProgress:
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    async def delete(self, request: ResourceRequest) -> InProgress | None:
        self.requests.append(PutRequest(guresid=request.guresid, cookie=request.cookie))
        return self.answers.pop(0) if len(self.answers) > 1 else None  # type: ignore[return-value]


async def test_202_is_polled_with_the_same_request_until_200(
    key: rsa.RSAPrivateKey, signer: SigningKey
) -> None:
    script = Scripted(
        in_progress("creating", cookie=b"op-1"),
        in_progress("creating"),
        DriverResponse(values={"done": True}),
    )
    remote = _remote(
        DriverApp(put=script.put, public_keys=[key.public_key()], prefix="/pg/", audience=TARGET), signer
    )
    result = await remote.apply(_request())
    assert result.values == {"done": True}
    assert len(script.requests) == 3
    assert {(r.type, json.dumps(r.values), json.dumps(r.secrets)) for r in script.requests} == {
        ("postgres", '{"size": "small"}', json.dumps({"admin": {"password": CANARY}}))
    }
    # The cookie a 202 sets is sent with the next poll, and kept when the final answer sets none.
    assert [r.cookie for r in script.requests] == [None, b"op-1", b"op-1"]
    assert result.cookie is not None
    assert base64.b64decode(result.cookie.reveal()) == b"op-1"


async def test_409_is_polled_and_delete_202_too(key: rsa.RSAPrivateKey, signer: SigningKey) -> None:
    script = Scripted(InProgress(conflict=True), DriverResponse(values={"ok": 1}))
    remote = _remote(
        DriverApp(put=script.put, public_keys=[key.public_key()], prefix="/pg/", audience=TARGET), signer
    )
    assert (await remote.apply(_request())).values == {"ok": 1}
    assert len(script.requests) == 2

    deleting = Scripted(in_progress("deleting"), in_progress("deleting"), DriverResponse())
    app = DriverApp(
        put=deleting.put,
        delete=deleting.delete,
        public_keys=[key.public_key()],
        prefix="/pg/",
        audience=TARGET,
    )
    await _remote(app, signer).delete(_request())
    assert len(deleting.requests) == 3


async def test_polling_stops_at_the_operation_deadline(key: rsa.RSAPrivateKey, signer: SigningKey) -> None:
    script = Scripted(in_progress("updating"))
    timings = RemoteTimings(request=1, operation=0.3, poll_initial=0.05, poll_max=0.1)
    remote = _remote(
        DriverApp(put=script.put, public_keys=[key.public_key()], prefix="/pg/", audience=TARGET),
        signer,
        timings,
    )
    with pytest.raises(DriverTimeout) as info:
        await remote.apply(_request())
    assert info.value.retryable
    assert 2 <= len(script.requests) <= 10


async def test_400_is_permanent_and_redacted(key: rsa.RSAPrivateKey, signer: SigningKey) -> None:
    async def put(request: PutRequest) -> DriverResponse:
        # A careless driver quoting its inputs back.
        raise DriverFailure(
            f"cannot use password {request.secrets['admin']['password']!r} with {request.values}"
        )

    remote = _remote(
        DriverApp(put=put, public_keys=[key.public_key()], prefix="/pg/", audience=TARGET), signer
    )
    with pytest.raises(DriverRejected) as info:
        await remote.apply(_request())
    assert not info.value.retryable
    assert info.value.status == 400
    assert "RES-101" in str(info.value)
    assert "<redacted>" in str(info.value)
    assert "small" in str(info.value)  # values are not secret
    _assert_clean(info.value)


async def test_wrong_key_is_an_auth_error(key: rsa.RSAPrivateKey) -> None:
    stranger = SigningKey(generate_private_key(2048), "org-1")
    remote = _remote(_app(Memory(), key), stranger)
    with pytest.raises(DriverAuthFailed) as info:
        await remote.apply(_request())
    assert not info.value.retryable
    assert info.value.status == 401
    assert "unknown key id" in str(info.value)
    with pytest.raises(DriverAuthFailed):
        await _remote(_app(Memory(), key), None).apply(_request())


def _mock(handler: Callable[[httpx2.Request], httpx2.Response]) -> RemoteDriver:
    return RemoteDriver(TARGET, timings=FAST, transport=httpx2.MockTransport(handler))


async def test_5xx_and_network_errors_are_retryable() -> None:
    with pytest.raises(DriverUnavailable) as info:
        await _mock(lambda r: httpx2.Response(503, text=f"overloaded {CANARY}")).apply(_request())
    assert info.value.retryable
    _assert_clean(info.value)

    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError(f"refused while sending {CANARY}", request=request)

    with pytest.raises(DriverUnavailable) as refused:
        await _mock(refuse).delete(_request())
    assert refused.value.retryable
    _assert_clean(refused.value)


async def test_bad_answers_are_protocol_errors_without_secrets() -> None:
    body = {
        "id": "abc-123",
        "type": "postgres",
        "resource": {"values": {}, "secrets": {"password": "s3cr3t-output-value"}},
        "manifests": [{"location": "moon", "data": {"password": "s3cr3t-output-value"}}],
    }
    with pytest.raises(DriverProtocolError) as info:
        await _mock(lambda r: httpx2.Response(200, json=body)).apply(_request())
    assert "manifests[0]" in str(info.value)
    assert "s3cr3t-output-value" not in str(info.value)

    with pytest.raises(DriverProtocolError, match="another GUResID"):
        await _mock(lambda r: httpx2.Response(200, json={**body, "id": "zzz", "manifests": []})).apply(
            _request()
        )
    with pytest.raises(DriverProtocolError, match="not JSON"):
        await _mock(lambda r: httpx2.Response(200, text="ok")).apply(_request())
    big = httpx2.Response(
        200, json={**body, "manifests": []}, headers={"Set-Humanitec-Driver-Cookie": "a" * 10240}
    )
    with pytest.raises(DriverProtocolError, match="cookie"):
        await _mock(lambda r: big).apply(_request())
    with pytest.raises(DriverProtocolError) as echoed:
        await _mock(lambda r: httpx2.Response(418, json={"message": f"teapot {CANARY}"})).apply(_request())
    _assert_clean(echoed.value)


async def test_lenient_reading_and_workload_update() -> None:
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(
            200,
            json={
                "resource": {"values": {"update": [{"op": "add", "path": "/spec/x", "value": 1}], "k": "v"}},
                "manifests": [{"location": "container", "manifest": {"name": "sidecar"}}],
            },
            headers={"Set-Humanitec-Driver-Cookie": ""},
        )

    result = await _mock(answer).apply(_request(type="workload", cookie=SecretValue("b2xk")))
    assert result.update == [{"op": "add", "path": "/spec/x", "value": 1}]
    assert result.values == {"k": "v"}
    assert [(m.location, m.data) for m in result.manifests] == [("containers", {"name": "sidecar"})]
    assert result.cookie is None  # an empty Set header clears the cookie
    sent = seen[0]
    assert sent.method == "PUT"
    assert str(sent.url) == "http://driver.test/pg/abc-123"
    assert sent.headers["Humanitec-Driver-Cookie"] == "b2xk"
    assert "authorization" not in sent.headers
    assert json.loads(sent.content) == {
        "type": "workload",
        "resource": {"app": "api"},
        "driver": {"values": {"size": "small"}, "secrets": {"admin": {"password": CANARY}}},
    }


async def test_requests_that_cannot_be_sent_are_config_errors() -> None:
    remote = _mock(lambda r: httpx2.Response(200, json={}))
    with pytest.raises(DriverConfigError, match="GUResID"):
        await remote.apply(_request(guresid="../etc"))
    with pytest.raises(DriverConfigError, match="cookie"):
        await remote.apply(_request(cookie=SecretValue("x" * 10240)))
    with pytest.raises(DriverConfigError, match="header value"):
        await remote.apply(_request(cookie=SecretValue("line\nbreak")))
    with pytest.raises(DriverConfigError, match="http"):
        RemoteDriver("ftp://user:pw@host/")


async def test_every_error_is_a_driver_error() -> None:
    def explode(request: httpx2.Request) -> httpx2.Response:
        raise RuntimeError(f"bug with {CANARY}")

    with pytest.raises(DriverError) as info:
        await _mock(explode).observe(_request())
    _assert_clean(info.value)


# --- the client's lifetime --------------------------------------------------------------------------------


class Counting(httpx2.MockTransport):
    """A mock transport that counts how often a client over it was closed."""

    def __init__(
        self,
        handler: Callable[[httpx2.Request], httpx2.Response]
        | Callable[[httpx2.Request], Coroutine[None, None, httpx2.Response]],
    ) -> None:
        super().__init__(handler)
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def _ok(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200 if request.method != "DELETE" else 204, json={})


async def _until(condition: Callable[[], bool]) -> None:
    """Let background tasks (closes scheduled by the DriverCache) run until `condition` holds."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0)
    assert condition()


async def test_one_client_serves_every_operation_until_closed() -> None:
    transport = Counting(_ok)
    await RemoteDriver(TARGET, timings=FAST, transport=transport).close()  # never used: nothing to close
    assert transport.closed == 0
    remote = RemoteDriver(TARGET, timings=FAST, transport=transport)
    await remote.apply(_request())
    assert await remote.observe(_request()) is not None
    await remote.delete(_request())
    assert transport.closed == 0  # a client per operation would have been closed three times
    await remote.close()
    await remote.close()
    assert transport.closed == 1


async def test_close_lets_operations_in_flight_finish() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx2.Request) -> httpx2.Response:
        started.set()
        await release.wait()
        return httpx2.Response(200, json={})

    transport = Counting(slow)
    remote = RemoteDriver(TARGET, timings=FAST, transport=transport)
    running = asyncio.create_task(remote.apply(_request()))
    await started.wait()
    await remote.close()  # the Driver object changed meanwhile
    assert transport.closed == 0
    release.set()
    assert (await running).id == "abc-123"
    assert transport.closed == 1
    # A caller still holding the driver gets an answer, on a client closed right after.
    assert await remote.observe(_request()) is not None
    assert transport.closed == 2


async def test_http_cookies_last_one_operation() -> None:
    seen: list[str | None] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers.get("Cookie"))
        if len(seen) % 2:  # first request of each operation: come back later, through this backend
            return httpx2.Response(202, headers={"Set-Cookie": "backend=b2; Path=/"})
        return httpx2.Response(200, json={})

    async with RemoteDriver(TARGET, timings=FAST, transport=httpx2.MockTransport(answer)) as remote:
        await remote.apply(_request())
        await remote.apply(_request(guresid="def-456"))
    # The poll carries the cookie; the next operation (another Resource) starts without it.
    assert seen == [None, "backend=b2", None, "backend=b2"]


async def test_network_client_keeps_its_connection_and_request_timeouts() -> None:
    peers: list[object] = []

    async def handle(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        if request.match_info["guresid"] == "slow-1":
            await asyncio.sleep(2)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/pg/{guresid}", handle)
    async with TestServer(app, host="127.0.0.1") as server:
        target = str(server.make_url("/pg/"))
        timings = RemoteTimings(request=0.3, operation=5, poll_initial=0.01, poll_max=0.05)
        async with RemoteDriver(target, timings=timings) as remote:  # the default aiohttp transport
            for _ in range(3):
                await remote.apply(_request())
            assert len(peers) == 3
            assert len(set(peers)) == 1  # one kept-alive connection for every operation
            with pytest.raises(DriverUnavailable, match=r"no complete answer within 0\.3s"):
                await remote.apply(_request(guresid="slow-1"))


def _driver_body(generation: int, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "Driver",
        "metadata": {"name": "pg", "namespace": "apps", "generation": generation},
        "spec": {"target": TARGET, "sign": False, **spec},
    }


async def test_driver_cache_closes_the_clients_it_drops() -> None:
    transport = Counting(_ok)
    # Unsigned Drivers need no key Secret: the cache never calls the API server here.
    cache = DriverCache(cast(Kube, None), "strongroom", DriverRegistry(transport=transport))

    cache.observe("ADDED", _driver_body(1))
    first = await cache.resolve("pg", "apps")
    await first.apply(_request())
    # The same spec again (a status update, a watch listing everything anew): same driver, client kept.
    cache.observe("MODIFIED", _driver_body(1))
    assert await cache.resolve("pg", "apps") is first
    await asyncio.sleep(0)
    assert transport.closed == 0

    cache.observe("MODIFIED", _driver_body(2, timeouts={"request": "5s"}))
    await _until(lambda: transport.closed == 1)
    second = await cache.resolve("pg", "apps")
    assert second is not first
    await second.apply(_request())

    cache.observe("DELETED", _driver_body(2, timeouts={"request": "5s"}))
    await _until(lambda: transport.closed == 2)
    # Resources still being deprovisioned use the Driver as last seen, on a client closed at shutdown.
    retired = await cache.resolve("pg", "apps", deleting=True)
    await retired.delete(_request())
    await cache.close()
    assert transport.closed == 3


# --- bounds: one deadline per request, a size cap, short excerpts of error bodies --------------------------


async def _serve_raw(handler: Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]) -> TestServer:
    app = web.Application()
    app.router.add_route("*", "/pg/{guresid}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_a_trickling_answer_ends_at_the_request_deadline() -> None:
    # Valid JSON, one byte every 50 ms: no single read waits long, so only a total deadline stops it.
    body = json.dumps({"id": "abc-123", "resource": {"values": {"pad": "x" * 60}}}).encode()

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for byte in body:
            await response.write(bytes([byte]))
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    server = await _serve_raw(trickle)
    try:
        timings = RemoteTimings(request=0.5, operation=30, poll_initial=0.01, poll_max=0.05)
        async with RemoteDriver(str(server.make_url("/pg/")), timings=timings) as remote:
            with pytest.raises(DriverUnavailable, match=r"no complete answer within 0\.5s"):
                await remote.apply(_request())
    finally:
        await server.close()


async def test_answers_over_the_cap_are_refused_as_sent_and_once_decompressed() -> None:
    bomb = gzip.compress(json.dumps({"resource": {"values": {"x": "0" * (50 * 1024 * 1024)}}}).encode())
    big = json.dumps({"resource": {"values": {"x": "y" * (5 * 1024 * 1024)}}}).encode()

    async def answer(request: web.Request) -> web.Response:
        if request.match_info["guresid"] == "bomb":
            return web.Response(
                body=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
            )
        return web.Response(body=big, content_type="application/json")

    server = await _serve_raw(answer)
    try:
        async with RemoteDriver(str(server.make_url("/pg/")), timings=FAST) as remote:
            with pytest.raises(DriverAnswerTooLarge, match=r"larger than 1048576 bytes") as info:
                await remote.apply(_request(guresid="big"))
            assert info.value.reason == "DriverAnswerTooLarge"
            assert not info.value.retryable  # fetching it again would not make it smaller
            assert "maxResponseBytes" in str(info.value)
            assert len(bomb) < 1024 * 1024  # small on the wire: only the decoded size gives it away
            with pytest.raises(DriverAnswerTooLarge, match="once decompressed"):
                await remote.apply(_request(guresid="bomb"))
        # A Driver may allow more (up to the CRD's maximum).
        spec = DriverSpec.model_validate({"target": str(server.make_url("/pg/")), "sign": False})
        roomy = RemoteDriver.from_spec(
            spec.model_copy(update={"max_response_bytes": 8 * 1024 * 1024}), name="roomy", signing_key=None
        )
        async with roomy:
            assert (await roomy.apply(_request(guresid="big"))).values["x"] == "y" * (5 * 1024 * 1024)
    finally:
        await server.close()


async def test_error_bodies_reach_the_status_only_as_short_printable_excerpts() -> None:
    junk = ("\x1b[31m<script>" + "A" * 2048)[:2048]
    long_message = "line one\nline\ttwo \x07" + "m" * 500

    def answer(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("junk"):
            return httpx2.Response(500, content=junk.encode(), headers={"Content-Type": "text/html"})
        return httpx2.Response(400, json={"error": "RES-123", "message": long_message})

    remote = _mock(answer)
    with pytest.raises(DriverUnavailable) as info:
        await remote.apply(_request(guresid="junk"))
    assert str(info.value).endswith(": 500 Internal Server Error: 2048 bytes of text/html")
    with pytest.raises(DriverRejected) as rejected:
        await remote.apply(_request(guresid="structured"))
    excerpt = str(rejected.value).split("400 Bad Request: ", 1)[1]
    assert excerpt.startswith("RES-123: line one line two m")
    assert len(excerpt) <= ERROR_EXCERPT_MAX
    assert excerpt.isprintable()


# --- waiting is a timer: operations across calls -----------------------------------------------------------


async def test_an_operation_answers_at_once_and_carries_the_202_cookie_to_the_next_call() -> None:
    seen: list[str | None] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers.get("Humanitec-Driver-Cookie"))
        if len(seen) < 3:
            return httpx2.Response(202, headers={"Set-Humanitec-Driver-Cookie": f"step-{len(seen)}"})
        return httpx2.Response(200, json={"resource": {"values": {"done": True}}})

    remote = _mock(answer)
    operation = DriverOperation("PUT")
    request = _request(cookie=SecretValue("stored"), operation=operation)
    for _ in range(2):
        with pytest.raises(OperationInProgress) as working:
            await remote.apply(request)
        assert 0 < working.value.retry_after <= FAST.poll_max
    result = await remote.apply(request)
    assert result.values == {"done": True}
    assert result.cookie == SecretValue("step-2")
    # The stored cookie first, then what each 202 set, each sent with the next call.
    assert seen == ["stored", "step-1", "step-2"]
    assert operation.polls == 2
    with pytest.raises(DriverConfigError, match="cannot continue with DELETE"):
        await remote.delete(request)


async def test_an_operation_past_its_deadline_is_a_timeout() -> None:
    remote = RemoteDriver(
        TARGET,
        timings=RemoteTimings(request=1, operation=1, poll_initial=0.01, poll_max=0.05),
        transport=httpx2.MockTransport(lambda request: httpx2.Response(202)),
    )
    operation = DriverOperation("PUT")
    with pytest.raises(OperationInProgress):
        await remote.apply(_request(operation=operation))
    assert operation.started is not None
    operation.started -= 5  # as if the operation had run for 5 s of reconciles
    with pytest.raises(DriverTimeout):
        await remote.apply(_request(operation=operation))


async def test_each_request_carries_a_token_bound_to_it(signer: SigningKey) -> None:
    tokens: list[dict[str, Any]] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        tokens.append(jwt.decode(token, options={"verify_signature": False}))
        return httpx2.Response(202) if len(tokens) == 1 else httpx2.Response(200, json={})

    remote = RemoteDriver(TARGET, signing_key=signer, timings=FAST, transport=httpx2.MockTransport(answer))
    await remote.apply(_request(namespace="team-a"))
    await remote.delete(_request(namespace="team-a"))
    assert [t["htm"] for t in tokens] == ["PUT", "PUT", "DELETE"]
    assert {t["aud"] for t in tokens} == {TARGET}
    assert {t["htu"] for t in tokens} == {f"{TARGET}abc-123"}
    assert {t["sub"] for t in tokens} == {"team-a/shared.db"}
    assert len({t["jti"] for t in tokens}) == 3  # the poll too gets a token of its own


# --- tenancy of Driver objects ----------------------------------------------------------------------------


class _Secrets:
    """The one Kube call the cache makes: reading a key Secret."""

    def __init__(self, secrets: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.secrets = secrets
        self.reads: list[tuple[str, str]] = []

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append((namespace, name))
        return self.secrets.get((namespace, name))


def _object(namespace: str, name: str = "pg", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "Driver",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"target": TARGET, **spec},
    }


async def test_operator_namespace_drivers_serve_only_the_namespaces_they_name(key: rsa.RSAPrivateKey) -> None:
    pem = base64.b64encode(private_key_pem(key)).decode()
    secret = {"data": {"privateKey": pem, "organisationID": base64.b64encode(b"org").decode()}}
    kube = _Secrets({("strongroom", "strongroom-driver-key"): secret})
    cache = DriverCache(cast(Kube, kube), "strongroom", DriverRegistry(transport=httpx2.MockTransport(_ok)))
    cache.observe("ADDED", _object("strongroom"))
    # Closed when allowedNamespaces is absent, except to the operator namespace itself.
    with pytest.raises(
        DriverNotAllowed, match=r"does not allow namespace 'team-a'.*allowedNamespaces"
    ) as info:
        await cache.resolve("pg", "team-a")
    assert info.value.reason == "DriverNotAllowed"
    assert kube.reads == []  # refused before any key was read
    assert await cache.resolve("pg", "strongroom") is not None
    cache.observe("MODIFIED", {**_object("strongroom", allowedNamespaces=["team-b"]), "metadata": {
        "name": "pg", "namespace": "strongroom", "generation": 2}})  # fmt: skip
    with pytest.raises(DriverNotAllowed):
        await cache.resolve("pg", "team-a", deleting=True)
    assert await cache.resolve("pg", "team-b") is not None
    cache.observe("MODIFIED", {**_object("strongroom", allowedNamespaces=["*"]), "metadata": {
        "name": "pg", "namespace": "strongroom", "generation": 3}})  # fmt: skip
    assert await cache.resolve("pg", "team-a") is not None
    await cache.close()


async def test_the_operator_key_signs_only_for_operator_namespace_drivers() -> None:
    kube = _Secrets({})
    cache = DriverCache(cast(Kube, kube), "strongroom", DriverRegistry(transport=httpx2.MockTransport(_ok)))
    cache.observe("ADDED", _object("team-a"))
    with pytest.raises(SigningKeyNotAllowed, match=r"names no privateKeySecretRef.*Nothing was sent") as info:
        await cache.resolve("pg", "team-a")
    assert info.value.reason == "SigningKeyNotAllowed"
    assert kube.reads == []  # the operator's key Secret was not even read
    # Unsigned, or with a key of its own, a tenant's Driver is fine.
    cache.observe("ADDED", _object("team-a", "unsigned", sign=False))
    assert await cache.resolve("unsigned", "team-a") is not None
    cache.observe("ADDED", _object("team-a", "own", privateKeySecretRef={"name": "own-key"}))
    with pytest.raises(DriverError, match="Secret team-a/own-key"):
        await cache.resolve("own", "team-a")
    assert kube.reads == [("team-a", "own-key")]
    await cache.close()


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"timeouts": {"request": "1ns"}}, "request must be between 1s and 5m"),
        ({"timeouts": {"request": "0"}}, "request must be between 1s and 5m"),
        ({"timeouts": {"request": "6m"}}, "request must be between 1s and 5m"),
        ({"timeouts": {"operation": "2h"}}, "operation must be between 1s and 1h"),
        ({"maxResponseBytes": 100}, "greater than or equal to 1024"),
        ({"maxResponseBytes": 9 * 1024 * 1024}, "less than or equal to 8388608"),
        ({"allowedNamespaces": ["Team_A"]}, "pattern"),
    ],
)
def test_driver_bounds_are_refused(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        DriverSpec.model_validate({"target": TARGET, **spec})
