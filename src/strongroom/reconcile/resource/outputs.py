"""A driver's answer checked: outputs and the manifest policy.

Pure: no I/O, no clock, no randomness (see the package docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from strongroom.api import constants as c
from strongroom.api.resource import Resource
from strongroom.api.workload import WorkloadPatchSpec
from strongroom.drivers.base import DriverResult
from strongroom.reconcile.resource.identity import _DATA_KEY, _REFERENCE_KEYS
from strongroom.reconcile.stores import Problem
from strongroom.stores.base import SecretValue

# --- Outputs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outputs:
    """A driver answer, checked and taken apart."""

    values: dict[str, Any]
    secrets: dict[str, SecretValue]
    """Secret outputs by flat key (nested keys joined with dots): the data keys of the outputs Secret."""
    secret_shape: dict[str, Any]
    """The nesting of the secret outputs: flat keys at the leaves (for `status.outputs.secretRefs`)."""
    containers: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    namespace_objects: list[dict[str, Any]]
    cluster_objects: list[dict[str, Any]]
    update: list[dict[str, Any]] | None


def _flatten(
    tree: Mapping[str, Any], prefix: str, flat: dict[str, SecretValue], problems: list[str]
) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    for key in sorted(tree):
        node = tree[key]
        name = f"{prefix}{key}"
        if isinstance(node, SecretValue):
            if not _DATA_KEY.fullmatch(name) or len(name) > c.DATA_KEY_MAX:
                problems.append(
                    f"secret output {name!r} is not a valid Secret key (letters, digits, '-', '_', '.')"
                )
            flat[name] = node
            shape[key] = name
        elif isinstance(node, Mapping):
            if _REFERENCE_KEYS.intersection(node):
                problems.append(f"secret output {name!r} has a key named store, ref or version inside it")
            shape[key] = _flatten(node, name + ".", flat, problems)
    return shape


def _object_problem(data: Mapping[str, Any], where: str) -> str | None:
    meta = data.get("metadata")
    if not isinstance(data.get("apiVersion"), str) or not isinstance(data.get("kind"), str):
        return f"{where} has no apiVersion or kind"
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str) or not meta.get("name"):
        return f"{where} has no metadata.name"
    return None


def check_outputs(resource: Resource, result: DriverResult) -> Outputs | Problem:
    """Take a driver answer apart; a Problem (not retryable: the driver must change) if it is unusable."""
    problems: list[str] = []
    flat: dict[str, SecretValue] = {}
    shape = _flatten(result.secrets, "", flat, problems)
    containers: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    namespaced: list[dict[str, Any]] = []
    cluster: list[dict[str, Any]] = []
    for index, manifest in enumerate(result.manifests):
        where = f"manifest {manifest.name or index!s} ({manifest.location})"
        data = manifest.data
        if manifest.location == "containers":
            if not isinstance(data.get("name"), str):
                problems.append(f"{where} has no container name")
            containers.append(data)
        elif manifest.location == "volumes":
            if not isinstance(data.get("name"), str):
                problems.append(f"{where} has no volume name")
            volumes.append(data)
        else:
            problem = _object_problem(data, where)
            if problem:
                problems.append(problem)
                continue
            namespace = data["metadata"].get("namespace")
            if manifest.location == "namespace":
                if namespace not in (None, "", resource.namespace):
                    problems.append(
                        f"{where} names namespace {namespace!r}; objects of namespace manifests go into the "
                        f"Resource's namespace {resource.namespace!r}"
                    )
                    continue
                namespaced.append(data)
            else:
                if namespace:
                    problems.append(f"{where} is for location cluster but names namespace {namespace!r}")
                    continue
                cluster.append(data)
    update = result.update
    if update:
        try:
            WorkloadPatchSpec.model_validate({"workloadName": "x", "patches": update})
        except ValidationError as exc:
            fields = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors(include_input=False)
            )
            problems.append(f"the update output is not a valid WorkloadPatch ({fields})")
    for kind, objects in (("namespace", namespaced), ("cluster", cluster)):
        seen: set[tuple[str, str, str]] = set()
        for obj in objects:
            ident = (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
            if ident in seen:
                problems.append(f"two {kind} manifests are the same object {ident[1]} {ident[2]!r}")
            seen.add(ident)
    if problems:
        return Problem("InvalidOutputs", "the driver's answer cannot be used: " + "; ".join(problems), False)
    return Outputs(
        values=dict(result.values),
        secrets=flat,
        secret_shape=shape,
        containers=containers,
        volumes=volumes,
        namespace_objects=namespaced,
        cluster_objects=cluster,
        update=update or None,
    )


# --- Manifest policy --------------------------------------------------------------------------------------

#: Kinds a driver's manifests may create unless the operator says otherwise (`--manifest-kinds`): those the
#: chart's RBAC grants the operator. `Kind` for the core group, `group/Kind` for the others.
DEFAULT_MANIFEST_KINDS = ("ConfigMap", "Secret", "Service", "apps/Deployment")


def kind_name(obj: Mapping[str, Any]) -> str:
    """`Kind` (core group) or `group/Kind`: how `--manifest-kinds` names an object's kind."""
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    return f"{group}/{obj.get('kind')}" if group else str(obj.get("kind"))


@dataclass(frozen=True)
class ManifestPolicy:
    """What a Resource's driver may create through `namespace` and `cluster` manifests."""

    kinds: frozenset[str] = frozenset(DEFAULT_MANIFEST_KINDS)
    cluster_refusal: str | None = "cluster manifests are not allowed"
    """Why `cluster` manifests are refused for this driver; None: they are allowed."""


def cluster_manifest_refusal(
    driver_type: str,
    *,
    builtin: bool,
    driver_namespace: str | None,
    allow_cluster_manifests: bool,
    operator_namespace: str,
    builtin_allowed: bool,
) -> str | None:
    """Why a driver may not create cluster-scoped objects (None: it may).

    Cluster-scoped objects belong to no namespace, so only the platform admin can allow them: for a remote
    driver through `spec.allowClusterManifests` on a Driver in the operator namespace, for the built-in
    drivers (whose templates any tenant writes) through the operator's `--builtin-cluster-manifests`."""
    if builtin:
        if builtin_allowed:
            return None
        return (
            f"the built-in driver {driver_type!r} renders what the Resource's author writes, and the "
            "operator runs without --builtin-cluster-manifests"
        )
    if driver_namespace != operator_namespace:
        return (
            f"Driver {driver_namespace}/{driver_type} is not in the operator namespace "
            f"{operator_namespace!r}; only a Driver there can be allowed cluster manifests"
        )
    if not allow_cluster_manifests:
        return f"Driver {driver_namespace}/{driver_type} does not set spec.allowClusterManifests: true"
    return None


#: Secrets of this type are filled by the API server's token controller with a ServiceAccount's token.
SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token"  # noqa: S105 (a Secret type)


def _is_token_secret(obj: Mapping[str, Any]) -> bool:
    return (
        obj.get("apiVersion") == "v1"
        and obj.get("kind") == "Secret"
        and obj.get("type") == SERVICE_ACCOUNT_TOKEN_TYPE
    )


def manifest_policy_problem(outputs: Outputs, policy: ManifestPolicy) -> Problem | None:
    """A driver answer whose manifests the policy refuses; nothing of it is applied then."""
    tokens = [o["metadata"]["name"] for o in outputs.namespace_objects if _is_token_secret(o)]
    if tokens:
        # The bug class of External Secrets Operator's GHSA-fq7h-9x26-6j22: whoever may write a Resource
        # would get a long-lived API token of any ServiceAccount of the namespace, minted on our behalf.
        return Problem(
            "ServiceAccountTokenNotAllowed",
            f"the driver's manifests create Secrets of type {SERVICE_ACCOUNT_TOKEN_TYPE} "
            f"({', '.join(repr(n) for n in sorted(tokens))}), which the API server fills with a "
            "ServiceAccount's API token; drivers may not create them",
            retryable=False,
        )
    if outputs.cluster_objects and policy.cluster_refusal is not None:
        names = ", ".join(f"{o['kind']} {o['metadata']['name']!r}" for o in outputs.cluster_objects)
        return Problem(
            "ClusterManifestNotAllowed",
            f"the driver's answer has cluster manifests ({names}), which are refused: "
            f"{policy.cluster_refusal}",
            retryable=False,
        )
    refused = sorted(
        {kind_name(o) for o in [*outputs.namespace_objects, *outputs.cluster_objects]} - policy.kinds
    )
    if refused:
        return Problem(
            "ManifestKindNotAllowed",
            f"the driver's manifests create kinds the operator does not allow: {', '.join(refused)} "
            f"(allowed: {', '.join(sorted(policy.kinds))}; the platform admin sets them with "
            "--manifest-kinds)",
            retryable=False,
        )
    return None
