"""Vault logins never send a service account JWT or an AppRole secret_id over plain HTTP unless opted in."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.api.secretstore import SecretStore
from strongroom.reconcile.stores import insecure_transport
from strongroom.stores.base import InsecureTransport
from strongroom.stores.vault import refuse_insecure_login

K8S = {"kubernetes": {"role": "r", "serviceAccountRef": {"name": "sa"}}}
APPROLE = {"appRole": {"roleId": "id", "secretRef": {"name": "s", "key": "k"}}}
TOKEN = {"tokenSecretRef": {"name": "s", "key": "k"}}


def store(url: str, auth: dict[str, Any], **extra: Any) -> SecretStore:
    return SecretStore.model_validate(
        {
            "metadata": {"name": "v", "namespace": "ns"},
            "spec": {"vault": {"url": url, "path": "secret", "auth": auth, **extra}},
        }
    )


@pytest.mark.parametrize("auth", [K8S, APPROLE])
def test_login_credentials_over_http_are_refused(auth: dict[str, Any]) -> None:
    spec = store("http://bao:8200", auth).spec.vault
    assert spec is not None
    with pytest.raises(InsecureTransport, match="insecureHTTP") as raised:
        refuse_insecure_login(spec, "ns/v")
    assert raised.value.reason == "InsecureTransport"
    assert not raised.value.retryable


@pytest.mark.parametrize(
    ("url", "auth", "extra"),
    [
        ("https://bao:8200", K8S, {}),
        ("https://bao:8200", APPROLE, {}),
        ("http://bao:8200", TOKEN, {}),
        ("http://bao:8200", K8S, {"insecureHTTP": True}),
    ],
)
def test_allowed_logins(url: str, auth: dict[str, Any], extra: dict[str, Any]) -> None:
    spec = store(url, auth, **extra).spec.vault
    assert spec is not None
    refuse_insecure_login(spec, "ns/v")


def test_the_token_audience_defaults_to_vault() -> None:
    spec = store("https://bao", K8S).spec.vault
    assert spec is not None
    assert spec.auth.kubernetes is not None
    assert spec.auth.kubernetes.audience == "vault"


def test_plain_http_is_a_warning_condition() -> None:
    assert insecure_transport(store("https://bao", TOKEN)) is None
    warning = insecure_transport(store("http://bao:8200", TOKEN))
    assert warning is not None
    assert "unencrypted" in warning
    opted_in = insecure_transport(store("http://bao:8200", K8S, insecureHTTP=True))
    assert opted_in is not None
    assert "login credential" in opted_in
