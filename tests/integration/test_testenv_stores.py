"""Smoke tests of testenv's store servers: each starts, the real client SDK writes and reads a secret
through it, and stopping it ends its process."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import google_crc32c
import grpc
import hvac
import psycopg
import pytest
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceNotFoundError
from azure.identity.aio import ClientSecretCredential
from azure.keyvault.secrets.aio import SecretClient
from cryptography import x509
from cryptography.x509.oid import NameOID
from google.api_core import exceptions as google_exceptions
from google.cloud import secretmanager_v1
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcAsyncIOTransport,
)

import testenv
from testenv.certs import make_ca
from testenv.process import pid_alive
from testenv.service import Service
from testenv.stores import install_all
from testenv.stores.gcp_emulator import crc32c

pytestmark = pytest.mark.integration


def _started(name: str, factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = testenv.starter(name)(factory.mktemp(name))
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def openbao_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from _started("openbao", tmp_path_factory)


@pytest.fixture(scope="module")
def moto_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from _started("moto", tmp_path_factory)


@pytest.fixture(scope="module")
def gcp_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from _started("gcp", tmp_path_factory)


@pytest.fixture(scope="module")
def azure_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from _started("azure", tmp_path_factory)


@pytest.fixture(scope="module")
def postgres_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    yield from _started("postgres", tmp_path_factory)


def test_install_all_is_a_no_op_when_everything_is_present() -> None:
    started = time.monotonic()
    install_all()
    assert time.monotonic() - started < 30


# --- OpenBao -------------------------------------------------------------------------------------


def test_openbao_kv_v2_and_kv_v1(openbao_service: Service) -> None:
    env = openbao_service.env
    assert env["VAULT_ADDR"] == env["BAO_ADDR"] == openbao_service.info["addr"]
    client = hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"])
    assert client.is_authenticated()

    # Dev mode mounts KV v2 at secret/.
    client.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": "v1"})
    client.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": "v2"})
    latest = client.secrets.kv.v2.read_secret_version(path="app/db", raise_on_deleted_version=True)
    assert latest["data"]["data"] == {"password": "v2"}
    assert latest["data"]["metadata"]["version"] == 2
    first = client.secrets.kv.v2.read_secret_version(path="app/db", version=1, raise_on_deleted_version=True)
    assert first["data"]["data"] == {"password": "v1"}

    client.sys.enable_secrets_engine("kv", path="kv1", options={"version": "1"})
    client.secrets.kv.v1.create_or_update_secret(path="app/api", secret={"key": "k1"}, mount_point="kv1")
    assert client.secrets.kv.v1.read_secret(path="app/api", mount_point="kv1")["data"] == {"key": "k1"}


# --- AWS Secrets Manager (moto) ------------------------------------------------------------------


async def test_moto_secrets_manager_versions(moto_service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    # No endpoint_url: the exported service-specific variable alone must route botocore to moto.
    for key, value in moto_service.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    async with get_session().create_client("secretsmanager") as client:
        assert client.meta.endpoint_url == moto_service.info["endpoint"]
        created = await client.create_secret(Name="app/db", SecretString="first")
        first = await client.get_secret_value(SecretId="app/db")
        assert first["SecretString"] == "first"
        assert first["VersionId"] == created["VersionId"]

        await client.put_secret_value(SecretId="app/db", SecretString="second")
        current = await client.get_secret_value(SecretId="app/db")
        previous = await client.get_secret_value(SecretId="app/db", VersionStage="AWSPREVIOUS")
        assert current["SecretString"] == "second"
        assert previous["SecretString"] == "first"
        assert previous["VersionId"] == created["VersionId"]

        with pytest.raises(client.exceptions.ResourceNotFoundException):
            await client.get_secret_value(SecretId="missing")


# --- GCP Secret Manager --------------------------------------------------------------------------


def test_emulator_crc32c_matches_the_reference_implementation() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the published CRC-32C check value
    for sample in (b"", b"a", os.urandom(1000)):
        assert crc32c(sample) == google_crc32c.value(sample)


_AUTOMATIC = secretmanager_v1.Secret(
    replication=secretmanager_v1.Replication(automatic=secretmanager_v1.Replication.Automatic())
)


async def test_gcp_secret_manager_sdk(gcp_service: Service) -> None:
    project = gcp_service.env["GOOGLE_CLOUD_PROJECT"]
    channel = grpc.aio.insecure_channel(gcp_service.env["SECRETMANAGER_EMULATOR_HOST"])
    client = secretmanager_v1.SecretManagerServiceAsyncClient(
        transport=SecretManagerServiceGrpcAsyncIOTransport(channel=channel)
    )
    try:
        secret = await client.create_secret(
            parent=f"projects/{project}",
            secret_id="db-password",
            secret=_AUTOMATIC,
        )
        assert secret.name == f"projects/{project}/secrets/db-password"
        with pytest.raises(google_exceptions.AlreadyExists):
            await client.create_secret(
                parent=f"projects/{project}",
                secret_id="db-password",
                secret=_AUTOMATIC,
            )

        v1 = await client.add_secret_version(
            parent=secret.name,
            payload=secretmanager_v1.SecretPayload(data=b"one", data_crc32c=google_crc32c.value(b"one")),
        )
        assert v1.name == f"{secret.name}/versions/1"
        assert v1.client_specified_payload_checksum
        await client.add_secret_version(
            parent=secret.name, payload=secretmanager_v1.SecretPayload(data=b"two")
        )

        latest = await client.access_secret_version(name=f"{secret.name}/versions/latest")
        assert latest.name == f"{secret.name}/versions/2"
        assert latest.payload.data == b"two"
        assert "data_crc32c" in latest.payload
        assert latest.payload.data_crc32c == google_crc32c.value(latest.payload.data)

        first = await client.access_secret_version(name=f"{secret.name}/versions/1")
        assert first.payload.data == b"one"

        await client.disable_secret_version(name=f"{secret.name}/versions/2")
        with pytest.raises(google_exceptions.FailedPrecondition):
            await client.access_secret_version(name=f"{secret.name}/versions/latest")
        with pytest.raises(google_exceptions.NotFound):
            await client.access_secret_version(name=f"projects/{project}/secrets/missing/versions/latest")
    finally:
        await channel.close()


# --- Azure Key Vault -----------------------------------------------------------------------------


class _StaticCredential:
    """The smallest async credential the SDK accepts; the emulator takes any bearer token."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("static-test-token", int(time.time()) + 3600)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> _StaticCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


async def test_azure_key_vault_sdk(azure_service: Service) -> None:
    url, ca_bundle = azure_service.env["AZURE_KEYVAULT_URL"], azure_service.env["AZURE_KEYVAULT_CA_BUNDLE"]
    assert url.startswith("https://")
    async with SecretClient(
        url, _StaticCredential(), verify_challenge_resource=False, connection_verify=ca_bundle
    ) as client:
        first = await client.set_secret("db-password", "one", content_type="text/plain")
        second = await client.set_secret("db-password", "two")
        latest = await client.get_secret("db-password")
        assert latest.value == "two"
        assert latest.properties.version == second.properties.version
        assert latest.properties.vault_url == url
        by_version = await client.get_secret("db-password", first.properties.version)
        assert by_version.value == "one"
        assert by_version.properties.content_type == "text/plain"
        with pytest.raises(ResourceNotFoundError):
            await client.get_secret("missing")


async def test_azure_token_endpoint_serves_azure_identity(azure_service: Service) -> None:
    info, ca_bundle = azure_service.info, azure_service.env["AZURE_KEYVAULT_CA_BUNDLE"]
    credential = ClientSecretCredential(
        info["tenant_id"],
        info["client_id"],
        info["client_secret"],
        authority=info["authority"],
        disable_instance_discovery=True,
        connection_verify=ca_bundle,
    )
    async with (
        credential,
        SecretClient(
            info["url"], credential, verify_challenge_resource=False, connection_verify=ca_bundle
        ) as client,
    ):
        await client.set_secret("via-identity", "ok")
        assert (await client.get_secret("via-identity")).value == "ok"


# --- PostgreSQL ----------------------------------------------------------------------------------


def test_postgres_superuser_can_create_and_drop_a_database(postgres_service: Service) -> None:
    env = postgres_service.env
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (
            True,
        )
        conn.execute("CREATE DATABASE smoke")
    # The libpq-style variables (PGHOST, PGPORT, PGUSER, PGPASSWORD) are enough to connect.
    with psycopg.connect(
        host=env["PGHOST"], port=env["PGPORT"], user=env["PGUSER"], password=env["PGPASSWORD"], dbname="smoke"
    ) as conn:
        conn.execute("create table t (v text)")
        conn.execute("insert into t values ('x')")
        assert conn.execute("select v from t").fetchall() == [("x",)]
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DROP DATABASE smoke")


# --- certificates --------------------------------------------------------------------------------


def test_client_certificates_carry_user_and_groups(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    cert_path, key_path = ca.issue_client_cert(tmp_path, "admin", ["system:masters", "team"])
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
        "system:masters",
        "team",
    ]
    assert cert.issuer == ca.cert.subject
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    # A second make_ca on the same directory reuses the CA instead of replacing it.
    assert make_ca(tmp_path / "ca").cert == ca.cert


# --- stopping ------------------------------------------------------------------------------------


_FIXTURES = ["openbao_service", "moto_service", "gcp_service", "azure_service", "postgres_service"]


@pytest.mark.parametrize("fixture_name", _FIXTURES)
def test_stop_ends_the_process(fixture_name: str, request: pytest.FixtureRequest) -> None:
    service: Service = request.getfixturevalue(fixture_name)
    pids = service.pids
    assert pids
    assert all(pid_alive(pid) for pid in pids)
    data_dir = Path(service.info["data_dir"]).parent if fixture_name == "postgres_service" else None
    service.stop()
    _wait_until(lambda: not any(pid_alive(pid) for pid in pids))
    if data_dir is not None and os.geteuid() == 0:
        assert not data_dir.exists(), "postgres' temporary data directory outlived the server"


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
