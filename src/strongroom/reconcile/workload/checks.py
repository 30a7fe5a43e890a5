"""Rules 1 and 2 of rendering: the patches applied, then every check that needs no resource outputs.

Placeholder syntax, known roots, declared resources, file sources, `before` (as Kubernetes init
containers), the workload kind and the `.` placeholder image are checked here, so a typo is reported at
once, even while resources are still being provisioned. `check` is the one validation of a Workload
short of rendering it: the operator runs it first thing in `render`, and `strongroom render` runs it on
every Workload it writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from strongroom.api.workload import PLACEHOLDER_IMAGE, Workload, WorkloadPatch, WorkloadSpec
from strongroom.reconcile.placeholders import (
    METADATA,
    Placeholder,
    PlaceholderError,
    ResourceRef,
    parse,
    resource_ref,
)
from strongroom.reconcile.workload.names import KIND_ANNOTATION, WORKLOAD_KINDS, workload_kind
from strongroom.reconcile.workloadpatch import apply_patches


def check_placeholder(
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


def startup_order(spec: WorkloadSpec) -> tuple[list[tuple[str, str]], list[str]]:
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


def _static_problems(spec: WorkloadSpec) -> list[str]:
    problems: list[str] = list(startup_order(spec)[1])
    if workload_kind(spec) not in WORKLOAD_KINDS:
        problems.append(
            f"metadata.annotations.{KIND_ANNOTATION}: must be Deployment or StatefulSet (score-k8s refuses "
            "other workload kinds too)"
        )

    def check(where: str, text: str, *, whole_resource: bool = False) -> None:
        try:
            for segment in parse(text, score=True):
                if isinstance(segment, Placeholder):
                    check_placeholder(segment, spec, whole_resource=whole_resource)
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
