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
AUDIENCE = "http://d/"
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
        audience=AUDIENCE,
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


def _auth(signer: SigningKey, method: str = "PUT", guresid: str = "res-1") -> dict[str, str]:
    """A token minted for this request, as the operator mints it."""
    token = signer.authorization(
        audience=AUDIENCE, subject="ns/db", method=method, url=f"{AUDIENCE}{guresid}"
    )
    return {"Authorization": token}


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

    deleted = await client.delete("/res-1", headers=_auth(signer, "DELETE"))
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
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert reason in answer.text
    assert handlers.calls == []


async def test_expired_foreign_and_wrong_org_tokens_get_401(
    client: httpx2.AsyncClient, key: rsa.RSAPrivateKey, signer: SigningKey, handlers: Handlers
) -> None:
    url = f"{AUDIENCE}res-1"
    expired = signer.sign(now=time.time() - 3600, audience=AUDIENCE, method="PUT", url=url)
    wrong_org = SigningKey(key, "org-2").sign(audience=AUDIENCE, method="PUT", url=url)
    foreign = SigningKey(generate_private_key(2048), "org-1").sign(audience=AUDIENCE, method="PUT", url=url)
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


async def test_tokens_minted_for_another_driver_method_or_url_or_replayed_get_401(
    client: httpx2.AsyncClient, signer: SigningKey, handlers: Handlers
) -> None:
    other = "http://other-driver/"
    for token, reason in [
        (signer.sign(audience=other, subject="s", method="PUT", url=f"{other}res-1"), "another audience"),
        (
            signer.sign(audience=AUDIENCE, subject="s", method="DELETE", url=f"{AUDIENCE}res-1"),
            "another method",
        ),
        (signer.sign(audience=AUDIENCE, subject="s", method="PUT", url=f"{AUDIENCE}res-2"), "another URL"),
        (signer.sign(), "token has no aud"),  # no binding at all
    ]:
        answer = await client.put("/res-1", json=BODY, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, reason
        assert reason in answer.text
    assert handlers.calls == []
    # A valid token works once; the same token again (a replay) is refused.
    headers = _auth(signer)
    assert (await client.put("/res-1", json=BODY, headers=headers)).status_code == 200
    replayed = await client.put("/res-1", json=BODY, headers=headers)
    assert replayed.status_code == 401
    assert "replayed" in replayed.text
    assert len(handlers.calls) == 1


async def test_legacy_tokens_only_when_asked_for(key: rsa.RSAPrivateKey, signer: SigningKey) -> None:
    handlers = Handlers()
    app = DriverApp(put=handlers.put, public_keys=[key.public_key()], audience=AUDIENCE, legacy_tokens=True)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://d") as http:
        legacy = {"Authorization": f"Bearer {signer.sign()}"}  # orgID, iat, exp only (and a jti)
        assert (await http.put("/res-1", json=BODY, headers=legacy)).status_code == 200
        # What a token does carry is still checked, and replays still refused.
        assert (await http.put("/res-1", json=BODY, headers=legacy)).status_code == 401
        other = signer.sign(audience="http://other/", method="PUT", url="http://other/res-1")
        answer = await http.put("/res-1", json=BODY, headers={"Authorization": f"Bearer {other}"})
        assert answer.status_code == 401


async def test_a_full_replay_cache_answers_503_not_a_forgotten_id(
    key: rsa.RSAPrivateKey, signer: SigningKey
) -> None:
    app = DriverApp(
        put=Handlers().put, public_keys=[key.public_key()], audience=AUDIENCE, replay_cache_size=2
    )
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://d") as http:
        for _ in range(2):
            assert (await http.put("/res-1", json=BODY, headers=_auth(signer))).status_code == 200
        full = await http.put("/res-1", json=BODY, headers=_auth(signer))
        assert full.status_code == 503
        assert full.headers["retry-after"]


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
    app = DriverApp(put=Handlers().put, public_keys=[key.public_key()], audience=AUDIENCE, max_body_bytes=100)
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://d") as http:
        big = {**BODY, "resource": {"x": "y" * 200}}
        assert (await http.put("/res-1", json=big, headers=_auth(signer))).status_code == 413


def test_configuration_errors(key: rsa.RSAPrivateKey) -> None:
    keys = [key.public_key()]
    with pytest.raises(ValueError, match="public_keys"):
        DriverApp(put=Handlers().put, public_keys=None)
    with pytest.raises(ValueError, match="empty"):
        DriverApp(put=Handlers().put, public_keys=[], audience=AUDIENCE)
    with pytest.raises(ValueError, match="prefix"):
        DriverApp(put=Handlers().put, public_keys=keys, audience=AUDIENCE, prefix="pg")
    # The audience is not guessed (e.g. from the Host header, which a proxy or an attacker sets).
    with pytest.raises(ValueError, match=r"audience is required.*spec\.target"):
        DriverApp(put=Handlers().put, public_keys=keys)
    unauthenticated = DriverApp(put=Handlers().put, public_keys=None, allow_unauthenticated=True)
    assert unauthenticated.kids == []
    assert DriverApp(put=Handlers().put, public_keys=keys, audience=AUDIENCE).kids == [
        public_key_fingerprint(key)
    ]


async def test_lifespan_hooks_run(key: rsa.RSAPrivateKey) -> None:
    events: list[str] = []

    async def start() -> None:
        events.append("start")

    async def stop() -> None:
        events.append("stop")

    app = DriverApp(
        put=Handlers().put,
        public_keys=[key.public_key()],
        audience=AUDIENCE,
        on_startup=start,
        on_shutdown=stop,
    )
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app({"type": "lifespan"}, receive, send)
    assert events == ["start", "stop"]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
