"""The chart's RBAC is exactly what the operator uses: every verb granted is used, nothing it does is denied.

The API server of testenv writes an audit log (testenv/controlplane.py); the operator names itself in
`User-Agent: strongroom-operator/<version>` on every request. This module runs
last in `pytest tests` (its name), so the log then holds every request operators made during the whole
run. It does not rely on that: it first drives its own scenario with an operator that runs *as the chart's
ServiceAccount* in namespaced mode and touches every kind (SecretStores of two backends and two auth
methods, SecretMappings, Echo/Template Resources with manifests and a workload update, a Resource on a
remote Driver, Workloads, WorkloadPatches, deletes) with leader election on as the chart sets it (the
Lease), so the comparison never passes vacuously alone.

Then it fails
  (a) on any (apiGroup, resource[/subresource], verb) the chart grants, in either mode, that no operator
      request used, and
  (b) on any operator request the chart would deny: requests of the scenario's operator against the
      namespaced-mode chart it ran with (and the API server must not have answered 403 to any of them);
      every operator request of the run against the chart in either mode, configured for the namespaces
      the run served, except get/patch/delete of kinds the chart leaves to `rbac.extraRules` /
      `rbac.extraClusterRules` (driver manifests other test modules allow their operators).

`RACE_ONLY` names the grants only a race exercises (with the code that needs them); they are exempt
from (a). Two permissions are used without a request of their own, and are counted from evidence:
  - `create` through server-side apply: a `patch` that answered 201 created the object;
  - `<kind>/finalizers update`: setting `blockOwnerDeletion` on an owner reference to a `<kind>` object
    needs it (OwnerReferencesPermissionEnforcement, on in testenv); counted when an object the operator
    wrote in the scenario carries such a reference.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import hvac
import pytest
import yaml

import testenv
from strongroom.drivers.signing import generate_private_key, private_key_pem
from testenv.operator import OperatorProcess, start_operator
from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, free_port
from tests.conftest import Cluster
from tests.integration.helpers import apply, condition, ensure_namespace, eventually, get, k8s_secret

pytestmark = pytest.mark.integration

CHART = REPO_ROOT / "charts" / "strongroom"
API = "strongroom.dev/v1alpha1"
USER_AGENT_PREFIX = "strongroom-operator/"
# Allowed to every authenticated user by the API server's bootstrap roles, not by the chart.
BOOTSTRAP_ALLOWED = {
    ("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
    ("authorization.k8s.io", "selfsubjectrulesreviews", "create"),
    ("authentication.k8s.io", "selfsubjectreviews", "create"),
}

Permission = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)

# Granted for a path no scenario can take on purpose (a race), each with the place that needs it. Keep
# this list short: a grant belongs here only if the code would fail without it and a test cannot time it.
RACE_ONLY: dict[Permission, str] = {
    ("strongroom.dev", "resources", "get"): (
        "operator/resourcewrites.py re-reads a Resource after its finalizer patch got 409 "
        "(someone wrote the object between the operator's read and its patch)"
    ),
}


@dataclass(frozen=True)
class Request:
    user: str
    permission: Permission
    namespace: str | None
    name: str | None
    code: int

    def __str__(self) -> str:
        group, resource, verb = self.permission
        where = f"namespace {self.namespace}" if self.namespace else "cluster scope"
        return (
            f"{verb} {resource}.{group or 'core'} {self.name or ''} in {where} by {self.user} -> {self.code}"
        )


def operator_requests(audit_log: Path) -> list[Request]:
    found = []
    with audit_log.open() as lines:
        for line in lines:
            event = json.loads(line)
            ref = event.get("objectRef")
            if not str(event.get("userAgent", "")).startswith(USER_AGENT_PREFIX) or not ref:
                continue
            resource = ref.get("resource", "")
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            found.append(
                Request(
                    user=event["user"]["username"],
                    permission=(ref.get("apiGroup", ""), resource, event["verb"]),
                    namespace=ref.get("namespace"),
                    name=ref.get("name"),
                    code=int((event.get("responseStatus") or {}).get("code", 0)),
                )
            )
    return found


# --- the chart's rules ------------------------------------------------------------------------------------


@dataclass
class Rbac:
    """The rules a rendered chart gives its ServiceAccount: everywhere, and per namespace."""

    cluster_rules: list[dict[str, Any]]
    namespace_rules: dict[str, list[dict[str, Any]]]

    def allows(self, request: Request) -> bool:
        if request.permission in BOOTSTRAP_ALLOWED:
            return True
        rules = list(self.cluster_rules)
        if request.namespace:
            rules += self.namespace_rules.get(request.namespace, [])
        return any(_matches(rule, request) for rule in rules)

    def granted(self) -> set[Permission]:
        rules = self.cluster_rules + [r for rs in self.namespace_rules.values() for r in rs]
        return {
            (group, resource, verb)
            for rule in rules
            for group in rule.get("apiGroups", [])
            for resource in rule.get("resources", [])
            for verb in rule.get("verbs", [])
        }


def _matches(rule: dict[str, Any], request: Request) -> bool:
    group, resource, verb = request.permission
    names = rule.get("resourceNames")
    return (
        group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and verb in rule.get("verbs", [])
        and (not names or request.name in names)
    )


def render(cluster: Cluster, release: str, namespace: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        json.dump(values, file)  # YAML is a superset of JSON
        file.flush()
        args = [str(cluster.helm), "template", release, str(CHART), "--namespace", namespace, "-f", file.name]
        return [doc for doc in yaml.safe_load_all(cluster.run(*args).stdout) if doc]


def chart_rbac(cluster: Cluster, values: dict[str, Any]) -> Rbac:
    """What `helm install strongroom charts/strongroom -n strongroom-system` with `values` grants."""
    return rbac_of(
        render(cluster, "strongroom", "strongroom-system", values), "strongroom", "strongroom-system"
    )


def rbac_of(docs: list[dict[str, Any]], account: str, account_namespace: str) -> Rbac:
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs}
    result = Rbac([], {})
    for doc in docs:
        if doc["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == account and s["namespace"] == account_namespace
            for s in doc["subjects"]
        ):
            continue
        ref = doc["roleRef"]
        role_namespace = None if ref["kind"] == "ClusterRole" else doc["metadata"]["namespace"]
        rules = roles[(ref["kind"], role_namespace, ref["name"])].get("rules") or []
        if doc["kind"] == "ClusterRoleBinding":
            result.cluster_rules += rules
        else:
            result.namespace_rules.setdefault(doc["metadata"]["namespace"], []).extend(rules)
    return result


# --- the scenario -----------------------------------------------------------------------------------------


@dataclass
class Scenario:
    account: str
    user: str
    rbac: Rbac
    owner_kinds: set[str]  # kinds with a blockOwnerDeletion reference from an object the operator wrote
    operator: OperatorProcess


def _resource(namespace: str, name: str, driver_type: str, type_: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Resource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": type_, "id": f"shared.{name}", "driverType": driver_type, **spec},
    }


def _settled(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    """The object once the operator wrote a Ready condition for its current generation."""
    obj = get(cluster, kind, namespace, name)
    ready = condition(obj)
    if obj and ready and (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]:
        return obj
    return None


def _ready(cluster: Cluster, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    obj = _settled(cluster, kind, namespace, name)
    return obj if obj and (condition(obj) or {}).get("status") == "True" else None


def _gone(cluster: Cluster, kind: str, namespace: str, name: str) -> bool:
    return get(cluster, kind, namespace, name) is None


def _owner_kinds(objects: Iterable[dict[str, Any] | None]) -> set[str]:
    return {
        ref["kind"]
        for obj in objects
        if obj
        for ref in obj["metadata"].get("ownerReferences") or []
        if ref.get("blockOwnerDeletion") and ref["apiVersion"].startswith("strongroom.dev/")
    }


TEMPLATES = {
    "manifests": (
        "deploy:\n"
        "  location: namespace\n"
        "  data:\n"
        "    apiVersion: apps/v1\n"
        "    kind: Deployment\n"
        "    metadata: {name: audit-deploy}\n"
        "    spec:\n"
        "      selector: {matchLabels: {app: audit}}\n"
        "      template:\n"
        "        metadata: {labels: {app: audit}}\n"
        "        spec: {containers: [{name: c, image: 'busybox:1'}]}\n"
        "proxy:\n"
        "  location: containers\n"
        "  data: {name: proxy, image: 'envoy:1.30'}\n"
    ),
    "outputs": "host: {{ .driver.values.host }}\n",
}


@pytest.fixture(scope="module")
def scenario(
    cluster: Cluster, stores: testenv.Environment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    workdir = tmp_path_factory.mktemp("rbac-audit")
    cluster.install_crds()
    suffix = secrets.token_hex(3)
    operator_ns, app_ns = f"audit-sys-{suffix}", f"audit-app-{suffix}"
    for namespace in (operator_ns, app_ns):
        ensure_namespace(cluster, namespace)
    release = f"audit-{suffix}"
    docs = render(
        cluster,
        release,
        operator_ns,
        {"watchNamespaces": [app_ns], "rbac": {"serviceAccountTokenNamespaces": [app_ns]}},
    )
    rbac_docs = [
        d
        for d in docs
        if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    ]
    apply(cluster, *rbac_docs)
    (account,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    token = cluster.kubectl_run("-n", operator_ns, "create", "token", account, "--duration=1h").stdout.strip()
    kubeconfig = workdir / "operator.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": cluster.server, "certificate-authority": cluster.info["ca"]},
                    }
                ],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
            }
        )
    )
    # Leader election as the chart configures it (its Lease: create, get, update).
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    election = [
        a for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"] if "leader-elect" in a
    ]
    assert "--leader-elect" in election
    operator = start_operator(
        kubeconfig,
        workdir / "operator.log",
        ["-n", app_ns, "--store-check-interval=2s", "--log-level=debug", *election],
        operator_namespace=operator_ns,
    )
    try:
        yield Scenario(
            account=account,
            user=f"system:serviceaccount:{operator_ns}:{account}",
            rbac=rbac_of(docs, account, operator_ns),
            owner_kinds=_drive(cluster, stores, app_ns, operator_ns),
            operator=operator,
        )
    finally:
        for namespace in (app_ns, operator_ns):
            cluster.kubectl_run("delete", "namespace", namespace, "--wait=false", check=False)
        operator.stop()
        for kind in ("clusterrolebinding", "clusterrole"):
            for doc in rbac_docs:
                if doc["kind"].lower() == kind:
                    cluster.kubectl_run(
                        "delete", kind, doc["metadata"]["name"], "--ignore-not-found", check=False
                    )


def _drive(cluster: Cluster, stores: testenv.Environment, ns: str, operator_ns: str) -> set[str]:
    """Touch every kind and every path that needs a permission; return the owner kinds seen."""
    bao = stores.info("openbao")
    key = generate_private_key(2048)
    path = f"audit-{uuid.uuid4().hex[:8]}"
    hvac.Client(url=bao["addr"], token=bao["root_token"]).secrets.kv.v2.create_or_update_secret(
        path=path, secret={"value": "audit-value"}
    )
    closed_port = free_port()
    apply(
        cluster,
        k8s_secret(ns, "bao-token", {"token": bao["root_token"]}),
        k8s_secret(ns, "plain", {"username": "u"}),
        k8s_secret(
            ns, "driver-key", {"privateKey": private_key_pem(key).decode(), "organisationID": "audit"}
        ),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bao-reader", "namespace": ns}},
        # Token auth (reads a Secret); the namespace's default store, where Resource outputs go.
        {
            "apiVersion": API,
            "kind": "SecretStore",
            "metadata": {"name": "bao", "namespace": ns, "labels": {"strongroom.dev/default-store": "true"}},
            "spec": {
                "vault": {
                    "url": bao["addr"],
                    "path": "secret",
                    "auth": {"tokenSecretRef": {"name": "bao-token", "key": "token"}},
                }
            },
        },
        # Kubernetes auth for a ServiceAccount of the namespace: a TokenRequest. Nothing listens there, so
        # the login fails after the token was requested, which is all this needs.
        {
            "apiVersion": API,
            "kind": "SecretStore",
            "metadata": {"name": "bao-k8s", "namespace": ns},
            "spec": {
                "vault": {
                    "url": f"https://{LOOPBACK}:{closed_port}",
                    "path": "secret",
                    "auth": {"kubernetes": {"role": "audit", "serviceAccountRef": {"name": "bao-reader"}}},
                }
            },
        },
        # The kubernetes backend: Secrets of the store's own namespace.
        {
            "apiVersion": API,
            "kind": "SecretStore",
            "metadata": {"name": "k8s", "namespace": ns},
            "spec": {"kubernetes": {"namespace": ns}},
        },
        {
            "apiVersion": API,
            "kind": "Driver",
            "metadata": {"name": "remote", "namespace": ns},
            "spec": {
                "target": f"http://{LOOPBACK}:{closed_port}/",
                "privateKeySecretRef": {"name": "driver-key"},
            },
        },
    )
    mapping = {
        "apiVersion": API,
        "kind": "SecretMapping",
        "metadata": {"name": "m", "namespace": ns},
        "spec": {
            "secretName": "m",
            "secretData": [
                {
                    "secretKey": "password",
                    "secretStoreName": "bao",
                    "remoteRef": {"key": path, "property": "value"},
                },
                {
                    "secretKey": "username",
                    "secretStoreName": "k8s",
                    "remoteRef": {"key": "plain", "property": "username"},
                },
            ],
        },
    }
    echo = _resource(
        ns, "echo", "strongroom/echo", "postgres",
        driverInputs={"values": {"host": "db"}, "secretRefs": {"password": {"store": "bao", "ref": path}}},
    )  # fmt: skip
    template = _resource(
        ns, "tpl", "strongroom/template", "config",
        driverInputs={"values": {"host": "cache", "templates": TEMPLATES}},
    )  # fmt: skip
    operations = [{"op": "add", "path": "/spec/containers/main/variables/X", "value": "1"}]
    update = _resource(
        ns, "api-workload", "strongroom/echo", "workload", id="modules.api",
        driverInputs={"values": {"update": operations}},
    )  # fmt: skip
    remote = _resource(ns, "remote-db", "remote", "postgres")
    workload: dict[str, Any] = {
        "apiVersion": API,
        "kind": "Workload",
        "metadata": {"name": "api", "namespace": ns},
        "spec": {
            "containers": {
                "main": {
                    "image": "ghcr.io/example/api:1",
                    "files": {"/etc/app.conf": {"content": "x\n"}},
                    "variables": {"MODE": "audit"},
                }
            },
            "service": {"ports": {"http": {"port": 80}}},
        },
    }
    # score-k8s's StatefulSet annotation: the operator applies a StatefulSet and its headless Service,
    # and prunes both when the annotation goes (the pods then run in a Deployment).
    stateful: dict[str, Any] = {
        "apiVersion": API,
        "kind": "Workload",
        "metadata": {"name": "db", "namespace": ns},
        "spec": {
            "metadata": {"name": "db", "annotations": {"k8s.score.dev/kind": "StatefulSet"}},
            "containers": {"main": {"image": "ghcr.io/example/db:1"}},
        },
    }
    user_patch = {
        "apiVersion": API,
        "kind": "WorkloadPatch",
        "metadata": {"name": "by-hand", "namespace": ns},
        "spec": {
            "workloadName": "api",
            "patches": [{"op": "add", "path": "/spec/containers/main/variables/Y", "value": "2"}],
        },
    }
    apply(cluster, mapping, echo, template, update, remote, workload, stateful, user_patch)

    eventually(lambda: _ready(cluster, "secretstore", ns, "bao"), timeout=60, what="store bao Ready")
    eventually(
        lambda: _settled(cluster, "secretstore", ns, "bao-k8s"), timeout=60, what="store bao-k8s checked"
    )
    eventually(lambda: _ready(cluster, "secretmapping", ns, "m"), timeout=60, what="SecretMapping Ready")
    for name in ("echo", "tpl", "api-workload"):
        eventually(partial(_ready, cluster, "resource", ns, name), timeout=60, what=f"Resource {name}")
    eventually(
        lambda: _settled(cluster, "resource", ns, "remote-db"), timeout=60, what="remote Resource tried"
    )
    eventually(lambda: get(cluster, "workloadpatch", ns, "api-workload"), timeout=60, what="WorkloadPatch")
    eventually(lambda: _ready(cluster, "workload", ns, "api"), timeout=60, what="Workload rendered")
    eventually(
        lambda: _ready(cluster, "workload", ns, "db"), timeout=60, what="StatefulSet Workload rendered"
    )
    eventually(
        lambda: _settled(cluster, "workloadpatch", ns, "by-hand"), timeout=60, what="WorkloadPatch status"
    )
    owners = _owner_kinds(
        [
            get(cluster, "secret", ns, "m"),
            get(cluster, "secret", ns, "echo-outputs"),
            get(cluster, "deployment", ns, "audit-deploy"),
            get(cluster, "secret", ns, "tpl-manifests"),
            get(cluster, "configmap", ns, "api-main-files"),
            get(cluster, "workloadpatch", ns, "api-workload"),
            get(cluster, "deployment", ns, "api"),
            get(cluster, "statefulset", ns, "db"),
        ]
    )

    # Changes that delete: manifests no longer emitted (a Deployment, the containers' Secret), a Service
    # and files no longer rendered, a workload update withdrawn (its WorkloadPatch goes); then Resources
    # and the Workload deleted (finalizers, stored outputs).
    template["spec"]["driverInputs"]["values"]["templates"] = dict(TEMPLATES, manifests="{}\n")
    workload["spec"] = {"containers": {"main": {"image": "ghcr.io/example/api:1"}}}
    update["spec"]["driverInputs"] = {"values": {"host": "db"}}
    stateful["spec"] = {"containers": {"main": {"image": "ghcr.io/example/db:1"}}}
    apply(cluster, template, workload, update, stateful)
    for kind, name in [
        ("statefulset", "db"),
        ("service", "db-headless-svc"),
        ("deployment", "audit-deploy"),
        ("secret", "tpl-manifests"),
        ("service", "api"),
        ("configmap", "api-main-files"),
        ("workloadpatch", "api-workload"),
    ]:
        eventually(partial(_gone, cluster, kind, ns, name), timeout=60, what=f"{kind} {name} deleted")
    for name in ("api-workload", "echo", "tpl"):
        cluster.kubectl_run("-n", ns, "delete", "resource", name, "--wait=false")
    cluster.kubectl_run("-n", ns, "delete", "workload", "api", "--wait=false")
    cluster.kubectl_run("-n", ns, "delete", "workload", "db", "--wait=false")
    cluster.kubectl_run("-n", ns, "delete", "secretmapping", "m", "--wait=false")
    for name in ("api-workload", "echo", "tpl"):
        eventually(partial(_gone, cluster, "resource", ns, name), timeout=60, what=f"{name} gone")
    # The remote Resource's driver never answered: let it go without deprovisioning (test cleanup only).
    cluster.kubectl_run(
        "-n", ns, "patch", "resource", "remote-db", "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    return owners


# --- the checks -------------------------------------------------------------------------------------------


def _all_requests(cluster: Cluster) -> list[Request]:
    assert "audit_log" in cluster.info, "this control plane writes no audit log: restart `testenv up`"
    return operator_requests(Path(cluster.info["audit_log"]))


# What the operator does to the objects drivers emit as manifests (server-side apply, ownership reads,
# deletes); kinds beyond the chart's own are granted by the admin with rbac.extraRules/extraClusterRules.
MANIFEST_VERBS = {"get", "patch", "delete"}


def driver_manifest(request: Request, granted: set[Permission]) -> bool:
    """A request on a kind the chart leaves to rbac.extraRules/extraClusterRules (driver manifests that
    other test modules configure for their operators): none of the manifest verbs is granted for it."""
    group, resource, verb = request.permission
    return verb in MANIFEST_VERBS and not any((group, resource, v) in granted for v in MANIFEST_VERBS)


def used_permissions(requests: list[Request], owner_kinds: set[str]) -> set[Permission]:
    used = {r.permission for r in requests if r.code not in (401, 403)}  # a 404 was authorised too
    # Server-side apply that created the object used `create`.
    used |= {
        (g, res, "create")
        for r in requests
        if r.code == 201
        for (g, res, verb) in [r.permission]
        if verb == "patch"
    }
    plural = {"SecretMapping": "secretmappings", "Resource": "resources", "Workload": "workloads"}
    used |= {
        ("strongroom.dev", f"{plural[kind]}/finalizers", "update") for kind in owner_kinds if kind in plural
    }
    return used


def test_every_permission_the_chart_grants_is_used(cluster: Cluster, scenario: Scenario) -> None:
    requests = _all_requests(cluster)
    assert any(r.user == scenario.user for r in requests), "no request of the scenario's operator was audited"
    used = used_permissions(requests, scenario.owner_kinds)
    granted = set()
    for values in (
        {"rbac": {"serviceAccountTokenNamespaces": ["team-a"]}},
        {"watchNamespaces": ["team-a"], "rbac": {"serviceAccountTokenNamespaces": ["team-a"]}},
    ):
        granted |= chart_rbac(cluster, values).granted()
    unused = sorted(granted - used - set(RACE_ONLY))
    assert not unused, "granted by the chart but never used by the operator:\n" + "\n".join(map(str, unused))


def test_nothing_the_operator_does_is_denied(cluster: Cluster, scenario: Scenario) -> None:
    requests = _all_requests(cluster)
    own = [r for r in requests if r.user == scenario.user]
    denied = [r for r in own if r.code == 403]
    assert not denied, "the namespaced chart's RBAC refused:\n" + "\n".join(map(str, denied))
    refused = [r for r in own if not scenario.rbac.allows(r)]
    assert not refused, "the namespaced chart would refuse:\n" + "\n".join(map(str, refused))
    output = scenario.operator.logs().lower()
    assert "forbidden" not in output
    assert "not enough permissions" not in output

    # Every operator request of the run (other test modules run operators as cluster-admin, in either
    # mode): allowed by the chart in one of its modes, configured for the namespaces the run served.
    tokens = ("", "serviceaccounts/token", "create")
    served = sorted({r.namespace for r in requests if r.namespace})
    token_namespaces = sorted({r.namespace for r in requests if r.namespace and r.permission == tokens})
    charts = [
        chart_rbac(cluster, {"rbac": {"serviceAccountTokenNamespaces": token_namespaces}}),
        chart_rbac(
            cluster,
            {"watchNamespaces": served, "rbac": {"serviceAccountTokenNamespaces": token_namespaces}},
        ),
    ]
    granted = charts[0].granted() | charts[1].granted()
    outside = sorted(
        {
            str(r)
            for r in requests
            # The scenario's own requests were checked above against the very chart it ran with (its
            # release name and namespace name its Lease, which a chart rendered here would not).
            if r.user != scenario.user
            and not any(chart.allows(r) for chart in charts)
            and not driver_manifest(r, granted)
        }
    )
    assert not outside, "the chart would refuse in either mode:\n" + "\n".join(outside)
