"""The orchestrator's Kubernetes calls: server-side apply, get, list by label, delete — on plain dicts.

Manifests go to the API server as they are (a server-side apply patch of the dict), never through
lightkube's models, which would drop fields they do not know. Kinds are looked up in lightkube's registry
and, for custom resources, in the CRDs the cluster serves (loaded once on a miss).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import httpx2
from lightkube.config.kubeconfig import KubeConfig, SingleConfig
from lightkube.core.exceptions import ApiError, ConfigError, LoadResourceError
from lightkube.core.resource import NamespacedResource
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import async_load_in_cluster_generic_resources, create_namespaced_resource
from lightkube.types import PatchType

from strongroom.api import constants as c
from strongroom.net import kube_client


class ClusterError(ValueError):
    """The cluster cannot be reached or refused a call; the message says which object and why."""


def load_config(kubeconfig: str | None, context: str | None = None) -> SingleConfig:
    """`--kubeconfig` (first file of a KUBECONFIG list), else in-cluster, else ~/.kube/config."""
    try:
        if kubeconfig:
            path = Path(kubeconfig.split(os.pathsep)[0]).expanduser()
            config = KubeConfig.from_file(path)
        else:
            config = KubeConfig.from_env()
        single = config.get(context_name=context)
    except ConfigError as exc:
        raise ClusterError(f"cannot load the cluster configuration: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise ClusterError(f"cannot load the cluster configuration: missing entry {exc}") from None
    if single is None:  # pragma: no cover - get() raises instead
        raise ClusterError("no cluster configuration")
    return single


def describe_api_error(exc: ApiError, what: str) -> str:
    status = exc.status
    code = status.code if status is not None else None
    message = (status.message if status is not None else None) or str(exc)
    return f"{what}: {message} (HTTP {code})"


# Kinds whose API errors may quote what was sent: only say which object and why.
_QUIET_KINDS = frozenset({"Secret"})

# strongroom's kinds are known without asking the cluster (their CRDs may be installed after start).
for _kind, _plural in (
    ("SecretStore", "secretstores"),
    ("SecretMapping", "secretmappings"),
    ("Driver", "drivers"),
    ("Resource", "resources"),
    ("Workload", "workloads"),
    ("WorkloadPatch", "workloadpatches"),
):
    create_namespaced_resource(c.GROUP, c.VERSION, _kind, _plural)


class Cluster:
    def __init__(self, config: SingleConfig) -> None:
        self.client = kube_client(config, c.FIELD_MANAGER)
        self._crds_loaded = False

    async def close(self) -> None:
        await self.client.close()

    async def kind(self, api_version: str, kind: str) -> type[Any]:
        try:
            return resource_registry.load(api_version, kind)
        except LoadResourceError:
            pass
        if not self._crds_loaded:
            self._crds_loaded = True
            with contextlib.suppress(ValueError):
                await async_load_in_cluster_generic_resources(self.client)
        try:
            found = resource_registry.load(api_version, kind)
        except LoadResourceError:
            found = None
        if found is None:
            hint = " (are strongroom's CRDs installed? `strongroom crds | kubectl apply -f -`)"
            raise ClusterError(
                f"the cluster serves no kind {kind} in {api_version}"
                + (hint if api_version == c.API_VERSION else "")
            )
        return found

    def _what(self, manifest: dict[str, Any]) -> str:
        meta = manifest.get("metadata") or {}
        where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
        return f"{manifest.get('kind')} {where}{meta.get('name')}"

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (field manager `strongroom`, taking over conflicting fields)."""
        res = await self.kind(str(manifest["apiVersion"]), str(manifest["kind"]))
        meta = manifest["metadata"]
        namespaced = issubclass(res, NamespacedResource)
        try:
            obj = await self.client.patch(
                res,
                meta["name"],
                manifest,
                namespace=meta.get("namespace") if namespaced else None,
                patch_type=PatchType.APPLY,
                field_manager=c.FIELD_MANAGER,
                force=True,
            )
        except ApiError as exc:
            if manifest.get("kind") in _QUIET_KINDS:
                code = exc.status.code if exc.status is not None else None
                raise ClusterError(
                    f"{self._what(manifest)}: the API server refused it (HTTP {code})"
                ) from None
            raise ClusterError(describe_api_error(exc, self._what(manifest))) from None
        except httpx2.HTTPError as exc:
            raise ClusterError(f"{self._what(manifest)}: {type(exc).__name__}: {exc}") from None
        data: dict[str, Any] = obj.to_dict()
        return data

    async def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        res = await self.kind(api_version, kind)
        try:
            obj = await self.client.get(res, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise ClusterError(describe_api_error(exc, f"reading {kind} {name}")) from None
        except httpx2.HTTPError as exc:
            raise ClusterError(f"reading {kind} {name}: {type(exc).__name__}: {exc}") from None
        data: dict[str, Any] = obj.to_dict()
        return data

    async def list(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, str]
    ) -> list[dict[str, Any]]:
        res = await self.kind(api_version, kind)
        found: list[dict[str, Any]] = []
        try:
            async for obj in self.client.list(res, namespace=namespace, labels=dict(labels)):
                found.append(obj.to_dict())
        except ApiError as exc:
            if exc.status.code == 404:
                return []  # the namespace or the kind is not there (yet)
            raise ClusterError(describe_api_error(exc, f"listing {kind} in {namespace}")) from None
        except httpx2.HTTPError as exc:
            raise ClusterError(f"listing {kind} in {namespace}: {type(exc).__name__}: {exc}") from None
        return sorted(found, key=lambda obj: str(obj["metadata"]["name"]))

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete one object; False if it was already gone."""
        res = await self.kind(api_version, kind)
        try:
            await self.client.delete(res, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return False
            raise ClusterError(describe_api_error(exc, f"deleting {kind} {name}")) from None
        except httpx2.HTTPError as exc:
            raise ClusterError(f"deleting {kind} {name}: {type(exc).__name__}: {exc}") from None
        return True
