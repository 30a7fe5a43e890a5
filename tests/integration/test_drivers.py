"""Remote drivers over real HTTP: the postgres reference driver (a subprocess, against testenv's real
PostgreSQL) and small scripted SDK drivers (in-process uvicorn), driven through the signed Remote client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from psycopg import sql

import testenv
from strongroom.drivers.base import (
    DriverAuthFailed,
    DriverError,
    DriverRejected,
    DriverRequest,
    DriverUnavailable,
    reveal_tree,
)
from strongroom.drivers.remote import RemoteDriver, RemoteTimings
from strongroom.drivers.sdk import (
    DriverApp,
    DriverFailure,
    DriverResponse,
    InProgress,
    PutRequest,
    in_progress,
)
from strongroom.drivers.signing import SigningKey, generate_private_key, public_key_pem
from strongroom.stores.base import SecretValue
from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, ManagedProcess, free_port, tcp_open
from testenv.service import Service

pytestmark = pytest.mark.integration

CANARY = "canary-integration-5d1c"
FAST = RemoteTimings(request=10, operation=30, poll_initial=0.05, poll_max=0.2)
DRIVER_SCRIPT = REPO_ROOT / "examples" / "drivers" / "postgres" / "driver.py"


def _load_driver_module() -> Any:
    # The example is a script, not a package; load it to use its naming function in assertions.
    import importlib.util

    spec = importlib.util.spec_from_file_location("postgres_driver_example", DRIVER_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pg_example = _load_driver_module()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = testenv.starter("postgres")(tmp_path_factory.mktemp("postgres"))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def operator_key() -> rsa.RSAPrivateKey:
    return generate_private_key(2048)


@pytest.fixture(scope="module")
def signer(operator_key: rsa.RSAPrivateKey) -> SigningKey:
    return SigningKey(operator_key, "org-it")


@pytest.fixture(scope="module")
def postgres_driver(
    postgres: Service, operator_key: rsa.RSAPrivateKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The reference driver as its own process, as a user would run it; yields its target URL."""
    workdir = tmp_path_factory.mktemp("postgres-driver")
    public = workdir / "operator.pub"
    public.write_bytes(public_key_pem(operator_key))
    port = free_port()
    argv = [sys.executable, str(DRIVER_SCRIPT), "--port", str(port), "--public-key", str(public)]
    argv += ["--org-id", "org-it", "--audience", f"http://{LOOPBACK}:{port}/"]
    proc = ManagedProcess("postgres-driver", argv, workdir / "driver.log", env=postgres.env, cwd=REPO_ROOT)
    proc.start()
    try:
        proc.wait_ready(lambda: tcp_open(port), timeout=30)
        yield f"http://{LOOPBACK}:{port}/"
    finally:
        proc.stop()


Remote = Callable[..., RemoteDriver]


@pytest.fixture
async def remote() -> AsyncIterator[Remote]:
    """Makes `RemoteDriver`s and closes them (their HTTP clients) after the test, as the operator does."""
    made: list[RemoteDriver] = []

    def make(target: str, **options: Any) -> RemoteDriver:
        made.append(RemoteDriver(target, **options))
        return made[-1]

    yield make
    for driver in made:
        await driver.close()


def _request(guresid: str, **overrides: Any) -> DriverRequest:
    fields: dict[str, Any] = {
        "guresid": guresid,
        "type": "postgres",
        "resource_id": "shared.db",
        "values": {"size": "small"},
        "secrets": {"unused": {"token": SecretValue(CANARY)}},
    }
    fields.update(overrides)
    return DriverRequest(**fields)


async def _admin(postgres: Service) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(postgres.env["DATABASE_URL"], autocommit=True)


async def _count(postgres: Service, query: str, name: str) -> int:
    async with await _admin(postgres) as conn:
        cursor = await conn.execute(query, (name,))
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


async def _login(postgres: Service, database: str, user: str, password: str) -> str:
    """Connect as the provisioned role to its database; returns current_user (proves the password)."""
    info = postgres.info
    async with await psycopg.AsyncConnection.connect(
        host=info["host"], port=info["port"], dbname=database, user=user, password=password
    ) as conn:
        cursor = await conn.execute("SELECT current_user")
        row = await cursor.fetchone()
        assert row is not None
        return str(row[0])


# --- the postgres reference driver ------------------------------------------------------------------------


async def test_put_is_idempotent_get_reports_and_delete_drops(
    postgres: Service, postgres_driver: str, signer: SigningKey, remote: Remote
) -> None:
    driver = remote(postgres_driver, signing_key=signer, timings=FAST, name="postgres")
    guresid = "it-orders-db-0001"
    name = pg_example.object_name(guresid)

    first = await driver.apply(_request(guresid))
    assert first.values == {"host": postgres.info["host"], "port": postgres.info["port"], "name": name}
    secrets = reveal_tree(first.secrets)
    assert secrets["username"] == name
    assert len(secrets["password"]) >= 24
    assert first.cookie is not None
    assert await _count(postgres, "SELECT count(*) FROM pg_database WHERE datname = %s", name) == 1
    assert (
        await _count(postgres, "SELECT count(*) FROM pg_roles WHERE rolname = %s AND rolcanlogin", name) == 1
    )
    assert await _login(postgres, name, name, secrets["password"]) == name

    # The operator repeats the PUT with the cookie it kept: same database, same password.
    second = await driver.apply(_request(guresid, cookie=first.cookie))
    assert reveal_tree(second.secrets) == secrets
    assert second.values == first.values
    assert (
        await _count(postgres, "SELECT count(*) FROM pg_database WHERE datname LIKE %s", "sr_it_orders%") == 1
    )
    assert await _login(postgres, name, name, secrets["password"]) == name

    observed = await driver.observe(_request(guresid, cookie=second.cookie))
    assert observed is not None
    assert observed.values == first.values
    assert reveal_tree(observed.secrets) == secrets

    await driver.delete(_request(guresid, cookie=second.cookie))
    assert await _count(postgres, "SELECT count(*) FROM pg_database WHERE datname = %s", name) == 0
    assert await _count(postgres, "SELECT count(*) FROM pg_roles WHERE rolname = %s", name) == 0
    assert await driver.observe(_request(guresid)) is None
    await driver.delete(_request(guresid))  # again: 204, still success


async def test_put_without_the_cookie_rotates_to_a_working_password(
    postgres: Service, postgres_driver: str, signer: SigningKey, remote: Remote
) -> None:
    driver = remote(postgres_driver, signing_key=signer, timings=FAST)
    guresid = "it-rotate-0002"
    first = await driver.apply(_request(guresid))
    lost = await driver.apply(_request(guresid))  # cookie lost: new password, same database
    name = pg_example.object_name(guresid)
    password = reveal_tree(lost.secrets)["password"]
    assert password != reveal_tree(first.secrets)["password"]
    assert await _login(postgres, name, name, password) == name
    # A concurrent burst of PUTs (retries racing each other) still leaves exactly one database.
    results = await asyncio.gather(*(driver.apply(_request(guresid, cookie=lost.cookie)) for _ in range(5)))
    assert {reveal_tree(r.secrets)["password"] for r in results} == {password}
    assert await _count(postgres, "SELECT count(*) FROM pg_database WHERE datname = %s", name) == 1
    await driver.delete(_request(guresid))


async def test_a_new_password_rotation_input_sets_a_new_password(
    postgres: Service, postgres_driver: str, signer: SigningKey, remote: Remote
) -> None:
    driver = remote(postgres_driver, signing_key=signer, timings=FAST)
    guresid = "it-rotation-input-0004"
    name = pg_example.object_name(guresid)
    first = await driver.apply(_request(guresid))
    old = reveal_tree(first.secrets)["password"]
    rotate = {"size": "small", "passwordRotation": "2026-12-05"}
    rotated = await driver.apply(_request(guresid, cookie=first.cookie, values=rotate))
    new = reveal_tree(rotated.secrets)["password"]
    assert new != old
    assert await _login(postgres, name, name, new) == name
    with pytest.raises(psycopg.OperationalError):
        await _login(postgres, name, name, old)
    # The same rotation input again, with the cookie kept: the password stays.
    again = await driver.apply(_request(guresid, cookie=rotated.cookie, values=rotate))
    assert reveal_tree(again.secrets)["password"] == new
    await driver.delete(_request(guresid, cookie=again.cookie))


async def test_wrong_key_is_refused_and_not_retried(postgres_driver: str, remote: Remote) -> None:
    stranger = SigningKey(generate_private_key(2048), "org-it")
    driver = remote(postgres_driver, signing_key=stranger, timings=FAST)
    with pytest.raises(DriverAuthFailed) as info:
        await driver.apply(_request("it-stranger-0003"))
    assert not info.value.retryable
    assert info.value.status == 401
    unsigned = remote(postgres_driver, timings=FAST)
    with pytest.raises(DriverAuthFailed):
        await unsigned.observe(_request("it-stranger-0003"))


async def test_wrong_resource_type_is_rejected_without_leaking(
    postgres_driver: str, signer: SigningKey, remote: Remote
) -> None:
    driver = remote(postgres_driver, signing_key=signer, timings=FAST)
    with pytest.raises(DriverRejected) as info:
        await driver.apply(_request("it-mysql-0004", type="mysql"))
    assert not info.value.retryable
    assert "mysql" in str(info.value)
    _assert_clean(info.value)


# --- scripted SDK drivers ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve(build: Callable[[str], DriverApp]) -> AsyncIterator[str]:
    """Serve the app `build(target)` makes (its audience is the target) with uvicorn on a loopback port in
    this event loop; yields the target URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(build(f"http://{LOOPBACK}:{port}/"), lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://{LOOPBACK}:{port}/"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


def _audience_app(put: Any, keys: list[rsa.RSAPublicKey], target: str) -> DriverApp:
    return DriverApp(put=put, public_keys=keys, audience=target)


class Script:
    def __init__(self, *answers: DriverResponse | InProgress) -> None:
        self.answers = list(answers)
        self.requests: list[PutRequest] = []

    async def put(self, request: PutRequest) -> DriverResponse | InProgress:
        self.requests.append(request)
        return self.answers.pop(0)


async def test_202_twice_then_200_is_polled_to_success(
    operator_key: rsa.RSAPrivateKey, signer: SigningKey
) -> None:
    script = Script(in_progress("creating"), in_progress("creating"), DriverResponse(values={"ready": True}))
    app = partial(DriverApp, put=script.put, public_keys=[operator_key.public_key()])
    async with (
        serve(lambda target: app(audience=target)) as target,
        RemoteDriver(target, signing_key=signer, timings=FAST) as driver,
    ):
        result = await driver.apply(_request("it-slow-0005"))
    assert result.values == {"ready": True}
    assert len(script.requests) == 3
    assert len({json.dumps([r.values, r.secrets, r.resource]) for r in script.requests}) == 1


async def test_409_is_polled(operator_key: rsa.RSAPrivateKey, signer: SigningKey) -> None:
    script = Script(InProgress(conflict=True, retry_after=0), DriverResponse(values={"n": 1}))
    app = partial(DriverApp, put=script.put, public_keys=[operator_key.public_key()])
    async with (
        serve(lambda target: app(audience=target)) as target,
        RemoteDriver(target, signing_key=signer, timings=FAST) as driver,
    ):
        result = await driver.apply(_request("it-busy-0006"))
    assert result.values == {"n": 1}
    assert len(script.requests) == 2


async def test_driver_down_is_retryable(signer: SigningKey, remote: Remote) -> None:
    target = f"http://{LOOPBACK}:{free_port()}/"
    driver = remote(target, signing_key=signer, timings=FAST)
    for call in (driver.apply, driver.observe, driver.delete):
        with pytest.raises(DriverUnavailable) as info:
            await call(_request("it-down-0007"))
        assert info.value.retryable
        _assert_clean(info.value)


def _assert_clean(exc: BaseException) -> None:
    """The canary is nowhere in the exception, its arguments, or its chain."""
    seen: BaseException | None = exc
    while seen is not None:
        assert CANARY not in str(seen)
        assert CANARY not in repr(seen)
        assert CANARY not in repr(seen.args)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


async def test_canary_never_reaches_an_exception(operator_key: rsa.RSAPrivateKey, signer: SigningKey) -> None:
    async def echo_400(request: PutRequest) -> DriverResponse:
        raise DriverFailure(
            f"bad inputs: {json.dumps(request.secrets)} / {request.secrets['unused']['token']}"
        )

    async def echo_500(request: PutRequest) -> DriverResponse:
        raise RuntimeError(f"crashed on {request.secrets}")

    async def bad_answer(request: PutRequest) -> DriverResponse:
        return DriverResponse(secrets={"copy": request.secrets["unused"]["token"]}, type="other")

    raised: list[DriverError] = []
    for put in (echo_400, echo_500, bad_answer):
        async with serve(partial(_audience_app, put, [operator_key.public_key()])) as target:
            async with RemoteDriver(target, signing_key=signer, timings=FAST) as driver:
                with pytest.raises(DriverError) as info:
                    await driver.apply(_request("it-canary-0008"))
            raised.append(info.value)
    for exc in raised:
        _assert_clean(exc)
    assert isinstance(raised[0], DriverRejected)
    assert "<redacted>" in str(raised[0])
    assert all(not isinstance(exc, DriverRejected) for exc in raised[1:])


def test_driver_script_refuses_to_start_without_keys(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [
            *(sys.executable, str(DRIVER_SCRIPT), "--port", "1", "--audience", "http://127.0.0.1:1/"),
            *("--public-key", str(tmp_path / "missing.pem")),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode != 0
    assert "missing.pem" in done.stderr


def test_object_names_are_stable_and_valid() -> None:
    name = pg_example.object_name("a" * 253)
    assert name == pg_example.object_name("a" * 253)
    assert len(name.encode()) <= 63
    assert name != pg_example.object_name("a" * 252 + "b")
    assert sql.Identifier(name)
