"""How the operator finds and authenticates to the API server.

One parse (lightkube's kubeconfig model) feeds every client: lightkube's and the transport's TLS get the
`SingleConfig`, the direct JSON requests and watches (net/kubejson.py) the headers of a `ConnectionInfo`
read from it. Two independent loaders could disagree about which cluster or user is meant.

Order, as for other controllers: `--kubeconfig` (or KUBECONFIG), then the in-cluster service
account, then ~/.kube/config.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.core.exceptions import ConfigError

from strongroom import __version__

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = Path("~/.kube/config")
# Every request of the operator says who sent it, so the API server's audit log
# attributes it even when the operator runs with someone else's credentials (tests, a laptop).
USER_AGENT = f"strongroom-operator/{__version__}"


def replica_user_agent(identity: str) -> str:
    """`USER_AGENT` naming one replica (its leader-election identity): the audit log tells replicas apart."""
    return f"{USER_AGENT} ({identity})"


class KubeConfigError(ValueError):
    """No usable cluster configuration (the CLI turns ValueError into one readable line)."""


@dataclass(frozen=True, kw_only=True)
class ConnectionInfo:
    """Where the API server is and who the operator is to it, as read from the configuration just now."""

    server: str
    ca_path: str | None = None
    ca_data: str | None = None
    insecure: bool | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None
    certificate_path: str | None = None
    certificate_data: str | None = None
    private_key_path: str | None = None
    private_key_data: str | None = None
    default_namespace: str | None = None
    user_agent: str = USER_AGENT

    def as_http_headers(self) -> dict[str, str]:
        """Authorization (a bearer token, else basic credentials; client certificates are TLS's) and the
        User-Agent that names the operator in the audit log."""
        headers = {"User-Agent": self.user_agent}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        elif self.username and self.password:
            basic = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {basic}"
        return headers


@dataclass(frozen=True)
class ClusterAccess:
    config: SingleConfig
    # For the startup log line: which file/context or "in-cluster"; never credentials.
    source: str


def _first_path(value: str) -> Path:
    # KUBECONFIG may list several files; merging them is kubectl's business. An operator gets one
    # file, so the first entry wins (documented in docs/operator.md).
    parts = [p for p in value.split(os.pathsep) if p.strip()]
    if not parts:
        raise KubeConfigError("the kubeconfig path is empty")
    return Path(parts[0].strip()).expanduser()


def load_cluster_access(
    kubeconfig: str | None,
    *,
    service_account_dir: Path = SERVICE_ACCOUNT_DIR,
    default_kubeconfig: Path = DEFAULT_KUBECONFIG,
) -> ClusterAccess:
    """Resolve the cluster, user and namespace to use; raises KubeConfigError if there is none."""
    try:
        if kubeconfig:
            path = _first_path(kubeconfig)
            single = KubeConfig.from_file(path).get()
            assert single is not None  # get() without a default raises instead of returning None
            return ClusterAccess(single, f"kubeconfig {path} (context {single.context_name})")
        if (service_account_dir / "token").exists() and os.environ.get("KUBERNETES_SERVICE_HOST"):
            single = KubeConfig.from_service_account(service_account_dir).get()
            assert single is not None
            return ClusterAccess(single, "in-cluster service account")
        path = default_kubeconfig.expanduser()
        if path.is_file():
            single = KubeConfig.from_file(path).get()
            assert single is not None
            return ClusterAccess(single, f"kubeconfig {path} (context {single.context_name})")
    except ConfigError as exc:
        raise KubeConfigError(f"cannot load the cluster configuration: {exc}") from None
    except (KeyError, TypeError) as exc:
        # lightkube indexes contexts/clusters/users directly: a dangling name surfaces as KeyError.
        raise KubeConfigError(f"cannot load the cluster configuration: missing entry {exc}") from None
    raise KubeConfigError(
        "no cluster configuration: pass --kubeconfig or set KUBECONFIG, or run in a pod with a "
        "service account token"
    )


def connection_info(access: ClusterAccess, user_agent: str = USER_AGENT) -> ConnectionInfo:
    """Read the credentials of `access` now: token files are read again (they rotate in pods)."""
    single = access.config
    cluster = single.cluster
    user = single.user
    token: str | None = None
    username = password = None
    cert_path = cert_data = key_path = key_data = None
    if user is not None:
        if user.exec is not None:
            # Credential plugins are not run (a child process per token); failing loudly beats an
            # anonymous 401 loop.
            raise KubeConfigError(
                "kubeconfig users with an exec credential plugin are not supported by the operator; "
                "use a token, a client certificate or a service account"
            )
        if user.token_file:
            token = Path(single.abs_file(user.token_file)).read_text(encoding="utf-8").strip()
        elif user.token:
            token = user.token.strip()
        elif user.auth_provider:
            token = (user.auth_provider.get("config") or {}).get("access-token")
        username, password = user.username, user.password
        if user.client_cert:
            cert_path = str(single.abs_file(user.client_cert))
        cert_data = user.client_cert_data
        if user.client_key:
            key_path = str(single.abs_file(user.client_key))
        key_data = user.client_key_data
    return ConnectionInfo(
        server=cluster.server,
        ca_path=str(single.abs_file(cluster.certificate_auth)) if cluster.certificate_auth else None,
        ca_data=cluster.certificate_auth_data,
        insecure=cluster.insecure or None,
        token=token or None,
        username=username,
        password=password,
        certificate_path=cert_path,
        certificate_data=cert_data,
        private_key_path=key_path,
        private_key_data=key_data,
        default_namespace=single.context.namespace,
        user_agent=user_agent,
    )
