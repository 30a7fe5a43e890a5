"""Request signing: the kid fingerprint, tokens PyJWT accepts, expiry, and the verifier's refusals."""

from __future__ import annotations

import base64
import hashlib
import pickle
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from strongroom.drivers.signing import (
    ReplayCache,
    ReplayCacheFull,
    SigningKey,
    SigningKeyError,
    TokenInvalid,
    generate_private_key,
    load_private_key,
    normalise_url,
    private_key_pem,
    public_key_fingerprint,
    public_key_pem,
    public_keys_by_kid,
    verify_token,
)
from testenv.paths import REPO_ROOT


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return generate_private_key(2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return generate_private_key(2048)


def test_kid_is_sha256_of_the_der_subject_public_key_info(key: rsa.RSAPrivateKey) -> None:
    # The same computation as `openssl pkey -pubout -outform DER | sha256sum`, done by hand from the PEM.
    pem = public_key_pem(key).decode()
    der = base64.b64decode("".join(line for line in pem.splitlines() if not line.startswith("-----")))
    assert public_key_fingerprint(key) == hashlib.sha256(der).hexdigest()
    assert public_key_fingerprint(key.public_key()) == public_key_fingerprint(key)
    assert len(public_key_fingerprint(key)) == 64


def test_token_verifies_with_pyjwt_and_has_the_humanitec_shape(key: rsa.RSAPrivateKey) -> None:
    signer = SigningKey(key, "my-org")
    token = signer.sign()
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": public_key_fingerprint(key)}
    claims = jwt.decode(token, key.public_key(), algorithms=["RS256"])
    assert claims["orgID"] == "my-org"
    assert 0 < claims["exp"] - claims["iat"] <= 60
    assert abs(claims["iat"] - time.time()) < 5
    assert signer.authorization().startswith("Bearer ")


def test_expired_token_is_refused(key: rsa.RSAPrivateKey) -> None:
    signer = SigningKey(key, "my-org")
    old = signer.sign(now=time.time() - 600)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(old, key.public_key(), algorithms=["RS256"])
    with pytest.raises(TokenInvalid, match="expired"):
        verify_token(old, public_keys_by_kid([key.public_key()]))
    # A little clock skew is tolerated.
    slightly_old = signer.sign(now=time.time() - 70)
    keys = public_keys_by_kid([key.public_key()])
    assert verify_token(slightly_old, keys, leeway=30, require_binding=False)["orgID"] == "my-org"


def test_verify_token_accepts_the_right_key_and_org(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    keys = public_keys_by_kid([key.public_key(), other_key.public_key()])
    token = SigningKey(key, "org-a").sign()
    assert verify_token(token, keys, org_id="org-a", require_binding=False)["orgID"] == "org-a"
    with pytest.raises(TokenInvalid, match="organisation"):
        verify_token(token, keys, org_id="org-b")
    with pytest.raises(TokenInvalid, match="unknown key"):
        verify_token(token, public_keys_by_kid([other_key.public_key()]))


def test_verify_token_refuses_forgeries(key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey) -> None:
    keys = public_keys_by_kid([key.public_key()])
    kid = public_key_fingerprint(key)
    now = int(time.time())
    claims = {"orgID": "o", "iat": now, "exp": now + 60}
    # Signed by another key but claiming our kid.
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": kid})
    with pytest.raises(TokenInvalid, match="signature"):
        verify_token(forged, keys)
    # alg none.
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})  # type: ignore[arg-type]
    with pytest.raises(TokenInvalid, match="RS256"):
        verify_token(unsigned, keys)
    # HS256 keyed with the public key (algorithm confusion).
    hmac_key = hashlib.sha256(public_key_pem(key)).digest()
    confused = jwt.encode(claims, hmac_key, algorithm="HS256", headers={"kid": kid})
    with pytest.raises(TokenInvalid, match="RS256"):
        verify_token(confused, keys)
    # No exp.
    no_exp = jwt.encode({"orgID": "o", "iat": now}, key, algorithm="RS256", headers={"kid": kid})
    with pytest.raises(TokenInvalid, match="exp"):
        verify_token(no_exp, keys)
    # A lifetime far beyond what the operator issues.
    long_lived = jwt.encode({**claims, "exp": now + 86400}, key, algorithm="RS256", headers={"kid": kid})
    with pytest.raises(TokenInvalid, match="lifetime"):
        verify_token(long_lived, keys)
    # Garbage.
    with pytest.raises(TokenInvalid, match="malformed"):
        verify_token("not.a.token", keys)


TARGET_A = "https://Drivers.Example.com:443/pg/"
TARGET_B = "https://drivers.example.com/s3/"


def _bound(signer: SigningKey, target: str = TARGET_A, method: str = "PUT", guresid: str = "g1") -> str:
    return signer.sign(audience=target, subject="team-a/shared.db", method=method, url=f"{target}{guresid}")


def test_tokens_bind_audience_subject_id_method_and_url(key: rsa.RSAPrivateKey) -> None:
    signer = SigningKey(key, "org")
    claims = jwt.decode(_bound(signer), key.public_key(), algorithms=["RS256"], options={"verify_aud": False})
    assert claims["aud"] == "https://drivers.example.com/pg/"  # normalised: host case, default port
    assert claims["sub"] == "team-a/shared.db"
    assert claims["htm"] == "PUT"
    assert claims["htu"] == "https://drivers.example.com/pg/g1"
    assert 16 <= len(claims["jti"]) <= 128
    # A fresh id for every token, even within one second.
    assert (
        len({jwt.decode(signer.sign(), options={"verify_signature": False})["jti"] for _ in range(50)}) == 50
    )


def test_verify_token_checks_the_binding(key: rsa.RSAPrivateKey) -> None:
    keys = public_keys_by_kid([key.public_key()])
    signer = SigningKey(key, "org")
    token = _bound(signer)
    url = "https://drivers.example.com/pg/g1"
    assert verify_token(token, keys, audience=TARGET_A, method="put", url=url)["sub"] == "team-a/shared.db"
    with pytest.raises(TokenInvalid, match="another audience"):
        verify_token(token, keys, audience=TARGET_B, method="PUT", url=f"{TARGET_B}g1")
    with pytest.raises(TokenInvalid, match="another audience"):
        # No trailing slash: another base URL.
        verify_token(token, keys, audience="https://drivers.example.com/pg", method="PUT", url=url)
    with pytest.raises(TokenInvalid, match="another method"):
        verify_token(token, keys, audience=TARGET_A, method="DELETE", url=url)
    with pytest.raises(TokenInvalid, match="another URL"):
        verify_token(token, keys, audience=TARGET_A, method="PUT", url=f"{TARGET_A}g2")
    # Tokens without the binding (Humanitec's platform sends only orgID): refused unless asked for.
    legacy = signer.sign()
    with pytest.raises(TokenInvalid, match="no aud, sub, htm, htu"):
        verify_token(legacy, keys, audience=TARGET_A, method="PUT", url=url)
    assert verify_token(legacy, keys, audience=TARGET_A, method="PUT", url=url, require_binding=False)
    # ... but what such a token does carry is still checked.
    with pytest.raises(TokenInvalid, match="another audience"):
        verify_token(token, keys, audience=TARGET_B, method="PUT", url=url, require_binding=False)
    kid = public_key_fingerprint(key)
    now = int(time.time())
    short_id = jwt.encode(
        {"orgID": "o", "iat": now, "exp": now + 60, "jti": "1", "aud": TARGET_A, "sub": "s", "htm": "PUT",
         "htu": url},
        key, algorithm="RS256", headers={"kid": kid},
    )  # fmt: skip
    with pytest.raises(TokenInvalid, match="jti"):
        verify_token(short_id, keys, audience=TARGET_A, method="PUT", url=url)


def test_normalise_url() -> None:
    assert normalise_url("HTTPS://User:pw@Host.Example:443/A/b?q=1#f") == "https://host.example/A/b"
    assert normalise_url("http://host:8080") == "http://host:8080/"
    assert normalise_url("http://[::1]:80/x") == "http://[::1]/x"


def test_replay_cache_refuses_a_second_use_and_forgets_expired_ids() -> None:
    cache = ReplayCache(max_size=3, leeway=0)
    cache.use("a" * 16, exp=100, now=50)
    with pytest.raises(TokenInvalid, match="replayed"):
        cache.use("a" * 16, exp=100, now=60)
    cache.use("b" * 16, exp=100, now=60)
    cache.use("c" * 16, exp=200, now=60)
    # Full of live ids: a new one is refused rather than a live one forgotten.
    with pytest.raises(ReplayCacheFull):
        cache.use("d" * 16, exp=200, now=70)
    assert len(cache) == 3
    # Once "a" and "b" expire, they make room (and could not be replayed anyway: their tokens expired).
    cache.use("d" * 16, exp=200, now=101)
    assert len(cache) == 2


def test_key_loading_accepts_pkcs8_and_pkcs1_and_names_no_key_material(key: rsa.RSAPrivateKey) -> None:
    pkcs8 = private_key_pem(key)
    pkcs1 = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert public_key_fingerprint(load_private_key(pkcs8)) == public_key_fingerprint(key)
    assert public_key_fingerprint(load_private_key(pkcs1.decode())) == public_key_fingerprint(key)

    broken = pkcs8[:200] + b"AAAA" + pkcs8[204:]
    with pytest.raises(SigningKeyError) as info:
        load_private_key(broken)
    assert pkcs8[40:80].decode() not in str(info.value)

    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(SigningKeyError, match="encrypted"):
        load_private_key(encrypted)

    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SigningKeyError, match="not RSA"):
        load_private_key(ec_pem)
    with pytest.raises(SigningKeyError, match="bits"):
        generate_private_key(1024)


def test_signing_key_from_secret_data_and_its_repr(key: rsa.RSAPrivateKey) -> None:
    pem = private_key_pem(key)
    signer = SigningKey.from_secret_data({"privateKey": pem, "organisationID": b"org-1\n"})
    assert signer.org_id == "org-1"
    assert signer.kid == public_key_fingerprint(key)
    humanitec = SigningKey.from_secret_data({"privateKey": pem, "humanitecOrganisationID": "org-2"})
    assert humanitec.org_id == "org-2"
    with pytest.raises(SigningKeyError, match="organisationID"):
        SigningKey.from_secret_data({"privateKey": pem})
    with pytest.raises(SigningKeyError, match="privateKey"):
        SigningKey.from_secret_data({"organisationID": "x"})
    assert "PRIVATE" not in repr(signer)
    with pytest.raises(TypeError):
        pickle.dumps(signer)


def test_keys_generate_command(tmp_path: Path) -> None:
    out = tmp_path / "private.pem"
    # The entry point, called the way the `strongroom` console script calls it.
    entry = [sys.executable, "-c", "from strongroom.cli import main; main()"]
    cmd = [*entry, "keys", "generate", "--bits", "2048", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    private = load_private_key(out.read_bytes())
    assert done.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in done.stdout
    public = serialization.load_pem_public_key(done.stdout.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    assert public_key_fingerprint(public) == public_key_fingerprint(private)
    assert f"fingerprint (JWT kid): {public_key_fingerprint(private)}" in done.stderr

    again = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=False, timeout=60)
    assert again.returncode != 0
    assert again.stderr.strip().count("\n") == 0
    assert "exists" in again.stderr
    assert out.read_bytes() == private_key_pem(private)

    neither = subprocess.run(cmd[:-2], capture_output=True, text=True, cwd=REPO_ROOT, check=False, timeout=60)
    assert neither.returncode != 0
    assert neither.stderr.strip().count("\n") == 0

    printed = subprocess.run(
        [*cmd[:-2], "--print-private-key"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
        timeout=60,
    )
    assert printed.returncode == 0
    assert printed.stdout.startswith("-----BEGIN PRIVATE KEY-----")
    assert "-----BEGIN PUBLIC KEY-----" in printed.stdout
