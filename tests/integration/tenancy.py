"""Acting as a tenant: a ServiceAccount whose Role allows strongroom.dev objects in its own namespace only.

Tenancy tests (`test_tenancy*.py`) attack the operator through this identity, never as cluster-admin: every
object a test creates "as the tenant" goes through the API server's RBAC with impersonation
(`kubectl --as=system:serviceaccount:<namespace>:tenant`). The Role is the common wildcard shape platform
teams hand out (every strongroom.dev resource, status subresources included, every verb), plus the
Secrets and ConfigMaps of the tenant's own namespace (for store credentials and driver keys).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from tests.conftest import Cluster
from tests.integration.helpers import apply, ensure_namespace

TENANT_ACCOUNT = "tenant"
TENANT_ROLE = "strongroom-tenant"


def tenant_role(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": TENANT_ROLE, "namespace": namespace},
        "rules": [
            # The wildcard shape: every strongroom.dev resource and subresource (status included).
            {"apiGroups": ["strongroom.dev"], "resources": ["*"], "verbs": ["*"]},
            {
                "apiGroups": [""],
                "resources": ["secrets", "configmaps"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
            },
        ],
    }


@dataclass(frozen=True)
class Tenant:
    """A tenant of one namespace; its commands run with the tenant's rights only."""

    cluster: Cluster
    namespace: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{TENANT_ACCOUNT}"

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """kubectl as the tenant (impersonation: the API server checks the tenant's RBAC)."""
        return self.cluster.kubectl_run(f"--as={self.user}", *args, input=input, check=check)

    def apply(self, *objects: dict[str, Any], check: bool = True) -> subprocess.CompletedProcess[str]:
        docs = "\n---\n".join(json.dumps(obj) for obj in objects)
        return self.kubectl(
            "apply", "--server-side", "--field-manager=tenant", "--force-conflicts", "-f", "-",
            input=docs, check=check,
        )  # fmt: skip

    def patch_status(
        self, kind: str, name: str, patch: dict[str, Any], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """A merge patch of the status subresource, as the tenant (the wildcard Role allows it)."""
        return self.kubectl(
            "-n", self.namespace, "patch", kind, name, "--subresource=status", "--type=merge",
            "-p", json.dumps(patch), check=check,
        )  # fmt: skip

    def annotate(self, kind: str, name: str, annotations: dict[str, str]) -> None:
        self.kubectl(
            "-n", self.namespace, "patch", kind, name, "--type=merge",
            "-p", json.dumps({"metadata": {"annotations": annotations}}),
        )  # fmt: skip

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        result = self.kubectl("auth", "can-i", verb, resource, "-n", namespace or self.namespace, check=False)
        return result.stdout.strip() == "yes"


def make_tenant(cluster: Cluster, namespace: str) -> Tenant:
    """The namespace, its `tenant` ServiceAccount and the Role/RoleBinding above (idempotent)."""
    ensure_namespace(cluster, namespace)
    apply(
        cluster,
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": TENANT_ACCOUNT, "namespace": namespace},
        },
        tenant_role(namespace),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": TENANT_ROLE, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": TENANT_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": TENANT_ACCOUNT, "namespace": namespace}],
        },
    )
    return Tenant(cluster, namespace)
