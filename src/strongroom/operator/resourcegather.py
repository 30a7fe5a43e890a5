"""What a Resource's driver is called with, gathered before a provisioning pass (docs/resources.md tells
the user-facing story): duplicates and the GUResID policy; dependencies (placeholders
`${resources.<name>.outputs.<key>}`: a cycle, or a dependency missing, not Ready or without the output, is
a condition, and the Resource is woken when a dependency changes); the driver; the secret references; the
driver cookie; the request's HMAC digest, compared with `status.inputsHash`.

The result is a `ProvisioningPass`, which the executor of the provisioning steps
(operator/resourceprovision.py) then fills with what its steps learn. Each problem raises `Failed` with the
condition to record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from strongroom.api.common import SecretReference
from strongroom.api.resource import Resource
from strongroom.drivers.base import Driver, DriverRequest, DriverResult, OperationInProgress
from strongroom.operator.drivercache import DriverCache
from strongroom.operator.drivercalls import DriverCalls
from strongroom.operator.inputskey import InputsKey
from strongroom.operator.kube import Kube
from strongroom.operator.resourceindex import ResourceIndex
from strongroom.operator.resourceio import Failed, ResourceIO
from strongroom.reconcile import resource as plan
from strongroom.reconcile.ownership import controlled_by
from strongroom.reconcile.placeholders import PlaceholderError
from strongroom.reconcile.secretdata import decode_secret_data
from strongroom.reconcile.stores import Problem
from strongroom.stores.base import SecretValue

ObjectKey = tuple[str, str]


@dataclass
class ProvisioningPass:
    """What one provisioning pass gathered and what its steps learnt: the executor's side of the machine's
    `Memory` (lost in a crash, like it)."""

    resource: Resource
    pending: plan.Pending | None
    guresid: str
    driver: Driver
    builtin: bool
    request: DriverRequest
    digest: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    decided: bool = False
    why: str | None = None
    observed_outputs: dict[str, Any] | None = None
    drifted: bool = False
    working: OperationInProgress | None = None
    result: DriverResult | None = None
    outputs: plan.Outputs | None = None
    secrets_seen: list[SecretValue] = field(default_factory=list)
    store_name: str | None = None
    new_refs: dict[str, dict[str, Any]] = field(default_factory=dict)
    cookie_ref: dict[str, Any] | None = None
    outputs_changed: bool = False
    applied: list[dict[str, Any]] = field(default_factory=list)
    status_before: dict[str, Any] = field(default_factory=dict)

    def answered(self) -> plan.Outputs:
        assert self.outputs is not None, "a step after the answer ran without one"
        return self.outputs

    def previous_refs(self) -> dict[str, SecretReference]:
        status = self.resource.status
        return plan.flatten_refs(status.outputs.secret_refs if status and status.outputs else None)

    def previous_manifests(self) -> list[dict[str, Any]]:
        status = self.resource.status
        return [
            m.model_dump(mode="json", by_alias=True, exclude_none=True)
            for m in (status.manifests or [] if status else [])
        ]


class ResourceGatherer:
    def __init__(
        self,
        kube: Kube,
        drivers: DriverCache,
        calls: DriverCalls,
        index: ResourceIndex,
        io: ResourceIO,
        inputs: InputsKey,
        bodies: Mapping[ObjectKey, Mapping[str, Any]],
        guresid_policy: plan.GuresidPolicy,
    ) -> None:
        self.kube = kube
        self.drivers = drivers
        self.calls = calls
        self.index = index
        self.io = io
        self.inputs = inputs
        self.bodies = bodies
        self.guresid_policy = guresid_policy

    async def gather(
        self, key: ObjectKey, resource: Resource, pending: plan.Pending | None
    ) -> ProvisioningPass:
        namespace, _ = key
        spec = resource.spec
        winner = self.index.duplicate_of(key)
        if winner is not None:
            raise Failed(plan.duplicate_problem(resource, winner))
        refused = plan.guresid_problem(resource, self.guresid_policy)
        if refused is not None:
            raise Failed(refused)
        guresid = plan.guresid_of(resource)

        inputs = await self._resolve_dependencies(key, resource)
        self.index.wait_on_driver(
            key, [] if self.drivers.is_builtin(spec.driver_type) else [spec.driver_type]
        )
        driver = await self.calls.resolve(spec.driver_type, namespace)
        self.index.wait_on_stores(key, {ref.store for _, ref in plan.secret_ref_paths(resource)})
        secret_values = await self.io.read_secret_refs(key, resource)
        cookie = await self.io.read_cookie(resource)
        request = plan.driver_request(resource, inputs, secret_values, cookie, guresid)
        digest = plan.inputs_digest(request, spec.driver_type, await self.inputs.get())
        return ProvisioningPass(
            resource=resource,
            pending=pending,
            guresid=guresid,
            driver=driver,
            builtin=self.drivers.is_builtin(spec.driver_type),
            request=request,
            digest=digest,
        )

    async def _resolve_dependencies(self, key: ObjectKey, resource: Resource) -> plan.ResolvedInputs:
        namespace, name = key
        try:
            refs = plan.dependencies(resource)
        except PlaceholderError as exc:
            self.index.set_deps(key, frozenset())
            raise Failed(Problem("InvalidPlaceholder", str(exc), False)) from None
        names = frozenset(ref.resource for ref in refs)
        self.index.set_deps(key, names)
        views: dict[str, plan.DependencyView] = {}
        if names:
            cycle = plan.find_cycle(name, lambda n: self.index.deps_of((namespace, n)))
            if cycle is not None:
                raise Failed(
                    Problem(
                        "DependencyCycle",
                        "Resources depend on each other in a cycle: "
                        + " -> ".join(cycle)
                        + "; change a placeholder to break it",
                        False,
                    )
                )
            for dep in names:
                body = self.bodies.get((namespace, dep))
                if body is not None:
                    views[dep] = plan.dependency_view(body)
            for dep in plan.secret_dependencies(refs, views):
                secret = await self.kube.get_secret(namespace, plan.outputs_secret_name(dep))
                dep_uid = ((self.bodies.get((namespace, dep)) or {}).get("metadata") or {}).get("uid") or ""
                if secret is not None and controlled_by(secret, dep_uid):
                    data = decode_secret_data(secret)
                    views[dep] = replace(views[dep], secrets={k: SecretValue(v) for k, v in data.items()})
        resolved = plan.resolve_placeholders(resource, views)
        if isinstance(resolved, plan.InputProblem):
            raise Failed(resolved)
        return resolved


__all__ = ["ProvisioningPass", "ResourceGatherer"]
