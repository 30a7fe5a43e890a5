"""The registry builds each backend from a SecretStore without calling the store, and enforces tenancy."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from strongroom.api.secretstore import BACKENDS as API_BACKENDS
from strongroom.api.secretstore import SecretStore
from strongroom.stores import azurekv
from strongroom.stores.awssm import AWSSecretsManagerStore
from strongroom.stores.azurekv import AzureKeyVaultStore
from strongroom.stores.base import InvalidStoreConfig, SecretValue, StoreClient
from strongroom.stores.credentials import CredentialSource, KubernetesCredentialSource
from strongroom.stores.gcpsm import GCPSecretManagerStore
from strongroom.stores.registry import BACKENDS, build_store_client
from strongroom.stores.vault import VaultStore

OPERATOR_NS = "strongroom-system"
CLIENT_ID = "5b1c3a57-0d6e-4d0f-9a65-3f3f0c1c2b7a"


class Creds:
    def __init__(self, values: dict[tuple[str, str], str] | None = None) -> None:
        self.values = values or {}
        self.asked: list[tuple[str, str]] = []

    async def secret_key(self, name: str, key: str) -> SecretValue:
        self.asked.append((name, key))
        return SecretValue(self.values[(name, key)])

    async def service_account_token(self, service_account: str | None, audience: str | None) -> str:
        raise AssertionError("no token expected while building a client")


def store(spec: dict[str, Any], namespace: str = OPERATOR_NS) -> SecretStore:
    return SecretStore.model_validate(
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "SecretStore",
            "metadata": {"name": "s", "namespace": namespace},
            "spec": spec,
        }
    )


async def build(
    spec: dict[str, Any], creds: Creds | None = None, namespace: str = OPERATOR_NS
) -> StoreClient:
    return await build_store_client(store(spec, namespace), creds or Creds(), operator_namespace=OPERATOR_NS)


def test_every_api_backend_has_a_factory() -> None:
    assert set(BACKENDS) == set(API_BACKENDS)


def test_credential_sources_satisfy_the_protocol() -> None:
    assert isinstance(Creds(), CredentialSource)
    assert issubclass(KubernetesCredentialSource, object)
    source: CredentialSource = KubernetesCredentialSource(client=None, namespace="ns")  # type: ignore[arg-type]
    assert isinstance(source, CredentialSource)


VAULT = {"url": "http://127.0.0.1:1", "path": "secret", "auth": {"tokenSecretRef": {"name": "v", "key": "t"}}}
AWS_KEYS = {
    "accessKeyIDSecretRef": {"name": "aws", "key": "id"},
    "secretAccessKeySecretRef": {"name": "aws", "key": "secret"},
}


async def test_builds_each_backend_without_network() -> None:
    vault_client = await build({"vault": VAULT})
    assert isinstance(vault_client, VaultStore)
    assert isinstance(vault_client, StoreClient)
    await vault_client.close()

    creds = Creds({("aws", "id"): "AKIAEXAMPLE", ("aws", "secret"): "secret"})
    aws = await build({"awssm": {"region": "eu-central-1", "auth": AWS_KEYS}}, creds)
    assert isinstance(aws, AWSSecretsManagerStore)
    assert creds.asked == [("aws", "id"), ("aws", "secret")]
    await aws.close()

    gcp = await build({"gcpsm": {"projectID": "my-project", "endpoint": "http://127.0.0.1:1"}})
    assert isinstance(gcp, GCPSecretManagerStore)
    await gcp.close()

    azure_creds = Creds({("az", "secret"): "client-secret"})
    azure_spec = {
        "url": "https://x.vault.azure.net/",
        "tenantID": "contoso.onmicrosoft.com",
        "auth": {"clientID": CLIENT_ID, "clientSecretSecretRef": {"name": "az", "key": "secret"}},
    }
    azure = await build({"azurekv": azure_spec}, azure_creds)
    assert isinstance(azure, AzureKeyVaultStore)
    await azure.close()


async def test_kubernetes_backend_needs_the_operator_client() -> None:
    with pytest.raises(InvalidStoreConfig, match="no Kubernetes client"):
        await build({"kubernetes": {"namespace": OPERATOR_NS}})


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"vault": {**VAULT, "auth": {"kubernetes": {"role": "r"}}}}, "Vault Kubernetes auth"),
        ({"awssm": {"region": "eu-central-1"}}, "AWS identity"),
        (
            {"awssm": {"region": "eu-central-1", "role": "arn:aws:iam::123456789012:role/r"}},
            "AWS identity",
        ),
        ({"gcpsm": {"projectID": "my-project"}}, "Google identity"),
        ({"azurekv": {"url": "https://x.vault.azure.net/", "tenantID": "t"}}, "Azure identity"),
        ({"kubernetes": {"namespace": "kube-system"}}, "another namespace"),
        (
            {
                "vault": {
                    **VAULT,
                    "auth": {
                        "kubernetes": {
                            "role": "r",
                            "serviceAccountRef": {"name": "app"},
                            "audience": "https://kubernetes.default.svc",
                        }
                    },
                }
            },
            "audience other than 'vault'",
        ),
    ],
)
async def test_operator_identity_only_for_operator_namespace_stores(spec: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidStoreConfig, match=match) as raised:
        await build(spec, namespace="team-a")
    assert "operator namespace 'strongroom-system'" in str(raised.value)


async def test_vault_kubernetes_auth_with_own_service_account_is_fine_anywhere() -> None:
    spec = {
        "vault": {
            **VAULT,
            "insecureHTTP": True,
            "auth": {"kubernetes": {"role": "r", "serviceAccountRef": {"name": "app"}}},
        }
    }
    client = await build(spec, namespace="team-a")
    await client.close()


def test_azure_ca_file_keeps_system_roots(tmp_path: Path) -> None:
    ca = trustme.CA()
    pem = ca.cert_pem.bytes().decode()
    path = azurekv.ca_file(pem, tmp_path)
    try:
        text = path.read_text()
        assert text.startswith(pem.strip())
        context = ssl.create_default_context(cafile=str(path))
        system = ssl.get_default_verify_paths().cafile
        if system and Path(system).is_file():
            assert len(context.get_ca_certs()) > 1
    finally:
        path.unlink()


async def test_azure_ca_file_is_removed_on_close(tmp_path: Path) -> None:
    ca = trustme.CA()
    spec = {
        "url": "https://127.0.0.1:8443",
        "tenantID": "t",
        "endpoint": "https://127.0.0.1:8443",
        "caBundle": ca.cert_pem.bytes().decode(),
        "auth": {"clientID": CLIENT_ID, "clientSecretSecretRef": {"name": "az", "key": "secret"}},
    }
    client = await build({"azurekv": spec}, Creds({("az", "secret"): "x"}))
    assert isinstance(client, AzureKeyVaultStore)
    ca_path = client._ca_path
    assert ca_path is not None
    assert ca_path.exists()
    await client.close()
    assert not ca_path.exists()


async def test_the_operators_identity_is_unknown_without_its_service_account() -> None:
    source = KubernetesCredentialSource(client=None, namespace="ns")  # type: ignore[arg-type]
    with pytest.raises(InvalidStoreConfig, match="--service-account"):
        await source.service_account_token(None, "vault")


def test_every_lazily_named_backend_imports() -> None:
    from strongroom.stores.registry import backend_factory

    for name in BACKENDS:
        assert callable(backend_factory(name)), name
