"""Signed driver requests: RS256 JWTs as the Humanitec Operator sends them, and their verification.

Every request to a remote driver carries `Authorization: Bearer <jwt>`:
- header `{"alg": "RS256", "typ": "JWT", "kid": <fingerprint>}`, where the fingerprint is the hex SHA-256 of
  the DER-encoded SubjectPublicKeyInfo of the public key (what Humanitec's key registry reports), so a driver
  finds the right public key without trying them all;
- payload `{"orgID", "iat", "exp", "aud", "sub", "jti", "htm", "htu"}`. Humanitec documents only `orgID`;
  `iat`/`exp` (60 s) make a captured token useless a minute later, and the rest bind it to one request, so
  a token a driver receives cannot be replayed anywhere else:
  - `aud`: the Driver's target (normalised, `normalise_url`): a token minted for driver A is refused by B;
  - `sub`: the Resource the request is for (`<namespace>/<resource id>`);
  - `jti`: random and unique per HTTP request, so a driver's replay cache refuses a second use;
  - `htm`/`htu`: method and URL (without query and fragment) as in RFC 9449 (DPoP), so a token for
    `GET .../a` cannot be used for `DELETE .../b` at the same driver.
  Drivers that predate these claims ignore them (JWT verifiers skip claims they do not know).

`verify_token` checks all of them; `ReplayCache` remembers the `jti`s of tokens still alive.

The private key comes from a Secret with `privateKey` (PEM, PKCS#8 or PKCS#1, unencrypted) and
`organisationID` (or Humanitec's `humanitecOrganisationID`).
"""

from __future__ import annotations

import hashlib
import heapq
import secrets
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from strongroom.api.driver import (
    HUMANITEC_ORGANISATION_ID_SECRET_KEY,
    ORGANISATION_ID_SECRET_KEY,
    PRIVATE_KEY_SECRET_KEY,
)

ALGORITHM: Final = "RS256"
#: Lifetime of a token the operator signs. Short: one token per HTTP request.
TOKEN_LIFETIME_SECONDS: Final = 60
#: Smallest RSA key accepted for signing; Humanitec's key registry itself asks for 4096 bits.
MIN_KEY_BITS: Final = 2048
DEFAULT_KEY_BITS: Final = 4096
#: Clock skew tolerated when verifying.
DEFAULT_LEEWAY_SECONDS: Final = 30
#: Longest `exp - iat` a verifier accepts, so a long-lived token minted with a stolen key stands out.
DEFAULT_MAX_TOKEN_LIFETIME_SECONDS: Final = 300
#: Claims that bind a token to one driver, one Resource and one request (see the module docstring).
BINDING_CLAIMS: Final = ("aud", "sub", "jti", "htm", "htu")
#: Bounds of a `jti`: long enough to be unguessable, short enough to keep the replay cache small.
JTI_MIN_LENGTH: Final = 16
JTI_MAX_LENGTH: Final = 128
#: Most token ids a replay cache keeps by default (about 100 bytes each).
DEFAULT_REPLAY_CACHE_SIZE: Final = 100_000


class SigningKeyError(ValueError):
    """The key material cannot be used. The message never contains the key."""


class TokenInvalid(Exception):
    """A bearer token failed verification; the message says why, in a few words, without the token."""


class ReplayCacheFull(TokenInvalid):
    """The replay cache holds its maximum of live token ids: refuse for now rather than forget one."""


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str) -> str:
    """The form of a URL both sides compare in `aud` and `htu`: scheme and host lower-case, the default
    port dropped, no user info, query or fragment, and an empty path as `/`. Percent-encoding and the
    path's case are kept (paths are case-sensitive)."""
    parts = urllib.parse.urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return urllib.parse.urlunsplit((scheme, host, parts.path or "/", "", ""))


def public_key_fingerprint(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo: the JWT `kid` and Humanitec's key fingerprint."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def generate_private_key(bits: int = DEFAULT_KEY_BITS) -> rsa.RSAPrivateKey:
    if bits < MIN_KEY_BITS:
        raise SigningKeyError(f"RSA keys need at least {MIN_KEY_BITS} bits, not {bits}")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (it goes into a Kubernetes Secret, which is where it is protected)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> bytes:
    """SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`), the form Humanitec's key registry takes."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(pem: bytes | str) -> rsa.RSAPrivateKey:
    """An unencrypted RSA private key from PEM; SigningKeyError (without the key's text) otherwise."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise SigningKeyError("the private key is encrypted; store it unencrypted in the Secret") from None
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError("the private key is not a PEM-encoded RSA private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SigningKeyError(f"the private key is {type(key).__name__}, not RSA (RS256 needs RSA)")
    if key.key_size < MIN_KEY_BITS:
        raise SigningKeyError(f"the private key has {key.key_size} bits; at least {MIN_KEY_BITS} are needed")
    return key


def load_public_key(pem: bytes | str) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (SubjectPublicKeyInfo or PKCS#1)."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError("not a PEM-encoded public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SigningKeyError(f"the public key is {type(key).__name__}, not RSA")
    return key


class SigningKey:
    """The operator's private key and organisation id; signs one short-lived token per request."""

    __slots__ = ("_key", "kid", "org_id")

    def __init__(self, key: rsa.RSAPrivateKey, org_id: str) -> None:
        if not org_id:
            raise SigningKeyError("the organisation id is empty")
        self._key = key
        self.org_id = org_id
        self.kid = public_key_fingerprint(key)
        """Hex SHA-256 fingerprint of the public key, sent as the JWT `kid`."""

    @classmethod
    def from_pem(cls, pem: bytes | str, org_id: str) -> SigningKey:
        return cls(load_private_key(pem), org_id)

    @classmethod
    def from_secret_data(cls, data: Mapping[str, bytes | str]) -> SigningKey:
        """From the decoded `data` of the key Secret: `privateKey` and `organisationID` (or
        `humanitecOrganisationID`, the Humanitec Operator's name)."""
        pem = data.get(PRIVATE_KEY_SECRET_KEY)
        if not pem:
            raise SigningKeyError(f"the Secret has no {PRIVATE_KEY_SECRET_KEY!r} key")
        org = data.get(ORGANISATION_ID_SECRET_KEY) or data.get(HUMANITEC_ORGANISATION_ID_SECRET_KEY)
        if not org:
            raise SigningKeyError(
                f"the Secret has neither {ORGANISATION_ID_SECRET_KEY!r} "
                f"nor {HUMANITEC_ORGANISATION_ID_SECRET_KEY!r}"
            )
        org_text = org.decode() if isinstance(org, bytes) else org
        return cls.from_pem(pem, org_text.strip())

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._key.public_key()

    def public_key_pem(self) -> bytes:
        return public_key_pem(self._key)

    def sign(
        self,
        *,
        audience: str | None = None,
        subject: str | None = None,
        method: str | None = None,
        url: str | None = None,
        now: float | None = None,
        lifetime: int = TOKEN_LIFETIME_SECONDS,
    ) -> str:
        """A fresh RS256 token, header `kid` = fingerprint: `{"orgID", "iat", "exp", "jti"}`, plus `aud`
        (normalised), `sub`, `htm` (upper-case) and `htu` (normalised) for those given."""
        issued = int(time.time() if now is None else now)
        payload: dict[str, Any] = {
            "orgID": self.org_id,
            "iat": issued,
            "exp": issued + lifetime,
            "jti": secrets.token_urlsafe(24),
        }
        if audience is not None:
            payload["aud"] = normalise_url(audience)
        if subject is not None:
            payload["sub"] = subject
        if method is not None:
            payload["htm"] = method.upper()
        if url is not None:
            payload["htu"] = normalise_url(url)
        return jwt.encode(payload, self._key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "JWT"})

    def authorization(
        self,
        *,
        audience: str | None = None,
        subject: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> str:
        """The `Authorization` header value for one request (see `sign`)."""
        return f"Bearer {self.sign(audience=audience, subject=subject, method=method, url=url)}"

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid[:16]}..., org_id={self.org_id!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SigningKey cannot be pickled")


def verify_token(
    token: str,
    public_keys: Mapping[str, rsa.RSAPublicKey],
    *,
    org_id: str | None = None,
    audience: str | None = None,
    method: str | None = None,
    url: str | None = None,
    require_binding: bool = True,
    leeway: float = DEFAULT_LEEWAY_SECONDS,
    max_lifetime: float | None = DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
) -> dict[str, Any]:
    """Verify a driver request token and return its claims; TokenInvalid says why not.

    The public key is chosen by the header's `kid` (the key fingerprint) and only RS256 is accepted, so
    neither `alg: none` nor an HMAC token keyed with the public key gets through. `exp` and `iat` are
    required; `orgID` must equal `org_id` when one is given.

    Binding: `aud` must equal `audience`, `htm` `method` and `htu` `url` (URLs compared normalised) for
    each of them given. With `require_binding` (the default) `aud`, `sub`, `jti`, `htm` and `htu` must all
    be present; without it (tokens from callers that predate them, such as Humanitec's platform) a token
    may lack them, but those it carries are still checked. The `jti` is only checked for shape here: the
    caller keeps the `ReplayCache`.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenInvalid("malformed token") from None
    if header.get("alg") != ALGORITHM:
        raise TokenInvalid(f"algorithm must be {ALGORITHM}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenInvalid("token has no kid")
    key = public_keys.get(kid.lower())
    if key is None:
        raise TokenInvalid("unknown key id")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat"], "verify_aud": False},
            leeway=leeway,
        )
    except jwt.ExpiredSignatureError:
        raise TokenInvalid("token expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenInvalid("token not yet valid") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenInvalid(f"token has no {exc.claim}") from None
    except jwt.InvalidSignatureError:
        raise TokenInvalid("bad signature") from None
    except jwt.PyJWTError:
        raise TokenInvalid("invalid token") from None
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        raise TokenInvalid("iat and exp must be numbers")
    if max_lifetime is not None and exp - iat > max_lifetime:
        raise TokenInvalid("token lifetime too long")
    if org_id is not None and claims.get("orgID") != org_id:
        raise TokenInvalid("wrong organisation")
    _check_binding(claims, audience=audience, method=method, url=url, required=require_binding)
    return claims


def _check_binding(
    claims: Mapping[str, Any], *, audience: str | None, method: str | None, url: str | None, required: bool
) -> None:
    if required:
        missing = [name for name in BINDING_CLAIMS if name not in claims]
        if missing:
            raise TokenInvalid(f"token has no {', '.join(missing)}")
    if "aud" in claims and audience is not None:
        aud = claims["aud"]
        wanted = normalise_url(audience)
        names = aud if isinstance(aud, list) else [aud]
        if not all(isinstance(name, str) for name in names) or wanted not in {
            normalise_url(n) for n in names
        }:
            raise TokenInvalid("token is for another audience")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise TokenInvalid("sub must be a string")
    if "jti" in claims:
        jti = claims["jti"]
        if not isinstance(jti, str) or not JTI_MIN_LENGTH <= len(jti) <= JTI_MAX_LENGTH:
            raise TokenInvalid(f"jti must be a string of {JTI_MIN_LENGTH} to {JTI_MAX_LENGTH} characters")
    if "htm" in claims and method is not None and claims["htm"] != method.upper():
        raise TokenInvalid("token is for another method")
    if "htu" in claims and url is not None:
        htu = claims["htu"]
        if not isinstance(htu, str) or normalise_url(htu) != normalise_url(url):
            raise TokenInvalid("token is for another URL")


class ReplayCache:
    """Token ids seen while their tokens are alive, so each token is accepted once.

    Memory is bounded: entries leave when their token expires (`exp` + leeway), and at most `max_size`
    are kept. When that many live tokens have been seen, new ones are refused (`ReplayCacheFull`) until
    the oldest expire, rather than forgetting a live id (which would let its token be replayed). Only
    tokens whose signature verified are remembered, so filling it takes the signer's cooperation.
    """

    def __init__(
        self, *, max_size: int = DEFAULT_REPLAY_CACHE_SIZE, leeway: float = DEFAULT_LEEWAY_SECONDS
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.max_size = max_size
        self.leeway = leeway
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def _prune(self, now: float) -> None:
        while self._heap and self._heap[0][0] < now:
            _, jti = heapq.heappop(self._heap)
            self._expiry.pop(jti, None)

    def use(self, jti: str, exp: float, *, now: float | None = None) -> None:
        """Record `jti` (of a token valid until `exp`); TokenInvalid if it was seen before."""
        current = time.time() if now is None else now
        self._prune(current)
        if jti in self._expiry:
            raise TokenInvalid("token replayed")
        if len(self._expiry) >= self.max_size:
            raise ReplayCacheFull("too many live tokens; try again shortly")
        until = float(exp) + self.leeway
        self._expiry[jti] = until
        heapq.heappush(self._heap, (until, jti))


def public_keys_by_kid(keys: list[rsa.RSAPublicKey]) -> dict[str, rsa.RSAPublicKey]:
    """The mapping `verify_token` takes: each key under its fingerprint."""
    return {public_key_fingerprint(key): key for key in keys}
