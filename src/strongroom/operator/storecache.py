"""Every SecretStore the operator has seen, and one guarded client per store, built on first use.

The index is fed straight from watch events, so a reference resolves against a new store as soon
as the event arrives. Clients are rebuilt when the store's spec changes (generation) or after an
authentication failure (its credential Secret may have been rotated).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from strongroom.api.secretstore import SecretStore
from strongroom.reconcile.stores import StoreKey, StoreView, view_of
from strongroom.stores.base import StoreClient
from strongroom.stores.guard import GuardedStore, GuardSettings

ClientFactory = Callable[[SecretStore], Awaitable[StoreClient]]


@dataclass
class _Entry:
    generation: int | None
    client: GuardedStore


class StoreCache:
    def __init__(self, factory: ClientFactory, defaults: GuardSettings) -> None:
        self._factory = factory
        self._defaults = defaults
        self.stores: dict[StoreKey, SecretStore] = {}
        self.views: dict[StoreKey, StoreView] = {}
        self._clients: dict[StoreKey, _Entry] = {}
        self._locks: dict[StoreKey, asyncio.Lock] = {}

    def observe(self, store: SecretStore) -> None:
        key = StoreKey(store.namespace, store.name)
        self.stores[key] = store
        self.views[key] = view_of(store)

    async def remove(self, key: StoreKey) -> None:
        self.stores.pop(key, None)
        self.views.pop(key, None)
        await self.invalidate(key)

    async def invalidate(self, key: StoreKey) -> None:
        entry = self._clients.pop(key, None)
        if entry is not None:
            await entry.client.close()

    def _settings(self, store: SecretStore) -> GuardSettings:
        limit = store.spec.rate_limit
        if limit is None:
            return self._defaults
        return GuardSettings(qps=limit.qps, burst=limit.burst, read_ttl=self._defaults.read_ttl)

    async def client(self, key: StoreKey) -> GuardedStore:
        """The client for a known store (KeyError if unknown); built once per spec generation."""
        store = self.stores[key]
        entry = self._clients.get(key)
        if entry is not None and entry.generation == store.metadata.generation:
            return entry.client
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # many mappings may ask for a new store at once: build it once
            entry = self._clients.get(key)
            if entry is not None and entry.generation == store.metadata.generation:
                return entry.client
            if entry is not None:
                await entry.client.close()
            inner = await self._factory(store)
            guarded = GuardedStore(str(key), inner, self._settings(store))
            self._clients[key] = _Entry(store.metadata.generation, guarded)
            return guarded

    async def close(self) -> None:
        for key in list(self._clients):
            await self.invalidate(key)
