"""Rules 3 and 4 of rendering: wait for the resources, then assemble the objects to apply.

`render` checks first (`checks.check`), waits for every resource to be Ready, then composes the parts of
one rendering (placeholders resolved, env, files, pod volumes, containers, what resources emit) and
assembles what they collected into ConfigMaps, owned Secrets, the Deployment or StatefulSet (with its
headless Service) and the Service, with the rollout checksums on the pod template. Any problem means
nothing is rendered.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.api.workload import Workload, WorkloadPatch, WorkloadSpec
from strongroom.reconcile.secretdata import CONTENT_HASH_ANNOTATION, content_hash
from strongroom.reconcile.workload.checks import check
from strongroom.reconcile.workload.checksums import canonical, checksum, config_checksum
from strongroom.reconcile.workload.containers import container_manifest, in_start_order, resource_manifests
from strongroom.reconcile.workload.env import EnvVars
from strongroom.reconcile.workload.files import Files
from strongroom.reconcile.workload.model import Collected, RenderResult, ResourceOutputs
from strongroom.reconcile.workload.names import (
    CONFIG_CHECKSUM_ANNOTATION,
    OWN_ANNOTATIONS,
    SECRETS_CHECKSUM_ANNOTATION,
    ObjectMeta,
    workload_kind,
)
from strongroom.reconcile.workload.services import headless_service, service, service_ports
from strongroom.reconcile.workload.values import Resolver
from strongroom.reconcile.workload.volumes import PodVolumes
from strongroom.reconcile.workloadpatch import apply_patches


class _Renderer:
    """One rendering: its parts composed over one `Collected`, then the objects assembled from it."""

    def __init__(
        self,
        workload: Workload,
        spec: WorkloadSpec,
        resources: Mapping[str, ResourceOutputs],
        secret_hashes: Mapping[str, str],
    ) -> None:
        self.spec = spec
        self.name = workload.name
        self.resources = resources
        self.secret_hashes = secret_hashes
        self.kind = workload_kind(spec)
        self.meta = ObjectMeta(workload)
        self.collected = Collected()
        self.resolver = Resolver(self.name, spec, resources, self.collected)
        self.volumes = PodVolumes(self.kind, resources, self.resolver, self.collected)
        self.env = EnvVars(self.name, self.resolver, self.collected)
        self.files = Files(self.meta, self.resolver, self.volumes, self.collected)

    def secret_object(self, name: str, data: Mapping[str, bytes]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self.meta.of(name, {CONTENT_HASH_ANNOTATION: content_hash(data)}),
            "type": "Opaque",
            "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
        }

    def secret_hash(self, name: str) -> str:
        if name in self.collected.owned_secrets:
            return content_hash(self.collected.owned_secrets[name])
        if name in self.secret_hashes:
            return self.secret_hashes[name]
        for resource in sorted(self.spec.resources or {}):
            outputs = self.resources[resource]
            if outputs.secret_name == name and outputs.content_hash:
                return outputs.content_hash
        return ""  # unknown: the checksum still moves once the controller learns the hash

    def render(self) -> RenderResult:
        collected = self.collected
        user_annotations = {
            key: value
            for key, value in ((self.spec.metadata.annotations if self.spec.metadata else None) or {}).items()
            if key not in OWN_ANNOTATIONS
        }
        sidecars = resource_manifests(
            self.spec, self.resources, self.volumes, collected, set(self.spec.containers)
        )
        containers = [
            container_manifest(
                cname, self.spec.containers[cname], env=self.env, files=self.files, volumes=self.volumes
            )
            for cname in sorted(self.spec.containers)
        ]
        self.env.finish(containers)
        self.files.add_resource_secret_volumes()
        if collected.problems:
            return RenderResult(problems=collected.problems)

        pod_annotations = dict(user_annotations)
        if collected.config_maps:
            pod_annotations[CONFIG_CHECKSUM_ANNOTATION] = config_checksum(collected.config_maps)
        consumed = sorted(collected.consumed)
        if self.spec.rollout_on_secret_change:
            pod_annotations[SECRETS_CHECKSUM_ANNOTATION] = checksum(
                {name: self.secret_hash(name) for name in consumed}
            )

        regular, init_containers = in_start_order(self.spec, containers)
        pod_spec: dict[str, Any] = {"containers": regular + sidecars}
        if init_containers:
            pod_spec["initContainers"] = init_containers
        volumes = self.volumes.volumes
        if volumes:
            pod_spec["volumes"] = [volumes[name][1] for name in sorted(volumes)]
        template_meta: dict[str, Any] = {"labels": dict(self.meta.labels)}
        if pod_annotations:
            template_meta["annotations"] = pod_annotations
        pods: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": self.kind,
            "metadata": self.meta.of(self.name, user_annotations),
            "spec": {
                "selector": {"matchLabels": dict(self.meta.selector)},
                "template": {"metadata": template_meta, "spec": pod_spec},
            },
        }
        if self.spec.replicas is not None:
            # Only when set: an unset field is left to Kubernetes and to a HorizontalPodAutoscaler, which a
            # re-render would otherwise reset on every reconcile.
            pods["spec"]["replicas"] = self.spec.replicas
        ports = service_ports(self.spec)
        objects: list[dict[str, Any]] = sorted(
            collected.config_maps, key=lambda cm: str(cm["metadata"]["name"])
        )
        owned = collected.owned_secrets
        objects += [self.secret_object(name, owned[name]) for name in sorted(owned)]
        if self.kind == "StatefulSet":
            # As score-k8s: a headless Service governs the pods' network identities (`serviceName`), and
            # claimSpec outputs become volumeClaimTemplates.
            headless = headless_service(self.meta, user_annotations, ports)
            objects.append(headless)
            pods["spec"]["serviceName"] = headless["metadata"]["name"]
            claims = self.volumes.claims
            if claims:
                pods["spec"]["volumeClaimTemplates"] = [
                    {"metadata": {"name": name}, "spec": claims[name][1]} for name in sorted(claims)
                ]
        objects.append(pods)
        if ports:
            objects.append(service(self.meta, user_annotations, ports))
        return RenderResult(objects=[canonical(obj) for obj in objects], consumed_secrets=consumed)


def render(
    workload: Workload,
    patches: Sequence[WorkloadPatch],
    resources: Mapping[str, ResourceOutputs],
    secret_hashes: Mapping[str, str],
) -> RenderResult:
    """Render `workload` with its `patches` applied, against what its `resources` produced.

    `resources` is keyed by the workload's resource names (keys of `spec.resources`); `secret_hashes` maps
    Secret names to their `strongroom.dev/content-hash` annotation. The rules are in the package docstring.
    """
    checked = check(workload, patches)
    if checked.patch_problems:
        return RenderResult(patch_problems=checked.patch_problems, applied_patches=checked.applied_patches)
    spec = checked.spec
    waiting = sorted(
        name for name in spec.resources or {} if name not in resources or not resources[name].ready
    )
    if checked.problems or waiting:
        return RenderResult(
            waiting_for=waiting, problems=checked.problems, applied_patches=checked.applied_patches
        )
    result = _Renderer(workload, spec, resources, secret_hashes).render()
    return RenderResult(
        objects=result.objects,
        problems=result.problems,
        consumed_secrets=result.consumed_secrets,
        applied_patches=checked.applied_patches,
    )


def required_resources(workload: Workload, patches: Sequence[WorkloadPatch]) -> list[str]:
    """Names of the resources the workload needs once its patches apply (what the controller must fetch)."""
    return sorted(apply_patches(workload, patches).spec.resources or {})
