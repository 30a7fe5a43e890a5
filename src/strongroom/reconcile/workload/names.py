"""Names, labels and metadata of the objects a Workload renders into, and the kind of object its pods run in.

Every name is derived from spec names only (never from values), valid for the Kubernetes field it goes
into, and shortened with a digest when too long, so equal specs always yield equal names. One module
because every rendered object takes its name, labels and owner reference from here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from strongroom.api.constants import API_VERSION, MANAGED_LABEL
from strongroom.api.workload import Workload, WorkloadSpec
from strongroom.reconcile.secretdata import MANAGED_BY_LABEL

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_BY = "strongroom"

#: Pod template annotation: digest over the content hashes of every Secret the pod reads.
SECRETS_CHECKSUM_ANNOTATION = "strongroom.dev/secrets-checksum"
#: Pod template annotation: digest over the rendered ConfigMaps. Files are mounted with subPath, which
#: Kubernetes never refreshes in a running pod, so a changed file has to roll the pods to be seen.
CONFIG_CHECKSUM_ANNOTATION = "strongroom.dev/config-checksum"

OWN_ANNOTATIONS = (SECRETS_CHECKSUM_ANNOTATION, CONFIG_CHECKSUM_ANNOTATION)

#: score-k8s's workload annotation choosing what the pods run in: Deployment (the default) or StatefulSet.
KIND_ANNOTATION = "k8s.score.dev/kind"
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def workload_kind(spec: WorkloadSpec) -> str:
    """What runs the pods: the `k8s.score.dev/kind` annotation, as score-k8s reads it, or Deployment."""
    return ((spec.metadata.annotations if spec.metadata else None) or {}).get(KIND_ANNOTATION, "Deployment")


def _digest(text: str, length: int = 10) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _object_name(*parts: str) -> str:
    """A DNS-1123 subdomain from valid name parts, shortened with a digest if too long."""
    name = "-".join(parts)
    if len(name) <= 253:
        return name
    return name[:241].rstrip("-.") + "-" + _digest(name)


def dns_label(*parts: str) -> str:
    """An RFC 1123 label (volume names): lower-case alphanumerics and '-', at most 63 characters.

    Parts that are already valid are kept as they are; otherwise the cleaned text gets a digest of the
    original so that different inputs (`Data`, `data`) cannot collapse into one name.
    """
    raw = "-".join(parts)
    if len(raw) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", raw):
        return raw
    clean = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    return (clean[:52].strip("-") + "-" + _digest(raw)).lstrip("-")


def service_name(name: str) -> str:
    """Services need an RFC 1035 label (starts with a letter); the workload name when it is one."""
    label = dns_label(name)
    return label if label[0].isalpha() else dns_label("svc", name)


def headless_service_name(name: str) -> str:
    """The StatefulSet's governing Service, named as score-k8s names it (`<workload>-headless-svc`)."""
    label = dns_label(name, "headless-svc")
    return label if label[0].isalpha() else dns_label("svc", name, "headless-svc")


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


class ObjectMeta:
    """Labels, pod selector and metadata (owner reference included) of the objects one Workload renders."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self.name = workload.name
        self.labels = {
            NAME_LABEL: _label_value(self.name),
            INSTANCE_LABEL: _label_value(self.name),
            MANAGED_BY_LABEL: MANAGED_BY,
        }
        self.selector = {NAME_LABEL: self.labels[NAME_LABEL], INSTANCE_LABEL: self.labels[INSTANCE_LABEL]}

    def of(self, name: str, annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The metadata of the object `name`: namespace, labels, the Workload as controller owner."""
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
