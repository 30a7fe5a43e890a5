"""The Kubernetes objects a Resource owns, as wanted: outputs and manifests Secrets, manifest objects, the
WorkloadPatch; ownership proofs; size limits.

Pure: no I/O, no clock, no randomness (see the package docstring)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.api import constants as c
from strongroom.api.resource import MANIFESTS_MAX, Resource
from strongroom.reconcile.ownership import controlled_by, owned_by
from strongroom.reconcile.resource.identity import (
    _WORKLOAD_ID,
    CONTAINERS_KEY,
    MANIFESTS_HASH_ANNOTATION,
    RESOURCE_ANNOTATION,
    RESOURCE_UID_ANNOTATION,
    VOLUMES_KEY,
    WORKLOAD_NAME_INPUT,
    manifests_secret_name,
    outputs_secret_name,
)
from strongroom.reconcile.resource.inputs import _deep_copy
from strongroom.reconcile.resource.outputs import Outputs
from strongroom.reconcile.secretdata import CONTENT_HASH_ANNOTATION, MANAGED_BY_LABEL, content_hash
from strongroom.reconcile.stores import Problem
from strongroom.stores.base import SecretValue

# --- Desired objects --------------------------------------------------------------------------------------


def owner_reference(resource: Resource, *, controller: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": c.API_VERSION,
        "kind": "Resource",
        "name": resource.name,
        "uid": resource.metadata.uid or "",
        "controller": controller,
        "blockOwnerDeletion": True,
    }


def _owned_meta(
    resource: Resource, name: str, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": resource.namespace,
        "labels": {c.MANAGED_LABEL: "true", MANAGED_BY_LABEL: "strongroom"},
        "ownerReferences": [owner_reference(resource)],
    }
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def _secret(resource: Resource, name: str, data: Mapping[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _owned_meta(resource, name, {CONTENT_HASH_ANNOTATION: content_hash(data)}),
        "type": "Opaque",
        "data": {key: base64.b64encode(value).decode() for key, value in sorted(data.items())},
    }


def outputs_secret(
    resource: Resource, secrets: Mapping[str, SecretValue], manifests_hash: str | None = None
) -> dict[str, Any]:
    """The Secret workloads read the secret outputs from: one key per flat output key. It also records
    the hash of the manifests Secret, so that one is only read and written when its content changes."""
    secret = _secret(
        resource, outputs_secret_name(resource.name), {k: v.reveal() for k, v in secrets.items()}
    )
    if manifests_hash:
        secret["metadata"]["annotations"][MANIFESTS_HASH_ANNOTATION] = manifests_hash
    return secret


def content_hash_of(secret: Mapping[str, Any] | None) -> str | None:
    """The content-hash annotation of a Secret manifest (None for no Secret)."""
    if secret is None:
        return None
    value = ((secret.get("metadata") or {}).get("annotations") or {}).get(CONTENT_HASH_ANNOTATION)
    return str(value) if value else None


def recorded_manifests_hash(outputs_secret_observed: Mapping[str, Any] | None) -> str | None:
    """The manifests hash the observed outputs Secret recorded (None: no manifests Secret was written)."""
    annotations = ((outputs_secret_observed or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(MANIFESTS_HASH_ANNOTATION)
    return str(value) if value else None


def manifests_secret(resource: Resource, outputs: Outputs) -> dict[str, Any] | None:
    """The Secret with the `containers` and `volumes` manifests for Workloads; None when there are none.

    A Secret, not the status: a sidecar's env may carry a value the driver considers sensitive."""
    if not outputs.containers and not outputs.volumes:
        return None
    data = {
        CONTAINERS_KEY: _json_bytes(outputs.containers),
        VOLUMES_KEY: _json_bytes(outputs.volumes),
    }
    return _secret(resource, manifests_secret_name(resource.name), data)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def secret_current(observed: Mapping[str, Any] | None, wanted: Mapping[str, Any], uid: str) -> bool:
    """Whether an observed Secret already is what `wanted` describes (then it is not written)."""
    if observed is None:
        return False
    meta = observed.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    owned = controlled_by(observed, uid)
    return (
        owned
        and all(
            annotations.get(name) == wanted["metadata"]["annotations"].get(name)
            for name in (CONTENT_HASH_ANNOTATION, MANIFESTS_HASH_ANNOTATION)
        )
        and all(labels.get(k) == v for k, v in wanted["metadata"]["labels"].items())
        and (observed.get("data") or {}) == wanted["data"]
    )


def namespace_object(resource: Resource, data: Mapping[str, Any]) -> dict[str, Any]:
    """An object of a `namespace` manifest: in the Resource's namespace, owned by it (not as controller:
    what the object is for is the driver's business). The owner reference is also the proof, checked
    before the object is applied over or deleted, that this Resource made it (`manifest_owned`)."""
    obj = _deep_copy(data)
    meta = obj.setdefault("metadata", {})
    meta["namespace"] = resource.namespace
    meta.setdefault("labels", {})[c.MANAGED_LABEL] = "true"
    meta["ownerReferences"] = [owner_reference(resource, controller=False)]
    return obj


def cluster_object(resource: Resource, data: Mapping[str, Any]) -> dict[str, Any]:
    """An object of a `cluster` manifest. Cluster-scoped objects cannot be owned by a namespaced one, so
    the operator deletes them itself (tracked in `status.manifests`); an annotation says whose they are."""
    obj = _deep_copy(data)
    meta = obj.setdefault("metadata", {})
    meta.pop("namespace", None)
    meta.setdefault("labels", {})[c.MANAGED_LABEL] = "true"
    annotations = meta.setdefault("annotations", {})
    annotations[RESOURCE_ANNOTATION] = f"{resource.namespace}/{resource.name}"
    annotations[RESOURCE_UID_ANNOTATION] = resource.metadata.uid or ""
    return obj


def manifest_owned(live: Mapping[str, Any], resource: Resource, location: str | None) -> bool:
    """Whether an existing object proves it was made by this Resource (then it may be applied over and
    deleted): an ownerReference with its uid for a namespaced object, the `strongroom.dev/resource`
    annotation naming it and its uid for a cluster-scoped one. Anything else is someone else's."""
    uid = resource.metadata.uid or ""
    if not uid:
        return False
    if location == "cluster":
        annotations = (live.get("metadata") or {}).get("annotations") or {}
        return (
            annotations.get(RESOURCE_ANNOTATION) == f"{resource.namespace}/{resource.name}"
            and annotations.get(RESOURCE_UID_ANNOTATION) == uid
        )
    return owned_by(live, uid)


def manifest_conflict(ref: Mapping[str, Any]) -> Problem:
    where = f" in namespace {ref['namespace']!r}" if ref.get("namespace") else ""
    return Problem(
        "ManifestConflict",
        f"{ref['kind']} {ref['name']!r}{where} already exists and was not created by this Resource: the "
        "driver's manifests may not take over an object they did not make, so nothing was applied; delete "
        "or rename that object, or change the driver's manifests",
        retryable=False,
    )


# --- Sizes ------------------------------------------------------------------------------------------------

#: Most bytes the output values may take as JSON: they go into the status, which shares the object's size
#: limit (about 1.5 MiB in etcd) with the spec; an answer beyond this never fits.
STATUS_VALUES_MAX = 256 * 1024
#: Most bytes of keys and values one Secret may hold (the API server's limit is 1 MiB for `data`; the rest
#: is left for the annotations and the manifests-hash the operator adds).
SECRET_DATA_MAX = 1024 * 1024 - 16 * 1024


def outputs_size_problem(resource: Resource, outputs: Outputs) -> Problem | None:
    """An answer that cannot be stored: output values too large for the status, secret outputs or the
    container/volume manifests too large for a Secret. Not retryable: calling the driver again with the
    same inputs would give the same answer."""
    problems = []
    values = len(json.dumps(outputs.values, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if values > STATUS_VALUES_MAX:
        problems.append(
            f"output values take {values} bytes as JSON (limit {STATUS_VALUES_MAX}, for the status)"
        )
    secrets = sum(len(k.encode()) + len(v.reveal()) for k, v in outputs.secrets.items())
    if secrets > SECRET_DATA_MAX:
        problems.append(
            f"secret outputs take {secrets} bytes (limit {SECRET_DATA_MAX}, for the Secret "
            f"{outputs_secret_name(resource.name)!r})"
        )
    manifests = len(_json_bytes(outputs.containers)) + len(_json_bytes(outputs.volumes))
    if manifests > SECRET_DATA_MAX:
        problems.append(
            f"container and volume manifests take {manifests} bytes (limit {SECRET_DATA_MAX}, for one Secret)"
        )
    objects = len(outputs.namespace_objects) + len(outputs.cluster_objects)
    if objects > MANIFESTS_MAX:
        problems.append(f"{objects} namespace and cluster manifests (limit {MANIFESTS_MAX})")
    if not problems:
        return None
    return Problem(
        "OutputsTooLarge",
        "the driver's answer cannot be stored: "
        + "; ".join(problems)
        + "; nothing was written and the driver is not called again until the spec, the inputs or the "
        "driver change",
        retryable=False,
    )


def applied_reference(obj: Mapping[str, Any], location: str) -> dict[str, Any]:
    meta = obj["metadata"]
    ref: dict[str, Any] = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"]}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    ref["location"] = location
    return ref


def manifest_refs(resource: Resource, outputs: Outputs) -> list[dict[str, Any]]:
    """References of the objects the outputs' namespace and cluster manifests make."""
    return [
        applied_reference(namespace_object(resource, o), "namespace") for o in outputs.namespace_objects
    ] + [applied_reference(cluster_object(resource, o), "cluster") for o in outputs.cluster_objects]


def _ident(ref: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (ref.get("apiVersion", ""), ref.get("kind", ""), ref.get("namespace") or "", ref.get("name", ""))


def stale_manifests(
    previous: Sequence[Mapping[str, Any]] | None, current: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Objects applied before and no longer emitted: to delete."""
    keep = {_ident(ref) for ref in current}
    return [dict(ref) for ref in previous or [] if _ident(ref) not in keep]


def workload_name(resource: Resource) -> str:
    """The Workload a workload-type resource's `update` applies to: `resourceInputs.workloadName`, else
    `<name>` from a Humanitec workload id `modules.<name>`, else the Resource's own name."""
    given = (resource.spec.resource_inputs or {}).get(WORKLOAD_NAME_INPUT)
    if isinstance(given, str) and given:
        return given
    match = _WORKLOAD_ID.fullmatch(resource.spec.id)
    if match:
        return match.group(1)
    return resource.name


def workload_patch(resource: Resource, ops: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The WorkloadPatch carrying the `update` output; named like the Resource, owned by it."""
    return {
        "apiVersion": c.API_VERSION,
        "kind": "WorkloadPatch",
        "metadata": _owned_meta(resource, resource.name),
        "spec": {"workloadName": workload_name(resource), "patches": [dict(op) for op in ops]},
    }
