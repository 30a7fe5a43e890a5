"""Which Resource waits on what, kept from watch events so that a change wakes exactly the Resources that
care: the other Resources one depends on (placeholders `${resources.<name>.outputs.<key>}`), its identity
(namespace and GUResID: a second Resource with the same one is refused, and goes ahead when the first one
goes), the SecretStores its references and outputs need, the Driver it calls.

One unit because every index is keyed by the same Resource and forgotten together when it goes; the
Resource controller (operator/controllers/resource.py) feeds it and is woken through `wake`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from strongroom.reconcile import resource as plan

ObjectKey = tuple[str, str]

# Stores named by any Resource waiting for "some default store" are woken by every store change.
_ANY_STORE = ""


class ResourceIndex:
    def __init__(
        self, bodies: Mapping[ObjectKey, Mapping[str, Any]], wake: Callable[[ObjectKey], None]
    ) -> None:
        self.bodies = bodies
        self.wake = wake
        # Resources by (namespace, identity): a second one with the same identity is refused, and woken
        # when the first one goes.
        self._identities: dict[ObjectKey, tuple[str, str]] = {}
        self._by_identity: dict[tuple[str, str], set[ObjectKey]] = {}
        # Dependencies by placeholder, kept from the spec, so cycle checks and wake-ups need no parsing.
        self._deps: dict[ObjectKey, frozenset[str]] = {}
        self._dependents: dict[ObjectKey, set[ObjectKey]] = {}
        self._waiting_on_store: dict[str, set[ObjectKey]] = {}
        self._waiting_on_driver: dict[str, set[ObjectKey]] = {}

    def forget(self, key: ObjectKey) -> None:
        """A Resource is gone: whoever waited on it (a duplicate, a dependent) is woken."""
        self.set_deps(key, frozenset())
        self.set_identity(key, None)
        for index in (self._waiting_on_store, self._waiting_on_driver):
            for keys in index.values():
                keys.discard(key)
        self.wake_dependents(key)

    # --- dependencies ---------------------------------------------------------------------------------

    def set_deps(self, key: ObjectKey, names: frozenset[str]) -> None:
        before = self._deps.get(key, frozenset())
        if before == names:
            return
        for name in before - names:
            dependents = self._dependents.get((key[0], name))
            if dependents is not None:
                dependents.discard(key)
                if not dependents:
                    del self._dependents[(key[0], name)]
        for name in names - before:
            self._dependents.setdefault((key[0], name), set()).add(key)
        if names:
            self._deps[key] = names
        else:
            self._deps.pop(key, None)

    def deps_of(self, key: ObjectKey) -> frozenset[str]:
        """The names of the Resources (of its namespace) one depends on."""
        return self._deps.get(key, frozenset())

    def wake_dependents(self, key: ObjectKey) -> None:
        for dependent in list(self._dependents.get(key, ())):
            self.wake(dependent)

    # --- identities -----------------------------------------------------------------------------------

    def set_identity(self, key: ObjectKey, identity: tuple[str, str] | None) -> None:
        if self._identities.get(key) == identity:
            return
        before = self._identities.pop(key, None)
        if before is not None:
            holders = self._by_identity.get(before, set())
            holders.discard(key)
            if not holders:
                self._by_identity.pop(before, None)
            for other in holders:
                self.wake(other)  # a Resource refused as a duplicate of this one may now go ahead
        if identity is not None:
            self._identities[key] = identity
            self._by_identity.setdefault(identity, set()).add(key)

    def duplicate_of(self, key: ObjectKey) -> str | None:
        """The Resource that holds this one's identity, when it is another one."""
        identity = self._identities.get(key)
        holders = self._by_identity.get(identity, set()) if identity else set()
        if len(holders) < 2:
            return None
        bodies = [self.bodies[k] for k in holders if k in self.bodies]
        return plan.duplicate_winner(self.bodies[key], bodies)

    # --- stores and drivers ---------------------------------------------------------------------------

    def wait_on_stores(self, key: ObjectKey, names: Iterable[str]) -> None:
        """The stores a Resource reads now (replacing those it read before)."""
        _index(self._waiting_on_store, key, names)

    def wait_on_any_store(self, key: ObjectKey) -> None:
        """The Resource needs a default store, which any store change may provide."""
        self._waiting_on_store.setdefault(_ANY_STORE, set()).add(key)

    def wait_on_driver(self, key: ObjectKey, names: Iterable[str]) -> None:
        """The Driver objects a Resource calls now (replacing those it called before)."""
        _index(self._waiting_on_driver, key, names)

    def store_changed(self, store_name: str) -> None:
        for name in (store_name, _ANY_STORE):
            for key in list(self._waiting_on_store.get(name, ())):
                self.wake(key)

    def driver_changed(self, driver_name: str) -> None:
        for key in list(self._waiting_on_driver.get(driver_name, ())):
            self.wake(key)


def _index(index: dict[str, set[ObjectKey]], key: ObjectKey, names: Iterable[str]) -> None:
    for keys in index.values():
        keys.discard(key)
    for name in names:
        index.setdefault(name, set()).add(key)


__all__ = ["ResourceIndex"]
