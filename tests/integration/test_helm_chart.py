"""The Helm chart: lint, render, validate against the Kubernetes schemas, install for real.

`ct lint` / `ct install` are not available here, so they are emulated: `helm lint --strict`, `helm
template | kubernetes-validate --strict` (newest schema it bundles), and `helm install` into the local
control plane, then assert the objects (pods never run there: no kubelet).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from strongroom.api.crds import render_crds_yaml
from testenv.paths import REPO_ROOT

if TYPE_CHECKING:
    from tests.conftest import Cluster

pytestmark = pytest.mark.integration

CHART = REPO_ROOT / "charts" / "strongroom"
CRD_FILE = CHART / "crds" / "strongroom.dev.yaml"
NAMESPACED_VALUES = ["--set", "watchNamespaces={team-a,team-b}"]
# The Kubernetes kinds the chart may render; every one must pass validation, none may be skipped.
CHART_KINDS = {
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "CustomResourceDefinition",
}


def _crd_plurals() -> set[str]:
    return {doc["spec"]["names"]["plural"] for doc in yaml.safe_load_all(render_crds_yaml()) if doc}


def _helm(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cluster.run(str(cluster.helm), *args, check=check)


def _template(cluster: Cluster, *args: str, namespace: str = "strongroom-system") -> list[dict[str, Any]]:
    out = _helm(cluster, "template", "strongroom", str(CHART), "--namespace", namespace, *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def _strongroom_resources(rules: list[dict[str, Any]]) -> set[str]:
    return {r for rule in rules if "strongroom.dev" in rule["apiGroups"] for r in rule["resources"]}


# --- the chart's CRDs never drift from the models ---------------------------------------------------------


def test_chart_crds_equal_the_generated_crds() -> None:
    assert CRD_FILE.read_bytes() == render_crds_yaml().encode(), (
        "charts/strongroom/crds/strongroom.dev.yaml is stale; regenerate it with "
        "`strongroom crds > charts/strongroom/crds/strongroom.dev.yaml` (or `make crds`)"
    )


# --- lint and schema validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[], NAMESPACED_VALUES], ids=["cluster-wide", "namespaced"])
def test_helm_lint_strict(cluster: Cluster, values: list[str]) -> None:
    result = _helm(cluster, "lint", "--strict", str(CHART), *values, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


@pytest.mark.parametrize("values", [[], NAMESPACED_VALUES], ids=["cluster-wide", "namespaced"])
def test_rendered_manifests_pass_kubernetes_validate_strict(cluster: Cluster, values: list[str]) -> None:
    rendered = _helm(
        cluster,
        "template",
        "strongroom",
        str(CHART),
        "--namespace",
        "strongroom-system",
        "--include-crds",
        *values,
    ).stdout
    validator = shutil.which("kubernetes-validate", path=cluster.env["PATH"])
    assert validator
    from kubernetes_validate.utils import latest_version

    newest = latest_version()
    result = subprocess.run(
        [validator, "--strict", "-k", newest, "-"],
        input=rendered,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "ERROR" not in report
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    assert {doc["kind"] for doc in docs} <= CHART_KINDS
    # A kind without a bundled schema is only warned about: make sure nothing was skipped that way.
    assert "WARN" not in report, report
    assert report.count("passed for resource") == len(docs), report


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        # Two replicas without leader election would both write.
        (["--set", "leaderElection.enabled=false"], "replicaCount"),
        (["--set", "leaderElection.leaseDuration=soon"], "leaseDuration"),
        (["--set", "logFormat=yaml"], "logFormat"),
        (["--set", "watchNamespaces={Not_Valid}"], "watchNamespaces"),
        (["--set", "unknownKey=1"], "unknownKey"),
        (["--set", "template.memory=lots"], "/template/memory"),
        (["--set", "template.workers=0"], "/template/workers"),
        (["--set", "resourcePolicy.manifestKinds={apps/v1/Deployment}"], "manifestKinds"),
        (["--set", "resourcePolicy.explicitGuresidNamespaces={Team_A}"], "explicitGuresidNamespaces"),
    ],
)
def test_values_schema_rejects_bad_values(cluster: Cluster, args: list[str], complaint: str) -> None:
    result = _helm(cluster, "template", "strongroom", str(CHART), *args, check=False)
    assert result.returncode != 0
    assert complaint in result.stderr


# --- what the templates render ----------------------------------------------------------------------------


def test_deployment(cluster: Cluster) -> None:
    docs = _template(
        cluster,
        "--set",
        "logLevel=debug",
        "--set",
        "podLabels.team=platform",
        "--set",
        "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/x",
    )
    deployment = _one(docs, "Deployment", "strongroom-controller-manager")
    # Two replicas, one leading: rolling updates start a standby before an old pod goes.
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["team"] == "platform"
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "strongroom"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 65532
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    assert container["name"] == "manager"
    assert container["image"] == "ghcr.io/strongroom-dev/strongroom:0.1.0"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 65532
    assert "--log-level=debug" in container["args"]
    assert "--log-format=json" in container["args"]
    assert {"--template-timeout=5s", "--template-memory=128Mi", "--template-workers=2"} <= set(
        container["args"]
    )
    assert not [a for a in container["args"] if a.startswith("--namespace=")]
    assert [a for a in container["args"] if a.startswith("--leader-elect")] == [
        "--leader-elect",
        "--leader-elect-lease-name=strongroom-leader",
        "--leader-elect-lease-duration=15s",
        "--leader-elect-renew-deadline=10s",
        "--leader-elect-retry-period=2s",
    ]
    selector = deployment["spec"]["selector"]["matchLabels"]
    (spread,) = spec["topologySpreadConstraints"]
    assert spread["labelSelector"]["matchLabels"] == selector
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"
    budget = _one(docs, "PodDisruptionBudget", "strongroom-controller-manager")
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8081, "metrics": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    (env,) = [e for e in container["env"] if e["name"] == "POD_NAMESPACE"]
    assert env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    account = _one(docs, "ServiceAccount", "strongroom")
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/x"}
    service = _one(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_leader_election_rbac_and_switching_it_off(cluster: Cluster) -> None:
    docs = _template(cluster, "--set", "leaderElection.leaseName=my-lease")
    role = _one(docs, "Role", "strongroom-leader-election")
    assert role["metadata"]["namespace"] == "strongroom-system"
    # create cannot be limited by name; get and update only of the one Lease.
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["my-lease"],
            "verbs": ["get", "update"],
        },
    ]
    binding = _one(docs, "RoleBinding", "strongroom-leader-election")
    assert binding["roleRef"]["name"] == "strongroom-leader-election"
    assert (
        "--leader-elect-lease-name=my-lease"
        in _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    )

    # Off: one replica, Recreate, no Lease rights, no budget, no spread.
    docs = _template(cluster, "--set", "leaderElection.enabled=false", "--set", "replicaCount=1")
    deployment = _one(docs, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    spec = deployment["spec"]["template"]["spec"]
    assert not [a for a in spec["containers"][0]["args"] if a.startswith("--leader-elect")]
    assert "topologySpreadConstraints" not in spec
    assert not [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert not [d for d in docs if d["metadata"]["name"].endswith("leader-election")]


def test_resource_policy_values_become_flags(cluster: Cluster) -> None:
    def args(*values: str) -> list[str]:
        deployment = _one(_template(cluster, *values), "Deployment", "strongroom-controller-manager")
        found: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        return found

    defaults = args()
    assert "--manifest-kinds=ConfigMap,Secret,Service,apps/Deployment" in defaults
    assert not [a for a in defaults if a.startswith(("--explicit-guresid", "--builtin-cluster"))]
    chosen = args(
        "--set",
        "resourcePolicy.explicitGuresidNamespaces={team-a,platform}",
        "--set",
        "resourcePolicy.manifestKinds={ConfigMap,networking.k8s.io/Ingress}",
        "--set",
        "resourcePolicy.builtinClusterManifests=true",
    )
    assert "--explicit-guresid-namespaces=team-a,platform" in chosen
    assert "--manifest-kinds=ConfigMap,networking.k8s.io/Ingress" in chosen
    assert "--builtin-cluster-manifests" in chosen


def test_cluster_wide_rbac(cluster: Cluster) -> None:
    docs = _template(cluster)
    # The only Roles, both in the release namespace: tokens of the operator's own ServiceAccount, and the
    # leader-election Lease (test_leader_election_rbac_and_switching_it_off).
    roles = {d["metadata"]["name"] for d in docs if d["kind"] == "Role"}
    assert roles == {"strongroom-own-token", "strongroom-leader-election"}
    own_token = _one(docs, "Role", "strongroom-own-token")
    assert own_token["metadata"]["namespace"] == "strongroom-system"
    assert own_token["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["serviceaccounts/token"],
            "resourceNames": ["strongroom"],
            "verbs": ["create"],
        }
    ]
    role = _one(docs, "ClusterRole", "strongroom-manager")
    plurals = _crd_plurals()
    resources = _strongroom_resources(role["rules"])
    # Every served kind; the status of every kind (Drivers' too); the finalizers of the kinds that own objects
    # the operator writes (blockOwnerDeletion). Nothing the CRDs do not define. Exact verbs: every one is
    # used (tests/integration/test_zz_rbac_audit.py proves it against the audit log).
    owners = {"secretmappings", "resources", "workloads"}
    assert resources == (plurals | {f"{p}/status" for p in plurals} | {f"{p}/finalizers" for p in owners})
    by_resource: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for g in rule["apiGroups"]:
            for r in rule["resources"]:
                by_resource.setdefault((g, r), set()).update(rule["verbs"])
    # Stores and mappings are only listed and watched: after a watch gap the new list alone says what was
    # deleted (operator/relist.py), no object is looked up.
    assert by_resource[("strongroom.dev", "secretstores")] == {"list", "watch"}
    assert by_resource[("strongroom.dev", "secretmappings")] == {"list", "watch"}
    assert by_resource[("strongroom.dev", "resources")] == {"get", "list", "watch", "patch"}
    assert by_resource[("strongroom.dev", "workloadpatches")] == {
        "get",
        "list",
        "watch",
        "create",
        "patch",
        "delete",
    }
    assert by_resource[("strongroom.dev", "secretstores/status")] == {"patch"}
    assert by_resource[("strongroom.dev", "resources/finalizers")] == {"update"}
    # Secrets are watched only label-selected (what the operator wrote), for drift repair.
    assert by_resource[("", "secrets")] == {"get", "list", "watch", "create", "patch", "delete"}
    # Events: posted and, when repeated, counted; never read.
    assert by_resource[("", "events")] == {"create", "patch"}
    # Not granted: service accounts' tokens cluster-wide, namespaces (cluster-wide mode does not watch
    # them), token reviews.
    for absent in ("serviceaccounts/token", "namespaces"):
        assert ("", absent) not in by_resource
    assert ("authentication.k8s.io", "tokenreviews") not in by_resource
    assert not [rule for rule in role["rules"] if "*" in rule["verbs"] or "*" in rule["resources"]]
    binding = _one(docs, "ClusterRoleBinding", "strongroom-manager")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "strongroom", "namespace": "strongroom-system"}
    ]


def test_namespaced_rbac(cluster: Cluster) -> None:
    docs = _template(cluster, *NAMESPACED_VALUES)
    roles = {
        d["metadata"]["namespace"]: d
        for d in docs
        if d["kind"] == "Role" and d["metadata"]["name"] == "strongroom-manager"
    }
    # The release namespace always: operator-level SecretStores live there.
    assert set(roles) == {"team-a", "team-b", "strongroom-system"}
    bindings = {d["metadata"]["namespace"] for d in docs if d["kind"] == "RoleBinding"}
    assert bindings == set(roles)
    plurals = _crd_plurals()
    for role in roles.values():
        assert plurals <= _strongroom_resources(role["rules"])
    # Nothing cluster-wide: the watches are per namespace, and no namespace list or CRD watch is needed.
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    deployment = _one(docs, "Deployment")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [a for a in args if a.startswith("--namespace=")] == ["--namespace=team-a", "--namespace=team-b"]


def test_service_account_tokens_only_where_listed(cluster: Cluster) -> None:
    docs = _template(cluster, "--set", "rbac.serviceAccountTokenNamespaces={team-a}")
    tokens = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d["rules"]
        for d in docs
        if d["kind"] == "Role" and d["metadata"]["name"] != "strongroom-leader-election"
    }
    rule = {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}
    assert tokens == {
        ("strongroom-system", "strongroom-own-token"): [dict(rule, resourceNames=["strongroom"])],
        ("team-a", "strongroom-service-account-tokens"): [rule],
    }
    bindings = {
        (d["metadata"]["namespace"], d["roleRef"]["name"])
        for d in docs
        if d["kind"] == "RoleBinding" and d["roleRef"]["name"] != "strongroom-leader-election"
    }
    assert bindings == set(tokens)
    # The operator learns its own ServiceAccount's name from the downward API.
    container = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("valueFrom") for e in container["env"]}
    assert env["STRONGROOM_SERVICE_ACCOUNT"] == {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}
    assert "--namespace-worker-share=0.5" in container["args"]


def test_release_namespace_in_watch_list_is_not_doubled(cluster: Cluster) -> None:
    docs = _template(cluster, "--set", "watchNamespaces={strongroom-system,team-a}")
    managers = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "strongroom-manager"]
    assert sorted(d["metadata"]["namespace"] for d in managers) == [
        "strongroom-system",
        "team-a",
    ]


def test_optional_parts_can_be_switched_off(cluster: Cluster) -> None:
    docs = _template(
        cluster,
        "--set",
        "rbac.create=false",
        "--set",
        "serviceAccount.create=false",
        "--set",
        "serviceAccount.name=existing",
        "--set",
        "metrics.enabled=false",
        "--set",
        "podDisruptionBudget.enabled=false",
    )
    assert {d["kind"] for d in docs} == {"Deployment"}
    spec = docs[0]["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "existing"
    assert "--metrics-port=0" in spec["containers"][0]["args"]


# --- install into the real control plane ------------------------------------------------------------------


def _kubectl_json(cluster: Cluster, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cluster.kubectl_run(*args, "-o", "json").stdout)
    return data


def test_helm_install_cluster_wide(cluster: Cluster) -> None:
    namespace = f"strongroom-{secrets.token_hex(3)}"
    result = _helm(
        cluster,
        "install",
        "strongroom",
        str(CHART),
        "--namespace",
        namespace,
        "--create-namespace",
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        assert "kubectl -n" in result.stdout  # NOTES.txt rendered
        deployment = _kubectl_json(
            cluster, "-n", namespace, "get", "deployment", "strongroom-controller-manager"
        )
        assert [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]] == ["manager"]
        cluster.kubectl_run("-n", namespace, "get", "serviceaccount", "strongroom")
        cluster.kubectl_run("-n", namespace, "get", "service", "strongroom-controller-manager-metrics")
        cluster.kubectl_run("get", "clusterrole", "strongroom-manager")
        binding = _kubectl_json(cluster, "get", "clusterrolebinding", "strongroom-manager")
        assert binding["subjects"][0]["namespace"] == namespace
        cluster.kubectl_run(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "-l",
            "app.kubernetes.io/part-of=strongroom",
        )
        names = set(cluster.kubectl_run("get", "crd", "-o", "name").stdout.split())
        assert {
            f"customresourcedefinition.apiextensions.k8s.io/{p}.strongroom.dev" for p in _crd_plurals()
        } <= names
        # The installed RBAC really lets the service account do its job (checked by the API server).
        account = f"system:serviceaccount:{namespace}:strongroom"
        for verb, resource, subresource in (
            ("watch", "secretstores.strongroom.dev", ""),
            ("patch", "secretstores.strongroom.dev", "status"),
            ("update", "resources.strongroom.dev", "finalizers"),
            ("create", "secrets", ""),
        ):
            allowed = cluster.kubectl_run(
                "auth",
                "can-i",
                verb,
                resource,
                f"--subresource={subresource}",
                "-n",
                "default",
                "--as",
                account,
                check=False,
            )
            assert allowed.stdout.strip() == "yes", (
                verb,
                resource,
                subresource,
                allowed.stdout,
                allowed.stderr,
            )

        # Tokens of its own ServiceAccount only (none for other accounts unless a namespace is listed in
        # rbac.serviceAccountTokenNamespaces), and no reading or changing service accounts themselves.
        def can(*args: str) -> str:
            return cluster.kubectl_run("auth", "can-i", *args, "--as", account, check=False).stdout.strip()

        assert can("create", "serviceaccounts/strongroom", "--subresource=token", "-n", namespace) == "yes"
        assert can("create", "serviceaccounts/other", "--subresource=token", "-n", namespace) == "no"
        assert can("create", "serviceaccounts/app", "--subresource=token", "-n", "default") == "no"
        assert can("get", "serviceaccounts", "-n", namespace) == "no"
        denied = cluster.kubectl_run("auth", "can-i", "create", "clusterroles", "--as", account, check=False)
        assert denied.stdout.strip() == "no"
    finally:
        _helm(cluster, "uninstall", "strongroom", "--namespace", namespace, check=False)
        cluster.kubectl_run("delete", "namespace", namespace, "--wait=false", check=False)
    assert cluster.kubectl_run("get", "clusterrole", "strongroom-manager", check=False).returncode != 0


def test_helm_install_namespaced(cluster: Cluster) -> None:
    suffix = secrets.token_hex(3)
    namespace, team = f"sr-ns-{suffix}", f"team-{suffix}"
    release = f"sr-{suffix}"
    cluster.kubectl_run("create", "namespace", team)
    try:
        result = _helm(
            cluster,
            "install",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--create-namespace",
            "--set",
            f"watchNamespaces={{{team}}}",
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        fullname = f"{release}-strongroom"
        cluster.kubectl_run("-n", namespace, "get", "deployment", f"{fullname}-controller-manager")
        for ns in (namespace, team):
            cluster.kubectl_run("-n", ns, "get", "role", f"{fullname}-manager")
            cluster.kubectl_run("-n", ns, "get", "rolebinding", f"{fullname}-manager")
        account = f"system:serviceaccount:{namespace}:{fullname}"

        def can(*args: str) -> str:
            return cluster.kubectl_run("auth", "can-i", *args, "--as", account, check=False).stdout.strip()

        assert can("watch", "secretstores.strongroom.dev", "-n", team) == "yes"
        assert can("watch", "secretstores.strongroom.dev", "-n", namespace) == "yes"
        assert can("watch", "secretstores.strongroom.dev", "-n", "default") == "no"
        assert can("get", "secrets", "-n", "default") == "no"
        assert can("list", "namespaces") == "no"
    finally:
        _helm(cluster, "uninstall", release, "--namespace", namespace, check=False)
        for ns in (namespace, team):
            cluster.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)


def test_crd_file_is_what_strongroom_crds_prints(cluster: Cluster, tmp_path: Path) -> None:
    # The documented regeneration command, run as users run it.
    strongroom = shutil.which("strongroom", path=cluster.env["PATH"])
    assert strongroom
    printed = cluster.run(strongroom, "crds").stdout
    assert printed.encode() == CRD_FILE.read_bytes()
