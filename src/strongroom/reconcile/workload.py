"""Workload: from a Score workload, its patches and its resources' outputs, the objects to apply. Pure.

The controller gathers the inputs (the Workload, its WorkloadPatches, what each of its Resources
produced, the content hashes of the Secrets the pod reads) and server-side applies `objects`. The
rules, in the order they are checked (docs/workloads.md is the user-facing version):

1. WorkloadPatches apply first (reconcile.workloadpatch). A broken patch -> `patch_problems`, nothing is
   rendered: the controller keeps the last good rendering instead of rolling out half a change.
2. Everything that needs no outputs is checked (placeholder syntax, known roots, declared resources, file
   sources, `before`, the `.` placeholder image) so a typo is reported at once, even while resources are
   still being provisioned. Steps 1 and 2 are `check`, which `strongroom render` runs too.
3. Every resource in `spec.resources` must be present and Ready, else `waiting_for` names the others and
   nothing is rendered (a pod started without its database only crash-loops).
4. Rendering: one Deployment (a StatefulSet and its headless Service with score-k8s's annotation
   `k8s.score.dev/kind: StatefulSet`), a Service when ports exist, ConfigMaps for files, workload-owned
   Secrets only where a secret must be composed with text. Any problem -> nothing is rendered.

Secrets reach the pod only by reference: an env var or file that is exactly one secret output points
at the resource's Secret (`secretKeyRef`, Secret volume); text mixed with secret outputs is composed
into a Secret this Workload owns. Secret values never appear in a Deployment, Service, ConfigMap,
annotation, problem message or label.

Output is deterministic (dict keys sorted, lists in a defined order, names derived from spec names), so
a reconcile that changes nothing yields identical manifests and server-side apply writes nothing.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strongroom.api.constants import API_VERSION, MANAGED_LABEL
from strongroom.api.workload import (
    PLACEHOLDER_IMAGE,
    Container,
    ContainerProbe,
    Workload,
    WorkloadPatch,
    WorkloadSpec,
)
from strongroom.reconcile.placeholders import (
    METADATA,
    Placeholder,
    PlaceholderError,
    ResourceRef,
    lookup,
    parse,
    resource_ref,
    single_placeholder,
    to_text,
)
from strongroom.reconcile.secretdata import CONTENT_HASH_ANNOTATION, MANAGED_BY_LABEL, content_hash
from strongroom.reconcile.workloadpatch import apply_patches
from strongroom.stores.base import SecretValue

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY = "strongroom"

#: Pod template annotation: digest over the content hashes of every Secret the pod reads.
SECRETS_CHECKSUM_ANNOTATION = "strongroom.dev/secrets-checksum"
#: Pod template annotation: digest over the rendered ConfigMaps. Files are mounted with subPath, which
#: Kubernetes never refreshes in a running pod, so a changed file has to roll the pods to be seen.
CONFIG_CHECKSUM_ANNOTATION = "strongroom.dev/config-checksum"

_OWN_ANNOTATIONS = (SECRETS_CHECKSUM_ANNOTATION, CONFIG_CHECKSUM_ANNOTATION)

#: score-k8s's workload annotation choosing what the pods run in: Deployment (the default) or StatefulSet.
KIND_ANNOTATION = "k8s.score.dev/kind"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


@dataclass(frozen=True)
class ResourceOutputs:
    """What the controller observed about one resource the workload uses."""

    ready: bool
    values: Mapping[str, Any] = field(default_factory=dict)
    """Non-secret outputs (may be nested); inlined where referenced."""
    secret_name: str | None = None
    """Kubernetes Secret (workload's namespace) holding the secret outputs, one data key per output key."""
    secrets: Mapping[str, SecretValue] = field(default_factory=dict)
    """Secret output values by key, as read from that Secret. Only needed to compose a secret with text
    (an env var or file that is exactly one secret output is wired by reference)."""
    containers: Sequence[Mapping[str, Any]] = ()
    """Container manifests the resource emits (manifest location `containers`): sidecars."""
    volumes: Sequence[Mapping[str, Any]] = ()
    """Volume manifests the resource emits (manifest location `volumes`)."""
    content_hash: str | None = None
    """Content hash of its outputs Secret (`strongroom.dev/content-hash`), for the rollout checksum."""
    secret_keys: Collection[str] = ()
    """Further secret output keys whose values were not read (keys of `secrets` count anyway)."""

    def secret_output_keys(self) -> set[str]:
        return set(self.secrets) | set(self.secret_keys)


@dataclass(frozen=True)
class RenderResult:
    """What to apply, or why not."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    """Complete manifests for server-side apply, dependencies first: ConfigMaps, Secrets, the Deployment
    or the headless Service and StatefulSet, Service. Empty whenever anything below is non-empty."""
    waiting_for: list[str] = field(default_factory=list)
    """Resources (names in spec.resources) that are missing or not Ready."""
    patch_problems: dict[str, str] = field(default_factory=dict)
    """WorkloadPatch name -> why it does not apply."""
    problems: list[str] = field(default_factory=list)
    """Other actionable problems with the Workload (placeholders, files, volumes, manifests)."""
    consumed_secrets: list[str] = field(default_factory=list)
    """Names of the Secrets the pod reads (resource Secrets, owned Secrets, Secrets sidecars name)."""
    applied_patches: list[str] = field(default_factory=list)
    """WorkloadPatches applied, in order (for `status.patches`)."""

    @property
    def complete(self) -> bool:
        """True when `objects` is a full rendering that may be applied."""
        return not (self.waiting_for or self.patch_problems or self.problems)


# --- Names ------------------------------------------------------------------------------------------------


def _digest(text: str, length: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _object_name(*parts: str) -> str:
    """A DNS-1123 subdomain from valid name parts, shortened with a digest if too long."""
    name = "-".join(parts)
    if len(name) <= 253:
        return name
    return name[:241].rstrip("-.") + "-" + _digest(name)


def _dns_label(*parts: str) -> str:
    """An RFC 1123 label (volume names): lower-case alphanumerics and '-', at most 63 characters.

    Parts that are already valid are kept as they are; otherwise the cleaned text gets a digest of the
    original so that different inputs (`Data`, `data`) cannot collapse into one name.
    """
    raw = "-".join(parts)
    if len(raw) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", raw):
        return raw
    clean = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    return (clean[:52].strip("-") + "-" + _digest(raw)).lstrip("-")


def _service_name(name: str) -> str:
    """Services need an RFC 1035 label (starts with a letter); the workload name when it is one."""
    label = _dns_label(name)
    return label if label[0].isalpha() else _dns_label("svc", name)


def _headless_service_name(name: str) -> str:
    """The StatefulSet's governing Service, named as score-k8s names it (`<workload>-headless-svc`)."""
    label = _dns_label(name, "headless-svc")
    return label if label[0].isalpha() else _dns_label("svc", name, "headless-svc")


def _label_value(value: str) -> str:
    if len(value) <= 63:
        return value
    return value[:52].rstrip("-_.") + "-" + _digest(value)


def file_key(container: str, target: str) -> str:
    """ConfigMap/Secret key and subPath of one file: its base name (readable) plus a digest of
    container and target (unique even when two files share a base name)."""
    base = re.sub(r"[^-._a-zA-Z0-9]+", "-", target.rstrip("/").rsplit("/", 1)[-1])[:200].strip(".") or "file"
    return f"{base}-{_digest(f'{container}:{target}', 8)}"


def env_secret_name(workload: str) -> str:
    """The workload-owned Secret holding env vars composed from text and secret outputs."""
    return _object_name(workload, "env")


def files_object_name(workload: str, container: str) -> str:
    """The ConfigMap (plain files) and the Secret (files composed with secrets) of one container."""
    return _object_name(workload, container, "files")


# --- Helpers ----------------------------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """A copy with every mapping's keys sorted, so equal content serialises identically."""
    if isinstance(value, Mapping):
        return {key: _canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return value


def _checksum(entries: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(entries):
        digest.update(f"{len(name)}:{name}={entries[name]}\n".encode())
    return digest.hexdigest()


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


@dataclass(frozen=True)
class _SecretPart:
    """A placeholder that resolved to a secret output: where it lives, and the value if it was read."""

    resource: str
    secret_name: str | None
    key: str
    value: SecretValue | None


_Part = str | _SecretPart


class _Problem(Exception):
    """One problem found while rendering; collected, never shown with a value."""


# --- Static checks (no outputs needed) --------------------------------------------------------------------


def _check_placeholder(
    placeholder: Placeholder, spec: WorkloadSpec, *, whole_resource: bool
) -> ResourceRef | None:
    """The resource reference of a placeholder, after checks that need no outputs."""
    if placeholder.root == METADATA:
        return None
    ref = resource_ref(placeholder)
    if ref is None:
        raise PlaceholderError(
            f"unknown placeholder {placeholder.source}: placeholders start with metadata. or resources."
        )
    declared = sorted(spec.resources or {})
    if ref.resource not in declared:
        known = ", ".join(declared) or "none"
        raise PlaceholderError(
            f"placeholder {placeholder.source} refers to resource {ref.resource!r}, which is not declared "
            f"in spec.resources (declared: {known})"
        )
    if not ref.key and not whole_resource:
        raise PlaceholderError(
            f"placeholder {placeholder.source} needs an output key, e.g. ${{resources.{ref.resource}.<key>}}"
        )
    return ref


_READY_STRENGTH = {"started": 0, "healthy": 1}


def _startup_order(spec: WorkloadSpec) -> tuple[list[tuple[str, str]], list[str]]:
    """Score `before` as Kubernetes init containers: (container, ready) in start order, and problems.

    A container some other container names in `before` starts as an init container: `complete` runs to
    completion first; `started` and `healthy` become sidecars (`restartPolicy: Always`) that keep running,
    and for `healthy` the kubelet waits for the container's readiness probe (as its startup probe). Named
    with `started` by one container and `healthy` by another, it waits until healthy.
    """
    modes: dict[str, str] = {}
    problems: list[str] = []
    for cname in sorted(spec.containers):
        for other, before in sorted((spec.containers[cname].before or {}).items()):
            known = modes.setdefault(other, before.ready)
            if known == before.ready:
                continue
            if "complete" in (known, before.ready):
                problems.append(
                    f"containers.{cname}.before.{other}: {other!r} is needed both to complete and to keep "
                    "running by the containers that name it in `before`"
                )
            elif _READY_STRENGTH[before.ready] > _READY_STRENGTH[known]:
                modes[other] = before.ready
    for other, mode in sorted(modes.items()):
        container = spec.containers[other]
        if mode == "complete" and (container.liveness_probe or container.readiness_probe):
            problems.append(
                f"containers.{other}: it runs to completion before the others start (ready: complete in "
                "`before`), so it cannot have probes (Kubernetes: init containers may not have probes)"
            )
    order: list[tuple[str, str]] = []
    pending = set(modes)
    while pending:
        ready = sorted(name for name in pending if not (set(spec.containers[name].before or {}) & pending))
        if not ready:
            problems.append(f"containers: `before` forms a cycle among {', '.join(sorted(pending))}")
            break
        order.extend((name, modes[name]) for name in ready)
        pending -= set(ready)
    return order, problems


def workload_kind(spec: WorkloadSpec) -> str:
    """What runs the pods: the `k8s.score.dev/kind` annotation, as score-k8s reads it, or Deployment."""
    return ((spec.metadata.annotations if spec.metadata else None) or {}).get(KIND_ANNOTATION, "Deployment")


def _static_problems(spec: WorkloadSpec) -> list[str]:
    problems: list[str] = list(_startup_order(spec)[1])
    if workload_kind(spec) not in WORKLOAD_KINDS:
        problems.append(
            f"metadata.annotations.{KIND_ANNOTATION}: must be Deployment or StatefulSet (score-k8s refuses "
            "other workload kinds too)"
        )

    def check(where: str, text: str, *, whole_resource: bool = False) -> None:
        try:
            for segment in parse(text, score=True):
                if isinstance(segment, Placeholder):
                    _check_placeholder(segment, spec, whole_resource=whole_resource)
        except PlaceholderError as exc:
            problems.append(f"{where}: {exc}")

    for cname in sorted(spec.containers):
        container = spec.containers[cname]
        if container.image == PLACEHOLDER_IMAGE:
            problems.append(
                f"containers.{cname}.image: {PLACEHOLDER_IMAGE!r} is Score's placeholder for an image given "
                "at deploy time; give it with `strongroom deploy --image` (or write the image)"
            )
        for var, value in sorted((container.variables or {}).items()):
            check(f"containers.{cname}.variables.{var}", value)
        for target, file in sorted((container.files or {}).items()):
            where = f"containers.{cname}.files.{target}"
            if file.source is not None:
                problems.append(
                    f"{where}: source {file.source!r} is a path on the machine that wrote the Score file and "
                    "cannot be read in the cluster; put the text in content (strongroom deploy does this)"
                )
            elif file.content is not None and not file.no_expand:
                check(where, file.content)
        for target, volume in sorted((container.volumes or {}).items()):
            check(f"containers.{cname}.volumes.{target}", volume.source, whole_resource=True)
    return problems


# --- Rendering --------------------------------------------------------------------------------------------


class _Renderer:
    def __init__(
        self,
        workload: Workload,
        spec: WorkloadSpec,
        resources: Mapping[str, ResourceOutputs],
        secret_hashes: Mapping[str, str],
    ) -> None:
        self.workload = workload
        self.spec = spec
        self.name = workload.name
        self.resources = resources
        self.secret_hashes = secret_hashes
        self.problems: list[str] = []
        self.consumed: set[str] = set()
        self.volumes: dict[str, tuple[str, dict[str, Any]]] = {}  # pod volume name -> (origin, manifest)
        self.kind = workload_kind(spec)
        # StatefulSet volumeClaimTemplates: volume name -> (origin, PersistentVolumeClaim spec)
        self.claims: dict[str, tuple[str, dict[str, Any]]] = {}
        self.config_maps: list[dict[str, Any]] = []
        self.owned_secrets: dict[str, dict[str, bytes]] = {}  # owned Secret name -> data
        # env vars composed from text and secrets: variable -> container -> value
        self.composed_env: dict[str, dict[str, bytes]] = {}
        # items of Secret volumes onto resource Secrets: volume name -> (secret name, items)
        self.resource_secret_items: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        metadata = (
            spec.metadata.model_dump(mode="json", by_alias=True, exclude_none=True) if spec.metadata else {}
        )
        metadata.setdefault("name", self.name)
        self.metadata = metadata
        self.labels = {
            NAME_LABEL: _label_value(self.name),
            INSTANCE_LABEL: _label_value(self.name),
            MANAGED_BY_LABEL: MANAGED_BY,
        }
        self.selector = {NAME_LABEL: self.labels[NAME_LABEL], INSTANCE_LABEL: self.labels[INSTANCE_LABEL]}

    # -- placeholders --

    def resolve(self, placeholder: Placeholder, *, whole_resource: bool = False) -> _Part:
        ref = _check_placeholder(placeholder, self.spec, whole_resource=whole_resource)
        if ref is None:
            try:
                return to_text(lookup(self.metadata, placeholder.path[1:]))
            except KeyError:
                raise PlaceholderError(
                    f"placeholder {placeholder.source}: the workload metadata has no such key"
                ) from None
        outputs = self.resources[ref.resource]
        secret_keys = outputs.secret_output_keys()
        if ref.key_text in secret_keys:
            return _SecretPart(
                ref.resource, outputs.secret_name, ref.key_text, outputs.secrets.get(ref.key_text)
            )
        try:
            return to_text(lookup(outputs.values, ref.key))
        except KeyError:
            values = ", ".join(sorted(outputs.values)) or "none"
            secrets = ", ".join(sorted(secret_keys)) or "none"
            raise PlaceholderError(
                f"placeholder {placeholder.source}: resource {ref.resource!r} has no output {ref.key_text!r} "
                f"(outputs: {values}; secret outputs: {secrets})"
            ) from None

    def parts(self, text: str) -> list[_Part]:
        return [
            seg.text if not isinstance(seg, Placeholder) else self.resolve(seg)
            for seg in parse(text, score=True)
        ]

    @staticmethod
    def secret_only(parts: Sequence[_Part]) -> _SecretPart | None:
        if len(parts) == 1 and isinstance(parts[0], _SecretPart):
            return parts[0]
        return None

    def secret_ref(self, part: _SecretPart) -> str:
        if not part.secret_name:
            raise _Problem(
                f"resource {part.resource!r} has the secret output {part.key!r} but names no Secret "
                "holding it"
            )
        self.consumed.add(part.secret_name)
        return part.secret_name

    @staticmethod
    def compose(parts: Sequence[_Part]) -> bytes:
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            if part.value is None:
                raise _Problem(
                    f"the value of secret output {part.key!r} of resource {part.resource!r} was not "
                    "provided, and it is needed to compose this text"
                )
            try:
                out.append(part.value.reveal_text())
            except UnicodeDecodeError:
                raise _Problem(
                    f"secret output {part.key!r} of resource {part.resource!r} is not UTF-8 text and "
                    "cannot be composed with other text; use it on its own"
                ) from None
        return "".join(out).encode()

    def add_volume(self, name: str, manifest: dict[str, Any], origin: str) -> None:
        if name in self.claims:
            raise _Problem(f"pod volume name {name!r} is used by both {self.claims[name][0]} and {origin}")
        existing = self.volumes.get(name)
        if existing is None:
            self.volumes[name] = (origin, manifest)
        elif _canonical(existing[1]) != _canonical(manifest):
            raise _Problem(f"pod volume name {name!r} is used by both {existing[0]} and {origin}")

    # -- containers --

    def env(self, cname: str, container: Container) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for var in sorted(container.variables or {}):
            where = f"containers.{cname}.variables.{var}"
            try:
                parts = self.parts((container.variables or {})[var])
                only = self.secret_only(parts)
                if not any(isinstance(part, _SecretPart) for part in parts):
                    entries.append({"name": var, "value": "".join(str(part) for part in parts)})
                elif only is not None:
                    ref = {"name": self.secret_ref(only), "key": only.key}
                    entries.append({"name": var, "valueFrom": {"secretKeyRef": ref}})
                else:
                    self.composed_env.setdefault(var, {})[cname] = self.compose(parts)
                    # Filled in by finish_env once every container is known (the key may depend on them).
                    entries.append({"name": var, "valueFrom": {"secretKeyRef": None}})
            except (PlaceholderError, _Problem) as exc:
                self.problems.append(f"{where}: {exc}")
        return entries

    def finish_env(self, containers: list[dict[str, Any]]) -> None:
        if not self.composed_env:
            return
        secret = env_secret_name(self.name)
        data: dict[str, bytes] = {}
        keys: dict[tuple[str, str], str] = {}
        for var, per_container in self.composed_env.items():
            # One key per variable, as documented; only when containers need different values for the same
            # variable does each get its own key, `<container>.<variable>`.
            shared = len(set(per_container.values())) == 1
            for cname, value in per_container.items():
                key = var if shared else f"{cname}.{var}"
                if key in data and data[key] != value:
                    # Only possible when a variable is itself called `<container>.<variable>`.
                    self.problems.append(
                        f"containers.{cname}.variables.{var}: key {key!r} of Secret {secret!r} is needed "
                        "for two different values; rename one of the variables"
                    )
                keys[(cname, var)] = key
                data[key] = value
        self.owned_secrets[secret] = data
        self.consumed.add(secret)
        for manifest in containers:
            for entry in manifest.get("env", []):
                if entry.get("valueFrom") == {"secretKeyRef": None}:
                    entry["valueFrom"]["secretKeyRef"] = {
                        "name": secret,
                        "key": keys[(manifest["name"], entry["name"])],
                    }

    def files(self, cname: str, container: Container) -> list[dict[str, Any]]:
        mounts: list[dict[str, Any]] = []
        plain: dict[str, str] = {}
        binary: dict[str, str] = {}
        composed: dict[str, bytes] = {}
        plain_items: list[dict[str, Any]] = []
        secret_items: list[dict[str, Any]] = []
        object_name = files_object_name(self.name, cname)
        cm_volume = _dns_label("files", cname)
        secret_volume = _dns_label("secret-files", cname)
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
                    parts = self.parts(file.content)
                    only = self.secret_only(parts)
                    if not any(isinstance(part, _SecretPart) for part in parts):
                        plain[key] = "".join(str(part) for part in parts)
                        volume = cm_volume
                        plain_items.append(item)
                    elif only is not None:
                        secret_name = self.secret_ref(only)
                        volume = _dns_label("secret", secret_name)
                        entry = self.resource_secret_items.setdefault(volume, (secret_name, []))
                        entry[1].append({**item, "key": only.key})
                    else:
                        composed[key] = self.compose(parts)
                        volume = secret_volume
                        secret_items.append(item)
            except (PlaceholderError, _Problem) as exc:
                self.problems.append(f"{where}: {exc}")
                continue
            mounts.append({"name": volume, "mountPath": target, "subPath": key})
        try:
            if plain_items:
                config_map: dict[str, Any] = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": self.object_meta(object_name),
                }
                if plain:
                    config_map["data"] = plain
                if binary:
                    config_map["binaryData"] = binary
                self.config_maps.append(config_map)
                manifest = {"name": cm_volume, "configMap": {"name": object_name, "items": plain_items}}
                self.add_volume(cm_volume, manifest, f"the files of container {cname!r}")
            if secret_items:
                self.owned_secrets[object_name] = composed
                self.consumed.add(object_name)
                manifest = {
                    "name": secret_volume,
                    "secret": {"secretName": object_name, "items": secret_items},
                }
                self.add_volume(secret_volume, manifest, f"the secret files of container {cname!r}")
        except _Problem as exc:
            self.problems.append(f"containers.{cname}.files: {exc}")
        return mounts

    def resource_volume(self, resource: str) -> str:
        """The pod volume a `${resources.<name>}` volume source means."""
        outputs = self.resources[resource]
        source = outputs.values.get("source")
        if isinstance(source, Mapping) and source:
            # score-k8s convention: the resource outputs a Kubernetes volume source.
            name = _dns_label("vol", resource)
            self.add_volume(name, {**copy.deepcopy(dict(source)), "name": name}, f"resource {resource!r}")
            return name
        if "claimSpec" in outputs.values:
            return self.claim(resource, outputs.values["claimSpec"])
        names = [str(volume.get("name")) for volume in outputs.volumes]
        if len(names) == 1:
            return names[0]
        if not names:
            raise _Problem(
                f"resource {resource!r} provides no volume: it has no `source` output and emits no "
                "volume manifest"
            )
        raise _Problem(
            f"resource {resource!r} emits {len(names)} volumes ({', '.join(sorted(names))}); "
            "mount one by its name instead"
        )

    def claim(self, resource: str, claim_spec: object) -> str:
        """A `claimSpec` output (score-k8s): a volumeClaimTemplate of the StatefulSet, one claim per pod."""
        if self.kind != "StatefulSet":
            raise _Problem(
                f"resource {resource!r} outputs a claimSpec, which needs a StatefulSet (annotation "
                f"{KIND_ANNOTATION}: StatefulSet, as in score-k8s); or output a volume `source` (e.g. "
                "persistentVolumeClaim) or emit a volume manifest instead"
            )
        if not isinstance(claim_spec, Mapping) or not claim_spec:
            raise _Problem(f"resource {resource!r}: the claimSpec output must be a non-empty object")
        name = _dns_label("vol", resource)
        origin = f"resource {resource!r}"
        if name in self.volumes:
            raise _Problem(f"pod volume name {name!r} is used by both {self.volumes[name][0]} and {origin}")
        self.claims[name] = (origin, copy.deepcopy(dict(claim_spec)))
        return name

    def volume_mounts(self, cname: str, container: Container) -> list[dict[str, Any]]:
        mounts: list[dict[str, Any]] = []
        for target in sorted(container.volumes or {}):
            volume = (container.volumes or {})[target]
            where = f"containers.{cname}.volumes.{target}"
            try:
                if target in (container.files or {}):
                    raise _Problem("the same path is also a file of this container")
                segments = parse(volume.source, score=True)
                only = single_placeholder(segments)
                ref = _check_placeholder(only, self.spec, whole_resource=True) if only is not None else None
                if ref is not None and not ref.key:
                    name = self.resource_volume(ref.resource)
                else:
                    parts = self.parts(volume.source)
                    if any(isinstance(part, _SecretPart) for part in parts):
                        raise _Problem("a volume source cannot use a secret output")
                    name = "".join(str(part) for part in parts)
                    if name not in self.volumes:
                        known = ", ".join(sorted(self.volumes)) or "none"
                        raise _Problem(
                            f"no pod volume is named {name!r} (volumes from resources: {known}); use "
                            "${resources.<name>} for a volume resource"
                        )
            except (PlaceholderError, _Problem) as exc:
                self.problems.append(f"{where}: {exc}")
                continue
            mount: dict[str, Any] = {"name": name, "mountPath": target}
            if volume.path:
                mount["subPath"] = volume.path
            if volume.read_only:
                mount["readOnly"] = True
            mounts.append(mount)
        return mounts

    @staticmethod
    def probe(probe: ContainerProbe) -> dict[str, Any]:
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

    def container(self, cname: str, container: Container) -> dict[str, Any]:
        manifest: dict[str, Any] = {"name": cname, "image": container.image}
        if container.command is not None:
            manifest["command"] = list(container.command)
        if container.args is not None:
            manifest["args"] = list(container.args)
        env = self.env(cname, container)
        if env:
            manifest["env"] = env
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
                manifest[kind] = self.probe(probe)
        mounts = self.files(cname, container) + self.volume_mounts(cname, container)
        if mounts:
            manifest["volumeMounts"] = sorted(mounts, key=lambda mount: mount["mountPath"])
        return manifest

    # -- resource manifests --

    def resource_manifests(self, workload_containers: Collection[str]) -> list[dict[str, Any]]:
        """Volumes (into self.volumes) and sidecar containers emitted by the resources."""
        sidecars: dict[str, tuple[str, dict[str, Any]]] = {}
        for resource in sorted(self.spec.resources or {}):
            outputs = self.resources[resource]
            origin = f"resource {resource!r}"
            for volume in outputs.volumes:
                name = volume.get("name") if isinstance(volume, Mapping) else None
                if not isinstance(name, str) or not name:
                    self.problems.append(f"{origin}: a volume manifest has no name")
                    continue
                try:
                    self.add_volume(name, copy.deepcopy(dict(volume)), origin)
                except _Problem as exc:
                    self.problems.append(str(exc))
                    continue
                self.consumed |= _secret_names_in_volume(volume)
            for container in outputs.containers:
                name = container.get("name") if isinstance(container, Mapping) else None
                if not isinstance(name, str) or not name:
                    self.problems.append(f"{origin}: a container manifest has no name")
                    continue
                if name in workload_containers:
                    self.problems.append(
                        f"{origin} emits a container {name!r}, but the workload has a container of that name"
                    )
                    continue
                existing = sidecars.get(name)
                if existing is not None:
                    if _canonical(existing[1]) != _canonical(container):
                        self.problems.append(
                            f"container name {name!r} is emitted by both {existing[0]} and {origin}"
                        )
                    continue
                sidecars[name] = (origin, copy.deepcopy(dict(container)))
                self.consumed |= _secret_names_in_container(container)
        return [manifest for _, manifest in sidecars.values()]

    # -- objects --

    def object_meta(self, name: str, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "namespace": self.workload.namespace,
            "labels": {**self.labels, MANAGED_LABEL: "true"},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "Workload",
                    "name": self.name,
                    "uid": self.workload.metadata.uid or "",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if annotations:
            meta["annotations"] = dict(annotations)
        return meta

    def secret_object(self, name: str, data: Mapping[str, bytes]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self.object_meta(name, {CONTENT_HASH_ANNOTATION: content_hash(data)}),
            "type": "Opaque",
            "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
        }

    def secret_hash(self, name: str) -> str:
        if name in self.owned_secrets:
            return content_hash(self.owned_secrets[name])
        if name in self.secret_hashes:
            return self.secret_hashes[name]
        for resource in sorted(self.spec.resources or {}):
            outputs = self.resources[resource]
            if outputs.secret_name == name and outputs.content_hash:
                return outputs.content_hash
        return ""  # unknown: the checksum still moves once the controller learns the hash

    def render(self) -> RenderResult:
        user_annotations = {
            key: value
            for key, value in ((self.spec.metadata.annotations if self.spec.metadata else None) or {}).items()
            if key not in _OWN_ANNOTATIONS
        }
        sidecars = self.resource_manifests(set(self.spec.containers))
        containers = [
            self.container(cname, self.spec.containers[cname]) for cname in sorted(self.spec.containers)
        ]
        self.finish_env(containers)
        for volume_name, (secret_name, items) in self.resource_secret_items.items():
            manifest = {
                "name": volume_name,
                "secret": {"secretName": secret_name, "items": sorted(items, key=lambda item: item["path"])},
            }
            try:
                self.add_volume(volume_name, manifest, f"Secret {secret_name!r}")
            except _Problem as exc:
                self.problems.append(str(exc))
        if self.problems:
            return RenderResult(problems=self.problems)

        pod_annotations = dict(user_annotations)
        if self.config_maps:
            config = [
                {"name": cm["metadata"]["name"], "data": cm.get("data"), "binaryData": cm.get("binaryData")}
                for cm in self.config_maps
            ]
            pod_annotations[CONFIG_CHECKSUM_ANNOTATION] = hashlib.sha256(
                json.dumps(_canonical(config), sort_keys=True).encode()
            ).hexdigest()
        consumed = sorted(self.consumed)
        if self.spec.rollout_on_secret_change:
            pod_annotations[SECRETS_CHECKSUM_ANNOTATION] = _checksum(
                {name: self.secret_hash(name) for name in consumed}
            )

        order, _ = _startup_order(self.spec)  # problems were reported before rendering
        by_name = {manifest["name"]: manifest for manifest in containers}
        init_containers = []
        for name, ready in order:
            manifest = by_name.pop(name)
            if ready != "complete":
                manifest["restartPolicy"] = "Always"  # a sidecar: the next starts once this one has started
                if ready == "healthy" and "readinessProbe" in manifest:
                    manifest["startupProbe"] = copy.deepcopy(manifest["readinessProbe"])
            init_containers.append(manifest)
        pod_spec: dict[str, Any] = {"containers": list(by_name.values()) + sidecars}
        if init_containers:
            pod_spec["initContainers"] = init_containers
        if self.volumes:
            pod_spec["volumes"] = [self.volumes[name][1] for name in sorted(self.volumes)]
        template_meta: dict[str, Any] = {"labels": dict(self.labels)}
        if pod_annotations:
            template_meta["annotations"] = pod_annotations
        pods: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": self.kind,
            "metadata": self.object_meta(self.name, user_annotations),
            "spec": {
                "selector": {"matchLabels": dict(self.selector)},
                "template": {"metadata": template_meta, "spec": pod_spec},
            },
        }
        if self.spec.replicas is not None:
            # Only when set: an unset field is left to Kubernetes and to a HorizontalPodAutoscaler, which a
            # re-render would otherwise reset on every reconcile.
            pods["spec"]["replicas"] = self.spec.replicas
        ports = [
            {
                "name": pname,
                "port": port.port,
                "targetPort": port.target_port or port.port,
                "protocol": port.protocol or "TCP",
            }
            for pname, port in sorted(
                ((self.spec.service.ports if self.spec.service else None) or {}).items()
            )
        ]
        objects: list[dict[str, Any]] = sorted(self.config_maps, key=lambda cm: str(cm["metadata"]["name"]))
        objects += [self.secret_object(name, self.owned_secrets[name]) for name in sorted(self.owned_secrets)]
        if self.kind == "StatefulSet":
            # As score-k8s: a headless Service governs the pods' network identities (`serviceName`), and
            # claimSpec outputs become volumeClaimTemplates.
            headless = _headless_service_name(self.name)
            headless_spec: dict[str, Any] = {"clusterIP": "None", "selector": dict(self.selector)}
            if ports:
                headless_spec["ports"] = copy.deepcopy(ports)
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": self.object_meta(headless, user_annotations),
                    "spec": headless_spec,
                }
            )
            pods["spec"]["serviceName"] = headless
            if self.claims:
                pods["spec"]["volumeClaimTemplates"] = [
                    {"metadata": {"name": name}, "spec": self.claims[name][1]} for name in sorted(self.claims)
                ]
        objects.append(pods)
        if ports:
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": self.object_meta(_service_name(self.name), user_annotations),
                    "spec": {"selector": dict(self.selector), "ports": ports},
                }
            )
        return RenderResult(objects=[_canonical(obj) for obj in objects], consumed_secrets=consumed)


@dataclass(frozen=True)
class CheckResult:
    """A Workload after its patches, and every problem found without any resource outputs."""

    spec: WorkloadSpec
    """The effective spec (the Workload's spec with every valid patch applied)."""
    applied_patches: list[str] = field(default_factory=list)
    patch_problems: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.patch_problems or self.problems)


def check(workload: Workload, patches: Sequence[WorkloadPatch]) -> CheckResult:
    """Rules 1 and 2: apply the patches, then check everything that needs no outputs.

    The one validation of a Workload short of rendering it: the operator runs it first thing in `render`,
    and `strongroom render` runs it on every Workload it writes, so what renders offline deploys.
    """
    outcome = apply_patches(workload, patches)
    if outcome.problems:
        return CheckResult(outcome.spec, outcome.applied, outcome.problems)
    return CheckResult(outcome.spec, outcome.applied, problems=_static_problems(outcome.spec))


def render(
    workload: Workload,
    patches: Sequence[WorkloadPatch],
    resources: Mapping[str, ResourceOutputs],
    secret_hashes: Mapping[str, str],
) -> RenderResult:
    """Render `workload` with its `patches` applied, against what its `resources` produced.

    `resources` is keyed by the workload's resource names (keys of `spec.resources`); `secret_hashes` maps
    Secret names to their `strongroom.dev/content-hash` annotation. See the module docstring for the rules.
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


__all__ = [
    "CONFIG_CHECKSUM_ANNOTATION",
    "INSTANCE_LABEL",
    "KIND_ANNOTATION",
    "NAME_LABEL",
    "SECRETS_CHECKSUM_ANNOTATION",
    "WORKLOAD_KINDS",
    "CheckResult",
    "RenderResult",
    "ResourceOutputs",
    "check",
    "env_secret_name",
    "file_key",
    "files_object_name",
    "render",
    "required_resources",
    "workload_kind",
]
