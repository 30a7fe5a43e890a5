"""A remote driver as a plain ASGI application (no web framework).

The driver author writes three async functions and hands them to `DriverApp`:

    async def put(request: PutRequest) -> DriverResponse | InProgress
    async def get(request: ResourceRequest) -> DriverResponse | InProgress | None   # None: 404
    async def delete(request: ResourceRequest) -> InProgress | None                 # None: 204

`get` and `delete` are optional (405 without them, which the operator understands). The app:
- serves `PUT|GET|DELETE {prefix}{guresid}` and nothing else (404 for other paths, 405 for other methods);
- verifies the `Authorization: Bearer` JWT before reading the body: RS256 only, the public key chosen by
  the `kid` header among the keys the author configured, `exp` and `iat` required, a small leeway, an upper
  bound on the token lifetime, and `orgID` if the author names one; and that the token was minted for this
  request: `aud` is this driver's `audience`, `htm` the request's method, `htu` `{audience}{guresid}`,
  and its `jti` was never seen before (a replay cache kept for the token lifetime); 401 with an
  `{error, message}` body saying why otherwise;
- checks the request body against the Driver API v0.9.3 wire models (400 listing the fields, never their
  values) and the author's answer as well (500 if it does not conform: a driver bug should be loud);
- turns `InProgress` into 202 (or 409 with `conflict=True`) with an AsyncProgressHint body, and
  `DriverFailure` into 400 `{error, message}`;
- decodes the `Humanitec-Driver-Cookie` header (base64) into `request.cookie` bytes, and encodes
  `DriverResponse.cookie` / `InProgress.cookie` into `Set-Humanitec-Driver-Cookie`.

What handlers receive and return is in `strongroom.drivers.sdk.messages` (re-exported here).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from strongroom.api import constants as c
from strongroom.drivers.base import reveal_tree
from strongroom.drivers.sdk.messages import (
    DRIVER_FAILURE,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    DeleteHandler,
    DriverFailure,
    DriverResponse,
    GetHandler,
    InProgress,
    PutHandler,
    PutRequest,
    ResourceRequest,
    in_progress,
)
from strongroom.drivers.signing import (
    DEFAULT_LEEWAY_SECONDS,
    DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
    DEFAULT_REPLAY_CACHE_SIZE,
    ReplayCache,
    ReplayCacheFull,
    TokenInvalid,
    load_public_key,
    normalise_url,
    public_key_fingerprint,
    verify_token,
)
from strongroom.drivers.wire import (
    COOKIE_HEADER,
    COOKIE_MAX_BYTES,
    SET_COOKIE_HEADER,
    AsyncProgressHint,
    InputData,
    OutputData,
    field_errors,
)

log = logging.getLogger("strongroom.drivers.sdk")

DEFAULT_MAX_BODY_BYTES: Final = 1024 * 1024

_GURESID = re.compile(c.GURESID)

Hook = Callable[[], Awaitable[None]]
PublicKeys = Mapping[str, rsa.RSAPublicKey | bytes | str] | Iterable[rsa.RSAPublicKey | bytes | str]

# --- ASGI plumbing ----------------------------------------------------------------------------------------

# The usual ASGI shapes (as asgiref spells them), so servers' and httpx's type hints accept the app.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def _json(status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> _Answer:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return _Answer(status, body, headers=headers or [])


def _error(status: int, code: str, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> _Answer:
    return _json(status, {"error": code, "message": message}, headers)


def _unauthorized(why: str) -> _Answer:
    # A structured body: the operator shows `RES-100: unauthorized: <why>` in the Resource's status (it
    # never echoes unstructured text).
    return _error(
        401, INVALID_REQUEST, f"unauthorized: {why}", [(b"www-authenticate", b'Bearer realm="driver"')]
    )


def _plain(status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> _Answer:
    return _Answer(status, message.encode(), "text/plain; charset=utf-8", headers or [])


class _BadRequest(Exception):
    def __init__(self, answer: _Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


class DriverApp:
    """The ASGI application of one driver; serve it with any ASGI server (uvicorn, hypercorn)."""

    def __init__(
        self,
        *,
        put: PutHandler,
        get: GetHandler | None = None,
        delete: DeleteHandler | None = None,
        public_keys: PublicKeys | None,
        audience: str | None = None,
        org_id: str | None = None,
        legacy_tokens: bool = False,
        leeway: float = DEFAULT_LEEWAY_SECONDS,
        max_token_lifetime: float = DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
        replay_cache_size: int = DEFAULT_REPLAY_CACHE_SIZE,
        allow_unauthenticated: bool = False,
        prefix: str = "/",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        on_startup: Hook | None = None,
        on_shutdown: Hook | None = None,
    ) -> None:
        """`public_keys`: the operators' public keys, as a mapping kid -> key (PEM or loaded) or as a list
        (each key is then filed under its fingerprint, the kid the operator sends). None is only accepted
        together with `allow_unauthenticated=True` (local experiments). `prefix`: the path before the
        GUResID, e.g. `/postgres/` when the Driver's target is `https://host/postgres/`.

        `audience`: required with `public_keys`: the URL the operator calls this driver at, exactly the
        Driver object's `spec.target` (e.g. `https://drivers.example.com/postgres/`). Tokens must name it
        in `aud`, and `htu` must be `{audience}{guresid}`; it is compared with the configured value, not
        with the Host header, so proxies in between change nothing. `legacy_tokens`: also accept tokens
        without `aud`, `sub`, `jti`, `htm`, `htu` (callers that predate them, e.g. Humanitec's platform);
        those claims a token carries are still checked. `replay_cache_size`: most live token ids kept
        (beyond it, requests get 503 until tokens expire)."""
        if public_keys is None and not allow_unauthenticated:
            raise ValueError("public_keys is required (or pass allow_unauthenticated=True, for tests only)")
        if public_keys is not None and not audience:
            raise ValueError(
                "audience is required: the URL the operator calls this driver at, i.e. the Driver's "
                "spec.target (e.g. audience='https://drivers.example.com/postgres/'); tokens minted for "
                "another driver are refused by it"
            )
        if max_token_lifetime <= 0:
            raise ValueError("max_token_lifetime must be positive (the replay cache keeps ids that long)")
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise ValueError("prefix must start and end with /")
        self._put, self._get, self._delete = put, get, delete
        self._keys = _keys_by_kid(public_keys) if public_keys is not None else None
        if self._keys is not None and not self._keys:
            raise ValueError("public_keys is empty: no request could be verified")
        self._audience = normalise_url(audience) if audience else None
        self._org_id = org_id
        self._legacy_tokens = legacy_tokens
        self._replays = ReplayCache(max_size=replay_cache_size, leeway=leeway)
        self._leeway = leeway
        self._max_lifetime = max_token_lifetime
        self._prefix = prefix
        self._max_body = max_body_bytes
        self._on_startup, self._on_shutdown = on_startup, on_shutdown

    @property
    def kids(self) -> list[str]:
        """Key ids (fingerprints) this app accepts."""
        return sorted(self._keys or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"DriverApp serves http only, not {scope['type']}")
        try:
            answer = await self._handle(scope, receive)
        except _BadRequest as exc:
            answer = exc.answer
        except Exception:
            log.exception("driver handler failed")
            answer = _error(500, INTERNAL_ERROR, "internal error in the driver")
        await _send_answer(send, answer)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message["type"]
            hook = self._on_startup if kind == "lifespan.startup" else self._on_shutdown
            step = "startup" if kind == "lifespan.startup" else "shutdown"
            try:
                if hook is not None:
                    await hook()
            except Exception as exc:
                log.exception("driver %s failed", step)
                await send({"type": f"lifespan.{step}.failed", "message": f"{type(exc).__name__}: {exc}"})
                return
            await send({"type": f"lifespan.{step}.complete"})
            if step == "shutdown":
                return

    async def _handle(self, scope: Scope, receive: Receive) -> _Answer:
        path: str = scope.get("path", "")
        guresid = path[len(self._prefix) :] if path.startswith(self._prefix) else ""
        if not guresid or "/" in guresid:
            return _plain(404, "not found")
        if not _GURESID.fullmatch(guresid) or len(guresid) > c.GURESID_MAX:
            return _error(400, INVALID_REQUEST, "the path does not end in a valid GUResID")
        method: str = scope.get("method", "")
        allowed = ["PUT"] + (["GET"] if self._get else []) + (["DELETE"] if self._delete else [])
        if method not in allowed:
            return _plain(405, "method not allowed", [(b"allow", ", ".join(allowed).encode())])

        headers = _headers(scope)
        claims = self._authenticate(headers, method, guresid)
        if isinstance(claims, _Answer):
            return claims
        cookie = _read_cookie(headers)

        if method == "PUT":
            body = await _read_body(receive, self._max_body)
            data = _parse_input(body)
            put_request = PutRequest(
                guresid=guresid,
                cookie=cookie,
                claims=claims,
                type=data.type,
                resource=data.resource,
                values=data.driver.values,
                secrets=data.driver.secrets,
            )
            return self._answer(await self._call(self._put, put_request), guresid, data.type)
        request = ResourceRequest(guresid=guresid, cookie=cookie, claims=claims)
        if method == "GET":
            assert self._get is not None
            result = await self._call(self._get, request)
            if result is None:
                return _error(404, INVALID_REQUEST, "no such resource")
            return self._answer(result, guresid, None)
        assert self._delete is not None
        deleted = await self._call(self._delete, request)
        if deleted is None:
            return _Answer(204)
        return self._answer(deleted, guresid, None)

    async def _call(self, handler: Callable[[Any], Awaitable[Any]], request: ResourceRequest) -> Any:
        try:
            return await handler(request)
        except DriverFailure as exc:
            raise _BadRequest(_error(400, exc.code, exc.message)) from None

    def _authenticate(
        self, headers: Mapping[str, str], method: str, guresid: str
    ) -> dict[str, Any] | _Answer:
        if self._keys is None:
            return {}
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("a Bearer token is required")
        try:
            claims = verify_token(
                token.strip(),
                self._keys,
                org_id=self._org_id,
                audience=self._audience,
                method=method,
                url=f"{self._audience}{guresid}" if self._audience else None,
                require_binding=not self._legacy_tokens,
                leeway=self._leeway,
                max_lifetime=self._max_lifetime,
            )
            if "jti" in claims:
                # Last: only a token that is valid in every other way takes a place in the cache.
                self._replays.use(claims["jti"], claims["exp"])
        except ReplayCacheFull as exc:
            return _error(503, INVALID_REQUEST, f"unavailable: {exc}", [(b"retry-after", b"5")])
        except TokenInvalid as exc:
            return _unauthorized(str(exc))
        return claims

    def _answer(self, result: Any, guresid: str, request_type: str | None) -> _Answer:
        if isinstance(result, InProgress):
            hint = AsyncProgressHint(
                status=result.status, estimated_completion_time=result.estimated_completion_time
            ).model_dump(exclude_none=True)
            headers = _cookie_headers(result.cookie, clear=False)
            if result.retry_after is not None:
                headers.append((b"retry-after", str(max(0, round(result.retry_after))).encode()))
            return _json(409 if result.conflict else 202, hint, headers)
        if not isinstance(result, DriverResponse):
            raise TypeError(
                f"a driver handler returned {type(result).__name__}, not DriverResponse/InProgress"
            )
        resource_type = result.type or request_type
        if resource_type is None:
            raise ValueError("a GET handler must set DriverResponse.type (GET requests carry no type)")
        if request_type is not None and resource_type != request_type:
            raise ValueError("DriverResponse.type differs from the request's type")
        try:
            output = OutputData.model_validate(
                {
                    "id": guresid,
                    "type": resource_type,
                    "resource": {"values": result.values, "secrets": reveal_tree(result.secrets)},
                    "manifests": result.manifests,
                }
            )
        except ValidationError as exc:
            # A driver bug: say where, not what (the answer holds secrets).
            raise ValueError(
                f"the driver's answer does not match the Driver API: {field_errors(exc)}"
            ) from None
        headers = _cookie_headers(result.cookie, clear=result.clear_cookie)
        return _json(200, output.model_dump(mode="json"), headers)


# --- helpers ----------------------------------------------------------------------------------------------


def _keys_by_kid(keys: PublicKeys) -> dict[str, rsa.RSAPublicKey]:
    loaded: dict[str, rsa.RSAPublicKey] = {}
    if isinstance(keys, Mapping):
        for kid, key in keys.items():
            loaded[str(kid).lower()] = key if isinstance(key, rsa.RSAPublicKey) else load_public_key(key)
        return loaded
    for key in keys:
        public = key if isinstance(key, rsa.RSAPublicKey) else load_public_key(key)
        loaded[public_key_fingerprint(public)] = public
    return loaded


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        found[raw_name.decode("latin-1").lower()] = raw_value.decode("latin-1")
    return found


def _read_cookie(headers: Mapping[str, str]) -> bytes | None:
    raw = headers.get(COOKIE_HEADER.lower())
    if not raw:
        return None
    if len(raw) >= COOKIE_MAX_BYTES:
        raise _BadRequest(
            _error(400, INVALID_REQUEST, f"{COOKIE_HEADER} is {COOKIE_MAX_BYTES} bytes or more")
        )
    try:
        return base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise _BadRequest(_error(400, INVALID_REQUEST, f"{COOKIE_HEADER} is not base64")) from None


def _cookie_headers(cookie: bytes | str | None, *, clear: bool) -> list[tuple[bytes, bytes]]:
    if clear:
        return [(SET_COOKIE_HEADER.lower().encode(), b"")]
    if cookie is None:
        return []
    encoded = base64.b64encode(cookie.encode() if isinstance(cookie, str) else cookie)
    if len(encoded) >= COOKIE_MAX_BYTES:
        raise ValueError(
            f"the driver's cookie is {len(encoded)} bytes in base64; "
            f"the Driver API allows less than {COOKIE_MAX_BYTES}"
        )
    return [(SET_COOKIE_HEADER.lower().encode(), encoded)]


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _BadRequest(_error(400, INVALID_REQUEST, "the client went away"))
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BadRequest(_error(413, INVALID_REQUEST, f"the body is larger than {limit} bytes"))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse_input(body: bytes) -> InputData:
    try:
        return InputData.model_validate_json(body)
    except ValidationError as exc:
        raise _BadRequest(
            _error(400, INVALID_REQUEST, f"invalid request body: {field_errors(exc)}")
        ) from None


async def _send_answer(send: Send, answer: _Answer) -> None:
    headers = [*answer.headers]
    if answer.body or answer.status not in {204, 304}:
        headers.append((b"content-type", answer.content_type.encode()))
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DRIVER_FAILURE",
    "INTERNAL_ERROR",
    "INVALID_REQUEST",
    "DriverApp",
    "DriverFailure",
    "DriverResponse",
    "InProgress",
    "PutRequest",
    "ResourceRequest",
    "in_progress",
]
