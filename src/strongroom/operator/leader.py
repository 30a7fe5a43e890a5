"""Leader election on a coordination.k8s.io/v1 Lease, and the write fence that goes with it.

Several replicas run; one holds the Lease and writes, the others are standbys: their watches run and
their controllers' caches and queues stay current, but no worker takes a key, so they make no write, no
driver call and no store write. The algorithm is client-go's (`tools/leaderelection`):

* a candidate takes the Lease when nobody holds it, or when the record it sees has not changed for the
  record's `leaseDurationSeconds` by its own (monotonic) clock — clocks of different machines are never
  compared;
* the holder renews it every `retry_period`; every change is an update with the `resourceVersion` it
  read, so of two candidates only one wins;
* a holder that could not renew for `renew_deadline` (< lease duration) has lost it.

Fencing: a replica may write only while it holds a lease whose renew deadline has not passed, measured
on the monotonic clock from the moment its last successful renew *started* (`Leadership.check`). Every
write of the process asks that (net/fence.py): a replica paused (SIGSTOP, a frozen VM, a long GC) and
resumed refuses to write before its election loop has even run again, and a standby can only take the
Lease `lease_duration - renew_deadline` seconds after the old leader stopped writing. On losing the
lease the process stops and exits non-zero (as controller-runtime's managers do): Kubernetes restarts it
as a standby with fresh state, which is simpler than proving that every in-memory operation was
abandoned cleanly. On an orderly stop the leader releases the Lease after its workers stopped, so a
standby takes over within one retry period (rolling updates).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lightkube import AsyncClient
from lightkube.config.kubeconfig import SingleConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from prometheus_client import Gauge

from strongroom.api.constants import FIELD_MANAGER
from strongroom.net import kube_client
from strongroom.operator.config import (
    DEFAULT_LEASE_DURATION,
    DEFAULT_LEASE_NAME,
    DEFAULT_RENEW_DEADLINE,
    DEFAULT_RETRY_PERIOD,
)

logger = logging.getLogger("strongroom.operator.leader")

IS_LEADER = Gauge(
    "strongroom_leader",
    "1 while this replica holds the leader Lease and may write, else 0 (always 1 without leader election).",
)


def default_identity() -> str:
    """The host name (a pod's name) and a random part: unique per process, readable in the Lease."""
    return f"{socket.gethostname()}_{secrets.token_hex(4)}"


@dataclass(frozen=True)
class LeaderElectionSettings:
    namespace: str
    lease_name: str = DEFAULT_LEASE_NAME
    identity: str = field(default_factory=default_identity)
    lease_duration: float = DEFAULT_LEASE_DURATION
    renew_deadline: float = DEFAULT_RENEW_DEADLINE
    retry_period: float = DEFAULT_RETRY_PERIOD

    def __post_init__(self) -> None:
        if self.lease_duration < 1 or self.lease_duration != int(self.lease_duration):
            raise ValueError("--leader-elect-lease-duration must be a whole number of seconds, at least 1s")
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < retry period < renew deadline < lease duration "
                f"(got {self.retry_period:g}s, {self.renew_deadline:g}s, {self.lease_duration:g}s)"
            )
        if not self.identity or len(self.identity) > 128:
            raise ValueError("--leader-elect-identity must be 1 to 128 characters")


class Leadership:
    """Whether this process may write now: it holds the lease and its renew deadline has not passed."""

    def __init__(self, renew_deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.renew_deadline = renew_deadline
        self._clock = clock
        self._valid_until: float | None = None

    def renewed(self, started_at: float) -> None:
        """A renew (or the acquisition) that started at `started_at` (this clock) succeeded."""
        self._valid_until = started_at + self.renew_deadline

    def revoke(self) -> None:
        self._valid_until = None

    @property
    def valid_until(self) -> float | None:
        return self._valid_until

    def check(self) -> str | None:
        """None while writes are allowed, else why not (the write fence's check, net/fence.py)."""
        if self._valid_until is None:
            return "this replica is not the leader"
        late = self._clock() - self._valid_until
        if late >= 0:
            return f"the leader lease was not renewed within its renew deadline ({late:.1f}s past it)"
        return None

    @property
    def held(self) -> bool:
        return self.check() is None


@dataclass(frozen=True)
class LeaseRecord:
    """What the election reads from a Lease."""

    holder: str
    duration: float | None
    transitions: int
    acquired: datetime.datetime | None
    resource_version: str | None
    renewed: datetime.datetime | None


def record_of(lease: Lease) -> LeaseRecord:
    spec = lease.spec or LeaseSpec()
    return LeaseRecord(
        holder=spec.holderIdentity or "",
        duration=float(spec.leaseDurationSeconds) if spec.leaseDurationSeconds else None,
        transitions=spec.leaseTransitions or 0,
        acquired=spec.acquireTime,
        resource_version=lease.metadata.resourceVersion if lease.metadata else None,
        renewed=spec.renewTime,
    )


def may_take(
    record: LeaseRecord, identity: str, observed_at: float, now: float, default_duration: float
) -> bool:
    """Whether `identity` may write itself into the Lease: free, its own, or unchanged for a lease duration
    since this candidate first saw this record (`observed_at`, `now`: the candidate's monotonic clock)."""
    if not record.holder or record.holder == identity:
        return True
    return now >= observed_at + (record.duration or default_duration)


class LeaderElector:
    """Acquires and renews the Lease; `leading` is set once this replica leads, `lost` when it stopped."""

    def __init__(
        self,
        cluster: SingleConfig,
        settings: LeaderElectionSettings,
        user_agent: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        # Its own client and connection pool, not fenced: the Lease is the one thing a standby writes, and
        # a renew must never queue behind the workers' requests.
        self.client: AsyncClient = kube_client(cluster, FIELD_MANAGER, user_agent, fenced=False)
        self.leadership = Leadership(settings.renew_deadline, clock)
        self.leading = asyncio.Event()
        self.lost = asyncio.Event()
        self.holder: str = ""  # the holder last seen (for /readyz and logs)
        self._clock = clock
        # The record last seen and when it was first seen (this clock): expiry is measured from there.
        self._observed: tuple[tuple[str, str | None], float] | None = None
        self._task: asyncio.Task[None] | None = None
        # When the Lease seen last may be taken (this clock), if someone else holds it.
        self._expires_at: float | None = None

    # --- one attempt --------------------------------------------------------------------------------------

    def _observe(self, record: LeaseRecord) -> float:
        key = (record.holder, record.resource_version)
        if self._observed is None or self._observed[0] != key:
            self._observed = (key, self._clock())
        if record.holder != self.holder and record.holder != self.settings.identity:
            logger.info("leader election: the Lease is held by %s", record.holder or "nobody")
        self.holder = record.holder
        return self._observed[1]

    def _spec(self, previous: LeaseRecord | None, now: datetime.datetime) -> LeaseSpec:
        me = self.settings.identity
        taking_over = previous is None or previous.holder != me
        transitions = 0 if previous is None else previous.transitions + (1 if taking_over else 0)
        return LeaseSpec(
            holderIdentity=me,
            leaseDurationSeconds=int(self.settings.lease_duration),
            acquireTime=now if previous is None or taking_over else previous.acquired or now,
            renewTime=now,
            leaseTransitions=transitions,
        )

    async def try_acquire_or_renew(self) -> bool:
        """One round: read the Lease, write ourselves into it if we may. True when we hold it now."""
        started = self._clock()
        now = datetime.datetime.now(datetime.UTC)
        name, namespace = self.settings.lease_name, self.settings.namespace
        try:
            lease = await self.client.get(Lease, name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code != 404:
                raise
            created = Lease(metadata=ObjectMeta(name=name, namespace=namespace), spec=self._spec(None, now))
            try:
                await self.client.create(created)
            except ApiError as exc2:
                if exc2.status.code == 409:  # another candidate created it first
                    return False
                raise
            self.holder = self.settings.identity
            self.leadership.renewed(started)
            return True
        record = record_of(lease)
        observed_at = self._observe(record)
        me, duration = self.settings.identity, self.settings.lease_duration
        if not may_take(record, me, observed_at, self._clock(), duration):
            self._expires_at = observed_at + (record.duration or duration)
            return False
        self._expires_at = None
        lease.spec = self._spec(record, now)
        try:
            await self.client.replace(lease)  # carries the resourceVersion read: a concurrent write -> 409
        except ApiError as exc:
            if exc.status.code == 409:
                return False
            raise
        self.holder = self.settings.identity
        self.leadership.renewed(started)
        return True

    # --- the loop -----------------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="strongroom leader election")

    async def _attempt(self, budget: float) -> bool:
        """One round within `budget` seconds; False on any failure (logged), the caller tries again."""
        try:
            async with asyncio.timeout(max(budget, 0.001)):
                return await self.try_acquire_or_renew()
        except Exception as exc:  # API server unreachable, RBAC, timeout: the next round tries again
            logger.warning("leader election: could not read or write Lease (%s: %s)", type(exc).__name__, exc)
            return False

    def _next_try(self) -> float:
        """Seconds until a candidate tries again: a jittered retry period (candidates spread out), or less
        if the Lease it saw expires sooner: a standby then takes over within a lease duration of the
        leader's last renew, not a retry period after that."""
        wait = self.settings.retry_period * random.uniform(1.0, 1.2)
        if self._expires_at is not None:
            wait = min(wait, max(0.0, self._expires_at - self._clock()) + 0.01)
        return wait

    async def _run(self) -> None:
        try:
            await self._campaign()
        except Exception:  # a bug here must not leave a process that neither leads nor stops
            logger.exception("leader election failed")
        self.leadership.revoke()
        IS_LEADER.set(0)
        self.lost.set()

    async def _campaign(self) -> None:
        """Acquire the Lease, then renew it until that fails; return when it is lost."""
        s = self.settings
        logger.info(
            "leader election: candidate %s for Lease %s/%s (lease %gs, renew deadline %gs, retry %gs)",
            s.identity,
            s.namespace,
            s.lease_name,
            s.lease_duration,
            s.renew_deadline,
            s.retry_period,
        )
        while True:
            if await self._attempt(s.renew_deadline):
                break
            await asyncio.sleep(self._next_try())
        IS_LEADER.set(1)
        self.leading.set()
        logger.info("leader election: %s became the leader", s.identity)
        while True:
            await asyncio.sleep(s.retry_period)
            valid_until = self.leadership.valid_until
            remaining = valid_until - self._clock() if valid_until is not None else 0.0
            if remaining <= 0:  # e.g. the process was paused: no use asking
                reason = "its renew deadline passed"
                break
            if await self._attempt(remaining):
                continue
            if self.holder != s.identity:
                reason = f"now held by {self.holder or 'nobody'}"
                break
            if not self.leadership.held:
                reason = "could not renew it within the renew deadline"
                break
        self.leadership.revoke()
        logger.error("leader election: %s lost the Lease (%s); stopping", s.identity, reason)

    async def stop(self, *, release: bool) -> None:
        """Stop the loop; with `release`, give the Lease up if still held (call once no worker writes)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if release and self.leadership.held:
            self.leadership.revoke()
            IS_LEADER.set(0)
            try:
                async with asyncio.timeout(self.settings.renew_deadline):
                    await self._release()
            except Exception as exc:
                logger.warning(
                    "leader election: could not release the Lease (%s: %s)", type(exc).__name__, exc
                )
            else:
                logger.info("leader election: %s released the Lease", self.settings.identity)
        await self.client.close()

    async def _release(self) -> None:
        lease = await self.client.get(Lease, self.settings.lease_name, namespace=self.settings.namespace)
        record = record_of(lease)
        if record.holder != self.settings.identity:
            return
        now = datetime.datetime.now(datetime.UTC)
        # As client-go: no holder, a one-second lease, so a standby takes over on its next round.
        lease.spec = LeaseSpec(
            holderIdentity=None,
            leaseDurationSeconds=1,
            acquireTime=now,
            renewTime=now,
            leaseTransitions=record.transitions,
        )
        await self.client.replace(lease)
