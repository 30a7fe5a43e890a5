"""The five store backends against real servers: OpenBao, moto, the GCP and Azure emulators, kube-apiserver.

Each backend: write -> read latest, pinned version, property, missing secret, wrong credentials, a
stopped server, `check()`. Servers for the failure cases (stopped, auth-enforcing) are separate
instances, so the shared ones stay usable for the other tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lightkube import AsyncClient, KubeConfig

from strongroom.api.secretstore import SecretStore
from strongroom.stores import azurekv, kubernetes
from strongroom.stores import gcpsm as gcpsm_store
from strongroom.stores.base import (
    AuthenticationFailed,
    InsecureTransport,
    InvalidReference,
    InvalidStoreConfig,
    PermissionDenied,
    PropertyNotFound,
    SecretNotFound,
    SecretRef,
    SecretValue,
    StoreCapabilities,
    StoreClient,
    StoreUnavailable,
    VersionNotFound,
)
from strongroom.stores.credentials import KubernetesCredentialSource
from strongroom.stores.registry import build_store_client
from testenv.service import Service
from testenv.stores import azure, gcp, moto, openbao
from tests.conftest import Cluster

pytestmark = pytest.mark.integration

OPERATOR_NS = "strongroom-system"
# Azure client ids are UUIDs (the SecretStore schema insists); the emulator's default is not one.
FAST = 2.0  # seconds per store call where a failure is expected


class DictCredentials:
    """A `CredentialSource` over a dict: the Kubernetes one is tested on its own further down."""

    def __init__(self, values: dict[tuple[str, str], str] | None = None) -> None:
        self.values = dict(values or {})

    async def secret_key(self, name: str, key: str) -> SecretValue:
        if (name, key) not in self.values:
            raise InvalidStoreConfig(f"key {key!r} of Secret {name!r} does not exist")
        return SecretValue(self.values[(name, key)])

    async def service_account_token(self, service_account: str | None, audience: str | None) -> str:
        raise InvalidStoreConfig("no service account tokens here")


def secret_store(spec: dict[str, Any], namespace: str = OPERATOR_NS, name: str = "store") -> SecretStore:
    return SecretStore.model_validate(
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "SecretStore",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


@contextlib.asynccontextmanager
async def client_for(
    spec: dict[str, Any],
    credentials: Any = None,
    *,
    namespace: str = OPERATOR_NS,
    kube_client: AsyncClient | None = None,
    call_timeout: float = 10.0,
) -> AsyncIterator[StoreClient]:
    client = await build_store_client(
        secret_store(spec, namespace),
        credentials if credentials is not None else DictCredentials(),
        operator_namespace=OPERATOR_NS,
        kube_client=kube_client,
        call_timeout=call_timeout,
    )
    try:
        yield client
    finally:
        await client.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def started(module: Any, workdir: Path, **env: str) -> Iterator[Service]:
    """A separate server instance (its process sees `env` in addition to ours)."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        service: Service = module.start(workdir)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stores")


@pytest.fixture(scope="module")
def bao(workdir: Path) -> Iterator[dict[str, Any]]:
    with started(openbao, workdir / "openbao") as service:
        yield service.info


@pytest.fixture(scope="module")
def aws(workdir: Path) -> Iterator[dict[str, Any]]:
    with started(moto, workdir / "moto") as service:
        yield service.info


@pytest.fixture(scope="module")
def gcpsm(workdir: Path) -> Iterator[dict[str, Any]]:
    with started(gcp, workdir / "gcp") as service:
        yield service.info


@pytest.fixture(scope="module")
def akv(workdir: Path) -> Iterator[dict[str, Any]]:
    with started(azure, workdir / "azure") as service:
        yield service.info


async def assert_stores_and_versions(client: StoreClient, key: str) -> None:
    """The common part: write twice, read latest and the first version, property, missing things."""
    first = await client.write(key, SecretValue(json.dumps({"user": "app", "password": "one"})))
    second = await client.write(key, SecretValue(json.dumps({"user": "app", "password": "two"})))
    assert first.key == second.key
    assert first.version is not None
    assert second.version is not None
    assert first.version != second.version
    latest = await client.read(SecretRef(first.key))
    assert json.loads(latest.reveal()) == {"user": "app", "password": "two"}
    pinned = await client.read(SecretRef(first.key, version=first.version))
    assert json.loads(pinned.reveal())["password"] == "one"
    with pytest.raises(SecretNotFound):
        await client.read(SecretRef(unique("missing")))


# --- Vault / OpenBao --------------------------------------------------------------------------------------


class Bao:
    """Admin calls with the root token (setting up mounts, policies, roles)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.addr = info["addr"]
        self.token = info["root_token"]

    def call(self, method: str, path: str, body: object = None, namespace: str | None = None) -> Any:
        headers = {"X-Vault-Token": self.token}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        response = httpx.request(method, f"{self.addr}/v1/{path}", json=body, headers=headers)
        assert response.status_code < 400, (path, response.status_code, response.text)
        return response.json() if response.content else None

    def token_for(self, policy: str, rules: str) -> str:
        self.call("PUT", f"sys/policies/acl/{policy}", {"policy": rules})
        created = self.call("POST", "auth/token/create", {"policies": [policy], "ttl": "1h"})
        return str(created["auth"]["client_token"])

    def enable(self, path: str, kind: str, options: dict[str, str] | None = None) -> None:
        mounts = self.call("GET", "sys/mounts" if kind == "kv" else "sys/auth")
        if f"{path}/" not in (mounts.get("data") or mounts):
            target = f"sys/mounts/{path}" if kind == "kv" else f"sys/auth/{path}"
            self.call("POST", target, {"type": kind, "options": options or {}})


def vault_spec(info: dict[str, Any], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "url": info["addr"],
        "path": "secret",
        "auth": {"tokenSecretRef": {"name": "vault", "key": "token"}},
    }
    spec.update(extra)
    return {"vault": spec}


def token_creds(token: str) -> DictCredentials:
    return DictCredentials({("vault", "token"): token})


async def test_vault_kv2_write_read_versions_and_delete(bao: dict[str, Any]) -> None:
    async with client_for(vault_spec(bao), token_creds(bao["root_token"])) as client:
        assert await client.check() == StoreCapabilities(read=True, write=True)
        key = unique("apps/web/db")
        await assert_stores_and_versions(client, key)
        with pytest.raises(VersionNotFound):
            await client.read(SecretRef(key, version="99"))
        with pytest.raises(InvalidReference):
            await client.read(SecretRef(key, version="latest"))
        # The API path form names the same secret.
        same = await client.read(SecretRef(f"secret/data/{key}"))
        assert json.loads(same.reveal())["password"] == "two"
        await client.delete(key)
        await client.delete(key)  # deleting a missing secret succeeds
        with pytest.raises(SecretNotFound):
            await client.read(SecretRef(key))
        with pytest.raises(InvalidReference):
            await client.read(SecretRef("../../sys/mounts"))


async def test_vault_property_selects_kv_fields(bao: dict[str, Any]) -> None:
    admin = Bao(bao)
    key = unique("fields")
    admin.call(
        "POST", f"secret/data/{key}", {"data": {"username": "u", "password": "p", "tls": {"crt": "C"}}}
    )
    async with client_for(vault_spec(bao), token_creds(bao["root_token"])) as client:
        assert (await client.read(SecretRef(key, property="password"))).reveal() == b"p"
        assert (await client.read(SecretRef(key, property="tls.crt"))).reveal() == b"C"
        whole = json.loads((await client.read(SecretRef(key))).reveal())
        assert whole == {"password": "p", "tls": {"crt": "C"}, "username": "u"}
        with pytest.raises(PropertyNotFound):
            await client.read(SecretRef(key, property="nope"))


async def test_vault_kv1_has_no_versions(bao: dict[str, Any]) -> None:
    Bao(bao).enable("kv1", "kv", {"version": "1"})
    spec = vault_spec(bao, path="kv1", version="v1")
    async with client_for(spec, token_creds(bao["root_token"])) as client:
        written = await client.write("team/api", SecretValue("s3cr3t"))
        assert written.version is None
        assert (await client.read(SecretRef("team/api"))).reveal() == b"s3cr3t"
        with pytest.raises(InvalidReference, match="KV v1"):
            await client.read(SecretRef("team/api", version="1"))
        await client.delete("team/api")
        with pytest.raises(SecretNotFound):
            await client.read(SecretRef("team/api"))


async def test_vault_wrong_token_is_authentication_failed(bao: dict[str, Any]) -> None:
    async with client_for(vault_spec(bao), token_creds("hvs.not-a-token")) as client:
        with pytest.raises(AuthenticationFailed) as raised:
            await client.read(SecretRef("anything"))
        assert "not-a-token" not in str(raised.value)
        with pytest.raises(AuthenticationFailed):
            await client.check()


async def test_vault_policy_denial_is_permission_denied(bao: dict[str, Any]) -> None:
    admin = Bao(bao)
    admin.call("POST", "secret/data/allowed/one", {"data": {"value": "yes"}})
    admin.call("POST", "secret/data/other/one", {"data": {"value": "no"}})
    token = admin.token_for("allowed-only", 'path "secret/data/allowed/*" { capabilities = ["read"] }')
    async with client_for(vault_spec(bao), token_creds(token)) as client:
        assert (await client.read(SecretRef("allowed/one"))).reveal() == b"yes"
        with pytest.raises(PermissionDenied):
            await client.read(SecretRef("other/one"))
        with pytest.raises(PermissionDenied):
            await client.write("allowed/new", SecretValue("x"))
        # Capabilities describe the mount root, which this policy does not cover.
        assert await client.check() == StoreCapabilities(read=False, write=False)
    writer = admin.token_for("writer", 'path "secret/data/*" { capabilities = ["read", "create", "update"] }')
    async with client_for(vault_spec(bao), token_creds(writer)) as client:
        assert await client.check() == StoreCapabilities(read=True, write=True)


async def test_vault_token_is_reread_after_rotation(bao: dict[str, Any]) -> None:
    admin = Bao(bao)
    admin.call("POST", "secret/data/rotation", {"data": {"value": "v"}})
    rules = 'path "secret/data/*" { capabilities = ["read"] }'
    old = admin.token_for("reader", rules)
    creds = token_creds(old)
    async with client_for(vault_spec(bao), creds) as client:
        assert (await client.read(SecretRef("rotation"))).reveal() == b"v"
        admin.call("POST", "auth/token/revoke", {"token": old})
        creds.values[("vault", "token")] = admin.token_for("reader", rules)  # someone patched the Secret
        assert (await client.read(SecretRef("rotation"))).reveal() == b"v"


async def test_vault_approle_login_and_renewal(bao: dict[str, Any]) -> None:
    admin = Bao(bao)
    admin.enable("approle", "approle")
    admin.call("PUT", "sys/policies/acl/app", {"policy": 'path "secret/data/*" { capabilities = ["read"] }'})
    # A 2 s token: the client must log in again by itself before it runs out.
    admin.call(
        "POST", "auth/approle/role/app", {"token_policies": ["app"], "token_ttl": "2s", "token_max_ttl": "2s"}
    )
    role_id = admin.call("GET", "auth/approle/role/app/role-id")["data"]["role_id"]
    secret_id = admin.call("POST", "auth/approle/role/app/secret-id")["data"]["secret_id"]
    admin.call("POST", "secret/data/approle-test", {"data": {"value": "ok"}})
    spec = vault_spec(
        bao,
        auth={"appRole": {"roleId": role_id, "secretRef": {"name": "approle", "key": "id"}}},
        insecureHTTP=True,  # the test server speaks plain HTTP
    )
    async with client_for(spec, DictCredentials({("approle", "id"): secret_id})) as client:
        assert (await client.read(SecretRef("approle-test"))).reveal() == b"ok"
        await asyncio.sleep(2.5)
        assert (await client.read(SecretRef("approle-test"))).reveal() == b"ok"
        assert (await client.check()).read
    async with client_for(spec, DictCredentials({("approle", "id"): "wrong-secret-id"})) as client:
        with pytest.raises(AuthenticationFailed) as raised:
            await client.read(SecretRef("approle-test"))
        assert "wrong-secret-id" not in str(raised.value)


async def test_vault_namespace_header(bao: dict[str, Any]) -> None:
    admin = Bao(bao)
    admin.call("POST", "sys/namespaces/team-a", {})
    admin.call("POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "2"}}, namespace="team-a")
    spec = vault_spec(bao, path="kv", namespace="team-a")
    async with client_for(spec, token_creds(bao["root_token"])) as client:
        written = await client.write("in-namespace", SecretValue("ns-value"))
        assert written.version == "1"
        assert (await client.read(SecretRef("in-namespace"))).reveal() == b"ns-value"
    # Not visible outside the namespace (there is no `kv` mount at the root).
    async with client_for(vault_spec(bao, path="kv"), token_creds(bao["root_token"])) as client:
        with pytest.raises((InvalidStoreConfig, SecretNotFound)):
            await client.read(SecretRef("in-namespace"))


async def test_vault_wrong_mount_is_invalid_config(bao: dict[str, Any]) -> None:
    async with client_for(vault_spec(bao, path="no-such-mount"), token_creds(bao["root_token"])) as client:
        with pytest.raises(InvalidStoreConfig, match="no secrets engine"):
            await client.check()
        with pytest.raises(InvalidStoreConfig, match="no secrets engine"):
            await client.read(SecretRef("x"))


async def test_vault_stopped_server_is_unavailable(workdir: Path) -> None:
    with started(openbao, workdir / "openbao-stopped") as service:
        info = service.info
    async with client_for(vault_spec(info), token_creds(info["root_token"]), call_timeout=FAST) as client:
        with pytest.raises(StoreUnavailable):
            await client.read(SecretRef("anything"))
        with pytest.raises(StoreUnavailable):
            await client.check()


def cluster_ca(cluster: Cluster) -> str:
    return Path(cluster.info["ca"]).read_text()


async def test_vault_kubernetes_auth_against_the_apiserver(bao: dict[str, Any], cluster: Cluster) -> None:
    ns = unique("vault-k8s")
    cluster.kubectl_run("create", "namespace", ns)
    cluster.kubectl_run("-n", ns, "create", "serviceaccount", "reviewer")
    cluster.kubectl_run("-n", ns, "create", "serviceaccount", "app-reader")
    cluster.kubectl_run(
        "create", "clusterrolebinding", f"{ns}-reviewer", "--clusterrole=system:auth-delegator",
        f"--serviceaccount={ns}:reviewer",
    )  # fmt: skip
    reviewer_jwt = cluster.kubectl_run(
        "-n", ns, "create", "token", "reviewer", "--duration=1h"
    ).stdout.strip()

    admin = Bao(bao)
    admin.enable("kubernetes", "kubernetes")
    admin.call(
        "POST",
        "auth/kubernetes/config",
        {
            "kubernetes_host": cluster.server,
            "kubernetes_ca_cert": cluster_ca(cluster),
            "token_reviewer_jwt": reviewer_jwt,
            "disable_local_ca_jwt": True,
        },
    )
    admin.call(
        "PUT", "sys/policies/acl/k8s-reader", {"policy": 'path "secret/data/*" { capabilities = ["read"] }'}
    )
    admin.call(
        "POST",
        f"auth/kubernetes/role/{ns}",
        {
            "bound_service_account_names": ["app-reader"],
            "bound_service_account_namespaces": [ns],
            "token_policies": ["k8s-reader"],
            "token_ttl": "1h",
            # OpenBao asks the TokenReview for this audience: a token minted for the API server (or
            # for any other audience) is refused, so this login proves the operator sent `vault`.
            "audience": "vault",
        },
    )
    admin.call("POST", "secret/data/k8s-auth", {"data": {"value": "via-kubernetes"}})

    kube = AsyncClient(KubeConfig.from_file(cluster.kubeconfig))
    try:
        creds = KubernetesCredentialSource(kube, ns)
        auth = {"kubernetes": {"role": ns, "serviceAccountRef": {"name": "app-reader"}}}
        # Over plain HTTP the JWT is refused unless the store opts in.
        with pytest.raises(InsecureTransport, match="insecureHTTP"):
            async with client_for(vault_spec(bao, auth=auth), creds, namespace=ns):
                pass
        async with client_for(vault_spec(bao, auth=auth, insecureHTTP=True), creds, namespace=ns) as client:
            assert (await client.read(SecretRef("k8s-auth"))).reveal() == b"via-kubernetes"
            assert (await client.check()).read
        # A service account the role is not bound to.
        wrong = {"kubernetes": {"role": ns, "serviceAccountRef": {"name": "reviewer"}}}
        async with client_for(vault_spec(bao, auth=wrong, insecureHTTP=True), creds, namespace=ns) as client:
            with pytest.raises(AuthenticationFailed):
                await client.read(SecretRef("k8s-auth"))
        # Another audience is refused before any token is minted: outside the operator namespace only
        # `vault` may be asked for (a tenant could otherwise ask for the API server's own audience).
        other = {"kubernetes": {"role": ns, "serviceAccountRef": {"name": "app-reader"}, "audience": "other"}}
        with pytest.raises(InvalidStoreConfig, match="audience other than 'vault'"):
            async with client_for(vault_spec(bao, auth=other, insecureHTTP=True), creds, namespace=ns):
                pass
        # A service account that does not exist: the store's config is wrong, not the store.
        missing = {"kubernetes": {"role": ns, "serviceAccountRef": {"name": "nobody"}}}
        async with client_for(
            vault_spec(bao, auth=missing, insecureHTTP=True), creds, namespace=ns
        ) as client:
            with pytest.raises(InvalidStoreConfig, match="nobody"):
                await client.read(SecretRef("k8s-auth"))
        # The operator's own account is for stores in the operator namespace only.
        own = vault_spec(bao, auth={"kubernetes": {"role": ns}}, insecureHTTP=True)
        with pytest.raises(InvalidStoreConfig, match="operator namespace"):
            async with client_for(own, creds, namespace=ns):
                pass
    finally:
        await kube.close()


# --- AWS Secrets Manager ----------------------------------------------------------------------------------


def aws_spec(info: dict[str, Any], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "region": info["region"],
        "endpoint": info["endpoint"],
        "auth": {
            "accessKeyIDSecretRef": {"name": "aws", "key": "id"},
            "secretAccessKeySecretRef": {"name": "aws", "key": "secret"},
        },
    }
    spec.update(extra)
    return {"awssm": spec}


AWS_KEYS = DictCredentials({("aws", "id"): moto.ACCESS_KEY_ID, ("aws", "secret"): moto.SECRET_ACCESS_KEY})


async def test_aws_write_read_versions_labels_and_delete(aws: dict[str, Any]) -> None:
    async with client_for(aws_spec(aws), AWS_KEYS) as client:
        assert await client.check() == StoreCapabilities(read=True, write=True)
        key = unique("apps/web/db")
        await assert_stores_and_versions(client, key)
        previous = await client.read(SecretRef(key, version="AWSPREVIOUS", property="password"))
        assert previous.reveal() == b"one"
        assert (
            await client.read(SecretRef(key, version="AWSCURRENT", property="password"))
        ).reveal() == b"two"
        with pytest.raises(VersionNotFound):
            await client.read(SecretRef(key, version="no-such-label"))
        with pytest.raises(VersionNotFound):
            await client.read(SecretRef(key, version=str(uuid.uuid4())))
        with pytest.raises(PropertyNotFound):
            await client.read(SecretRef(key, property="nope"))
        # Deleted with a recovery window; writing again restores it.
        await client.delete(key)
        await client.delete(key)
        with pytest.raises(SecretNotFound):
            await client.read(SecretRef(key))
        back = await client.write(key, SecretValue("three"))
        assert (await client.read(SecretRef(key, version=back.version))).reveal() == b"three"


async def test_aws_binary_values_and_key_mapping(aws: dict[str, Any]) -> None:
    async with client_for(aws_spec(aws), AWS_KEYS) as client:
        raw = bytes(range(256))
        written = await client.write("bin-ary/key", SecretValue(raw))
        assert written.key == "bin-ary/key"
        assert (await client.read(SecretRef(written.key))).reveal() == raw
        # A key AWS cannot hold is refused, never mapped onto another name.
        with pytest.raises(InvalidReference):
            await client.write("bin ary/key", SecretValue(raw))
        with pytest.raises(InvalidReference):
            await client.read(SecretRef("bin ary/key"))


async def test_aws_assume_role(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # moto answers STS too; botocore reads this variable when the STS client is created.
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", aws["endpoint"])
    spec = aws_spec(aws, role="arn:aws:iam::123456789012:role/strongroom-reader")
    async with client_for(spec, AWS_KEYS) as client:
        written = await client.write(unique("assumed"), SecretValue("via-role"))
        assert (await client.read(SecretRef(written.key))).reveal() == b"via-role"


async def test_aws_wrong_credentials_is_authentication_failed(workdir: Path) -> None:
    # This moto checks signatures against its IAM users: made-up keys are refused.
    with started(moto, workdir / "moto-auth", INITIAL_NO_AUTH_ACTION_COUNT="0") as service:
        creds = DictCredentials(
            {("aws", "id"): "AKIAWRONGWRONGWRONG0", ("aws", "secret"): "wrong-secret-key"}
        )
        async with client_for(aws_spec(service.info), creds, call_timeout=FAST) as client:
            with pytest.raises(AuthenticationFailed) as raised:
                await client.read(SecretRef("anything"))
            assert "wrong-secret-key" not in str(raised.value)
            with pytest.raises(AuthenticationFailed):
                await client.check()


async def test_aws_stopped_server_is_unavailable(workdir: Path) -> None:
    with started(moto, workdir / "moto-stopped") as service:
        info = service.info
    async with client_for(aws_spec(info), AWS_KEYS, call_timeout=FAST) as client:
        with pytest.raises(StoreUnavailable):
            await client.read(SecretRef("anything"))
        with pytest.raises(StoreUnavailable):
            await client.check()


# --- GCP Secret Manager -----------------------------------------------------------------------------------


def gcp_spec(info: dict[str, Any]) -> dict[str, Any]:
    return {"gcpsm": {"projectID": info["project"], "endpoint": f"http://{info['target']}"}}


async def test_gcp_write_read_versions_and_delete(gcpsm: dict[str, Any]) -> None:
    async with client_for(gcp_spec(gcpsm)) as client:
        assert await client.check() == StoreCapabilities(read=True, write=True)
        key = unique("apps/web/db")
        await assert_stores_and_versions(client, key)
        # The logical key is how the secret is named in references; its id is the injective escaping.
        secret_id = key
        escaped = f"projects/{gcpsm['project']}/secrets/{gcpsm_store.secret_id_of(key)}"
        with pytest.raises(InvalidReference, match="escaped"):
            await client.read(SecretRef(escaped))
        raw = unique("raw-db")
        await client.write(raw, SecretValue(json.dumps({"password": "one"})))
        full = f"projects/{gcpsm['project']}/secrets/{raw}"
        assert (await client.read(SecretRef(full, version="1", property="password"))).reveal() == b"one"
        assert (
            await client.read(SecretRef(secret_id, version="latest", property="password"))
        ).reveal() == b"two"
        with pytest.raises(VersionNotFound):
            await client.read(SecretRef(secret_id, version="99"))
        with pytest.raises(InvalidReference, match="project"):
            await client.read(SecretRef(f"projects/another-project/secrets/{raw}"))
        with pytest.raises(PropertyNotFound):
            await client.read(SecretRef(secret_id, property="nope"))
        await client.delete(key)
        await client.delete(key)
        with pytest.raises(SecretNotFound):
            await client.read(SecretRef(secret_id))


async def test_gcp_binary_values(gcpsm: dict[str, Any]) -> None:
    async with client_for(gcp_spec(gcpsm)) as client:
        raw = bytes(range(256))
        written = await client.write(unique("binary"), SecretValue(raw))
        assert (await client.read(SecretRef(written.key, version=written.version))).reveal() == raw


async def test_gcp_stopped_server_is_unavailable(workdir: Path) -> None:
    with started(gcp, workdir / "gcp-stopped") as service:
        info = service.info
    async with client_for(gcp_spec(info), call_timeout=FAST) as client:
        with pytest.raises(StoreUnavailable):
            await client.read(SecretRef("anything"))
        with pytest.raises(StoreUnavailable):
            await client.check()


# --- Azure Key Vault --------------------------------------------------------------------------------------


def azure_spec(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "azurekv": {
            "url": info["url"],
            "tenantID": info["tenant_id"],
            "endpoint": info["authority"],
            "caBundle": Path(info["ca_bundle"]).read_text(),
            "auth": {
                "clientID": info["client_id"],
                "clientSecretSecretRef": {"name": "azure", "key": "secret"},
            },
        }
    }


def azure_creds(info: dict[str, Any]) -> DictCredentials:
    return DictCredentials({("azure", "secret"): info["client_secret"]})


async def test_azure_write_read_versions_and_delete(akv: dict[str, Any]) -> None:
    async with client_for(azure_spec(akv), azure_creds(akv)) as client:
        assert await client.check() == StoreCapabilities(read=True, write=True)
        key = unique("apps/web_db")
        await assert_stores_and_versions(client, key)
        # References name the logical key; the vault holds it under its injective escaping.
        name = key
        assert azurekv.secret_name(key).startswith("key--")
        assert (await client.read(SecretRef(name, property="password"))).reveal() == b"two"
        with pytest.raises(VersionNotFound):
            await client.read(SecretRef(name, version=uuid.uuid4().hex))
        with pytest.raises(InvalidReference):
            await client.read(SecretRef(name, version="1"))
        # Soft-deleted; writing again recovers the name.
        await client.delete(key)
        await client.delete(key)
        with pytest.raises(SecretNotFound):
            await client.read(SecretRef(name))
        back = await client.write(key, SecretValue("three"))
        assert back.key == name
        assert (await client.read(SecretRef(name))).reveal() == b"three"


async def test_azure_wrong_client_secret_is_authentication_failed(akv: dict[str, Any]) -> None:
    creds = DictCredentials({("azure", "secret"): "not-the-client-secret"})
    async with client_for(azure_spec(akv), creds) as client:
        with pytest.raises(AuthenticationFailed) as raised:
            await client.read(SecretRef("anything"))
        assert "not-the-client-secret" not in str(raised.value)
        with pytest.raises(AuthenticationFailed):
            await client.check()


async def test_azure_refuses_operator_identity_for_non_azure_hosts(akv: dict[str, Any]) -> None:
    spec = azure_spec(akv)
    del spec["azurekv"]["auth"]
    with pytest.raises(InvalidStoreConfig, match="Azure Key Vault hosts"):
        async with client_for(spec):
            pass


async def test_azure_stopped_server_is_unavailable(workdir: Path) -> None:
    with started(azure, workdir / "azure-stopped") as service:
        info = service.info
    async with client_for(azure_spec(info), azure_creds(info), call_timeout=FAST) as client:
        with pytest.raises(StoreUnavailable):
            await client.read(SecretRef("anything"))
        with pytest.raises(StoreUnavailable):
            await client.check()


# --- Kubernetes -------------------------------------------------------------------------------------------


@pytest.fixture
async def kube(cluster: Cluster) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(KubeConfig.from_file(cluster.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


async def test_kubernetes_store(cluster: Cluster, kube: AsyncClient) -> None:
    ns = unique("k8s-store")
    cluster.kubectl_run("create", "namespace", ns)
    cluster.kubectl_run(
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "db",
        "--from-literal=username=u",
        "--from-literal=password=p",
    )
    spec = {"kubernetes": {"namespace": ns}}
    async with client_for(spec, namespace=ns, kube_client=kube) as client:
        assert await client.check() == StoreCapabilities(read=True, write=True)
        assert (await client.read(SecretRef("db", property="password"))).reveal() == b"p"
        assert json.loads((await client.read(SecretRef("db"))).reveal()) == {"password": "p", "username": "u"}
        with pytest.raises(PropertyNotFound):
            await client.read(SecretRef("db", property="nope"))
        with pytest.raises(InvalidReference, match="no versions"):
            await client.read(SecretRef("db", version="1"))
        with pytest.raises(SecretNotFound):
            await client.read(SecretRef("missing"))

        written = await client.write("Apps/Web_DB", SecretValue("v1"))
        # The logical key comes back (status records it); the Secret's name is its injective encoding.
        assert written == type(written)(key="Apps/Web_DB", version=None)
        name = kubernetes.secret_name("Apps/Web_DB")
        assert (await client.read(SecretRef(written.key))).reveal() == b"v1"
        await client.write("Apps/Web_DB", SecretValue("v2"))
        assert (await client.read(SecretRef(written.key))).reveal() == b"v2"
        labels = json.loads(
            cluster.kubectl_run("-n", ns, "get", "secret", name, "-o", "json", "--show-managed-fields").stdout
        )
        assert labels["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "strongroom"
        managers = {m["manager"] for m in labels["metadata"]["managedFields"]}
        assert "strongroom" in managers

        # Secrets it did not write are left alone.
        with pytest.raises(PermissionDenied):
            await client.write("db", SecretValue("overwrite"))
        with pytest.raises(PermissionDenied):
            await client.delete("db")
        await client.delete(written.key)
        await client.delete(written.key)
        with pytest.raises(SecretNotFound):
            await client.read(SecretRef(written.key))


async def test_kubernetes_store_tenancy(cluster: Cluster, kube: AsyncClient) -> None:
    spec = {"kubernetes": {"namespace": "kube-system"}}
    with pytest.raises(InvalidStoreConfig, match="operator namespace"):
        async with client_for(spec, namespace="team-a", kube_client=kube):
            pass
    # The platform team's store (operator namespace) may point anywhere.
    async with client_for(spec, namespace=OPERATOR_NS, kube_client=kube) as client:
        assert (await client.check()).read


async def test_kubernetes_store_unreachable_apiserver(cluster: Cluster, tmp_path: Path) -> None:
    port = httpx.URL(cluster.server).port
    dead = tmp_path / "kubeconfig"
    dead.write_text(
        cluster.kubeconfig.read_text().replace(cluster.server, cluster.server.replace(f":{port}", ":1"))
    )
    unreachable = AsyncClient(KubeConfig.from_file(dead))
    spec = {"kubernetes": {"namespace": "default"}}
    try:
        async with client_for(spec, namespace="default", kube_client=unreachable) as client:
            with pytest.raises(StoreUnavailable):
                await client.read(SecretRef("anything"))
            with pytest.raises(StoreUnavailable):
                await client.check()
    finally:
        await unreachable.close()


async def test_kubernetes_credential_source(cluster: Cluster, kube: AsyncClient) -> None:
    ns = unique("creds")
    cluster.kubectl_run("create", "namespace", ns)
    cluster.kubectl_run("-n", ns, "create", "secret", "generic", "c", "--from-literal=token=abc\n")
    cluster.kubectl_run("-n", ns, "create", "serviceaccount", "sa")
    source = KubernetesCredentialSource(kube, ns, operator_service_account="sa")
    assert (await source.secret_key("c", "token")).reveal() == b"abc"
    with pytest.raises(InvalidStoreConfig, match=f"Secret {ns}/c"):
        await source.secret_key("c", "missing")
    with pytest.raises(InvalidStoreConfig, match="does not exist"):
        await source.secret_key("nope", "token")
    token = await source.service_account_token("sa", "vault")
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == f"system:serviceaccount:{ns}:sa"
    assert claims["aud"] == ["vault"]
    assert claims["exp"] - claims["iat"] == 600  # the shortest lifetime the API server grants
    # The operator's own account: a TokenRequest too (audience `vault`), never the mounted token.
    own = await source.service_account_token(None, "vault")
    assert json.loads(base64.urlsafe_b64decode(own.split(".")[1] + "=="))["aud"] == ["vault"]
    with pytest.raises(InvalidStoreConfig, match="does not exist"):
        await source.service_account_token("nobody", "vault")
    with pytest.raises(InvalidStoreConfig, match="--service-account"):
        await KubernetesCredentialSource(kube, ns).service_account_token(None, "vault")


# --- Concurrency ------------------------------------------------------------------------------------------


async def test_clients_are_shared_by_concurrent_tasks(
    bao: dict[str, Any], aws: dict[str, Any], gcpsm: dict[str, Any], akv: dict[str, Any]
) -> None:
    """One client per store serves many tasks at once (the operator shares it across reconciles)."""
    admin = Bao(bao)
    admin.enable("approle", "approle")
    admin.call(
        "PUT", "sys/policies/acl/concurrent", {"policy": 'path "secret/data/*" { capabilities = ["read"] }'}
    )
    admin.call("POST", "auth/approle/role/concurrent", {"token_policies": ["concurrent"]})
    role_id = admin.call("GET", "auth/approle/role/concurrent/role-id")["data"]["role_id"]
    secret_id = admin.call("POST", "auth/approle/role/concurrent/secret-id")["data"]["secret_id"]
    admin.call("POST", "secret/data/concurrent", {"data": {"value": "same"}})
    vault_approle = vault_spec(
        bao, auth={"appRole": {"roleId": role_id, "secretRef": {"name": "a", "key": "id"}}}, insecureHTTP=True
    )
    setups = [
        (vault_approle, DictCredentials({("a", "id"): secret_id}), None),
        (aws_spec(aws), AWS_KEYS, "concurrent"),
        (gcp_spec(gcpsm), None, "concurrent"),
        (azure_spec(akv), azure_creds(akv), "concurrent"),
    ]
    for spec, creds, write_key in setups:
        async with client_for(spec, creds) as client:
            key = "concurrent"
            if write_key is not None:
                key = (await client.write(write_key, SecretValue("same"))).key
            values = await asyncio.gather(*(client.read(SecretRef(key)) for _ in range(40)))
            assert {v.reveal() for v in values} == {b"same"}
