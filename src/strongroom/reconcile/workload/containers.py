"""The pod's containers: the workload's containers as Kubernetes manifests, in start order, and the
sidecars and volumes that resources emit.

A container manifest gathers what the other parts render for it (env, file and volume mounts) with its
image, command, resources and probes. Score `before` turns containers into init containers (see
`checks.startup_order`).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any

from strongroom.api.workload import Container, ContainerProbe, WorkloadSpec
from strongroom.reconcile.workload.checks import startup_order
from strongroom.reconcile.workload.checksums import canonical
from strongroom.reconcile.workload.env import EnvVars
from strongroom.reconcile.workload.files import Files
from strongroom.reconcile.workload.model import Collected, Problem, ResourceOutputs
from strongroom.reconcile.workload.volumes import PodVolumes


def probe_manifest(probe: ContainerProbe) -> dict[str, Any]:
    """A Score probe as a Kubernetes probe."""
    http = probe.http_get
    if http is None:
        assert probe.exec is not None  # the model guarantees a handler
        return {"exec": {"command": list(probe.exec.command)}}
    # With both, httpGet wins, as in score-k8s (Kubernetes takes one handler per probe).
    action: dict[str, Any] = {"path": http.path, "port": http.port}
    if http.host:
        action["host"] = http.host
    if http.scheme:
        action["scheme"] = http.scheme
    if http.http_headers:
        action["httpHeaders"] = [{"name": h.name, "value": h.value} for h in http.http_headers]
    return {"httpGet": action}


def container_manifest(
    cname: str, container: Container, *, env: EnvVars, files: Files, volumes: PodVolumes
) -> dict[str, Any]:
    """The manifest of the workload's container `cname`."""
    manifest: dict[str, Any] = {"name": cname, "image": container.image}
    if container.command is not None:
        manifest["command"] = list(container.command)
    if container.args is not None:
        manifest["args"] = list(container.args)
    entries = env.entries(cname, container)
    if entries:
        manifest["env"] = entries
    if container.resources is not None:
        quantities = container.resources.model_dump(mode="json", by_alias=True, exclude_none=True)
        quantities = {kind: values for kind, values in quantities.items() if values}
        if quantities:
            manifest["resources"] = quantities
    for kind, probe in (
        ("livenessProbe", container.liveness_probe),
        ("readinessProbe", container.readiness_probe),
    ):
        if probe is not None:
            manifest[kind] = probe_manifest(probe)
    mounts = files.mounts(cname, container) + volumes.mounts(cname, container)
    if mounts:
        manifest["volumeMounts"] = sorted(mounts, key=lambda mount: mount["mountPath"])
    return manifest


def in_start_order(
    spec: WorkloadSpec, containers: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The container manifests split into the pod's containers and its init containers (Score `before`)."""
    order, _ = startup_order(spec)  # problems were reported before rendering
    by_name = {manifest["name"]: manifest for manifest in containers}
    init_containers = []
    for name, ready in order:
        manifest = by_name.pop(name)
        if ready != "complete":
            manifest["restartPolicy"] = "Always"  # a sidecar: the next starts once this one has started
            if ready == "healthy" and "readinessProbe" in manifest:
                manifest["startupProbe"] = copy.deepcopy(manifest["readinessProbe"])
        init_containers.append(manifest)
    return list(by_name.values()), init_containers


# --- What resources emit ----------------------------------------------------------------------------------


def _secret_names_in_container(container: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for env in container.get("env") or []:
        ref = ((env or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        if isinstance(ref.get("name"), str):
            names.add(ref["name"])
    for source in container.get("envFrom") or []:
        ref = (source or {}).get("secretRef") or {}
        if isinstance(ref.get("name"), str):
            names.add(ref["name"])
    return names


def _secret_names_in_volume(volume: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    secret = volume.get("secret") or {}
    if isinstance(secret.get("secretName"), str):
        names.add(secret["secretName"])
    for source in (volume.get("projected") or {}).get("sources") or []:
        ref = (source or {}).get("secret") or {}
        if isinstance(ref.get("name"), str):
            names.add(ref["name"])
    return names


def resource_manifests(
    spec: WorkloadSpec,
    resources: Mapping[str, ResourceOutputs],
    volumes: PodVolumes,
    collected: Collected,
    workload_containers: Collection[str],
) -> list[dict[str, Any]]:
    """Volumes (into `volumes`) and sidecar containers emitted by the resources."""
    sidecars: dict[str, tuple[str, dict[str, Any]]] = {}
    for resource in sorted(spec.resources or {}):
        outputs = resources[resource]
        origin = f"resource {resource!r}"
        for volume in outputs.volumes:
            name = volume.get("name") if isinstance(volume, Mapping) else None
            if not isinstance(name, str) or not name:
                collected.problems.append(f"{origin}: a volume manifest has no name")
                continue
            try:
                volumes.add(name, copy.deepcopy(dict(volume)), origin)
            except Problem as exc:
                collected.problems.append(str(exc))
                continue
            collected.consumed |= _secret_names_in_volume(volume)
        for container in outputs.containers:
            name = container.get("name") if isinstance(container, Mapping) else None
            if not isinstance(name, str) or not name:
                collected.problems.append(f"{origin}: a container manifest has no name")
                continue
            if name in workload_containers:
                collected.problems.append(
                    f"{origin} emits a container {name!r}, but the workload has a container of that name"
                )
                continue
            existing = sidecars.get(name)
            if existing is not None:
                if canonical(existing[1]) != canonical(container):
                    collected.problems.append(
                        f"container name {name!r} is emitted by both {existing[0]} and {origin}"
                    )
                continue
            sidecars[name] = (origin, copy.deepcopy(dict(container)))
            collected.consumed |= _secret_names_in_container(container)
    return [manifest for _, manifest in sidecars.values()]
