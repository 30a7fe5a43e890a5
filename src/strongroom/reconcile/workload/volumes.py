"""The pod's volumes and each container's volume mounts.

Pod volumes come from resources (a `source` output, a `claimSpec` output that becomes a StatefulSet
volumeClaimTemplate, or emitted volume manifests) and from the containers' files. `PodVolumes` holds them
all by name so that two origins can never silently share a name, and resolves the volume sources a
container mounts (`${resources.<name>}` or the name of a pod volume).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from strongroom.api.workload import Container
from strongroom.reconcile.placeholders import PlaceholderError, parse, single_placeholder
from strongroom.reconcile.workload.checks import check_placeholder
from strongroom.reconcile.workload.checksums import canonical
from strongroom.reconcile.workload.model import Collected, Problem, ResourceOutputs
from strongroom.reconcile.workload.names import KIND_ANNOTATION, dns_label
from strongroom.reconcile.workload.values import Resolver, SecretPart


class PodVolumes:
    """The volumes (and StatefulSet claims) of one pod, by name, each with the origin that asked for it."""

    def __init__(
        self, kind: str, resources: Mapping[str, ResourceOutputs], resolver: Resolver, collected: Collected
    ) -> None:
        self.kind = kind
        self.resources = resources
        self.resolver = resolver
        self.collected = collected
        self.volumes: dict[str, tuple[str, dict[str, Any]]] = {}  # pod volume name -> (origin, manifest)
        # StatefulSet volumeClaimTemplates: volume name -> (origin, PersistentVolumeClaim spec)
        self.claims: dict[str, tuple[str, dict[str, Any]]] = {}

    def add(self, name: str, manifest: dict[str, Any], origin: str) -> None:
        """Add a pod volume; the same name again is fine only with the same manifest."""
        if name in self.claims:
            raise Problem(f"pod volume name {name!r} is used by both {self.claims[name][0]} and {origin}")
        existing = self.volumes.get(name)
        if existing is None:
            self.volumes[name] = (origin, manifest)
        elif canonical(existing[1]) != canonical(manifest):
            raise Problem(f"pod volume name {name!r} is used by both {existing[0]} and {origin}")

    def resource_volume(self, resource: str) -> str:
        """The pod volume a `${resources.<name>}` volume source means."""
        outputs = self.resources[resource]
        source = outputs.values.get("source")
        if isinstance(source, Mapping) and source:
            # score-k8s convention: the resource outputs a Kubernetes volume source.
            name = dns_label("vol", resource)
            self.add(name, {**copy.deepcopy(dict(source)), "name": name}, f"resource {resource!r}")
            return name
        if "claimSpec" in outputs.values:
            return self.claim(resource, outputs.values["claimSpec"])
        names = [str(volume.get("name")) for volume in outputs.volumes]
        if len(names) == 1:
            return names[0]
        if not names:
            raise Problem(
                f"resource {resource!r} provides no volume: it has no `source` output and emits no "
                "volume manifest"
            )
        raise Problem(
            f"resource {resource!r} emits {len(names)} volumes ({', '.join(sorted(names))}); "
            "mount one by its name instead"
        )

    def claim(self, resource: str, claim_spec: object) -> str:
        """A `claimSpec` output (score-k8s): a volumeClaimTemplate of the StatefulSet, one claim per pod."""
        if self.kind != "StatefulSet":
            raise Problem(
                f"resource {resource!r} outputs a claimSpec, which needs a StatefulSet (annotation "
                f"{KIND_ANNOTATION}: StatefulSet, as in score-k8s); or output a volume `source` (e.g. "
                "persistentVolumeClaim) or emit a volume manifest instead"
            )
        if not isinstance(claim_spec, Mapping) or not claim_spec:
            raise Problem(f"resource {resource!r}: the claimSpec output must be a non-empty object")
        name = dns_label("vol", resource)
        origin = f"resource {resource!r}"
        if name in self.volumes:
            raise Problem(f"pod volume name {name!r} is used by both {self.volumes[name][0]} and {origin}")
        self.claims[name] = (origin, copy.deepcopy(dict(claim_spec)))
        return name

    def mounts(self, cname: str, container: Container) -> list[dict[str, Any]]:
        """The volume mounts of container `cname`; problems go to `collected`."""
        mounts: list[dict[str, Any]] = []
        for target in sorted(container.volumes or {}):
            volume = (container.volumes or {})[target]
            where = f"containers.{cname}.volumes.{target}"
            try:
                if target in (container.files or {}):
                    raise Problem("the same path is also a file of this container")
                segments = parse(volume.source, score=True)
                only = single_placeholder(segments)
                ref = (
                    check_placeholder(only, self.resolver.spec, whole_resource=True)
                    if only is not None
                    else None
                )
                if ref is not None and not ref.key:
                    name = self.resource_volume(ref.resource)
                else:
                    parts = self.resolver.parts(volume.source)
                    if any(isinstance(part, SecretPart) for part in parts):
                        raise Problem("a volume source cannot use a secret output")
                    name = "".join(str(part) for part in parts)
                    if name not in self.volumes:
                        known = ", ".join(sorted(self.volumes)) or "none"
                        raise Problem(
                            f"no pod volume is named {name!r} (volumes from resources: {known}); use "
                            "${resources.<name>} for a volume resource"
                        )
            except (PlaceholderError, Problem) as exc:
                self.collected.problems.append(f"{where}: {exc}")
                continue
            mount: dict[str, Any] = {"name": name, "mountPath": target}
            if volume.path:
                mount["subPath"] = volume.path
            if volume.read_only:
                mount["readOnly"] = True
            mounts.append(mount)
        return mounts
