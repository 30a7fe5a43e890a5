"""Tenancy of SecretStores: a tenant reaches only its namespace's secrets, never the operator's identity.

A real operator, OpenBao and API server. The operator namespace is this module's own, with a shared
default store open to team-a and team-b for `teams/{namespace}/` keys, and a store without `access`.
team-a owns a Resource whose driver output the operator writes to `strongroom/<team-a>/...` of the
shared store. team-b attacks as a tenant (impersonation, the wildcard strongroom.dev Role of its
namespace, see tenancy.py). Each attack must end in a condition that says what was refused, and
nothing of team-a may be read into team-b or changed in OpenBao.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import pytest

import testenv
from testenv.operator import OperatorProcess, start_operator
from tests.conftest import Cluster
from tests.integration.helpers import apply, bao_value, condition, eventually, get, k8s_secret, secret_data
from tests.integration.tenancy import TENANT_ACCOUNT, Tenant, make_tenant

pytestmark = pytest.mark.integration

SUFFIX = uuid.uuid4().hex[:6]
OPERATOR_NS = f"ts-op-{SUFFIX}"
TEAM_A = f"ts-a-{SUFFIX}"
TEAM_B = f"ts-b-{SUFFIX}"
OPERATOR_ACCOUNT = "strongroom"
K8S_MOUNT = f"k8s-{SUFFIX}"
API = "strongroom.dev/v1alpha1"

# team-a's secrets and the platform's: none may ever show up in team-b or in the operator's log.
CANARY = {
    "team-a": f"canary-a-{uuid.uuid4().hex}",
    "platform": f"canary-p-{uuid.uuid4().hex}",
    "team-a-k8s": f"canary-k-{uuid.uuid4().hex}",
}
TEAM_B_VALUE = f"team-b-{uuid.uuid4().hex}"
OUTPUT_KEY = f"strongroom/{TEAM_A}/db/outputs/password"


@dataclass
class Env:
    cluster: Cluster
    bao_info: dict[str, Any]
    operator: OperatorProcess
    tenant: Tenant

    @property
    def bao(self) -> hvac.Client:
        return hvac.Client(url=self.bao_info["addr"], token=self.bao_info["root_token"])

    def value(self, path: str) -> str | None:
        return bao_value(self, path)


def vault_store(name: str, namespace: str, addr: str, auth: dict[str, Any], **spec: Any) -> dict[str, Any]:
    metadata = {"name": name, "namespace": namespace, **spec.pop("metadata", {})}
    vault = {"url": addr, "path": "secret", "auth": auth, **spec.pop("vault", {})}
    return {"apiVersion": API, "kind": "SecretStore", "metadata": metadata, "spec": {"vault": vault, **spec}}


def store(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def mapping(name: str, namespace: str, store_name: str, key: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "SecretMapping",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "secretName": name,
            "refreshInterval": "1h",
            "secretData": [{"secretKey": "value", "secretStoreName": store_name, "remoteRef": {"key": key}}],
        },
    }


def echo_resource(name: str, namespace: str, store_name: str, key: str) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Resource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "postgres",
            "id": f"shared.{name}",
            "driverType": "humanitec/echo",
            "driverInputs": {
                "values": {"host": "db.example.com"},
                "secretRefs": {"password": {"store": store_name, "ref": key}},
            },
        },
    }


def not_ready(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The Ready=False condition of an object once the operator has written one."""
    cond = condition(get(cluster, kind, namespace, name))
    return cond if cond and cond["status"] == "False" else None


def ready(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    obj = get(cluster, kind, namespace, name)
    cond = condition(obj)
    return obj if cond and cond["status"] == "True" else None


def refused(env: Env, kind: str, namespace: str, name: str, reason: str) -> str:
    cond = eventually(
        lambda: not_ready(env.cluster, kind, namespace, name), timeout=60, what=f"{name} refused"
    )
    assert cond["reason"] == reason, cond
    message: str = cond["message"]
    return message


def _setup_kubernetes_auth(cluster: Cluster, bao: dict[str, Any]) -> None:
    """OpenBao's Kubernetes auth against the test API server, with roles that demand the audience `vault`."""
    cluster.kubectl_run("-n", OPERATOR_NS, "create", "serviceaccount", "reviewer")
    cluster.kubectl_run("-n", OPERATOR_NS, "create", "serviceaccount", OPERATOR_ACCOUNT)
    cluster.kubectl_run(
        "create", "clusterrolebinding", f"{OPERATOR_NS}-reviewer", "--clusterrole=system:auth-delegator",
        f"--serviceaccount={OPERATOR_NS}:reviewer",
    )  # fmt: skip
    reviewer = cluster.kubectl_run("-n", OPERATOR_NS, "create", "token", "reviewer", "--duration=2h").stdout
    client = hvac.Client(url=bao["addr"], token=bao["root_token"])
    client.sys.enable_auth_method("kubernetes", path=K8S_MOUNT)
    client.write_data(
        f"auth/{K8S_MOUNT}/config",
        data={
            "kubernetes_host": cluster.server,
            "kubernetes_ca_cert": Path(cluster.info["ca"]).read_text(),
            "token_reviewer_jwt": reviewer.strip(),
            "disable_local_ca_jwt": True,
        },
    )
    client.sys.create_or_update_policy(f"reader-{SUFFIX}", 'path "secret/data/*" { capabilities = ["read"] }')
    for role, account, namespace in (
        ("operator", OPERATOR_ACCOUNT, OPERATOR_NS),
        ("team-b", TENANT_ACCOUNT, TEAM_B),
    ):
        client.write_data(
            f"auth/{K8S_MOUNT}/role/{role}",
            data={
                "bound_service_account_names": [account],
                "bound_service_account_namespaces": [namespace],
                "token_policies": [f"reader-{SUFFIX}"],
                "token_ttl": "1h",
                # OpenBao asks the TokenReview for this audience: a token for the API server is refused.
                "audience": "vault",
            },
        )


@pytest.fixture(scope="module")
def env(
    cluster: Cluster, stores: testenv.Environment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    cluster.install_crds()
    team_a = make_tenant(cluster, TEAM_A)
    tenant = make_tenant(cluster, TEAM_B)
    cluster.kubectl_run("create", "namespace", OPERATOR_NS)
    bao = stores.info("openbao")
    _setup_kubernetes_auth(cluster, bao)
    client = hvac.Client(url=bao["addr"], token=bao["root_token"])
    for path, value in (
        (f"teams/{TEAM_A}/db", CANARY["team-a"]),
        (f"teams/{TEAM_B}/db", TEAM_B_VALUE),
        ("platform/root", CANARY["platform"]),
    ):
        client.secrets.kv.v2.create_or_update_secret(path=path, secret={"value": value})
    token = {"tokenSecretRef": {"name": "bao-token", "key": "token"}}
    apply(
        cluster,
        k8s_secret(OPERATOR_NS, "bao-token", {"token": bao["root_token"]}),
        k8s_secret(TEAM_A, "team-a-only", {"value": CANARY["team-a-k8s"]}),
        vault_store(
            "shared",
            OPERATOR_NS,
            bao["addr"],
            token,
            metadata={"labels": {"strongroom.dev/default-store": "true"}},
            access=[{"namespaces": [TEAM_A, TEAM_B], "keyPrefixes": ["teams/{namespace}/"]}],
        ),
        vault_store("closed", OPERATOR_NS, bao["addr"], token),
        # The operator's own identity: a TokenRequest for its ServiceAccount with the audience `vault`.
        vault_store(
            "operator-identity",
            OPERATOR_NS,
            bao["addr"],
            {"kubernetes": {"role": "operator", "mountPath": K8S_MOUNT}},
            vault={"insecureHTTP": True},
        ),
    )
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    operator = start_operator(
        cluster.kubeconfig,
        log,
        ["--store-check-interval=5s", "--store-read-ttl=0s", f"--service-account={OPERATOR_ACCOUNT}"],
        operator_namespace=OPERATOR_NS,
    )
    try:
        environment = Env(cluster, bao, operator, tenant)
        # team-a's own driver output, written by the operator into the shared default store.
        team_a.apply(echo_resource("db", TEAM_A, "shared", f"teams/{TEAM_A}/db"))
        eventually(lambda: ready(cluster, "resource", TEAM_A, "db"), timeout=90, what="team-a Resource Ready")
        assert environment.value(OUTPUT_KEY) == CANARY["team-a"]
        yield environment
    finally:
        operator.stop()
        for namespace in (TEAM_A, TEAM_B, OPERATOR_NS):
            cluster.kubectl_run("delete", "namespace", namespace, "--wait=false", check=False)
        cluster.kubectl_run("delete", "clusterrolebinding", f"{OPERATOR_NS}-reviewer", check=False)


# --- shared stores: closed until granted, and then only for the granted prefixes ------------------------


def test_granted_prefix_is_served(env: Env) -> None:
    env.tenant.apply(mapping("own-key", TEAM_B, "shared", f"teams/{TEAM_B}/db"))
    eventually(
        lambda: ready(env.cluster, "secretmapping", TEAM_B, "own-key"), timeout=60, what="own key synced"
    )
    assert secret_data(env.cluster, TEAM_B, "own-key") == {"value": TEAM_B_VALUE}


def test_another_namespaces_driver_output_is_refused(env: Env) -> None:
    """(a) team-b names team-a's driver output in the shared default store."""
    env.tenant.apply(mapping("steal-output", TEAM_B, "shared", OUTPUT_KEY))
    message = refused(env, "secretmapping", TEAM_B, "steal-output", "KeyNotAllowed")
    assert f"belong to namespace {TEAM_A!r} alone" in message
    assert get(env.cluster, "secret", TEAM_B, "steal-output") is None


def test_another_namespaces_driver_output_is_refused_to_a_resource(env: Env) -> None:
    """(a) The same key as a Resource's secret input (an Echo driver would hand it back as an output)."""
    env.tenant.apply(echo_resource("steal-via-driver", TEAM_B, "shared", OUTPUT_KEY))
    message = refused(env, "resource", TEAM_B, "steal-via-driver", "KeyNotAllowed")
    assert OUTPUT_KEY in message
    assert get(env.cluster, "secret", TEAM_B, "steal-via-driver-outputs") is None


def test_key_outside_the_granted_prefixes_is_refused(env: Env) -> None:
    """(b) team-a's prefix and a platform key, both in a store team-b is granted."""
    env.tenant.apply(
        mapping("steal-team-a", TEAM_B, "shared", f"teams/{TEAM_A}/db"),
        mapping("steal-platform", TEAM_B, "shared", "platform/root"),
    )
    message = refused(env, "secretmapping", TEAM_B, "steal-team-a", "KeyNotAllowed")
    assert f"teams/{TEAM_B}/" in message
    assert "spec.access" in message
    refused(env, "secretmapping", TEAM_B, "steal-platform", "KeyNotAllowed")
    assert get(env.cluster, "secret", TEAM_B, "steal-team-a") is None
    assert get(env.cluster, "secret", TEAM_B, "steal-platform") is None


def test_operator_namespace_store_without_access_is_closed(env: Env) -> None:
    """(c) A store in the operator namespace that names no namespace serves none."""
    env.tenant.apply(mapping("closed", TEAM_B, "closed", f"teams/{TEAM_B}/db"))
    message = refused(env, "secretmapping", TEAM_B, "closed", "StoreNotAllowed")
    assert f"{OPERATOR_NS}/closed" in message
    assert get(env.cluster, "secret", TEAM_B, "closed") is None


@pytest.mark.parametrize(
    "key",
    [
        f"teams/{TEAM_B}/../{TEAM_A}/db",
        f"teams/{TEAM_B}/%2e%2e/{TEAM_A}/db",
        f"strongroom/{TEAM_B}/../{TEAM_A}/db/outputs/password",
    ],
    ids=["dotdot", "percent", "reserved-dotdot"],
)
def test_traversal_out_of_a_granted_prefix_is_refused(env: Env, key: str) -> None:
    """(d) A key that starts with team-b's prefix but that a server could resolve elsewhere."""
    name = f"traverse-{uuid.uuid4().hex[:6]}"
    env.tenant.apply(mapping(name, TEAM_B, "shared", key))
    refused(env, "secretmapping", TEAM_B, name, "KeyNotAllowed")
    assert get(env.cluster, "secret", TEAM_B, name) is None


def test_own_store_does_not_reach_another_namespaces_reserved_keys(env: Env) -> None:
    """team-b's own store on the same server: the operator still refuses team-a's reserved area."""
    env.tenant.apply(
        k8s_secret(TEAM_B, "own-token", {"token": env.bao_info["root_token"]}),
        vault_store(
            "own", TEAM_B, env.bao_info["addr"], {"tokenSecretRef": {"name": "own-token", "key": "token"}}
        ),
        mapping("own-store-steal", TEAM_B, "own", OUTPUT_KEY),
    )
    refused(env, "secretmapping", TEAM_B, "own-store-steal", "KeyNotAllowed")
    assert get(env.cluster, "secret", TEAM_B, "own-store-steal") is None


def test_forged_status_does_not_delete_keys_outside_the_namespaces_area(env: Env) -> None:
    """A tenant points its Resource's status at team-a's keys, then deletes the Resource."""
    env.tenant.apply(echo_resource("forger", TEAM_B, "shared", f"teams/{TEAM_B}/db"))
    eventually(lambda: ready(env.cluster, "resource", TEAM_B, "forger"), timeout=60, what="forger Ready")
    forged = {
        "outputs": {
            "secretRefs": {
                "password": {"store": "shared", "ref": OUTPUT_KEY},
                "other": {"store": "shared", "ref": f"teams/{TEAM_A}/db"},
            }
        },
        "cookieRef": {"store": "shared", "ref": "platform/root"},
    }

    def forge() -> bool:
        # Again until it sticks: the operator's own last status write may land after the first patch.
        env.tenant.patch_status("resource", "forger", {"status": forged})
        obj = get(env.cluster, "resource", TEAM_B, "forger") or {}
        cookie_ref: dict[str, Any] = (obj.get("status") or {}).get("cookieRef") or {}
        return cookie_ref.get("ref") == "platform/root"

    eventually(forge, what="forged status in place")
    env.tenant.kubectl("-n", TEAM_B, "delete", "resource", "forger", "--wait=false")
    eventually(
        lambda: get(env.cluster, "resource", TEAM_B, "forger") is None, timeout=90, what="forger deleted"
    )
    assert env.value(OUTPUT_KEY) == CANARY["team-a"]
    assert env.value(f"teams/{TEAM_A}/db") == CANARY["team-a"]
    assert env.value("platform/root") == CANARY["platform"]
    # The forged status was seen and set aside (its seal does not verify), not skipped by chance.
    assert any('"name": "forger"' in line and "ignored" in line for line in env.operator.logs().splitlines())


# --- the operator's identity (ESO's cross-namespace advisories) -----------------------------------------


def test_tenant_store_cannot_use_the_operators_vault_identity(env: Env) -> None:
    """(e) Vault Kubernetes auth without serviceAccountRef would log in as the operator."""
    env.tenant.apply(
        vault_store(
            "as-operator",
            TEAM_B,
            env.bao_info["addr"],
            {"kubernetes": {"role": "operator", "mountPath": K8S_MOUNT}},
            vault={"insecureHTTP": True},
        ),
        mapping("as-operator", TEAM_B, "as-operator", "platform/root"),
    )
    message = refused(env, "secretstore", TEAM_B, "as-operator", "InvalidStoreConfig")
    assert "operator namespace" in message
    refused(env, "secretmapping", TEAM_B, "as-operator", "InvalidStoreConfig")
    assert get(env.cluster, "secret", TEAM_B, "as-operator") is None


def test_tenant_store_cannot_name_the_operators_service_account(env: Env) -> None:
    """(e) serviceAccountRef is a local reference: the operator's account in its namespace cannot be named."""
    auth: dict[str, Any] = {
        "kubernetes": {
            "role": "operator",
            "mountPath": K8S_MOUNT,
            "serviceAccountRef": {"name": OPERATOR_ACCOUNT, "namespace": OPERATOR_NS},
        }
    }
    attempt = env.tenant.apply(
        vault_store("op-sa", TEAM_B, env.bao_info["addr"], auth, vault={"insecureHTTP": True}), check=False
    )
    assert attempt.returncode != 0
    assert "namespace" in attempt.stderr
    # Without the namespace it names team-b's own account of that name, which Vault's role does not bind.
    del auth["kubernetes"]["serviceAccountRef"]["namespace"]
    env.tenant.apply(vault_store("op-sa", TEAM_B, env.bao_info["addr"], auth, vault={"insecureHTTP": True}))
    refused(env, "secretstore", TEAM_B, "op-sa", "InvalidStoreConfig")


def test_tenant_store_cannot_use_ambient_cloud_credentials(env: Env) -> None:
    """(e) An AWS store without credentials would use the operator's (Pod Identity, IRSA, env)."""
    env.tenant.apply(store("ambient", TEAM_B, {"awssm": {"region": "eu-central-1"}}))
    message = refused(env, "secretstore", TEAM_B, "ambient", "InvalidStoreConfig")
    assert "operator namespace" in message


def test_tenant_kubernetes_store_cannot_read_another_namespace(env: Env) -> None:
    """(e) A kubernetes-backend store in team-b pointing at team-a's Secrets (the operator may read them)."""
    env.tenant.apply(
        store("team-a-secrets", TEAM_B, {"kubernetes": {"namespace": TEAM_A}}),
        mapping("k8s-steal", TEAM_B, "team-a-secrets", "team-a-only"),
    )
    message = refused(env, "secretstore", TEAM_B, "team-a-secrets", "InvalidStoreConfig")
    assert "another namespace" in message
    refused(env, "secretmapping", TEAM_B, "k8s-steal", "InvalidStoreConfig")
    assert get(env.cluster, "secret", TEAM_B, "k8s-steal") is None


# --- Vault Kubernetes auth: transport and audience --------------------------------------------------------


def test_service_account_jwt_over_http_is_refused_without_opt_in(env: Env) -> None:
    """(f) The tenant's own account over plain http:// to a URL the tenant chose."""
    auth = {
        "kubernetes": {
            "role": "team-b",
            "mountPath": K8S_MOUNT,
            "serviceAccountRef": {"name": TENANT_ACCOUNT},
        }
    }
    env.tenant.apply(vault_store("jwt-over-http", TEAM_B, env.bao_info["addr"], auth))
    message = refused(env, "secretstore", TEAM_B, "jwt-over-http", "InsecureTransport")
    assert "insecureHTTP" in message


def test_tokens_carry_the_vault_audience(env: Env) -> None:
    """(f) With the opt-in the login works against roles that demand audience `vault` (OpenBao's
    TokenReview refuses any other audience), for a tenant's account and for the operator's own."""
    auth = {
        "kubernetes": {
            "role": "team-b",
            "mountPath": K8S_MOUNT,
            "serviceAccountRef": {"name": TENANT_ACCOUNT},
        }
    }
    env.tenant.apply(
        vault_store("jwt-opted-in", TEAM_B, env.bao_info["addr"], auth, vault={"insecureHTTP": True}),
        mapping("via-jwt", TEAM_B, "jwt-opted-in", f"teams/{TEAM_B}/db"),
    )
    obj = eventually(
        lambda: ready(env.cluster, "secretstore", TEAM_B, "jwt-opted-in"), timeout=60, what="tenant JWT login"
    )
    warning = condition(obj, "InsecureTransport")
    assert warning is not None
    assert warning["status"] == "True"
    eventually(
        lambda: ready(env.cluster, "secretmapping", TEAM_B, "via-jwt"), timeout=60, what="read via JWT"
    )
    assert secret_data(env.cluster, TEAM_B, "via-jwt") == {"value": TEAM_B_VALUE}
    eventually(
        lambda: ready(env.cluster, "secretstore", OPERATOR_NS, "operator-identity"),
        timeout=60,
        what="operator's own identity logs in with a TokenRequest for audience vault",
    )


def test_tenant_store_cannot_choose_the_api_servers_audience(env: Env) -> None:
    """(f) An audience the API server accepts would make the operator mint a cluster token of any
    service account of team-b and post it to team-b's URL."""
    auth = {
        "kubernetes": {
            "role": "team-b",
            "mountPath": K8S_MOUNT,
            "serviceAccountRef": {"name": TENANT_ACCOUNT},
            "audience": "https://kubernetes.default.svc.cluster.local",
        }
    }
    env.tenant.apply(
        vault_store("api-audience", TEAM_B, env.bao_info["addr"], auth, vault={"insecureHTTP": True})
    )
    message = refused(env, "secretstore", TEAM_B, "api-audience", "InvalidStoreConfig")
    assert "audience other than 'vault'" in message


def test_token_auth_over_http_is_allowed_with_a_warning(env: Env) -> None:
    obj = eventually(lambda: ready(env.cluster, "secretstore", OPERATOR_NS, "shared"), what="shared Ready")
    warning = condition(obj, "InsecureTransport")
    assert warning is not None
    assert (warning["status"], warning["reason"]) == ("True", "PlainHTTP")


# --- nothing leaked ------------------------------------------------------------------------------------


def test_zz_nothing_of_team_a_reached_team_b(env: Env) -> None:
    secrets = json.loads(env.cluster.kubectl_run("-n", TEAM_B, "get", "secrets", "-o", "json").stdout)
    dumped = json.dumps(secrets) + json.dumps(
        json.loads(
            env.cluster.kubectl_run(
                "-n", TEAM_B, "get", "secretmappings,resources,secretstores", "-o", "json"
            ).stdout
        )
    )
    for value in CANARY.values():
        assert value not in dumped
        assert base64.b64encode(value.encode()).decode() not in dumped
        assert value not in env.operator.logs()
    assert env.value(OUTPUT_KEY) == CANARY["team-a"]
    assert env.value(f"teams/{TEAM_A}/db") == CANARY["team-a"]
    assert env.value("platform/root") == CANARY["platform"]
    assert secret_data(env.cluster, TEAM_A, "team-a-only") == {"value": CANARY["team-a-k8s"]}
