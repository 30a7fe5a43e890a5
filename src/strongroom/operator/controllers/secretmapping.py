"""SecretMapping controller: read every entry from its store, then let the pure plan decide."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from strongroom.api.common import parse_duration
from strongroom.api.constants import FORCE_REFRESH_ANNOTATION
from strongroom.api.secretmapping import SecretDataEntry, SecretMapping
from strongroom.operator.controllers.base import Controller, ObjectKey
from strongroom.operator.kube import Kube, SecretMappingResource
from strongroom.operator.owned import OwnedObjects, fingerprint
from strongroom.operator.storecache import StoreCache
from strongroom.operator.workqueue import Priority
from strongroom.reconcile.conditions import merge_conditions, not_ready
from strongroom.reconcile.secretmapping import (
    EntryOutcome,
    pending_force_refresh,
    plan,
    stale_keys,
    status_differs,
    wanted_secret,
)
from strongroom.reconcile.stores import Problem, resolve_store
from strongroom.stores.base import AuthenticationFailed, SecretRef, StoreError


class SecretMappingController(Controller):
    kind = "SecretMapping"
    status_resource = SecretMappingResource

    def __init__(
        self, kube: Kube, stores: StoreCache, operator_namespace: str, default_refresh: float
    ) -> None:
        super().__init__()
        self.kube = kube
        self.stores = stores
        self.operator_namespace = operator_namespace
        self.default_refresh = default_refresh
        # store name -> mappings that name it, to wake them when such a store appears or recovers
        self._waiting_on: dict[str, set[ObjectKey]] = {}
        # mapping -> (its force-refresh annotation, when this process first saw that value, monotonic):
        # a forced refresh accepts only store reads asked for since then
        self._force_seen: dict[ObjectKey, tuple[str, float]] = {}
        # What the operator owns, as its label-selected watch sees it (set by the runtime); None: ask the API
        # server every time.
        self.owned: OwnedObjects | None = None

    def trigger_of(self, body: Mapping[str, Any]) -> Hashable:
        # The force-refresh annotation is metadata, not spec: setting it must queue the mapping.
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        return (super().trigger_of(body), annotations.get(FORCE_REFRESH_ANNOTATION))

    def priority_of_change(self, previous: Hashable | None, current: Hashable) -> Priority:
        # Only the force-refresh annotation changed: a refresh, in the refresh lane, so that forcing 1000
        # mappings at once neither delays new ones nor escapes the pacing of refreshes.
        if isinstance(previous, tuple) and isinstance(current, tuple) and previous[0] == current[0]:
            return Priority.LOW
        return Priority.HIGH

    def changed(self, key: ObjectKey) -> None:
        annotations = (self.bodies[key].get("metadata") or {}).get("annotations") or {}
        value = annotations.get(FORCE_REFRESH_ANNOTATION)
        if value is None:
            self._force_seen.pop(key, None)
        elif key not in self._force_seen or self._force_seen[key][0] != value:
            self._force_seen[key] = (value, time.monotonic())

    def deleted(self, key: ObjectKey) -> None:
        self._force_seen.pop(key, None)
        for keys in self._waiting_on.values():
            keys.discard(key)

    def store_changed(self, store_name: str) -> None:
        for key in list(self._waiting_on.get(store_name, ())):
            self.wake(key)

    def _refresh_interval(self, mapping: SecretMapping) -> float:
        if mapping.spec.refresh_interval is None:
            return self.default_refresh
        return parse_duration(mapping.spec.refresh_interval).total_seconds()

    async def _read(
        self, mapping: SecretMapping, entry: SecretDataEntry, fresh_after: float | None
    ) -> EntryOutcome:
        resolved = resolve_store(
            entry.secret_store_name,
            mapping.namespace,
            self.operator_namespace,
            self.stores.views,
            key=entry.remote_ref.key,
        )
        if isinstance(resolved, Problem):
            return EntryOutcome(entry.secret_key, problem=resolved)
        ref = SecretRef(entry.remote_ref.key, entry.remote_ref.version or None, entry.remote_ref.property)
        try:
            client = await self.stores.client(resolved)
            value = await client.read(ref, fresh_after)
        except StoreError as exc:
            if isinstance(exc, AuthenticationFailed):
                await self.stores.invalidate(resolved)  # credentials may have been rotated: rebuild
            return EntryOutcome(entry.secret_key, problem=Problem(exc.reason, str(exc), exc.retryable))
        except KeyError:
            return EntryOutcome(
                entry.secret_key, problem=Problem("StoreNotFound", f"secret store {resolved} was deleted")
            )
        return EntryOutcome(entry.secret_key, value=value)

    async def reconcile(self, key: ObjectKey) -> str:
        body = self.bodies[key]
        namespace = key[0]
        try:
            mapping = SecretMapping.model_validate(body)
        except ValidationError as exc:
            await self._write_status(key, body, self._invalid_spec_status(body, exc))
            return "invalid"

        for keys in self._waiting_on.values():
            keys.discard(key)
        for entry in mapping.spec.secret_data:
            self._waiting_on.setdefault(entry.secret_store_name, set()).add(key)

        # A forced refresh shares no store read asked for before the annotation was seen.
        force = pending_force_refresh(mapping)
        fresh_after = None
        if force is not None:
            fresh_after = self._force_seen[key][1] if key in self._force_seen else time.monotonic()
        outcomes = await asyncio.gather(
            *(self._read(mapping, entry, fresh_after) for entry in mapping.spec.secret_data)
        )
        name = mapping.spec.secret_name
        now = datetime.now(UTC)
        observed, absent = await self._observed_secret(namespace, name, wanted_secret(mapping, outcomes))
        result = plan(mapping, outcomes, observed, now, force)
        if result.secret is not None and absent and not await self.kube.create_secret(result.secret):
            # Something of that name exists after all (not the operator's, or not seen yet): read it and
            # let the ownership rules decide, as for any Secret that exists.
            observed = await self.kube.get_secret(namespace, name)
            result = plan(mapping, outcomes, observed, now, force)
            absent = False
        if force is not None and result.healthy:
            self.log(logging.INFO, key, "forced refresh %r: the stores were read again", force)
        drifted = self.take_drifted(key)
        if result.secret is not None:
            if not absent:
                await self._update_secret(result.secret)
            count = len(result.secret["data"])
            self.log(logging.INFO, key, "wrote Secret %s (%d keys)", name, count)
            if observed is None and not drifted:
                self.report(
                    key, "Normal", "Synced", f"created Secret {name!r} with {count} keys from the stores"
                )
            elif drifted:
                self.report(
                    key, "Normal", "Restored", f"Secret {name!r} was changed or deleted by hand: restored"
                )
            else:
                self.report(key, "Normal", "Rotated", f"Secret {name!r} updated: the stores hold new values")
        await self._write_status(key, body, result.status)

        refresh = self._refresh_interval(mapping)
        if result.healthy:
            self.succeeded(key, refresh)
            return "synced" if result.secret is not None else "unchanged"
        delay = self.failed(key, result.retryable, refresh)
        ready = result.status["conditions"][0]
        self.report(key, "Warning", ready["reason"], ready["message"])
        self.log(
            logging.INFO,
            key,
            "not synced (%s): %s; next attempt in %.0fs",
            ready["reason"],
            ready["message"],
            delay or 0,
        )
        return "failed"

    async def _observed_secret(
        self, namespace: str, name: str, wanted: dict[str, Any] | None
    ) -> tuple[dict[str, Any] | None, bool]:
        """The Secret as it is (None: absent), and whether it is only believed absent (then it is made by a
        plain create, which fails if it exists after all).

        The watch of owned objects (operator/owned.py) answers without a request when it can: when it holds
        exactly the Secret that would be written, that is the Secret; when it knows of no such Secret of the
        operator's, it most likely does not exist. Otherwise, and whenever an entry failed (the plan then
        says whether a Secret is kept), the API server is asked."""
        if self.owned is not None and wanted is not None and self.owned.listed("v1", "Secret", namespace):
            recorded = self.owned.recorded(("v1", "Secret", namespace, name))
            if recorded is None:
                return None, True
            if recorded == fingerprint(wanted):
                return wanted, False
        return await self.kube.get_secret(namespace, name), False

    async def _update_secret(self, secret: dict[str, Any]) -> None:
        """Server-side apply the Secret, then remove the keys the apply left that only the operator wrote."""
        written = await self.kube.apply_secret(secret)
        stale = stale_keys(written, secret)
        if stale:
            meta = written["metadata"]
            await self.kube.remove_secret_keys(
                meta["namespace"], meta["name"], stale, meta.get("resourceVersion")
            )

    async def _write_status(self, key: ObjectKey, body: dict[str, Any], status: dict[str, Any]) -> None:
        if not status_differs(body.get("status"), status):
            return
        namespace, name = key
        await self.kube.patch_status(SecretMappingResource, namespace, name, status)
        # Keep the cache current at once: the watch event of our own write may arrive after the next
        # reconcile, which would then write the same status again.
        body["status"] = {**(body.get("status") or {}), **status}

    @staticmethod
    def _invalid_spec_status(body: dict[str, Any], exc: ValidationError) -> dict[str, Any]:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors(include_input=False)
        )
        generation = (body.get("metadata") or {}).get("generation")
        condition = not_ready("InvalidSpec", f"the spec is not valid: {problems}")
        previous = (body.get("status") or {}).get("conditions")
        return {
            "observedGeneration": generation,
            "conditions": merge_conditions(previous, [condition], datetime.now(UTC), generation),
        }
