"""The driver SDK's ASGI app, spoken to in raw HTTP: routing, auth, validation, cookies, lifespan."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.drivers.sdk import DriverApp, DriverResponse, PutRequest, ResourceRequest
from strongroom.drivers.signing import (
    SigningKey,
    generate_private_key,
    public_key_fingerprint,
    public_key_pem,
)

CANARY = "canary-sdk-0b9e"
BODY = {"type": "postgres", "resource": {}, "driver": {"values": {"v": 1}, "secrets": {"s": CANARY}}}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_private_key(2048)


@pytest.fixture(scope="module")
def signer(key: rsa.RSAPrivateKey) -> SigningKey:
    return SigningKey(key, "org-1")


class Handlers:
    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.answer: Any = None

    async def put(self, request: PutRequest) -> DriverResponse:
        self.calls.append(request)
        if self.answer is not None:
            return self.answer  # type: ignore[no-any-return]
        return DriverResponse(values={"v": request.values["v"]}, secrets={"s": request.secrets["s"]})

    async def delete(self, request: ResourceRequest) -> None:
        self.calls.append(request)


@pytest.fixture
def handlers() -> Handlers:
    return Handlers()


@pytest.fixture
async def client(key: rsa.RSAPrivateKey, handlers: Handlers) -> AsyncIterator[httpx2.AsyncClient]:
    # Keys given as PEM under their kid, the way a driver reads them from configuration.
    app = DriverApp(
        put=handlers.put,
        delete=handlers.delete,
        public_keys={public_key_fingerprint(key): public_key_pem(key)},
        org_id="org-1",
    )
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://d") as http:
        yield http


def _hs256_with_public_key(key: rsa.RSAPrivateKey, kid: str, claims: dict[str, Any]) -> str:
    """The classic algorithm-confusion forgery, by hand (PyJWT itself refuses to make it)."""

    def part(data: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT", "kid": kid}) + b"." + part(claims)
    mac = hmac.new(public_key_pem(key), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()


def _auth(signer: SigningKey) -> dict[str, str]:
    return {"Authorization": signer.authorization()}


async def test_put_and_delete(client: httpx2.AsyncClient, signer: SigningKey, handlers: Handlers) -> None:
    answer = await client.put("/res-1", json=BODY, headers=_auth(signer))
    assert answer.status_code == 200
    assert answer.json() == {
        "id": "res-1",
        "type": "postgres",
        "resource": {"values": {"v": 1}, "secrets": {"s": CANARY}},
        "manifests": [],
    }
    assert "set-humanitec-driver-cookie" not in answer.headers
    assert CANARY not in repr(handlers.calls[0])

    deleted = await client.delete("/res-1", headers=_auth(signer))
    assert deleted.status_code == 204
    assert deleted.content == b""


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "Bearer token is required"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "Bearer token is required"),
        ({"Authorization": "Bearer nonsense"}, "malformed"),
    ],
)
async def test_requests_without_a_valid_token_get_401(
    client: httpx2.AsyncClient, handlers: Handlers, headers: dict[str, str], reason: str
) -> None:
    answer = await client.put("/res-1", json=BODY, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert reason in answer.text
    assert handlers.calls == []


async def test_expired_foreign_and_wrong_org_tokens_get_401(
    client: httpx2.AsyncClient, key: rsa.RSAPrivateKey, signer: SigningKey, handlers: Handlers
) -> None:
    expired = signer.sign(now=time.time() - 3600)
    wrong_org = SigningKey(key, "org-2").sign()
    foreign = SigningKey(generate_private_key(2048), "org-1").sign()
    now = int(time.time())
    hs256 = _hs256_with_public_key(key, signer.kid, {"orgID": "org-1", "iat": now, "exp": now + 60})
    for token, reason in [
        (expired, "expired"),
        (wrong_org, "organisation"),
        (foreign, "unknown key"),
        (hs256, "RS256"),
    ]:
        answer = await client.put("/res-1", json=BODY, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, reason
        assert reason in answer.text
    assert handlers.calls == []


async def test_request_validation_names_fields_not_values(
    client: httpx2.AsyncClient, signer: SigningKey, handlers: Handlers
) -> None:
    bad = {"type": "Not A Type", "driver": {"values": [CANARY], "secrets": {}}}
    answer = await client.put("/res-1", json=bad, headers=_auth(signer))
    assert answer.status_code == 400
    error = answer.json()
    assert error["error"] == "RES-100"
    assert "type:" in error["message"]
    assert "driver.values:" in error["message"]
    assert CANARY not in answer.text
    broken = await client.put("/res-1", content=b"{not json", headers=_auth(signer))
    assert broken.status_code == 400
    assert handlers.calls == []


async def test_routing(client: httpx2.AsyncClient, signer: SigningKey) -> None:
    assert (await client.get("/res-1", headers=_auth(signer))).status_code == 405  # no get handler
    patch = await client.patch("/res-1", headers=_auth(signer))
    assert patch.status_code == 405
    assert patch.headers["allow"] == "PUT, DELETE"
    assert (await client.put("/a/b", json=BODY, headers=_auth(signer))).status_code == 404
    assert (await client.put("/", json=BODY, headers=_auth(signer))).status_code == 404
    assert (await client.put("/Bad_Id", json=BODY, headers=_auth(signer))).status_code == 400


async def test_cookie_in_and_out(client: httpx2.AsyncClient, signer: SigningKey, handlers: Handlers) -> None:
    handlers.answer = DriverResponse(cookie=b"\x00binary state\xff")
    cookie = base64.b64encode(b'{"n": 1}').decode()
    answer = await client.put(
        "/res-1", json=BODY, headers={**_auth(signer), "Humanitec-Driver-Cookie": cookie}
    )
    assert answer.status_code == 200
    assert handlers.calls[0].cookie == b'{"n": 1}'
    assert base64.b64decode(answer.headers["set-humanitec-driver-cookie"]) == b"\x00binary state\xff"

    handlers.answer = DriverResponse(clear_cookie=True)
    cleared = await client.put("/res-1", json=BODY, headers=_auth(signer))
    assert cleared.headers["set-humanitec-driver-cookie"] == ""

    bad = await client.put("/res-1", json=BODY, headers={**_auth(signer), "Humanitec-Driver-Cookie": "%%%"})
    assert bad.status_code == 400
    assert "base64" in bad.json()["message"]


async def test_answers_that_break_the_spec_are_500s(
    client: httpx2.AsyncClient, signer: SigningKey, handlers: Handlers
) -> None:
    handlers.answer = DriverResponse(manifests=[{"location": "moon", "data": {"secret": CANARY}}])
    answer = await client.put("/res-1", json=BODY, headers=_auth(signer))
    assert answer.status_code == 500
    assert answer.json() == {"error": "RES-199", "message": "internal error in the driver"}
    handlers.answer = DriverResponse(cookie=b"x" * 8000)  # over 10 KiB once in base64
    assert (await client.put("/res-1", json=BODY, headers=_auth(signer))).status_code == 500
    handlers.answer = DriverResponse(type="mysql")
    assert (await client.put("/res-1", json=BODY, headers=_auth(signer))).status_code == 500


async def test_body_size_limit(key: rsa.RSAPrivateKey, signer: SigningKey) -> None:
    app = DriverApp(put=Handlers().put, public_keys=[key.public_key()], max_body_bytes=100)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://d") as http:
        big = {**BODY, "resource": {"x": "y" * 200}}
        assert (await http.put("/res-1", json=big, headers=_auth(signer))).status_code == 413


def test_configuration_errors(key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="public_keys"):
        DriverApp(put=Handlers().put, public_keys=None)
    with pytest.raises(ValueError, match="empty"):
        DriverApp(put=Handlers().put, public_keys=[])
    with pytest.raises(ValueError, match="prefix"):
        DriverApp(put=Handlers().put, public_keys=[key.public_key()], prefix="pg")
    unauthenticated = DriverApp(put=Handlers().put, public_keys=None, allow_unauthenticated=True)
    assert unauthenticated.kids == []
    assert DriverApp(put=Handlers().put, public_keys=[key.public_key()]).kids == [public_key_fingerprint(key)]


async def test_lifespan_hooks_run(key: rsa.RSAPrivateKey) -> None:
    events: list[str] = []

    async def start() -> None:
        events.append("start")

    async def stop() -> None:
        events.append("stop")

    app = DriverApp(put=Handlers().put, public_keys=[key.public_key()], on_startup=start, on_shutdown=stop)
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app({"type": "lifespan"}, receive, send)
    assert events == ["start", "stop"]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
