"""What a Resource reconcile reads and writes besides the Resource itself: secret references and the
cookie in the stores, its store entries, its owned Secrets and objects, the WorkloadPatch.

Each call either does its one thing or raises `Failed` with the problem to record (a reason and a message
without secret values); the Resource controller (operator/controllers/resource.py) decides what to call,
following the lifecycle machine (reconcile/lifecycle.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from lightkube.core.exceptions import ApiError

from strongroom.api import constants as c
from strongroom.api.common import SecretReference
from strongroom.api.resource import Resource
from strongroom.drivers.base import WORKLOAD_TYPE, redact
from strongroom.operator.kube import Kube, WorkloadPatchResource
from strongroom.operator.storecache import StoreCache
from strongroom.reconcile import resource as plan
from strongroom.reconcile.ownership import controlled_by
from strongroom.reconcile.stores import Problem, default_store, resolve_store
from strongroom.stores.base import AuthenticationFailed, SecretNotFound, SecretRef, SecretValue, StoreError
from strongroom.stores.guard import GuardedStore

ObjectKey = tuple[str, str]
#: The controller's log: (level, Resource key, format, *args).
Log = Callable[..., None]


class Failed(Exception):
    """A step hit a problem: the reconcile ends with it as the Ready condition."""

    def __init__(self, problem: Problem, retry_after: float | None = None) -> None:
        super().__init__(problem.message)
        self.problem = problem
        self.retry_after = retry_after


def api_problem(what: str, exc: ApiError, secrets_: Iterable[SecretValue]) -> Problem:
    code = exc.status.code or 0
    # 403 may be fixed by RBAC, 409/429/5xx by time; other 4xx (422 invalid) need a changed manifest.
    retryable = code in (403, 409, 429) or code >= 500
    message = redact(f"{what}: {code} {exc.status.reason or ''}: {exc.status.message or ''}", secrets_)
    return Problem("ManifestFailed", message.strip(), retryable)


def conflict(kind: str, name: str) -> Problem:
    return Problem(
        "OutputConflict",
        f"{kind} {name!r} already exists and is not owned by this Resource; strongroom never overwrites "
        f"an object it does not manage: delete that {kind} or rename the Resource",
        False,
    )


class ResourceIO:
    def __init__(self, kube: Kube, stores: StoreCache, operator_namespace: str, log: Log) -> None:
        self.kube = kube
        self.stores = stores
        self.operator_namespace = operator_namespace
        self.log = log

    async def store_client(self, store_key: Any) -> GuardedStore:
        try:
            return await self.stores.client(store_key)
        except KeyError:
            raise Failed(Problem("StoreNotFound", f"secret store {store_key} was deleted")) from None
        except StoreError as exc:
            raise Failed(Problem(exc.reason, str(exc), exc.retryable)) from None

    async def read_secret_refs(
        self, key: ObjectKey, resource: Resource
    ) -> list[tuple[tuple[str, ...], SecretValue]]:
        paths = plan.secret_ref_paths(resource)
        if not paths:
            return []

        async def read(path: tuple[str, ...], ref: SecretReference) -> SecretValue | Problem:
            where = ".".join(path)
            resolved = resolve_store(
                ref.store, resource.namespace, self.operator_namespace, self.stores.views, key=ref.ref
            )
            if isinstance(resolved, Problem):
                return replace(resolved, message=f"{where}: {resolved.message}")
            try:
                client = await self.stores.client(resolved)
                return await client.read(SecretRef(ref.ref, ref.version or None))
            except StoreError as exc:
                if isinstance(exc, AuthenticationFailed):
                    await self.stores.invalidate(resolved)
                return Problem(exc.reason, f"{where}: {exc}", exc.retryable)
            except KeyError:
                return Problem("StoreNotFound", f"{where}: secret store {resolved} was deleted")

        results = await asyncio.gather(*(read(path, ref) for path, ref in paths))
        problems = [r for r in results if isinstance(r, Problem)]
        if problems:
            raise Failed(
                Problem(
                    problems[0].reason,
                    f"{len(problems)} of {len(paths)} secret references failed: "
                    + "; ".join(p.message for p in problems),
                    all(p.retryable for p in problems),
                )
            )
        return [
            (path, value)
            for (path, _), value in zip(paths, results, strict=True)
            if isinstance(value, SecretValue)
        ]

    async def read_cookie(self, resource: Resource, *, lenient: bool = False) -> SecretValue | None:
        """The cookie the driver set last time, from the store `status.cookieRef` names.

        `lenient` (deletion): a cookie that is gone, or whose store is gone, is sent as none."""
        ref = resource.status.cookie_ref if resource.status else None
        if ref is None:
            return None
        resolved = resolve_store(
            ref.store, resource.namespace, self.operator_namespace, self.stores.views, key=ref.ref
        )
        if isinstance(resolved, Problem):
            if lenient:
                return None
            raise Failed(replace(resolved, message=f"driver cookie: {resolved.message}"))
        try:
            client = await self.stores.client(resolved)
            return await client.read(SecretRef(ref.ref, ref.version or None))
        except SecretNotFound:
            return None  # a lost cookie: the driver starts over, as the Driver API allows
        except StoreError as exc:
            if lenient and not exc.retryable:
                return None
            raise Failed(Problem(exc.reason, f"driver cookie: {exc}", exc.retryable)) from None
        except KeyError:
            return None

    @staticmethod
    async def store_write(client: GuardedStore, store_key: str, value: SecretValue) -> tuple[str, str | None]:
        try:
            written = await client.write(store_key, value)
        except StoreError as exc:
            raise Failed(
                Problem(exc.reason, f"writing outputs to the default store: {exc}", exc.retryable)
            ) from None
        return written.key, written.version

    async def store_delete(self, key: ObjectKey, ref: SecretReference) -> None:
        """Delete one store entry; StoreError and Problem (as Failed) when it cannot be done now. Only keys
        the operator writes for this Resource are ever deleted (defence in depth: callers derive them)."""
        namespace, name = key
        if not plan.is_own_store_key(ref.ref, namespace, name):
            self.log(
                logging.WARNING,
                key,
                "not removing %s from store %s: not a key of this Resource",
                ref.ref,
                ref.store,
            )
            return
        resolved = resolve_store(
            ref.store, namespace, self.operator_namespace, self.stores.views, key=ref.ref, purpose="write"
        )
        if isinstance(resolved, Problem):
            raise Failed(resolved)
        try:
            client = await self.stores.client(resolved)
        except KeyError:
            raise Failed(Problem("StoreNotFound", f"secret store {resolved} was deleted")) from None
        await client.delete(ref.ref)

    async def store_delete_quietly(self, key: ObjectKey, ref: SecretReference) -> None:
        try:
            await self.store_delete(key, ref)
        except (StoreError, Failed) as exc:
            self.log(logging.WARNING, key, "could not remove %s from store %s: %s", ref.ref, ref.store, exc)

    async def apply_manifests_secret(self, resource: Resource, wanted: dict[str, Any] | None) -> None:
        name = plan.manifests_secret_name(resource.name)
        observed = await self.kube.get_secret(resource.namespace, name)
        if observed is not None and not controlled_by(observed, resource.metadata.uid or ""):
            raise Failed(conflict("Secret", name))
        if wanted is not None:
            await self.kube.apply_secret(wanted)
        elif observed is not None:
            await self.kube.delete_secret(resource.namespace, name)

    async def apply_objects(
        self, resource: Resource, outputs: plan.Outputs, secrets_seen: list[SecretValue]
    ) -> list[dict[str, Any]]:
        applied: list[dict[str, Any]] = []
        todo = [(plan.namespace_object(resource, o), "namespace") for o in outputs.namespace_objects] + [
            (plan.cluster_object(resource, o), "cluster") for o in outputs.cluster_objects
        ]
        for obj, location in todo:
            what = f"{location} manifest {obj['kind']} {obj['metadata']['name']!r}"
            try:
                await self.kube.apply_object(obj, namespaced=location == "namespace")
            except ApiError as exc:
                raise Failed(api_problem(f"applying {what}", exc, secrets_seen)) from None
            except (LookupError, ValueError) as exc:
                raise Failed(Problem("ManifestFailed", f"applying {what}: {exc}", False)) from None
            applied.append(plan.applied_reference(obj, location))
        return applied

    async def check_manifest_owners(self, resource: Resource, outputs: plan.Outputs) -> None:
        """Refuse (ManifestConflict, before anything is written) an answer whose manifests name an existing
        object this Resource did not make: server-side apply with force would take it over, and a later
        answer without it would delete it."""
        for ref in plan.manifest_refs(resource, outputs):
            try:
                live = await self.kube.get_object(
                    ref["apiVersion"], ref["kind"], ref["name"], ref.get("namespace")
                )
            except ApiError as exc:
                raise Failed(api_problem(f"reading {ref['kind']} {ref['name']!r}", exc, [])) from None
            if live is not None and not plan.manifest_owned(live, resource, ref.get("location")):
                raise Failed(plan.manifest_conflict(ref))

    async def delete_owned_object(
        self, key: ObjectKey, resource: Resource, ref: Mapping[str, Any], secrets_seen: list[SecretValue]
    ) -> None:
        """Delete an object a driver's manifests made, if the live object proves this Resource made it
        (whatever a status or an earlier answer says); anything else is left alone, with a warning."""
        what = f"{ref['kind']} {ref['name']!r}"
        try:
            live = await self.kube.get_object(
                ref["apiVersion"], ref["kind"], ref["name"], ref.get("namespace")
            )
            if live is None:
                return
            if not plan.manifest_owned(live, resource, ref.get("location")):
                self.log(logging.WARNING, key, "not deleting %s: it was not made by this Resource", what)
                return
            await self.kube.delete_object(ref["apiVersion"], ref["kind"], ref["name"], ref.get("namespace"))
        except ApiError as exc:
            raise Failed(api_problem(f"deleting {what}", exc, secrets_seen)) from None

    async def apply_workload_patch(self, resource: Resource, outputs: plan.Outputs) -> None:
        if resource.spec.type != WORKLOAD_TYPE:
            return
        uid = resource.metadata.uid or ""
        observed = await self.kube.get_custom(WorkloadPatchResource, resource.namespace, resource.name)
        if observed is not None and not controlled_by(observed, uid):
            raise Failed(conflict("WorkloadPatch", resource.name))
        if outputs.update:
            wanted = plan.workload_patch(resource, outputs.update)
            if observed is None or observed.get("spec") != wanted["spec"]:
                try:
                    await self.kube.apply_object(wanted, namespaced=True)
                except ApiError as exc:
                    raise Failed(
                        api_problem("applying the WorkloadPatch", exc, outputs.secrets.values())
                    ) from None
        elif observed is not None:
            await self.kube.delete_object(c.API_VERSION, "WorkloadPatch", resource.name, resource.namespace)

    async def delete_store_entries(self, key: ObjectKey, resource: Resource) -> None:
        """Store entries, at the keys the operator writes for this Resource: the outputs the status records,
        any output key still in the outputs Secret, the cookie."""
        namespace, name = key
        status = resource.status
        secret = await self.kube.get_secret(namespace, plan.outputs_secret_name(name))
        secret_keys: list[str] = []
        default_name: str | None = None
        if secret is not None and controlled_by(secret, resource.metadata.uid or ""):
            store_key = default_store(namespace, self.operator_namespace, self.stores.views.values())
            if not isinstance(store_key, Problem):
                default_name = store_key.name
                secret_keys = list(secret.get("data") or {})
        refs = plan.store_entries_to_delete(
            resource,
            plan.flatten_refs(status.outputs.secret_refs if status and status.outputs else None),
            status.cookie_ref if status else None,
            secret_keys,
            default_name,
        )
        for ref in refs:
            try:
                await self.store_delete(key, ref)
            except Failed as failed:
                if failed.problem.reason in ("StoreNotFound", "StoreNotAllowed", "KeyNotAllowed"):
                    # The store is gone, or the status names a key this namespace may not touch (status
                    # is tenant-writable): nothing of ours to remove there; do not block the delete.
                    self.log(logging.WARNING, key, "not removing %s: %s", ref.ref, failed.problem.message)
                    continue
                raise
            except StoreError as exc:
                if exc.retryable:
                    raise Failed(
                        Problem(exc.reason, f"removing outputs from store {ref.store!r}: {exc}")
                    ) from None
                self.log(
                    logging.WARNING, key, "could not remove %s from store %s: %s", ref.ref, ref.store, exc
                )


__all__ = ["Failed", "ResourceIO", "api_problem", "conflict"]
