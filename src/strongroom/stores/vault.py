"""HashiCorp Vault / OpenBao KV secrets engine (v1 and v2), on a thin async HTTP client.

hvac is synchronous (requests); running it in threads would cost a thread per in-flight call and its
own connection pool per thread. The handful of endpoints the operator needs are plain JSON over HTTP,
so this talks to them directly with one shared `httpx2.AsyncClient` over aiohttp (`strongroom.net`).

Authentication (exactly one, from the SecretStore):
- token from a Secret: read when first needed and re-read when Vault rejects it (the Secret was
  rotated);
- Kubernetes auth: a service account token (TokenRequest, or the operator's mounted token for stores
  in the operator namespace) exchanged at `auth/<mount>/login`;
- AppRole: `role_id` + `secret_id` (from a Secret) exchanged at `auth/<mount>/login`.
Tokens from a login are cached and replaced by a new login before their TTL runs out. A 403 is
disambiguated with `auth/token/lookup-self`: when the token itself is dead, the client logs in again
once and retries; when the token is fine, the 403 is a policy denial (`PermissionDenied`).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx2

from strongroom.api.secretstore import DEFAULT_VAULT_AUDIENCE, VaultProvider
from strongroom.net import AiohttpTransport, environment_proxy
from strongroom.stores.base import (
    AuthenticationFailed,
    InsecureTransport,
    InvalidReference,
    InvalidStoreConfig,
    PermissionDenied,
    SecretDocument,
    SecretNotFound,
    SecretRef,
    SecretValue,
    StoreCapabilities,
    StoreError,
    StoreUnavailable,
    VersionNotFound,
    WriteResult,
    select_field,
)
from strongroom.stores.credentials import StoreContext

#: Field under which written values are stored in a KV entry (read back without a property, since the
#: entry then has exactly one field).
VALUE_FIELD = "value"
#: Key whose capabilities `check()` asks about; never written.
PROBE_KEY = "strongroom-connectivity-check"
#: Re-login when this share of a token's TTL has passed (Vault's own agents renew at about 2/3).
RENEW_AT = 0.75
_ERROR_TEXT_MAX = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_key(key: str) -> str:
    """A KV path relative to the mount, or `InvalidReference`.

    Leading/trailing slashes are dropped; empty, `.` and `..` segments are refused, because the path is
    spliced into the URL and must never climb out of the mount (`../../sys/...`).
    """
    stripped = key.strip("/")
    if not stripped:
        raise InvalidReference("empty Vault key")
    if _CONTROL.search(stripped) or "?" in stripped or "#" in stripped:
        raise InvalidReference(f"Vault key {key!r} contains a control character, `?` or `#`")
    for segment in stripped.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidReference(f"Vault key {key!r} has an empty, `.` or `..` path segment")
    return stripped


def sends_login_credential(spec: VaultProvider) -> bool:
    """Whether logging in sends a credential of ours (a service account JWT, an AppRole secret_id)."""
    return spec.auth.kubernetes is not None or spec.auth.app_role is not None


def is_plain_http(spec: VaultProvider) -> bool:
    return spec.url.lower().startswith("http://")


def refuse_insecure_login(spec: VaultProvider, label: str) -> None:
    """A JWT or secret_id over plain HTTP can be read (and replayed) by anyone on the path: refused
    unless the store opts in with `insecureHTTP`. A token from a Secret is the store's own, so token
    auth over HTTP stays allowed (OpenBao's dev server), with a warning condition on the store."""
    if sends_login_credential(spec) and is_plain_http(spec) and not spec.insecure_http:
        method = "Kubernetes" if spec.auth.kubernetes is not None else "AppRole"
        raise InsecureTransport(
            f"store {label!r}: Vault {method} auth would send its credential over plain http:// to "
            f"{spec.url}; use https://, or set vault.insecureHTTP: true for a test server"
        )


def parse_version(version: str | None) -> int | None:
    """KV v2 versions are positive integers; empty means the latest."""
    if not version:
        return None
    if not version.isdigit() or int(version) < 1:
        raise InvalidReference(f"Vault KV versions are positive integers, not {version!r}")
    return int(version)


def _quote_path(path: str) -> str:
    return "/".join(quote(segment, safe="") for segment in path.split("/"))


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """Vault error strings for a message: truncated, and with any credential or value we sent removed."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text[:_ERROR_TEXT_MAX]


def _json_object(response: httpx2.Response) -> dict[str, Any]:
    """The body as a JSON object; empty for anything else (a proxy's HTML error page, an empty 204)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _errors(response: httpx2.Response, *secrets: str) -> str:
    errors = _json_object(response).get("errors")
    if not isinstance(errors, list) or not errors:
        return ""
    return _scrub("; ".join(str(e) for e in errors), secrets)


@dataclass
class _Token:
    value: str
    # monotonic deadline after which a new login is made; None: never (token from a Secret, root tokens).
    renew_after: float | None


class VaultStore:
    """A `StoreClient` for one Vault/OpenBao KV mount."""

    def __init__(self, spec: VaultProvider, ctx: StoreContext, http: httpx2.AsyncClient) -> None:
        self._spec = spec
        self._ctx = ctx
        self._http = http
        self._mount = spec.path.strip("/")
        self._kv: Literal["v1", "v2"] = spec.version
        self._token: _Token | None = None
        self._login_lock = asyncio.Lock()

    @classmethod
    async def create(cls, spec: VaultProvider, ctx: StoreContext) -> VaultStore:
        k8s = spec.auth.kubernetes
        if k8s is not None and k8s.service_account_ref is None:
            # Otherwise any namespace could log in to Vault roles bound to the operator's own account.
            ctx.require_operator_namespace(
                "Vault Kubernetes auth with the operator's own service account",
                "set auth.kubernetes.serviceAccountRef to a service account of this namespace",
            )
        if k8s is not None and k8s.audience != DEFAULT_VAULT_AUDIENCE:
            # A tenant choosing the audience could have the operator mint tokens of its namespace's
            # service accounts that the API server (or another in-cluster service) accepts, and post
            # them to a URL of its choice. Only the platform team's stores pick another audience.
            ctx.require_operator_namespace(
                f"a Kubernetes auth audience other than {DEFAULT_VAULT_AUDIENCE!r}",
                f"remove auth.kubernetes.audience and let the Vault role accept {DEFAULT_VAULT_AUDIENCE!r}",
            )
        refuse_insecure_login(spec, ctx.label)
        headers = {"Accept": "application/json"}
        if spec.namespace:
            headers["X-Vault-Namespace"] = spec.namespace
        http = httpx2.AsyncClient(
            base_url=spec.url.rstrip("/"),
            headers=headers,
            timeout=httpx2.Timeout(ctx.timeout),
            transport=AiohttpTransport(tls_context(spec.ca_bundle, ctx.label), environment_proxy(spec.url)),
            # Vault redirects writes from standbys to the active node with 307.
            follow_redirects=True,
        )
        return cls(spec, ctx, http)

    # --- StoreClient ------------------------------------------------------------------------------------

    async def read(self, ref: SecretRef) -> SecretValue:
        return (await self.fetch(ref.key, ref.version)).pick(ref.property)

    async def fetch(self, ref_key: str, ref_version: str | None) -> SecretDocument:
        with self._ctx.naming():
            key = self._ref_key(ref_key)
            version = parse_version(ref_version)
        if version is not None and self._kv == "v1":
            raise InvalidReference(
                f"store {self._ctx.label!r}: secret {ref_key!r} asks for version {ref_version!r}, but mount "
                f"{self._mount!r} is KV v1, which keeps no versions"
            )
        what = f"secret {key!r}" + (f" version {version}" if version else "")
        if self._kv == "v2":
            params = {"version": str(version)} if version else None
            response = await self._request("GET", self._data_path(key), what=what, params=params)
        else:
            response = await self._request("GET", self._data_path(key), what=what)
        if response.status_code == 404:
            await self._raise_not_found(key, version, response)
        self._raise_for_status(response, what)
        body = response.json()
        data = body.get("data") if isinstance(body, dict) else None
        fields = data.get("data") if self._kv == "v2" and isinstance(data, dict) else data
        if not isinstance(fields, Mapping):
            # KV v2 answers 200 with `data: null` for a destroyed version.
            if version is not None:
                raise VersionNotFound(f"store {self._ctx.label!r}: {what} was destroyed")
            raise SecretNotFound(f"store {self._ctx.label!r}: {what} has no data")
        label = self._ctx.label
        return SecretDocument(lambda prop: select_field(fields, SecretRef(key, ref_version, prop), label))

    async def write(self, key: str, value: SecretValue) -> WriteResult:
        with self._ctx.naming():
            path = normalize_key(key)
        try:
            text = value.reveal_text()
        except UnicodeDecodeError:
            raise InvalidReference(
                f"store {self._ctx.label!r}: Vault KV holds text and the value for {path!r} is not UTF-8"
            ) from None
        payload: dict[str, Any] = {VALUE_FIELD: text}
        body = {"data": payload} if self._kv == "v2" else payload
        what = f"secret {path!r}"
        response = await self._request("POST", self._data_path(path), what=what, json=body)
        self._raise_for_status(response, what, secrets=(text,))
        if self._kv == "v1":
            return WriteResult(key=path, version=None)
        data = response.json().get("data") or {}
        version = data.get("version")
        return WriteResult(key=path, version=str(version) if version is not None else None)

    async def delete(self, key: str) -> None:
        with self._ctx.naming():
            path = normalize_key(key)
        # On v2, deleting the metadata removes every version: the default store should not keep
        # outputs of a deleted resource around in old versions.
        target = f"{self._mount}/metadata/{_quote_path(path)}" if self._kv == "v2" else self._data_path(path)
        what = f"secret {path!r}"
        response = await self._request("DELETE", target, what=what)
        if response.status_code == 404:
            return
        self._raise_for_status(response, what)

    async def check(self) -> StoreCapabilities:
        token = await self._current_token()
        lookup = await self._send("GET", "auth/token/lookup-self", token)
        if lookup.status_code == 403:
            token = await self._relogin(token)
            lookup = await self._send("GET", "auth/token/lookup-self", token)
        if lookup.status_code == 403:
            raise AuthenticationFailed(
                f"store {self._ctx.label!r}: Vault rejects the token (auth/token/lookup-self: 403); "
                f"{self._auth_hint()}"
            )
        self._raise_for_status(lookup, "token lookup")
        probe = self._data_path(PROBE_KEY)
        caps_response = await self._send("POST", "sys/capabilities-self", token, json={"paths": [probe]})
        capabilities: set[str] = set()
        if caps_response.status_code == 200:
            body = caps_response.json()
            found = body.get(probe) or body.get("capabilities") or (body.get("data") or {}).get(probe) or []
            capabilities = {str(c) for c in found}
        # A real read on the mount, so a wrong mount path or a policy without read shows up here and not
        # on the first reference.
        read_probe = await self._send("GET", probe, token)
        if read_probe.status_code == 404 and "no handler for route" in _errors(read_probe):
            raise InvalidStoreConfig(
                f"store {self._ctx.label!r}: Vault has no secrets engine at {self._mount!r}"
            )
        if read_probe.status_code not in (200, 403, 404):
            self._raise_for_status(read_probe, "read probe")
        read = read_probe.status_code != 403
        write = bool(capabilities & {"create", "update", "root", "sudo"}) and "deny" not in capabilities
        return StoreCapabilities(read=read, write=write)

    async def close(self) -> None:
        await self._http.aclose()

    # --- paths ------------------------------------------------------------------------------------------

    def _ref_key(self, key: str) -> str:
        with self._ctx.naming():
            path = normalize_key(key)
        # References written against the API path (`<mount>/data/<key>`, as in Humanitec's examples) name
        # the same secret as `<key>`.
        prefix = f"{self._mount}/data/"
        if self._kv == "v2" and path.startswith(prefix) and len(path) > len(prefix):
            return normalize_key(path[len(prefix) :])
        return path

    def _data_path(self, key: str) -> str:
        if self._kv == "v2":
            return f"{self._mount}/data/{_quote_path(key)}"
        return f"{self._mount}/{_quote_path(key)}"

    # --- HTTP -------------------------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str,
        token: str | None,
        *,
        params: Mapping[str, str] | None = None,
        json: object = None,
    ) -> httpx2.Response:
        headers = {"X-Vault-Token": token} if token else None
        try:
            return await self._http.request(method, f"/v1/{path}", params=params, json=json, headers=headers)
        except httpx2.TimeoutException:
            raise StoreUnavailable(
                f"store {self._ctx.label!r}: Vault at {self._spec.url} did not answer within "
                f"{self._ctx.timeout}s"
            ) from None
        except httpx2.TransportError as exc:
            # The exception text may carry TLS or socket details but never request bodies; its type is
            # enough and certainly safe.
            raise StoreUnavailable(
                f"store {self._ctx.label!r}: cannot reach Vault at {self._spec.url} ({type(exc).__name__})"
            ) from None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        json: object = None,
    ) -> httpx2.Response:
        """A data call with the cached token; a 403 from a dead token leads to one login and one retry."""
        token = await self._current_token()
        response = await self._send(method, path, token, params=params, json=json)
        if response.status_code != 403:
            return response
        lookup = await self._send("GET", "auth/token/lookup-self", token)
        if lookup.status_code == 200:
            raise PermissionDenied(
                f"store {self._ctx.label!r}: the Vault policy does not allow {method} on {what} in mount "
                f"{self._mount!r}; grant it in the policy of the store's token or role"
            )
        token = await self._relogin(token)
        response = await self._send(method, path, token, params=params, json=json)
        if response.status_code == 403:
            lookup = await self._send("GET", "auth/token/lookup-self", token)
            if lookup.status_code == 200:
                raise PermissionDenied(
                    f"store {self._ctx.label!r}: the Vault policy does not allow {method} on {what} in mount "
                    f"{self._mount!r}"
                )
            raise AuthenticationFailed(
                f"store {self._ctx.label!r}: Vault rejects the token; {self._auth_hint()}"
            )
        return response

    def _raise_for_status(
        self, response: httpx2.Response, what: str, *, secrets: tuple[str, ...] = ()
    ) -> None:
        code = response.status_code
        if code < 400:
            return
        label = self._ctx.label
        if code in (429, 500, 502, 503, 504):
            sealed = " (sealed or in standby?)" if code == 503 else ""
            raise StoreUnavailable(f"store {label!r}: Vault answered HTTP {code} for {what}{sealed}")
        if code == 403:
            raise PermissionDenied(f"store {label!r}: the Vault policy does not allow access to {what}")
        if code == 404:
            raise SecretNotFound(f"store {label!r}: {what} not found in mount {self._mount!r}")
        detail = _errors(response, *secrets)
        raise StoreError(
            f"store {label!r}: Vault answered HTTP {code} for {what}" + (f": {detail}" if detail else "")
        )

    async def _raise_not_found(self, key: str, version: int | None, response: httpx2.Response) -> None:
        label = self._ctx.label
        if "no handler for route" in _errors(response):
            raise InvalidStoreConfig(f"store {label!r}: Vault has no secrets engine at {self._mount!r}")
        if self._kv == "v2":
            # A 404 with metadata means the secret exists and the requested (or latest) version is deleted.
            data = _json_object(response).get("data")
            metadata = data.get("metadata") if isinstance(data, dict) else None
            if isinstance(metadata, dict) and metadata.get("deletion_time"):
                if version is not None:
                    raise VersionNotFound(f"store {label!r}: version {version} of secret {key!r} is deleted")
                raise SecretNotFound(f"store {label!r}: the latest version of secret {key!r} is deleted")
            if version is not None:
                meta = await self._request(
                    "GET", f"{self._mount}/metadata/{_quote_path(key)}", what=f"metadata of secret {key!r}"
                )
                if meta.status_code == 200:
                    raise VersionNotFound(f"store {label!r}: secret {key!r} has no version {version}")
        raise SecretNotFound(f"store {label!r}: secret {key!r} not found in mount {self._mount!r}")

    # --- authentication ---------------------------------------------------------------------------------

    async def _current_token(self) -> str:
        token = self._token
        if token is not None and (token.renew_after is None or time.monotonic() < token.renew_after):
            return token.value
        async with self._login_lock:
            # Another task may have logged in while this one waited.
            token = self._token
            if token is not None and (token.renew_after is None or time.monotonic() < token.renew_after):
                return token.value
            self._token = await self._login()
            return self._token.value

    async def _relogin(self, rejected: str) -> str:
        async with self._login_lock:
            if self._token is not None and self._token.value != rejected:
                return self._token.value  # someone already replaced it
            self._token = await self._login()
            return self._token.value

    async def _login(self) -> _Token:
        auth = self._spec.auth
        creds = self._ctx.credentials
        if auth.token_secret_ref is not None:
            ref = auth.token_secret_ref
            token = (await creds.secret_key(ref.name, ref.key)).reveal_text()
            return _Token(token, renew_after=None)
        if auth.kubernetes is not None:
            k8s = auth.kubernetes
            account = k8s.service_account_ref.name if k8s.service_account_ref else None
            jwt = await creds.service_account_token(account, k8s.audience)
            mount = (k8s.mount_path or "kubernetes").strip("/")
            return await self._login_at(mount, {"role": k8s.role, "jwt": jwt}, (jwt,))
        if auth.app_role is not None:
            app = auth.app_role
            secret_id = (await creds.secret_key(app.secret_ref.name, app.secret_ref.key)).reveal_text()
            mount = (app.mount_path or "approle").strip("/")
            return await self._login_at(mount, {"role_id": app.role_id, "secret_id": secret_id}, (secret_id,))
        raise InvalidStoreConfig(f"store {self._ctx.label!r}: no Vault auth method configured")

    async def _login_at(self, mount: str, body: dict[str, str], secrets: tuple[str, ...]) -> _Token:
        response = await self._send("POST", f"auth/{_quote_path(mount)}/login", None, json=body)
        label = self._ctx.label
        if response.status_code in (400, 401, 403):
            detail = _errors(response, *secrets)
            raise AuthenticationFailed(
                f"store {label!r}: Vault login at auth/{mount} failed (HTTP {response.status_code}"
                + (f": {detail}" if detail else "")
                + f"); {self._auth_hint()}"
            )
        if response.status_code == 404:
            raise InvalidStoreConfig(f"store {label!r}: Vault has no auth method mounted at auth/{mount}")
        self._raise_for_status(response, f"login at auth/{mount}", secrets=secrets)
        auth = (response.json() or {}).get("auth") or {}
        token = auth.get("client_token")
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed(f"store {label!r}: Vault login at auth/{mount} returned no token")
        lease = auth.get("lease_duration")
        renew_after = None
        if isinstance(lease, int) and lease > 0:
            renew_after = time.monotonic() + lease * RENEW_AT
        return _Token(token, renew_after)

    def _auth_hint(self) -> str:
        auth = self._spec.auth
        if auth.token_secret_ref is not None:
            ref = auth.token_secret_ref
            return f"check the token in key {ref.key!r} of Secret {ref.name!r} (expired or revoked?)"
        if auth.kubernetes is not None:
            k8s = auth.kubernetes
            account = k8s.service_account_ref.name if k8s.service_account_ref else "the operator's own"
            return (
                f"check that Vault role {k8s.role!r} is bound to service account {account!r} in namespace "
                f"{self._ctx.namespace!r} and that auth/{k8s.mount_path or 'kubernetes'}/config can reach "
                "this cluster"
            )
        if auth.app_role is not None:
            app = auth.app_role
            return (
                f"check the AppRole role_id and the secret_id in key {app.secret_ref.key!r} of Secret "
                f"{app.secret_ref.name!r}"
            )
        return "check the store's auth"


def tls_context(ca_bundle: str | None, label: str) -> ssl.SSLContext | bool:
    """System roots plus the store's `caBundle`; plain verification when there is none."""
    if not ca_bundle:
        return True
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cadata=ca_bundle)
    except (ssl.SSLError, ValueError):
        raise InvalidStoreConfig(f"store {label!r}: caBundle holds no valid PEM certificate") from None
    return context
