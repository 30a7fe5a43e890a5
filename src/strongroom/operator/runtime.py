"""The operator's moving parts, built once per process: API client, store clients, controllers.

kopf handlers reach it through kopf's memo and only call `observe`; the controllers' workers run as
tasks of their own, started before kopf and stopped after it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from lightkube import AsyncClient
from lightkube.config.kubeconfig import SingleConfig

from strongroom.api.secretstore import SecretStore
from strongroom.operator.controllers.secretmapping import SecretMappingController
from strongroom.operator.controllers.secretstore import SecretStoreController
from strongroom.operator.kube import Kube
from strongroom.operator.storecache import StoreCache
from strongroom.stores.base import StoreClient
from strongroom.stores.credentials import KubernetesCredentialSource
from strongroom.stores.guard import GuardSettings
from strongroom.stores.registry import build_store_client


@dataclass(frozen=True)
class RuntimeSettings:
    operator_namespace: str
    workers: int
    refresh_interval: float
    store_check_interval: float
    store_guard: GuardSettings


class Runtime:
    def __init__(self, cluster: SingleConfig, settings: RuntimeSettings) -> None:
        self.settings = settings
        self.client = AsyncClient(cluster, field_manager="strongroom")
        self.kube = Kube(self.client)
        self.stores = StoreCache(self._build_store_client, settings.store_guard)
        self.secretmappings = SecretMappingController(
            self.kube, self.stores, settings.operator_namespace, settings.refresh_interval
        )
        self.secretstores = SecretStoreController(
            self.kube, self.stores, settings.store_check_interval, self.secretmappings.store_changed
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def _build_store_client(self, store: SecretStore) -> StoreClient:
        credentials = KubernetesCredentialSource(self.client, store.namespace)
        return await build_store_client(
            store, credentials, operator_namespace=self.settings.operator_namespace, kube_client=self.client
        )

    def start(self) -> None:
        for controller in (self.secretstores, self.secretmappings):
            self._tasks.append(
                asyncio.create_task(
                    controller.run(self.settings.workers), name=f"strongroom {controller.kind} workers"
                )
            )

    async def stop(self) -> None:
        for controller in (self.secretstores, self.secretmappings):
            controller.queue.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.stores.close()
        await self.client.close()
