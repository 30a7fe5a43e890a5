"""Which cluster configuration the operator picks, and the credentials it sends."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from strongroom.operator.kubeconfig import (
    USER_AGENT,
    KubeConfigError,
    connection_info,
    load_cluster_access,
    replica_user_agent,
)


def _kubeconfig(
    path: Path, *, cluster: dict[str, Any], user: dict[str, Any], namespace: str | None = None
) -> Path:
    context: dict[str, Any] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "ctx",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "ctx", "context": context}],
            }
        )
    )
    return path


@pytest.fixture
def no_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Paths that hold nothing: no service account, no ~/.kube/config."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return {"service_account_dir": tmp_path / "sa", "default_kubeconfig": tmp_path / "home" / "config"}


def test_explicit_kubeconfig_with_token_and_ca_file(tmp_path: Path, no_cluster: dict[str, Path]) -> None:
    (tmp_path / "ca.crt").write_text("CA")
    path = _kubeconfig(
        tmp_path / "kc",
        cluster={"server": "https://10.0.0.1:6443", "certificate-authority": "ca.crt"},
        user={"token": "tok\n"},
        namespace="team-a",
    )
    access = load_cluster_access(str(path), **no_cluster)
    assert access.source == f"kubeconfig {path} (context ctx)"
    info = connection_info(access)
    assert info.server == "https://10.0.0.1:6443"
    # Relative CA paths are relative to the kubeconfig file, as for kubectl.
    assert info.ca_path == str(tmp_path / "ca.crt")
    assert info.token == "tok"
    assert info.insecure is None
    assert info.default_namespace == "team-a"
    assert "tok" not in access.source
    # Every request names the operator (audit logs attribute its requests even under other credentials).
    assert info.as_http_headers() == {"Authorization": "Bearer tok", "User-Agent": USER_AGENT}
    # With leader election, each replica also names itself (the audit log tells replicas apart).
    replica = connection_info(access, replica_user_agent("pod-a_1f2e"))
    assert replica.as_http_headers()["User-Agent"] == f"{USER_AGENT} (pod-a_1f2e)"


def test_insecure_server_with_token(tmp_path: Path, no_cluster: dict[str, Path]) -> None:
    path = _kubeconfig(
        tmp_path / "kc",
        cluster={"server": "https://h:6443", "insecure-skip-tls-verify": True},
        user={"token": "t"},
    )
    info = connection_info(load_cluster_access(str(path), **no_cluster))
    assert info.insecure is True
    assert info.ca_path is None
    assert info.token == "t"


def test_embedded_certificates(tmp_path: Path, no_cluster: dict[str, Path]) -> None:
    data = base64.b64encode(b"PEM").decode()
    path = _kubeconfig(
        tmp_path / "kc",
        cluster={"server": "https://h", "certificate-authority-data": data},
        user={"client-certificate-data": data, "client-key-data": data},
    )
    info = connection_info(load_cluster_access(str(path), **no_cluster))
    assert (info.ca_data, info.certificate_data, info.private_key_data) == (data, data, data)
    assert info.token is None


def test_token_file_is_read_at_every_login(tmp_path: Path, no_cluster: dict[str, Path]) -> None:
    token = tmp_path / "token"
    token.write_text("first")
    path = _kubeconfig(tmp_path / "kc", cluster={"server": "https://h"}, user={"tokenFile": str(token)})
    access = load_cluster_access(str(path), **no_cluster)
    assert connection_info(access).token == "first"
    token.write_text("rotated\n")
    assert connection_info(access).token == "rotated"


def test_first_file_of_a_list_wins(tmp_path: Path, no_cluster: dict[str, Path]) -> None:
    first = _kubeconfig(tmp_path / "a", cluster={"server": "https://a"}, user={"token": "a"})
    second = _kubeconfig(tmp_path / "b", cluster={"server": "https://b"}, user={"token": "b"})
    info = connection_info(load_cluster_access(f"{first}:{second}", **no_cluster))
    assert info.server == "https://a"


def test_in_cluster_service_account(
    tmp_path: Path, no_cluster: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    sa = no_cluster["service_account_dir"]
    sa.mkdir()
    (sa / "token").write_text("sa-token")
    (sa / "namespace").write_text("strongroom-system")
    (sa / "ca.crt").write_text("CA")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    # A ~/.kube/config must not win over the pod's own identity.
    _kubeconfig(tmp_path / "home-config", cluster={"server": "https://elsewhere"}, user={})
    access = load_cluster_access(None, service_account_dir=sa, default_kubeconfig=tmp_path / "home-config")
    assert access.source == "in-cluster service account"
    info = connection_info(access)
    assert info.server == "https://10.96.0.1:443"
    assert info.token == "sa-token"
    assert info.ca_path == str(sa / "ca.crt")
    assert info.default_namespace == "strongroom-system"


def test_default_kubeconfig_is_the_last_resort(tmp_path: Path, no_cluster: dict[str, Path]) -> None:
    home = no_cluster["default_kubeconfig"]
    home.parent.mkdir()
    _kubeconfig(home, cluster={"server": "https://home"}, user={"token": "x"})
    assert connection_info(load_cluster_access(None, **no_cluster)).server == "https://home"


def test_nothing_found_is_a_readable_error(no_cluster: dict[str, Path]) -> None:
    with pytest.raises(KubeConfigError, match="no cluster configuration"):
        load_cluster_access(None, **no_cluster)


def test_missing_or_broken_files_are_readable_errors(tmp_path: Path, no_cluster: dict[str, Path]) -> None:
    with pytest.raises(KubeConfigError, match="not found"):
        load_cluster_access(str(tmp_path / "absent"), **no_cluster)
    broken = tmp_path / "broken"
    broken.write_text(yaml.safe_dump({"current-context": "nope", "clusters": [], "contexts": []}))
    with pytest.raises(KubeConfigError, match="nope"):
        load_cluster_access(str(broken), **no_cluster)


def test_exec_plugins_are_refused_up_front(tmp_path: Path, no_cluster: dict[str, Path]) -> None:
    path = _kubeconfig(
        tmp_path / "kc",
        cluster={"server": "https://h"},
        user={"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws"}},
    )
    with pytest.raises(KubeConfigError, match="exec credential plugin"):
        connection_info(load_cluster_access(str(path), **no_cluster))
