"""Reference keys, version shapes and write-back key mapping, per backend (docs/secret-references.md)."""

from __future__ import annotations

import pytest

from strongroom.stores import awssm, azurekv, gcpsm, kubernetes, vault
from strongroom.stores.base import InvalidReference

# --- Vault ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "normal"),
    [("app/db", "app/db"), ("/app/db/", "app/db"), ("a b/c%d", "a b/c%d"), ("x", "x")],
)
def test_vault_keys(key: str, normal: str) -> None:
    assert vault.normalize_key(key) == normal


@pytest.mark.parametrize(
    "key", ["", "/", "../sys/mounts", "a/../../b", "a//b", "a/./b", "a?b", "a#b", "a\nb"]
)
def test_vault_keys_that_could_leave_the_mount_are_refused(key: str) -> None:
    with pytest.raises(InvalidReference):
        vault.normalize_key(key)


def test_vault_versions() -> None:
    assert vault.parse_version(None) is None
    assert vault.parse_version("") is None
    assert vault.parse_version("3") == 3
    for bad in ("0", "-1", "latest", "v2", "1.0"):
        with pytest.raises(InvalidReference):
            vault.parse_version(bad)


def test_vault_url_path_segments_are_quoted() -> None:
    assert vault._quote_path("a b/c%d/é") == "a%20b/c%25d/%C3%A9"


# --- AWS --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (None, None),
        ("", None),
        ("AWSCURRENT", ("VersionStage", "AWSCURRENT")),
        ("AWSPREVIOUS", ("VersionStage", "AWSPREVIOUS")),
        ("blue", ("VersionStage", "blue")),
        ("3f1b0a2c-9d6e-4b8a-8f1e-2c3d4e5f6a7b", ("VersionId", "3f1b0a2c-9d6e-4b8a-8f1e-2c3d4e5f6a7b")),
        ("id:terraform-20240101", ("VersionId", "terraform-20240101")),
        (
            "stage:3f1b0a2c-9d6e-4b8a-8f1e-2c3d4e5f6a7b",
            ("VersionStage", "3f1b0a2c-9d6e-4b8a-8f1e-2c3d4e5f6a7b"),
        ),
    ],
)
def test_aws_version_shapes(version: str | None, expected: tuple[str, str] | None) -> None:
    assert awssm.classify_version(version) == expected


@pytest.mark.parametrize("version", ["id:", "stage:"])
def test_aws_empty_prefixed_versions_are_refused(version: str) -> None:
    with pytest.raises(InvalidReference):
        awssm.classify_version(version)


def test_aws_reference_keys() -> None:
    arn = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:prod/db-AbCdEf"
    assert awssm.check_reference_key(arn) == arn
    assert awssm.check_reference_key("prod/db+x=y.z@w_v-u") == "prod/db+x=y.z@w_v-u"
    for bad in ("", "has space", "semi;colon", "x" * 2049):
        with pytest.raises(InvalidReference):
            awssm.check_reference_key(bad)


def test_aws_write_names_are_the_keys() -> None:
    assert awssm.write_name("strongroom/ns/res/password") == "strongroom/ns/res/password"
    assert awssm.write_name("/a/") == "/a/"
    for bad in ("", "a b:c", "x" * 513):
        with pytest.raises(InvalidReference):
            awssm.write_name(bad)


# --- GCP --------------------------------------------------------------------------------------------------


def test_gcp_keys() -> None:
    assert gcpsm.parse_key("db-password", "proj-1") == "projects/proj-1/secrets/db-password"
    assert gcpsm.parse_key("projects/proj-1/secrets/db_pw", "proj-1") == "projects/proj-1/secrets/db_pw"
    assert gcpsm.parse_key("a/b", "proj-1") == "projects/proj-1/secrets/key--a_b"
    with pytest.raises(InvalidReference, match="project"):
        gcpsm.parse_key("projects/other/secrets/db", "proj-1")
    with pytest.raises(InvalidReference, match="version"):
        gcpsm.parse_key("projects/proj-1/secrets/db/versions/2", "proj-1")
    # An escaped id is reached through its logical key only (access rules check the logical key).
    for bad in ("", "projects/proj-1/secrets/a.b", "projects/proj-1/secrets/key--strongroom_a_x"):
        with pytest.raises(InvalidReference):
            gcpsm.parse_key(bad, "proj-1")


@pytest.mark.parametrize(
    ("version", "expected"),
    [(None, "latest"), ("", "latest"), ("latest", "latest"), ("7", "7"), ("007", "7"), ("blue", "blue")],
)
def test_gcp_versions(version: str | None, expected: str) -> None:
    assert gcpsm.parse_version(version) == expected


@pytest.mark.parametrize("version", ["0", "-1", "1.5", "a b", "9alias"])
def test_gcp_bad_versions(version: str) -> None:
    with pytest.raises(InvalidReference):
        gcpsm.parse_version(version)


def test_gcp_secret_ids() -> None:
    assert gcpsm.secret_id_of("strongroom/ns/res/api_key") == "key--strongroom_ns_res_api--5fkey"
    assert gcpsm.secret_id_of("keep_under-score") == "keep_under-score"
    with pytest.raises(InvalidReference):
        gcpsm.secret_id_of("x/" * 128)


def test_gcp_crc32c_is_verified() -> None:
    import google_crc32c

    data = b"pa55w0rd-bytes"
    gcpsm.verify_crc32c(data, google_crc32c.value(data), "s", "secret 'x'")
    gcpsm.verify_crc32c(data, None, "s", "secret 'x'")  # not sent: nothing to check
    with pytest.raises(gcpsm.ChecksumMismatch) as raised:
        gcpsm.verify_crc32c(data, google_crc32c.value(data) ^ 1, "s", "secret 'x'")
    assert raised.value.reason == "ChecksumMismatch"
    assert "pa55w0rd" not in str(raised.value)


# --- Azure ------------------------------------------------------------------------------------------------


def test_azure_names() -> None:
    assert azurekv.secret_name("db-password-1") == "db-password-1"
    assert azurekv.secret_name("strongroom/ns/res") == "key--strongroom--2fns--2fres"
    assert azurekv.secret_name("Db_Password") == "key----44b--5f--50assword"
    with pytest.raises(InvalidReference):
        azurekv.secret_name("x/" * 64)


def test_azure_versions() -> None:
    assert azurekv.check_version(None) is None
    assert azurekv.check_version("0123456789abcdef0123456789ABCDEF") == "0123456789abcdef0123456789ABCDEF"
    for bad in ("1", "latest", "0123456789abcdef0123456789abcde"):
        with pytest.raises(InvalidReference):
            azurekv.check_version(bad)


@pytest.mark.parametrize(
    ("url", "azure"),
    [
        ("https://my-vault.vault.azure.net/", True),
        ("https://my-vault.vault.azure.cn", True),
        ("https://hsm.managedhsm.azure.net", True),
        ("https://127.0.0.1:8443", False),
        ("https://vault.azure.net.evil.example", False),
        ("https://evilvault.azure.net", False),
    ],
)
def test_azure_challenge_verification_hosts(url: str, azure: bool) -> None:
    assert azurekv.is_azure_vault_host(url) is azure


# --- Kubernetes -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("db", "db"),
        ("db.creds", "db.creds"),
        ("strongroom/ns/res/outputs/password", "key--strongroom.ns.res.outputs.password"),
        (
            "strongroom/team-a/db/outputs/API_KEY",
            "key--strongroom.team-a.db.outputs--2f--41--50--49--5f--4b--45--59",
        ),
        ("Apps/Web", "key----41pps--2f--57eb"),
        ("key--x", "key--key--2d-x"),
        ("a//b", "key--a--2f.b"),
    ],
)
def test_kubernetes_names(key: str, name: str) -> None:
    assert kubernetes.secret_name(key) == name


def test_kubernetes_names_too_long() -> None:
    with pytest.raises(InvalidReference):
        kubernetes.secret_name("a/" * 127)
