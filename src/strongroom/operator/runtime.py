"""The operator's moving parts, built once per process: API client, store clients, controllers.

One list+watch per kind and watched namespace (`listwatch.py`) feeds the controllers' `observe`; the
controllers' workers run as tasks of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lightkube.config.kubeconfig import SingleConfig

from strongroom.api.constants import API_VERSION, FIELD_MANAGER
from strongroom.api.kinds import ALL_KINDS
from strongroom.api.secretstore import SecretStore
from strongroom.drivers.registry import DriverRegistry
from strongroom.drivers.remote import DEFAULT_MAX_RESPONSE_BYTES, RemoteTimings
from strongroom.drivers.sandbox import SandboxLimits
from strongroom.net import kube_client, kube_transport
from strongroom.net.kubejson import KubeJson
from strongroom.operator.config import DEFAULT_NAMESPACE_WORKER_SHARE
from strongroom.operator.controllers.base import Controller
from strongroom.operator.controllers.driver import DriverStatusController
from strongroom.operator.controllers.resource import ResourceController, ResourcePolicy
from strongroom.operator.controllers.secretmapping import SecretMappingController
from strongroom.operator.controllers.secretstore import SecretStoreController
from strongroom.operator.controllers.workload import WorkloadController
from strongroom.operator.drivercache import DEFAULT_KEY_SECRET, DriverCache
from strongroom.operator.events import EventRecorder
from strongroom.operator.failures import describe_failure
from strongroom.operator.kube import RENDERED_KINDS, Kube
from strongroom.operator.kubeconfig import USER_AGENT, ClusterAccess, connection_info
from strongroom.operator.listwatch import Collection, ListWatch, OnList, each_in_turns
from strongroom.operator.owned import ALL_NAMESPACES, ObjectId, OwnedObjects, WatchedKind
from strongroom.operator.storecache import StoreCache
from strongroom.operator.workqueue import Activity, Pace
from strongroom.stores.base import StoreClient
from strongroom.stores.credentials import KubernetesCredentialSource
from strongroom.stores.guard import GuardSettings
from strongroom.stores.registry import build_store_client

logger = logging.getLogger("strongroom.operator")

# Seconds the first lists of stores and drivers may take before the other kinds are watched without them.
PRIME_TIMEOUT = 10.0

Observer = Callable[[str | None, Mapping[str, Any]], None]


class ListedCache(Protocol):
    """A cache that a complete list corrects: what it no longer holds was deleted (relist.py)."""

    def forget_unlisted(self, namespace: str, listed: Sequence[Mapping[str, Any]]) -> None: ...


#: (plural, kind) of every strongroom kind: the operator watches each one.
WATCHED_KINDS: tuple[tuple[str, str], ...] = tuple((kind.PLURAL, kind.KIND) for kind in ALL_KINDS)
# Kinds other objects name (a store, a driver): listed before the kinds that name them.
REFERRED_KINDS = frozenset({"secretstores", "drivers"})


@dataclass(frozen=True)
class RuntimeSettings:
    operator_namespace: str
    workers: int
    slots: int
    refresh_interval: float
    store_check_interval: float
    store_guard: GuardSettings
    # How often a Resource's driver is called again although nothing changed (drift repair).
    resource_resync_interval: float = 3600.0
    template_limits: SandboxLimits = field(default_factory=SandboxLimits)
    # The operator's own ServiceAccount (operator namespace); None: Vault auth as the operator is refused.
    service_account: str | None = None
    # What the platform admin allows Resources (hand-set GUResIDs, manifest kinds, cluster manifests).
    resource_policy: ResourcePolicy = field(default_factory=ResourcePolicy)
    namespace_worker_share: float = DEFAULT_NAMESPACE_WORKER_SHARE
    # None: namespaces are never paced (see workqueue.Pace).
    namespace_pace: Pace | None = None
    # Largest answer read from a remote driver unless its Driver says otherwise.
    driver_max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    # What every Kubernetes request says it comes from (names the replica when leader election is on).
    user_agent: str = USER_AGENT


class Runtime:
    def __init__(self, cluster: SingleConfig, settings: RuntimeSettings) -> None:
        self.settings = settings
        transport = kube_transport(cluster, settings.user_agent)
        self.client = kube_client(cluster, FIELD_MANAGER, transport=transport)
        # The cluster's credentials, read again after a 401 (a token file rotates in a pod).
        access = ClusterAccess(cluster, "")
        self.json = KubeJson(
            transport,
            cluster.cluster.server,
            lambda: connection_info(access, settings.user_agent).as_http_headers(),
            FIELD_MANAGER,
        )
        self.kube = Kube(self.client, self.json)
        self.stores = StoreCache(self._build_store_client, settings.store_guard)
        self.secretmappings = SecretMappingController(
            self.kube, self.stores, settings.operator_namespace, settings.refresh_interval
        )
        self.registry = DriverRegistry(
            defaults=RemoteTimings(max_response_bytes=settings.driver_max_response_bytes),
            template_limits=settings.template_limits,
        )
        self.drivers = DriverCache(self.kube, settings.operator_namespace, self.registry)
        self.driverstatus = DriverStatusController(self.kube, self.drivers, settings.store_check_interval)
        self.resources = ResourceController(
            self.kube,
            self.stores,
            self.drivers,
            settings.operator_namespace,
            settings.resource_resync_interval,
            settings.resource_policy,
        )
        self.secretstores = SecretStoreController(
            self.kube, self.stores, settings.store_check_interval, self._store_changed
        )
        # Resyncs at the refresh interval heal rendered objects deleted behind the operator's back.
        self.workloads = WorkloadController(self.kube, settings.refresh_interval)
        self.workloadpatches = self.workloads.patches
        # Drift repair: what the operator wrote, watched by label; changes by others go to the owner.
        self.owned = OwnedObjects(
            self.json,
            [
                WatchedKind(version, kind, resource._api_info.plural)
                for (version, kind), resource in RENDERED_KINDS.items()
            ],
            self._owned_object_changed,
        )
        self.kube.on_written = self.owned.wrote
        self.secretmappings.owned = self.owned
        self.kube.on_removed = self.owned.removed
        self.kube.writing = self.owned.writing
        self.events = EventRecorder(self.json)
        for controller in self._controllers():
            controller.events = self.events
            controller.operator_namespace = settings.operator_namespace
        self._namespaces: tuple[str, ...] = ()
        self._tasks: list[asyncio.Task[None]] = []
        self.watches: list[ListWatch] = []
        self._watch_tasks: list[asyncio.Task[None]] = []

    def _swept(self) -> dict[str, tuple[ListedCache, ...]]:
        """Plural of each watched kind -> the controllers whose caches its lists correct (relist.py)."""
        return {
            "secretstores": (self.secretstores,),
            "drivers": (self.drivers, self.driverstatus),
            "secretmappings": (self.secretmappings,),
            "resources": (self.resources,),
            "workloads": (self.workloads,),
            "workloadpatches": (self.workloadpatches,),
        }

    def _observers(self) -> dict[str, tuple[Observer, ...]]:
        """Plural of each watched kind -> who is told of its objects."""
        return {
            "secretstores": (self.secretstores.observe,),
            "drivers": (self.drivers.observe, self.driverstatus.observe),
            "secretmappings": (self.secretmappings.observe,),
            "resources": (self.resources.observe, self.workloads.resource_event),
            "workloads": (self.workloads.observe,),
            "workloadpatches": (self.workloadpatches.observe,),
        }

    async def watch(self, namespaces: tuple[str, ...]) -> None:
        """Start one list+watch per strongroom kind and watched namespace (none: every namespace). Reads
        only: a standby keeps its caches and queues current with them like the leader.

        SecretStores and Drivers first: their watches' first lists are awaited (at most PRIME_TIMEOUT)
        before the kinds that refer to them are listed, so that after a restart no object flaps to
        StoreNotFound/DriverNotFound (nor its Workloads to WaitingForResources) because its store's event
        came after its own. A first list that fails (CRD not installed yet, no list permission) is not
        waited for: the watch keeps trying, and the others start."""
        self._namespaces = namespaces
        observers_of, swept_of = self._observers(), self._swept()
        first = [(plural, kind) for plural, kind in WATCHED_KINDS if plural in REFERRED_KINDS]
        then = [(plural, kind) for plural, kind in WATCHED_KINDS if plural not in REFERRED_KINDS]
        referred = [
            self._start_watch(plural, kind, ns, observers_of[plural], swept_of.get(plural, ()))
            for plural, kind in first
            for ns in namespaces or ("",)
        ]
        try:
            async with asyncio.timeout(PRIME_TIMEOUT):
                await asyncio.gather(*(watch.tried.wait() for watch in referred))
        except TimeoutError:
            logger.warning(
                "SecretStores and Drivers were not listed within %.0fs; watching the other kinds anyway",
                PRIME_TIMEOUT,
            )
        for plural, kind in then:
            for namespace in namespaces or ("",):
                self._start_watch(plural, kind, namespace, observers_of[plural], swept_of.get(plural, ()))

    def _start_watch(
        self,
        plural: str,
        kind: str,
        namespace: str,
        observers: Sequence[Observer],
        swept: Sequence[ListedCache],
    ) -> ListWatch:
        watch = ListWatch(
            self.json,
            Collection(API_VERSION, plural, kind, namespace),
            _tell_listed(observers, swept, namespace),
            _tell_event(observers),
        )
        self.watches.append(watch)
        self._watch_tasks.append(
            asyncio.create_task(watch.run(), name=f"strongroom watch {watch.collection.describe()}")
        )
        return watch

    def scanned(self) -> bool:
        """Whether every watch has listed its kind once (the caches hold what exists)."""
        return bool(self.watches) and all(watch.listed.is_set() for watch in self.watches)

    def _owned_object_changed(
        self, owner_kind: str, owner: tuple[str, str], uid: str, changed: ObjectId
    ) -> None:
        owners: dict[str, Controller] = {
            "SecretMapping": self.secretmappings,
            "Resource": self.resources,
            "Workload": self.workloads,
        }
        controller = owners.get(owner_kind)
        if controller is not None:
            controller.drifted(owner, uid, changed)

    def _store_changed(self, store_name: str) -> None:
        self.secretmappings.store_changed(store_name)
        self.resources.store_changed(store_name)

    async def _build_store_client(self, store: SecretStore) -> StoreClient:
        # Only stores of the operator namespace may act as the operator (the backends refuse it elsewhere
        # too): a credential source of any other namespace does not even know the operator's account.
        own = store.namespace == self.settings.operator_namespace
        account = self.settings.service_account if own else None
        credentials = KubernetesCredentialSource(
            self.client, store.namespace, operator_service_account=account
        )
        return await build_store_client(
            store, credentials, operator_namespace=self.settings.operator_namespace, kube_client=self.client
        )

    def _controllers(self) -> tuple[Controller, ...]:
        return (
            self.secretstores,
            self.secretmappings,
            self.workloads,
            self.workloadpatches,
            self.resources,
            self.driverstatus,
        )

    async def check_prerequisites(self) -> None:
        """Say once, at start, what the operator needs from its namespace and what of it is missing.

        Creating the inputs HMAC key (which Resources need anyway) proves the namespace exists; the
        operator's signing key is only needed by Drivers of the operator namespace that sign with it."""
        namespace = self.settings.operator_namespace
        lacks: list[str] = []
        try:
            async with asyncio.timeout(PRIME_TIMEOUT):
                await self.resources.inputs_key()
        except Exception as exc:
            problem = describe_failure(exc, namespace)
            lacks.append(f"the inputs HMAC key ({problem.reason}: {problem.message})")
        # Only Drivers of the operator namespace that sign with the operator's key need it: its absence is
        # worth a line, not a warning (an installation without such Drivers never creates it).
        level = logging.WARNING if lacks else logging.INFO
        try:
            async with asyncio.timeout(PRIME_TIMEOUT):
                key = await self.kube.get_secret(namespace, DEFAULT_KEY_SECRET)
        except Exception as exc:
            lacks.append(f"its signing key ({describe_failure(exc, namespace).message})")
            level = logging.WARNING
        else:
            if key is None:
                lacks.append(
                    f"its signing key (Secret {namespace}/{DEFAULT_KEY_SECRET} does not exist; Drivers in "
                    f"{namespace} that sign and name no privateKeySecretRef stay not Ready until it does: "
                    "strongroom keys generate)"
                )
        needs = f"operator namespace {namespace} (inputs HMAC key, signing key {DEFAULT_KEY_SECRET})"
        if lacks:
            logger.log(level, "the operator needs its %s and lacks: %s", needs, "; ".join(lacks))
        else:
            logger.info("the operator needs its %s: all present", needs)

    def start(self, leading: asyncio.Event | None = None) -> None:
        """Start every controller's workers; with `leading`, only once it is set (a standby's controllers keep
        their caches and queues current, but take no key until this replica leads: leader.py)."""
        # The owned-object watches only read: a standby keeps them current like its other caches.
        self.owned.start(self._namespaces or (ALL_NAMESPACES,))
        # The check creates the inputs HMAC key: a write, so a standby makes it when it comes to lead.
        self._tasks.append(asyncio.create_task(self._check_when_leading(leading), name="strongroom check"))
        activity = Activity()  # one for every kind: contention is judged across kinds
        for controller in self._controllers():
            controller.namespace_worker_share = self.settings.namespace_worker_share
            # Store checks are housekeeping (every store, every few minutes, in the operator namespace
            # too): paced like the rest, but they must not make every tenant count as contended.
            controller.queue.set_pace(
                self.settings.namespace_pace, activity, marks_activity=controller is not self.secretstores
            )
            self._tasks.append(
                asyncio.create_task(
                    self._run_controller(controller, leading),
                    name=f"strongroom {controller.kind} workers",
                )
            )

    async def _check_when_leading(self, leading: asyncio.Event | None) -> None:
        if leading is not None:
            await leading.wait()
        await self.check_prerequisites()

    async def _run_controller(self, controller: Controller, leading: asyncio.Event | None) -> None:
        if leading is not None:
            await leading.wait()
        await controller.run(self.settings.workers, self.settings.slots)

    async def stop(self) -> None:
        for task in self._watch_tasks:
            task.cancel()
        for task in self._watch_tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for controller in self._controllers():
            controller.queue.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.owned.stop()
        await self.events.close()
        await self.drivers.close()
        await self.registry.close()
        await self.stores.close()
        await self.client.close()


def _tell_listed(observers: Sequence[Observer], swept: Sequence[ListedCache], namespace: str) -> OnList:
    # What a list no longer holds is forgotten first (relist.py); then each listed object is told as event
    # type None (a controller retries at once a failing object it sees listed again: the gap was likely
    # the API server's), a turn of objects at a time.
    async def listed(objects: Sequence[dict[str, Any]]) -> None:
        for controller in swept:
            controller.forget_unlisted(namespace, objects)

        def tell(obj: dict[str, Any]) -> None:
            for observe in observers:
                observe(None, obj)

        await each_in_turns(objects, tell)

    return listed


def _tell_event(observers: Sequence[Observer]) -> Callable[[str, dict[str, Any]], None]:
    def event(event_type: str, obj: dict[str, Any]) -> None:
        for observe in observers:
            observe(event_type, obj)

    return event
