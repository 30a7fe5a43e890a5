"""Tenancy and blast radius, Resource side: a tenant attacks through Resources, as a tenant.

Every hostile object is created by the tenant of `team-b` through impersonation (tests/integration/
tenancy.py: the wildcard strongroom.dev Role of its own namespace, status included), against the real
operator process, apiserver and OpenBao. `team-a` is the victim: its database is provisioned through a
logging driver (an SDK driver over real HTTP that records every PUT and DELETE), its store keys are in
the same OpenBao, its objects in the same apiserver. Each test shows the attack refused with a condition,
and that nothing of the victim was PUT, DELETEd, overwritten or removed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import pytest

import testenv
from strongroom.api.resource import derive_guresid
from strongroom.drivers.sdk import DriverApp, DriverResponse, PutRequest
from strongroom.drivers.sdk.app import ResourceRequest
from strongroom.drivers.signing import generate_private_key, private_key_pem
from strongroom.reconcile.resource import PENDING_ANNOTATION
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from tests.conftest import Cluster
from tests.integration.helpers import (
    Served,
    apply,
    bao_value,
    condition,
    ensure_namespace,
    eventually,
    get,
    k8s_secret,
    seed,
    settled_resource,
)
from tests.integration.tenancy import Tenant, make_tenant

pytestmark = pytest.mark.integration

API = "strongroom.dev/v1alpha1"
#: The default kinds, and one cluster-scoped kind the platform admin allows for its own Driver.
MANIFEST_KINDS = "ConfigMap,Secret,Service,apps/Deployment,rbac.authorization.k8s.io/ClusterRole"
ORG = "org-tenancy"
STORE = "bao"  # each namespace's own default store, on the one OpenBao both share


@dataclass
class Recorder:
    """A driver that records every call (the victim's and the attacker's alike) and answers from `values`
    and `manifests`."""

    values: dict[str, Any] = field(default_factory=lambda: {"ok": True})
    manifests: list[dict[str, Any]] = field(default_factory=list)
    puts: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    async def put(self, request: PutRequest) -> DriverResponse:
        self.puts.append(request.guresid)
        return DriverResponse(values=dict(self.values), manifests=list(self.manifests))

    async def delete(self, request: ResourceRequest) -> None:
        self.deletes.append(request.guresid)


@dataclass
class Env:
    cluster: Cluster
    stores: testenv.Environment
    operator: OperatorProcess
    victim: Tenant
    attacker: Tenant
    recorder: Recorder
    served: list[Served]
    keys: dict[str, Any]

    @property
    def bao(self) -> hvac.Client:
        info = self.stores.info("openbao")
        return hvac.Client(url=info["addr"], token=info["root_token"])

    def serve(self, recorder: Recorder) -> Served:
        def build(target: str) -> DriverApp:
            return DriverApp(
                put=recorder.put,
                delete=recorder.delete,
                public_keys=[key.public_key() for key in self.keys.values()],
                org_id=ORG,
                audience=target,
            )

        served = Served(build).start()
        self.served.append(served)
        return served

    def driver(self, tenant: Tenant, name: str, target: str) -> dict[str, Any]:
        """A Driver of the tenant's own, signing with the tenant's own key."""
        return {
            "apiVersion": API,
            "kind": "Driver",
            "metadata": {"name": name, "namespace": tenant.namespace},
            "spec": {"target": target, "privateKeySecretRef": {"name": "driver-key"}},
        }


@pytest.fixture(scope="module")
def env(
    cluster: Cluster, stores: testenv.Environment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    workdir: Path = tmp_path_factory.mktemp("tenancy-resources")
    cluster.install_crds()
    ensure_namespace(cluster, OPERATOR_NAMESPACE)
    suffix = uuid.uuid4().hex[:6]
    victim = make_tenant(cluster, f"team-a-{suffix}")
    attacker = make_tenant(cluster, f"team-b-{suffix}")
    bao = stores.info("openbao")
    # The platform admin's own Driver key, in the operator namespace.
    keys = {OPERATOR_NAMESPACE: generate_private_key(2048)}
    admin_key = k8s_secret(
        OPERATOR_NAMESPACE,
        f"driver-key-{suffix}",
        {"privateKey": private_key_pem(keys[OPERATOR_NAMESPACE]).decode(), "organisationID": ORG},
    )
    admin_key["metadata"]["labels"] = {"tenancy-test": suffix}
    apply(cluster, admin_key)
    for tenant in (victim, attacker):
        keys[tenant.namespace] = generate_private_key(2048)
        # The platform admin gives each namespace its default store (on the shared OpenBao)...
        apply(
            cluster,
            k8s_secret(tenant.namespace, "bao-token", {"token": bao["root_token"]}),
            {
                "apiVersion": API,
                "kind": "SecretStore",
                "metadata": {
                    "name": STORE,
                    "namespace": tenant.namespace,
                    "labels": {"strongroom.dev/default-store": "true"},
                },
                "spec": {
                    "vault": {
                        "url": bao["addr"],
                        "path": "secret",
                        "auth": {"tokenSecretRef": {"name": "bao-token", "key": "token"}},
                    }
                },
            },
        )
        # ...and the tenant its own driver signing key.
        tenant.apply(
            k8s_secret(
                tenant.namespace,
                "driver-key",
                {"privateKey": private_key_pem(keys[tenant.namespace]).decode(), "organisationID": ORG},
            )
        )
    operator = start_operator(
        cluster.kubeconfig,
        workdir / "operator.log",
        ["--store-read-ttl=0s", "--log-level=debug", f"--manifest-kinds={MANIFEST_KINDS}"],
    )
    environment = Env(cluster, stores, operator, victim, attacker, Recorder(), [], keys)
    logger = environment.serve(environment.recorder)
    for tenant in (victim, attacker):
        tenant.apply(environment.driver(tenant, "logger", logger.target))
    try:
        yield environment
    finally:
        for tenant in (attacker, victim):
            cluster.kubectl_run(
                "delete", "namespace", tenant.namespace, "--wait=true", "--timeout=100s", check=False
            )
        selector = f"tenancy-test={suffix}"
        cluster.kubectl_run(
            "-n", OPERATOR_NAMESPACE, "delete", "drivers.strongroom.dev,secrets", "-l", selector, check=False
        )  # fmt: skip
        operator.stop()
        for served in environment.served:
            served.stop()


# --- helpers ----------------------------------------------------------------------------------------------


def resource(tenant: Tenant, name: str, driver_type: str, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": tenant.namespace}
    if "annotations" in spec:
        metadata["annotations"] = spec.pop("annotations")
    return {
        "apiVersion": API,
        "kind": "Resource",
        "metadata": metadata,
        "spec": {
            "type": spec.pop("type", "postgres"),
            "id": spec.pop("id", "shared.db"),
            "driverType": driver_type,
        }
        | spec,
    }


def ready(env: Env, tenant: Tenant, name: str) -> dict[str, Any] | None:
    return settled_resource(env.cluster, tenant.namespace, name)


def refused(env: Env, tenant: Tenant, name: str) -> dict[str, Any] | None:
    """The Ready condition once the Resource is refused for its current generation."""
    obj = get(env.cluster, "resource", tenant.namespace, name)
    cond = condition(obj)
    if (
        obj
        and cond
        and cond["status"] == "False"
        and cond.get("observedGeneration") == obj["metadata"]["generation"]
    ):
        return cond if cond["reason"] not in ("Provisioning", "Deleting") else None
    return None


def gone(env: Env, tenant: Tenant, name: str) -> bool:
    return get(env.cluster, "resource", tenant.namespace, name) is None


def delete(env: Env, tenant: Tenant, name: str) -> None:
    tenant.kubectl("-n", tenant.namespace, "delete", "resource", name, "--wait=false")
    eventually(lambda: gone(env, tenant, name), timeout=60, what=f"Resource {name} deleted")


@pytest.fixture(scope="module")
def victim_db(env: Env) -> str:
    """team-a's database, provisioned through the logging driver: its GUResID."""
    env.victim.apply(resource(env.victim, "orders-db", "logger"))
    obj = eventually(lambda: ready(env, env.victim, "orders-db"), timeout=60, what="victim Ready")
    guresid: str = obj["status"]["guresid"]
    assert guresid == derive_guresid(env.victim.namespace, "postgres", "default", "shared.db")
    assert env.recorder.puts.count(guresid) == 1
    return guresid


# --- GUResIDs and the pending marker ----------------------------------------------------------------------


def test_hand_set_guresid_of_another_namespace_is_refused(env: Env, victim_db: str) -> None:
    # The attacker names team-a's GUResID: a PUT would reset the victim's database, a DELETE drop it.
    puts = env.recorder.puts.count(victim_db)
    env.attacker.apply(resource(env.attacker, "stolen-db", "logger", guresid=victim_db))
    cond = eventually(lambda: refused(env, env.attacker, "stolen-db"), timeout=60, what="refused")
    assert cond["reason"] == "GuresidNotAllowed"
    assert victim_db in cond["message"]
    assert "--explicit-guresid-namespaces" in cond["message"]
    delete(env, env.attacker, "stolen-db")
    assert env.recorder.puts.count(victim_db) == puts
    assert victim_db not in env.recorder.deletes
    assert ready(env, env.victim, "orders-db")


def test_forged_pending_marker_is_ignored(env: Env, victim_db: str) -> None:
    # The marker names a driver other than the spec's: trusted, the operator would "release" the resource
    # through it (DELETE of the victim's GUResID) before provisioning with the spec's driver, and again when
    # the Resource is deleted.
    forged = json.dumps({"driverType": "logger", "guresid": victim_db})
    puts = env.recorder.puts.count(victim_db)
    env.attacker.apply(
        resource(
            env.attacker, "marked", "humanitec/echo", type="queue", annotations={PENDING_ANNOTATION: forged}
        )
    )
    obj = eventually(lambda: ready(env, env.attacker, "marked"), timeout=60, what="Ready without the marker")
    assert victim_db not in env.recorder.deletes  # no "release" through the driver the marker names
    tampered = condition(obj, "Tampered")
    assert tampered is not None
    assert tampered["reason"] == "PendingMarkerIgnored"
    assert PENDING_ANNOTATION not in (obj["metadata"].get("annotations") or {})  # removed
    # Forged again on the live object, then deleted.
    env.attacker.annotate("resource", "marked", {PENDING_ANNOTATION: forged})
    delete(env, env.attacker, "marked")
    assert victim_db not in env.recorder.deletes
    assert env.recorder.puts.count(victim_db) == puts
    assert ready(env, env.victim, "orders-db")


def test_duplicate_resource_is_refused_and_deleting_it_deprovisions_nothing(env: Env) -> None:
    guresid = derive_guresid(env.attacker.namespace, "queue", "default", "shared.jobs")
    env.attacker.apply(resource(env.attacker, "jobs", "logger", type="queue", id="shared.jobs"))
    eventually(lambda: ready(env, env.attacker, "jobs"), timeout=60, what="first Ready")
    time.sleep(1.1)  # creationTimestamp has a resolution of one second
    env.attacker.apply(resource(env.attacker, "jobs-again", "logger", type="queue", id="shared.jobs"))
    cond = eventually(lambda: refused(env, env.attacker, "jobs-again"), timeout=60, what="duplicate refused")
    assert cond["reason"] == "DuplicateResource"
    assert "'jobs'" in cond["message"]
    assert env.recorder.puts.count(guresid) == 1
    delete(env, env.attacker, "jobs-again")
    assert guresid not in env.recorder.deletes
    assert ready(env, env.attacker, "jobs")
    delete(env, env.attacker, "jobs")
    assert env.recorder.deletes.count(guresid) == 1  # the first one still deprovisions


# --- status as the operator's memory ----------------------------------------------------------------------


def test_altered_status_deletes_nothing_of_the_victims(env: Env, victim_db: str) -> None:
    a, b = env.victim.namespace, env.attacker.namespace
    victim_key = f"platform/victim-{uuid.uuid4().hex[:8]}"
    seed(env, victim_key, "platform-secret")
    victim_output = f"strongroom/{a}/orders-db/outputs/password"
    seed(env, victim_output, "team-a-password")
    apply(
        env.cluster,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "victim-cm", "namespace": a},
            "data": {"k": "v"},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "victim-svc", "namespace": b},
            "spec": {"ports": [{"port": 80}]},
        },
    )
    seed(env, f"{b}/token", "own-token")
    env.attacker.apply(
        resource(
            env.attacker,
            "echo",
            "humanitec/echo",
            type="config",
            driverInputs={"secretRefs": {"password": {"store": STORE, "ref": f"{b}/token"}}},
        )
    )
    obj = eventually(lambda: ready(env, env.attacker, "echo"), timeout=60, what="attacker's echo Ready")
    own_key = f"strongroom/{b}/echo/outputs/password"
    assert bao_value(env, own_key) == "own-token"

    victim_ref = {"store": STORE, "ref": victim_key}
    hostile = {
        "outputs": {
            "secretRefs": {
                "password": victim_ref,
                "other": {"store": STORE, "ref": victim_output},
            }
        },
        "cookieRef": victim_ref,
        "manifests": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": "victim-cm",
                "namespace": a,
                "location": "namespace",
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "name": "victim-svc",
                "namespace": b,
                "location": "namespace",
            },
        ],
        "driverType": "logger",
        "guresid": victim_db,
    }
    # A spec change makes the operator read the altered status: it is forgotten, with a condition.
    env.attacker.patch_status("resource", "echo", {"status": hostile})
    env.attacker.apply(
        resource(
            env.attacker,
            "echo",
            "humanitec/echo",
            type="config",
            driverInputs={
                "values": {"v": 2},
                "secretRefs": {"password": {"store": STORE, "ref": f"{b}/token"}},
            },
        )
    )
    obj = eventually(lambda: ready(env, env.attacker, "echo"), timeout=60, what="Ready again")
    assert victim_db not in env.recorder.deletes  # the "driver change" to logger was not believed
    assert condition(obj, "Tampered")["reason"] == "StatusAltered"  # type: ignore[index]
    assert obj["status"]["outputs"]["secretRefs"]["password"]["ref"] == own_key
    assert obj["status"]["seal"].startswith("hmac-sha256:")

    # Altered again, then deleted: the operator cleans up what it wrote, nothing else.
    env.attacker.patch_status("resource", "echo", {"status": hostile})
    delete(env, env.attacker, "echo")
    assert bao_value(env, victim_key) == "platform-secret"
    assert bao_value(env, victim_output) == "team-a-password"
    assert get(env.cluster, "configmap", a, "victim-cm") is not None
    assert get(env.cluster, "service", b, "victim-svc") is not None
    assert victim_db not in env.recorder.deletes
    assert bao_value(env, own_key) is None  # its own output is still removed
    assert ready(env, env.victim, "orders-db")


# --- manifests --------------------------------------------------------------------------------------------


def template(tenant: Tenant, name: str, manifests: str) -> dict[str, Any]:
    templates = {"manifests": manifests, "outputs": "done: yes\n"}
    return resource(tenant, name, "strongroom/template", type="config", id=f"shared.{name}",
                    driverInputs={"values": {"templates": templates}})  # fmt: skip


def test_template_resource_cannot_seize_or_delete_an_existing_object(env: Env) -> None:
    b = env.attacker.namespace
    apply(
        env.cluster,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": b},
            "data": {"mode": "safe"},
        },
        k8s_secret(b, "db-creds", {"password": "admin-set"}),
    )
    seize = (
        "cm:\n  location: namespace\n  data:\n    apiVersion: v1\n    kind: ConfigMap\n"
        "    metadata: {name: settings}\n    data: {mode: pwned}\n"
        "secret:\n  location: namespace\n  data:\n    apiVersion: v1\n    kind: Secret\n"
        "    metadata: {name: db-creds}\n    stringData: {password: pwned}\n"
    )
    env.attacker.apply(template(env.attacker, "seizer", seize))
    cond = eventually(lambda: refused(env, env.attacker, "seizer"), timeout=60, what="conflict")
    assert cond["reason"] == "ManifestConflict"
    assert "'settings'" in cond["message"]
    configmap = get(env.cluster, "configmap", b, "settings")
    assert configmap is not None
    assert configmap["data"] == {"mode": "safe"}
    assert not configmap["metadata"].get("ownerReferences")
    secret = get(env.cluster, "secret", b, "db-creds")
    assert secret is not None
    assert not secret["metadata"].get("ownerReferences")
    # Dropped from the next answer and then deleted with the Resource: still there.
    env.attacker.apply(template(env.attacker, "seizer", "{}\n"))
    eventually(lambda: ready(env, env.attacker, "seizer"), timeout=60, what="Ready without manifests")
    delete(env, env.attacker, "seizer")
    assert (get(env.cluster, "configmap", b, "settings") or {}).get("data") == {"mode": "safe"}
    assert get(env.cluster, "secret", b, "db-creds") is not None


def test_cluster_manifest_from_a_template_resource_is_refused(env: Env) -> None:
    name = f"tenant-admin-{env.attacker.namespace}"
    crb = (
        "crb:\n  location: cluster\n  data:\n    apiVersion: rbac.authorization.k8s.io/v1\n"
        f"    kind: ClusterRoleBinding\n    metadata: {{name: {name}}}\n"
        "    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
        f"    subjects: [{{kind: ServiceAccount, name: tenant, namespace: {env.attacker.namespace}}}]\n"
    )
    env.attacker.apply(template(env.attacker, "escalate", crb))
    cond = eventually(lambda: refused(env, env.attacker, "escalate"), timeout=60, what="refused")
    assert cond["reason"] == "ClusterManifestNotAllowed"
    assert "--builtin-cluster-manifests" in cond["message"]
    found = env.cluster.kubectl_run("get", "clusterrolebinding", name, check=False)
    assert found.returncode != 0


ROLE_MANIFEST = (
    "role:\n  location: namespace\n  data:\n    apiVersion: rbac.authorization.k8s.io/v1\n"
    "    kind: Role\n    metadata: {name: more-rights}\n"
    "    rules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n"
)
# ESO GHSA-fq7h-9x26-6j22: the token controller would fill such a Secret with an API token of the named
# ServiceAccount, handing the Resource's author that account's rights.
TOKEN_SECRET_MANIFEST = (
    "token:\n  location: namespace\n  data:\n    apiVersion: v1\n    kind: Secret\n"
    "    type: kubernetes.io/service-account-token\n"
    "    metadata:\n      name: stolen-token\n"
    "      annotations: {kubernetes.io/service-account.name: default}\n"
)


@pytest.mark.parametrize(
    ("name", "manifest", "reason", "says", "kind", "object_name"),
    [
        ("roles", ROLE_MANIFEST, "ManifestKindNotAllowed", "rbac.authorization.k8s.io/Role", "role",
         "more-rights"),
        ("tokens", TOKEN_SECRET_MANIFEST, "ServiceAccountTokenNotAllowed", "'stolen-token'", "secret",
         "stolen-token"),
    ],
    ids=["kind-not-allowed", "service-account-token-secret"],
)  # fmt: skip
def test_manifest_the_platform_does_not_allow_is_refused(
    env: Env, name: str, manifest: str, reason: str, says: str, kind: str, object_name: str
) -> None:
    env.attacker.apply(template(env.attacker, name, manifest))
    cond = eventually(lambda: refused(env, env.attacker, name), timeout=60, what="refused")
    assert cond["reason"] == reason
    assert says in cond["message"]
    assert get(env.cluster, kind, env.attacker.namespace, object_name) is None


# --- outputs that cannot fit ------------------------------------------------------------------------------


def test_outputs_too_large_are_refused_and_not_put_again(env: Env) -> None:
    big = Recorder(values={"blob": "x" * (2 * 1024 * 1024)})
    served = env.serve(big)
    huge = env.driver(env.attacker, "huge", served.target)
    huge["spec"]["maxResponseBytes"] = 4 * 1024 * 1024  # past the operator's 1 MiB default cap
    env.attacker.apply(
        huge,
        resource(env.attacker, "huge-res", "huge", type="queue", id="shared.huge"),
    )
    cond = eventually(lambda: refused(env, env.attacker, "huge-res"), timeout=90, what="refused")
    assert cond["reason"] == "OutputsTooLarge"
    assert "262144" in cond["message"]
    obj = get(env.cluster, "resource", env.attacker.namespace, "huge-res")
    assert condition(obj, "Stalled")["status"] == "True"  # type: ignore[index]
    seen = len(big.puts)
    assert seen == 1
    time.sleep(6)
    assert len(big.puts) == seen  # not retried with backoff
    # A changed spec calls the driver again.
    big.values = {"blob": "small"}
    env.attacker.apply(resource(env.attacker, "huge-res", "huge", type="queue", id="shared.huge",
                                driverInputs={"values": {"size": "small"}}))  # fmt: skip
    obj = eventually(lambda: ready(env, env.attacker, "huge-res"), timeout=60, what="Ready after the change")
    assert obj["status"]["outputs"]["values"] == {"blob": "small"}
    assert len(big.puts) == seen + 1


# --- workloads reading a Resource's status ----------------------------------------------------------------


def test_altered_secret_name_does_not_hand_another_secret_to_a_workload(env: Env) -> None:
    b = env.attacker.namespace
    apply(env.cluster, k8s_secret(b, "platform-creds", {"password": "platform-only"}))
    seed(env, f"{b}/db-password", "own-password")
    env.attacker.apply(
        resource(
            env.attacker,
            "api-db",
            "humanitec/echo",
            id="modules.api.externals.db",
            driverInputs={"secretRefs": {"password": {"store": STORE, "ref": f"{b}/db-password"}}},
        )
    )
    eventually(lambda: ready(env, env.attacker, "api-db"), timeout=60, what="Resource Ready")
    env.attacker.patch_status("resource", "api-db", {"status": {"secretName": "platform-creds"}})
    env.attacker.apply(
        {
            "apiVersion": API,
            "kind": "Workload",
            "metadata": {"name": "api", "namespace": b},
            "spec": {
                "containers": {
                    "main": {
                        "image": "ghcr.io/example/api:1.0",
                        "variables": {
                            "PASSWORD": "${resources.db.password}",
                            "DSN": "postgres://app:${resources.db.password}@db",
                        },
                    }
                },
                "resources": {"db": {"type": "postgres"}},
            },
        }
    )
    deployment = eventually(lambda: get(env.cluster, "deployment", b, "api"), timeout=60, what="Deployment")
    text = json.dumps(deployment)
    assert "platform-creds" not in text
    assert "api-db-outputs" in text
    composed = get(env.cluster, "secret", b, "api-env")
    assert composed is not None
    assert "platform-only" not in json.dumps(composed)


# --- cluster manifests from remote drivers ----------------------------------------------------------------


def cluster_role(name: str) -> dict[str, Any]:
    return {
        "location": "cluster",
        "data": {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
        },
    }


def test_a_tenants_driver_cannot_allow_itself_cluster_manifests(env: Env) -> None:
    name = f"read-all-secrets-{env.attacker.namespace}"
    served = env.serve(Recorder(manifests=[cluster_role(name)]))
    own = env.driver(env.attacker, "self-allowed", served.target)
    own["spec"]["allowClusterManifests"] = True  # only honoured on a Driver in the operator namespace
    env.attacker.apply(own, resource(env.attacker, "reader", "self-allowed", type="rbac", id="shared.reader"))
    cond = eventually(lambda: refused(env, env.attacker, "reader"), timeout=60, what="refused")
    assert cond["reason"] == "ClusterManifestNotAllowed"
    assert "operator namespace" in cond["message"]
    assert env.cluster.kubectl_run("get", "clusterrole", name, check=False).returncode != 0


def test_the_admins_driver_may_make_cluster_objects_and_deletes_only_its_own(env: Env) -> None:
    b = env.attacker.namespace
    suffix = b.rsplit("-", 1)[1]
    name = f"tenant-reader-{b}"
    served = env.serve(Recorder(manifests=[cluster_role(name)]))
    admin_driver = {
        "apiVersion": API,
        "kind": "Driver",
        "metadata": {
            "name": f"platform-rbac-{suffix}",
            "namespace": OPERATOR_NAMESPACE,
            "labels": {"tenancy-test": suffix},
        },
        "spec": {
            "target": served.target,
            "privateKeySecretRef": {"name": f"driver-key-{suffix}"},
            "allowClusterManifests": True,
            "allowedNamespaces": [b],
        },
    }
    apply(env.cluster, admin_driver)
    driver_type = f"platform-rbac-{suffix}"
    env.attacker.apply(resource(env.attacker, "rbac", driver_type, type="rbac", id="shared.rbac"))
    obj = eventually(lambda: ready(env, env.attacker, "rbac"), timeout=60, what="Ready")
    role = json.loads(env.cluster.kubectl_run("get", "clusterrole", name, "-o", "json").stdout)
    annotations = role["metadata"]["annotations"]
    assert annotations["strongroom.dev/resource"] == f"{b}/rbac"
    assert annotations["strongroom.dev/resource-uid"] == obj["metadata"]["uid"]
    # Another Resource whose answer names the same object cannot take it over, nor delete it.
    env.attacker.apply(resource(env.attacker, "rbac-too", driver_type, type="rbac", id="shared.rbac-too"))
    cond = eventually(lambda: refused(env, env.attacker, "rbac-too"), timeout=60, what="conflict")
    assert cond["reason"] == "ManifestConflict"
    assert name in cond["message"]
    delete(env, env.attacker, "rbac-too")
    assert env.cluster.kubectl_run("get", "clusterrole", name, check=False).returncode == 0
    delete(env, env.attacker, "rbac")
    assert env.cluster.kubectl_run("get", "clusterrole", name, check=False).returncode != 0
