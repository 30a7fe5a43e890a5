"""SecretStore controller: a real connectivity and auth check, conditions, default-store conflicts."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from strongroom.api.constants import DEFAULT_STORE_LABELS
from strongroom.api.secretstore import SecretStore
from strongroom.operator.controllers.base import BACKOFF_MAX, Controller, ObjectKey
from strongroom.operator.kube import Kube, SecretStoreResource
from strongroom.operator.storecache import StoreCache
from strongroom.reconcile.conditions import ConditionSpec, merge_conditions, not_ready, ready
from strongroom.reconcile.secretmapping import status_differs
from strongroom.reconcile.stores import (
    INSECURE_TRANSPORT_CONDITION,
    StoreKey,
    default_store_conflicts,
    insecure_transport,
)
from strongroom.stores.base import StoreError

DEFAULT_STORE_CONDITION = "DefaultStore"


class SecretStoreController(Controller):
    kind = "SecretStore"
    status_resource = SecretStoreResource

    def __init__(
        self,
        kube: Kube,
        stores: StoreCache,
        check_interval: float,
        on_store_changed: Callable[[str], None],
    ) -> None:
        super().__init__()
        self.kube = kube
        self.stores = stores
        self.check_interval = check_interval
        # A failing store is checked at least as often as a healthy one: its recovery is what wakes the
        # mappings and Resources waiting on it (after a minute's outage the backoff had reached 64 s, and
        # an API server outage on top of it took it to 280 s).
        self.longest_retry = min(check_interval, BACKOFF_MAX)
        self._on_store_changed = on_store_changed

    def trigger_of(self, body: Mapping[str, Any]) -> Hashable:
        # The default-store label is metadata, not spec: labelling an existing store must take effect.
        labels = (body.get("metadata") or {}).get("labels") or {}
        return (super().trigger_of(body), tuple(labels.get(label) for label in DEFAULT_STORE_LABELS))

    def changed(self, key: ObjectKey) -> None:
        # Index the store at once, so referrers resolve without waiting for its check.
        try:
            store = SecretStore.model_validate(self.bodies[key])
        except ValidationError:
            return
        self.stores.observe(store)
        self._requeue_default_peers(key)
        self._on_store_changed(key[1])

    def deleted(self, key: ObjectKey) -> None:
        store_key = StoreKey(*key)
        self.stores.stores.pop(store_key, None)
        self.stores.views.pop(store_key, None)
        self._requeue_default_peers(key)
        self._on_store_changed(key[1])

    def _requeue_default_peers(self, key: ObjectKey) -> None:
        # A default store added or removed changes the DefaultStore condition of its namespace peers.
        for other in self.stores.views.values():
            if other.is_default and other.key.namespace == key[0] and other.key.name != key[1]:
                self.wake((other.key.namespace, other.key.name))

    async def reconcile(self, key: ObjectKey) -> str:
        body = self.bodies[key]
        store_key = StoreKey(*key)
        generation = (body.get("metadata") or {}).get("generation")
        conditions: list[ConditionSpec]
        healthy, retry = False, True
        extra: dict[str, Any] = {}
        try:
            store = SecretStore.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
            )
            conditions, retry = [not_ready("InvalidSpec", f"the spec is not valid: {problems}")], False
        else:
            extra["storeType"] = store.spec.backend
            try:
                client = await self.stores.client(store_key)
                capabilities = await client.check()
            except StoreError as exc:
                await self.stores.invalidate(store_key)
                conditions, retry = [not_ready(exc.reason, str(exc))], exc.retryable
            else:
                caps = [
                    name for name, ok in (("read", capabilities.read), ("write", capabilities.write)) if ok
                ]
                extra["capabilities"] = caps
                conditions, healthy = (
                    [ready("Connected", f"connected and authenticated ({', '.join(caps)})")],
                    True,
                )
            warning = insecure_transport(store)
            if warning is not None:
                conditions.append(ConditionSpec(INSECURE_TRANSPORT_CONDITION, True, "PlainHTTP", warning))
            conflicts = default_store_conflicts(self.stores.views.values()).get(store_key)
            if conflicts:
                others = ", ".join(str(k) for k in conflicts)
                conditions.append(
                    ConditionSpec(
                        DEFAULT_STORE_CONDITION,
                        False,
                        "DefaultStoreConflict",
                        f"this store and {others} are all labelled as the default store of namespace "
                        f"{key[0]!r}; "
                        "driver outputs are not written until exactly one is",
                    )
                )
        previous = (body.get("status") or {}).get("conditions")
        status = {
            "observedGeneration": generation,
            "conditions": merge_conditions(previous, conditions, datetime.now(UTC), generation),
            **extra,
        }
        if status_differs(body.get("status"), status):
            await self.kube.patch_status(SecretStoreResource, key[0], key[1], status)
            body["status"] = {**(body.get("status") or {}), **status}
            first = conditions[0]
            self.report(key, "Normal" if healthy else "Warning", first.reason, first.message)
            if healthy:
                self._on_store_changed(key[1])  # referrers that failed on this store may now succeed
        if healthy:
            self.succeeded(key, self.check_interval)
            return "ready"
        self.failed(key, retry, self.check_interval)
        return "failed"
