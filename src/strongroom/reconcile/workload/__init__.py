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

One module per concern, re-exported here: `model` (ResourceOutputs, RenderResult, what the parts
collect), `names` (object names, labels, annotation keys, metadata), `checks` (rules 1 and 2, `check`),
`values` (placeholders resolved against outputs), `env`, `files`, `volumes` (pod volumes and mounts),
`containers` (container manifests, start order, what resources emit), `services`, `checksums`, and
`renderer` (rules 3 and 4: `render` assembles the objects).
"""

from __future__ import annotations

from strongroom.reconcile.workload.checks import CheckResult, check
from strongroom.reconcile.workload.model import RenderResult, ResourceOutputs
from strongroom.reconcile.workload.names import (
    CONFIG_CHECKSUM_ANNOTATION,
    INSTANCE_LABEL,
    KIND_ANNOTATION,
    NAME_LABEL,
    SECRETS_CHECKSUM_ANNOTATION,
    WORKLOAD_KINDS,
    env_secret_name,
    file_key,
    files_object_name,
    workload_kind,
)
from strongroom.reconcile.workload.renderer import render, required_resources

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
