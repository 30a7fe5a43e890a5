"""An in-memory Azure Key Vault *secrets* data plane over HTTPS, plus a minimal Entra ID token endpoint.

Why this exists: no third-party Key Vault emulator could be obtained through the registries this
project may use (the Go module proxy refuses github.com/calvinchengx/azure-keyvault-emulator and the
other emulator modules tried; Lowkey Vault's application jar is published to GitHub Packages only,
Maven Central carries just its client and Testcontainers modules; floci-az and the .NET emulators
are container images / NuGet). See testenv/stores/README.md for the full search.

It follows the Key Vault REST API that `azure-keyvault-secrets` speaks, including what the SDK
enforces: TLS only (bearer tokens are never sent over http), and a 401 challenge
(`WWW-Authenticate: Bearer authorization="<authority>/<tenant>", resource="https://vault.azure.net"`)
answered before the SDK sends any body.

Key Vault routes (all need `?api-version=`):
    PUT    /secrets/{name}                    set (new version)           -> SecretBundle
    GET    /secrets/{name}[/{version}]        get latest / one version    -> SecretBundle
    PATCH  /secrets/{name}[/{version}]        update attributes/tags/contentType
    GET    /secrets                           list (maxresults, nextLink paging)
    GET    /secrets/{name}/versions           list versions
    DELETE /secrets/{name}                    soft delete                 -> DeletedSecretBundle
    GET    /deletedsecrets[/{name}]           list / get deleted
    DELETE /deletedsecrets/{name}             purge (204)
    POST   /deletedsecrets/{name}/recover     recover
    POST   /secrets/{name}/backup, /secrets/restore
Errors use Key Vault's shape `{"error": {"code", "message"[, "innererror"]}}`: SecretNotFound (404),
a disabled version is 403 Forbidden/SecretDisabled, a name held by a deleted secret is 409 Conflict,
bad names/bodies are 400 BadParameter, a missing token 401 Unauthorized.

Any non-empty bearer token is accepted by the vault: token *validation* is not emulated.

Token endpoint (Entra ID shape, for azure-identity's ClientSecretCredential /
ClientAssertionCredential / WorkloadIdentityCredential with `authority=<emulator base URL>` and
`disable_instance_discovery=True`):
    GET  /{tenant}/v2.0/.well-known/openid-configuration
    POST /{tenant}/oauth2/v2.0/token   grant_type=client_credentials with client_secret (checked
         against --client-id/--client-secret) or client_assertion (any JWT is accepted).

Run: `python -m testenv.stores.azure_emulator --port N --cert C --key K`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import re
import secrets
import signal
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

RESOURCE = "https://vault.azure.net"
RECOVERY_LEVEL = "Recoverable+Purgeable"
RECOVERABLE_DAYS = 90
MAX_RESULTS = 25
TOKEN_LIFETIME = 3600

_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_VERSION = re.compile(r"^[0-9a-f]{32}$")


class KvError(Exception):
    """An error response in Key Vault's JSON shape."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner

    def response(self) -> web.Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return web.json_response({"error": error}, status=self.status)


def _not_found(name: str, version: str = "") -> KvError:
    what = f"{name}/{version}" if version else name
    return KvError(404, "SecretNotFound", f"A secret with (name/id) {what} was not found in this key vault.")


@dataclass
class _Version:
    id: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    nbf: int | None
    exp: int | None
    created: int
    updated: int

    def attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "enabled": self.enabled,
            "created": self.created,
            "updated": self.updated,
            "recoveryLevel": RECOVERY_LEVEL,
            "recoverableDays": RECOVERABLE_DAYS,
        }
        if self.nbf is not None:
            attrs["nbf"] = self.nbf
        if self.exp is not None:
            attrs["exp"] = self.exp
        return attrs


@dataclass
class _Secret:
    name: str
    versions: dict[str, _Version] = field(default_factory=dict)  # insertion order = creation order

    @property
    def latest(self) -> _Version:
        return next(reversed(self.versions.values()))


@dataclass
class _Deleted:
    secret: _Secret
    deleted: int


def _item(base: str, name: str, version: _Version, with_version: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": f"{base}/secrets/{name}/{version.id}" if with_version else f"{base}/secrets/{name}",
        "attributes": version.attributes(),
    }
    if version.content_type is not None:
        item["contentType"] = version.content_type
    if version.tags is not None:
        item["tags"] = version.tags
    return item


def _bundle(base: str, name: str, version: _Version, with_value: bool) -> dict[str, Any]:
    body = _item(base, name, version, with_version=True)
    if with_value:
        body["value"] = version.value
    return body


def _deleted_bundle(base: str, deleted: _Deleted) -> dict[str, Any]:
    secret = deleted.secret
    body = _bundle(base, secret.name, secret.latest, with_value=False)
    body["recoveryId"] = f"{base}/deletedsecrets/{secret.name}"
    body["deletedDate"] = deleted.deleted
    body["scheduledPurgeDate"] = deleted.deleted + RECOVERABLE_DAYS * 86400
    return body


def _deleted_item(base: str, deleted: _Deleted) -> dict[str, Any]:
    secret = deleted.secret
    item = _item(base, secret.name, secret.latest, with_version=False)
    item["recoveryId"] = f"{base}/deletedsecrets/{secret.name}"
    item["deletedDate"] = deleted.deleted
    item["scheduledPurgeDate"] = deleted.deleted + RECOVERABLE_DAYS * 86400
    return item


def _opt_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise KvError(400, "BadParameter", f"Property {what} must be an integer (seconds since the epoch).")
    return value


def _tags(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise KvError(400, "BadParameter", "Property tags must be an object of strings.")
    return {str(k): v for k, v in value.items()}


class Vault:
    """The secrets, deleted secrets and their rules; one instance per emulator process."""

    def __init__(self) -> None:
        self.secrets: dict[str, _Secret] = {}
        self.deleted: dict[str, _Deleted] = {}

    @staticmethod
    def check_name(name: str) -> None:
        if not _NAME.match(name):
            raise KvError(
                400,
                "BadParameter",
                f"The request URI contains an invalid name: {name}. Names are 1-127 of [0-9a-zA-Z-].",
            )

    def get(self, name: str, version: str) -> _Version:
        self.check_name(name)
        secret = self.secrets.get(name)
        if secret is None:
            raise _not_found(name, version)
        found = secret.versions.get(version) if version else secret.latest
        if found is None:
            raise _not_found(name, version)
        return found

    def set(self, name: str, body: dict[str, Any]) -> _Version:
        self.check_name(name)
        if name in self.deleted:
            raise KvError(
                409,
                "Conflict",
                f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be "
                "reused; in this state, the secret can only be recovered or purged.",
                inner="ObjectIsDeletedButRecoverable",
            )
        value = body.get("value")
        if not isinstance(value, str):
            raise KvError(400, "BadParameter", "Property value is required and must be a string.")
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise KvError(400, "BadParameter", "Property attributes must be an object.")
        content_type = body.get("contentType")
        if content_type is not None and not isinstance(content_type, str):
            raise KvError(400, "BadParameter", "Property contentType must be a string.")
        now = int(time.time())
        version = _Version(
            id=uuid.uuid4().hex,
            value=value,
            content_type=content_type,
            tags=_tags(body.get("tags")),
            enabled=bool(attrs.get("enabled", True)),
            nbf=_opt_int(attrs.get("nbf"), "nbf"),
            exp=_opt_int(attrs.get("exp"), "exp"),
            created=now,
            updated=now,
        )
        self.secrets.setdefault(name, _Secret(name)).versions[version.id] = version
        return version

    def update(self, name: str, version_id: str, body: dict[str, Any]) -> _Version:
        version = self.get(name, version_id)
        if "value" in body:
            raise KvError(400, "BadParameter", "The value of a secret version cannot be updated.")
        attrs = body.get("attributes")
        if attrs is not None:
            if not isinstance(attrs, dict):
                raise KvError(400, "BadParameter", "Property attributes must be an object.")
            if "enabled" in attrs:
                version.enabled = bool(attrs["enabled"])
            if "nbf" in attrs:
                version.nbf = _opt_int(attrs["nbf"], "nbf")
            if "exp" in attrs:
                version.exp = _opt_int(attrs["exp"], "exp")
        if "contentType" in body:
            version.content_type = body["contentType"]
        if "tags" in body:
            version.tags = _tags(body["tags"])
        version.updated = int(time.time())
        return version

    def delete(self, name: str) -> _Deleted:
        self.check_name(name)
        secret = self.secrets.pop(name, None)
        if secret is None:
            raise _not_found(name)
        deleted = _Deleted(secret=secret, deleted=int(time.time()))
        self.deleted[name] = deleted
        return deleted

    def get_deleted(self, name: str) -> _Deleted:
        self.check_name(name)
        deleted = self.deleted.get(name)
        if deleted is None:
            raise KvError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return deleted

    def recover(self, name: str) -> _Secret:
        deleted = self.get_deleted(name)
        del self.deleted[name]
        self.secrets[name] = deleted.secret
        return deleted.secret

    def purge(self, name: str) -> None:
        self.get_deleted(name)
        del self.deleted[name]


def _page(request: web.Request, items: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """One page of a list result; `nextLink` carries the offset, as Key Vault's $skiptoken does."""
    try:
        size = int(request.query.get("maxresults", MAX_RESULTS))
        start = int(request.query.get("$skiptoken", "0"))
    except ValueError as exc:
        raise KvError(400, "BadParameter", "maxresults and $skiptoken must be integers.") from exc
    if not 1 <= size <= MAX_RESULTS:
        raise KvError(400, "BadParameter", f"maxresults must be between 1 and {MAX_RESULTS}.")
    end = start + size
    next_link = None
    if end < len(items):
        api = request.query.get("api-version", "")
        next_link = f"{_base(request)}{path}?api-version={api}&$skiptoken={end}&maxresults={size}"
    return {"value": items[start:end], "nextLink": next_link}


def _base(request: web.Request) -> str:
    # Identifiers must name the vault URL the client used: the SDK parses them back into vault + name.
    return f"https://{request.host}"


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KvError(400, "BadParameter", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise KvError(400, "BadParameter", "The request body must be a JSON object.")
    return body


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Emulator:
    def __init__(self, tenant: str, client_id: str, client_secret: str) -> None:
        self.vault = Vault()
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret

    # --- middleware: the challenge, api-version and error shape ----------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        is_vault = request.path.startswith(("/secrets", "/deletedsecrets"))
        try:
            if is_vault:
                scheme, _, token = request.headers.get("Authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    return self._challenge(request)
                if not request.query.get("api-version"):
                    raise KvError(400, "BadParameter", "The api-version query parameter is required.")
            return await handler(request)
        except KvError as err:
            return err.response()

    def _challenge(self, request: web.Request) -> web.Response:
        response = KvError(
            401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."
        ).response()
        response.headers["WWW-Authenticate"] = (
            f'Bearer authorization="{_base(request)}/{self.tenant}", resource="{RESOURCE}"'
        )
        return response

    # --- secrets -------------------------------------------------------------------------------

    async def set_secret(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        version = self.vault.set(name, await _json_body(request))
        return web.json_response(_bundle(_base(request), name, version, with_value=True))

    async def get_secret(self, request: web.Request) -> web.Response:
        name, version_id = request.match_info["name"], request.match_info.get("version", "")
        version = self.vault.get(name, version_id)
        if not version.enabled:
            raise KvError(
                403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled"
            )
        return web.json_response(_bundle(_base(request), name, version, with_value=True))

    async def update_secret(self, request: web.Request) -> web.Response:
        name, version_id = request.match_info["name"], request.match_info.get("version", "")
        version = self.vault.update(name, version_id, await _json_body(request))
        return web.json_response(_bundle(_base(request), name, version, with_value=False))

    async def list_secrets(self, request: web.Request) -> web.Response:
        base = _base(request)
        items = [_item(base, s.name, s.latest, with_version=False) for s in self.vault.secrets.values()]
        return web.json_response(_page(request, items, "/secrets"))

    async def list_versions(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.vault.check_name(name)
        secret = self.vault.secrets.get(name)
        base = _base(request)
        items = [_item(base, name, v, with_version=True) for v in secret.versions.values()] if secret else []
        return web.json_response(_page(request, items, f"/secrets/{name}/versions"))

    async def delete_secret(self, request: web.Request) -> web.Response:
        deleted = self.vault.delete(request.match_info["name"])
        return web.json_response(_deleted_bundle(_base(request), deleted))

    async def backup_secret(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.vault.get(name, "")
        secret = self.vault.secrets[name]
        blob = json.dumps({"name": name, "versions": [v.__dict__ for v in secret.versions.values()]})
        return web.json_response({"value": base64.urlsafe_b64encode(blob.encode()).decode().rstrip("=")})

    async def restore_secret(self, request: web.Request) -> web.Response:
        raw = (await _json_body(request)).get("value")
        try:
            padded = str(raw) + "=" * (-len(str(raw)) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
            name, versions = data["name"], [_Version(**v) for v in data["versions"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise KvError(400, "BadParameter", "Backup blob is malformed.") from exc
        if name in self.vault.secrets or name in self.vault.deleted:
            raise KvError(409, "Conflict", f"Secret {name} already exists.")
        secret = _Secret(name, {v.id: v for v in versions})
        self.vault.secrets[name] = secret
        return web.json_response(_bundle(_base(request), name, secret.latest, with_value=False))

    # --- deleted secrets -----------------------------------------------------------------------

    async def list_deleted(self, request: web.Request) -> web.Response:
        base = _base(request)
        items = [_deleted_item(base, d) for d in self.vault.deleted.values()]
        return web.json_response(_page(request, items, "/deletedsecrets"))

    async def get_deleted(self, request: web.Request) -> web.Response:
        deleted = self.vault.get_deleted(request.match_info["name"])
        return web.json_response(_deleted_bundle(_base(request), deleted))

    async def purge_deleted(self, request: web.Request) -> web.Response:
        self.vault.purge(request.match_info["name"])
        return web.Response(status=204)

    async def recover_deleted(self, request: web.Request) -> web.Response:
        secret = self.vault.recover(request.match_info["name"])
        return web.json_response(_bundle(_base(request), secret.name, secret.latest, with_value=False))

    # --- Entra ID token endpoint -----------------------------------------------------------------

    async def openid_configuration(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"{_base(request)}/{tenant}"
        return web.json_response(
            {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "tenant_region_scope": None,
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()

        def oauth_error(status: int, error: str, description: str) -> web.Response:
            return web.json_response({"error": error, "error_description": description}, status=status)

        if form.get("grant_type") != "client_credentials":
            return oauth_error(400, "unsupported_grant_type", "Only client_credentials is emulated.")
        if form.get("client_assertion"):
            pass  # workload identity: the federated token is not verified
        elif form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return oauth_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": "emulator." + secrets.token_urlsafe(24),
            }
        )

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        r = app.router
        r.add_get("/secrets", self.list_secrets)
        r.add_post("/secrets/restore", self.restore_secret)
        r.add_put("/secrets/{name}", self.set_secret)
        r.add_delete("/secrets/{name}", self.delete_secret)
        r.add_get("/secrets/{name}/versions", self.list_versions)
        r.add_post("/secrets/{name}/backup", self.backup_secret)
        # The SDK asks for "latest" as /secrets/{name}/ (empty version) and for a version as .../{v}.
        for path in ("/secrets/{name}", "/secrets/{name}/", "/secrets/{name}/{version}"):
            r.add_get(path, self.get_secret)
            r.add_patch(path, self.update_secret)
        r.add_get("/deletedsecrets", self.list_deleted)
        r.add_get("/deletedsecrets/{name}", self.get_deleted)
        r.add_delete("/deletedsecrets/{name}", self.purge_deleted)
        r.add_post("/deletedsecrets/{name}/recover", self.recover_deleted)
        r.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration)
        r.add_post("/{tenant}/oauth2/v2.0/token", self.token)
        return app


async def serve(args: argparse.Namespace) -> None:
    emulator = Emulator(args.tenant, args.client_id, args.client_secret)
    runner = web.AppRunner(emulator.app(), access_log=None)
    await runner.setup()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    site = web.TCPSite(runner, args.host, args.port, ssl_context=context)
    await site.start()
    print(f"listening on https://{args.host}:{args.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    with contextlib.suppress(Exception):
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="In-memory Azure Key Vault secrets emulator (HTTPS).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True, help="PEM certificate chain for TLS")
    parser.add_argument("--key", required=True, help="PEM private key for TLS")
    parser.add_argument("--tenant", default="00000000-0000-0000-0000-000000000000")
    parser.add_argument("--client-id", default="strongroom-test-client")
    parser.add_argument("--client-secret", default="strongroom-test-secret")
    asyncio.run(serve(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
