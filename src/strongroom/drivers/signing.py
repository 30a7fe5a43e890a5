"""Signed driver requests: RS256 JWTs as the Humanitec Operator sends them, and their verification.

Every request to a remote driver carries `Authorization: Bearer <jwt>`:
- header `{"alg": "RS256", "typ": "JWT", "kid": <fingerprint>}`, where the fingerprint is the hex SHA-256 of
  the DER-encoded SubjectPublicKeyInfo of the public key (what Humanitec's key registry reports), so a driver
  finds the right public key without trying them all;
- payload `{"orgID": <organisation id>, "iat": now, "exp": now + 60 s}`. Humanitec documents only `orgID`;
  `iat`/`exp` are added so a captured token is useless a minute later, and a fresh token is made for every
  HTTP request (polls included).

The private key comes from a Secret with `privateKey` (PEM, PKCS#8 or PKCS#1, unencrypted) and
`organisationID` (or Humanitec's `humanitecOrganisationID`).
"""

from __future__ import annotations

import hashlib
import time
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


class SigningKeyError(ValueError):
    """The key material cannot be used. The message never contains the key."""


class TokenInvalid(Exception):
    """A bearer token failed verification; the message says why, in a few words, without the token."""


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

    def sign(self, *, now: float | None = None, lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
        """A fresh RS256 token: `{"orgID", "iat", "exp"}`, header `kid` = fingerprint."""
        issued = int(time.time() if now is None else now)
        payload = {"orgID": self.org_id, "iat": issued, "exp": issued + lifetime}
        return jwt.encode(payload, self._key, algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "JWT"})

    def authorization(self) -> str:
        """The `Authorization` header value for one request."""
        return f"Bearer {self.sign()}"

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid[:16]}..., org_id={self.org_id!r})"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("SigningKey cannot be pickled")


def verify_token(
    token: str,
    public_keys: Mapping[str, rsa.RSAPublicKey],
    *,
    org_id: str | None = None,
    leeway: float = DEFAULT_LEEWAY_SECONDS,
    max_lifetime: float | None = DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
) -> dict[str, Any]:
    """Verify a driver request token and return its claims; TokenInvalid says why not.

    The public key is chosen by the header's `kid` (the key fingerprint) and only RS256 is accepted, so
    neither `alg: none` nor an HMAC token keyed with the public key gets through. `exp` and `iat` are
    required; `orgID` must equal `org_id` when one is given.
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
    return claims


def public_keys_by_kid(keys: list[rsa.RSAPublicKey]) -> dict[str, rsa.RSAPublicKey]:
    """The mapping `verify_token` takes: each key under its fingerprint."""
    return {public_key_fingerprint(key): key for key in keys}
