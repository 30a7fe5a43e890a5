"""The containers' files: ConfigMaps, Secret volumes and their mounts.

Each file is mounted with subPath under its `file_key`. Plain text and binary content go into the
container's ConfigMap; a file that is exactly one secret output is an item of a Secret volume onto the
resource's Secret; text composed with secret outputs goes into the container's files Secret, which the
Workload owns.
"""

from __future__ import annotations

from typing import Any

from strongroom.api.workload import Container
from strongroom.reconcile.placeholders import PlaceholderError
from strongroom.reconcile.workload.model import Collected, Problem
from strongroom.reconcile.workload.names import ObjectMeta, dns_label, file_key, files_object_name
from strongroom.reconcile.workload.values import Resolver, SecretPart
from strongroom.reconcile.workload.volumes import PodVolumes


class Files:
    """The file mounts of each container; their ConfigMaps and Secrets go to `collected`."""

    def __init__(
        self, meta: ObjectMeta, resolver: Resolver, volumes: PodVolumes, collected: Collected
    ) -> None:
        self.name = meta.name
        self.meta = meta
        self.resolver = resolver
        self.volumes = volumes
        self.collected = collected
        # items of Secret volumes onto resource Secrets: volume name -> (secret name, items)
        self.resource_secret_items: dict[str, tuple[str, list[dict[str, Any]]]] = {}

    def mounts(self, cname: str, container: Container) -> list[dict[str, Any]]:
        """The file mounts of container `cname`; its ConfigMap, Secret and volumes are added on the way."""
        mounts: list[dict[str, Any]] = []
        plain: dict[str, str] = {}
        binary: dict[str, str] = {}
        composed: dict[str, bytes] = {}
        plain_items: list[dict[str, Any]] = []
        secret_items: list[dict[str, Any]] = []
        object_name = files_object_name(self.name, cname)
        cm_volume = dns_label("files", cname)
        secret_volume = dns_label("secret-files", cname)
        for target in sorted(container.files or {}):
            file = (container.files or {})[target]
            where = f"containers.{cname}.files.{target}"
            key = file_key(cname, target)
            item: dict[str, Any] = {"key": key, "path": key}
            if file.mode is not None:
                item["mode"] = int(file.mode, 8)
            try:
                if file.binary_content is not None:  # valid base64: the model checks it
                    binary[key] = file.binary_content
                    volume = cm_volume
                    plain_items.append(item)
                elif file.content is None:
                    continue  # `source`: reported by the static checks
                elif file.no_expand:
                    plain[key] = file.content
                    volume = cm_volume
                    plain_items.append(item)
                else:
                    parts = self.resolver.parts(file.content)
                    only = self.resolver.secret_only(parts)
                    if not any(isinstance(part, SecretPart) for part in parts):
                        plain[key] = "".join(str(part) for part in parts)
                        volume = cm_volume
                        plain_items.append(item)
                    elif only is not None:
                        secret_name = self.resolver.secret_ref(only)
                        volume = dns_label("secret", secret_name)
                        entry = self.resource_secret_items.setdefault(volume, (secret_name, []))
                        entry[1].append({**item, "key": only.key})
                    else:
                        composed[key] = self.resolver.compose(parts)
                        volume = secret_volume
                        secret_items.append(item)
            except (PlaceholderError, Problem) as exc:
                self.collected.problems.append(f"{where}: {exc}")
                continue
            mounts.append({"name": volume, "mountPath": target, "subPath": key})
        try:
            if plain_items:
                config_map: dict[str, Any] = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": self.meta.of(object_name),
                }
                if plain:
                    config_map["data"] = plain
                if binary:
                    config_map["binaryData"] = binary
                self.collected.config_maps.append(config_map)
                manifest = {"name": cm_volume, "configMap": {"name": object_name, "items": plain_items}}
                self.volumes.add(cm_volume, manifest, f"the files of container {cname!r}")
            if secret_items:
                self.collected.owned_secrets[object_name] = composed
                self.collected.consumed.add(object_name)
                manifest = {
                    "name": secret_volume,
                    "secret": {"secretName": object_name, "items": secret_items},
                }
                self.volumes.add(secret_volume, manifest, f"the secret files of container {cname!r}")
        except Problem as exc:
            self.collected.problems.append(f"containers.{cname}.files: {exc}")
        return mounts

    def add_resource_secret_volumes(self) -> None:
        """The Secret volumes onto resource Secrets, once every container's files are known."""
        for volume_name, (secret_name, items) in self.resource_secret_items.items():
            manifest = {
                "name": volume_name,
                "secret": {"secretName": secret_name, "items": sorted(items, key=lambda item: item["path"])},
            }
            try:
                self.volumes.add(volume_name, manifest, f"Secret {secret_name!r}")
            except Problem as exc:
                self.collected.problems.append(str(exc))
