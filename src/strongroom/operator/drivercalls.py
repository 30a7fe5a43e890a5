"""Resource reconciles' calls to drivers: the driver a type names, the remote operations still in flight
(a 202/409 answer continues on a timer, so no worker waits), and the time spent in drivers versus the
operator's own time (the `strongroom_resource_driver_seconds` and `strongroom_resource_overhead_seconds`
metrics).

One unit because the three meet in every call: a call resolves its driver, continues the operation the
Resource has in flight with it, and is timed; the provisioning and deletion paths
(operator/resourceprovision.py, operator/resourcedeletion.py) both go through it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace

from prometheus_client import Histogram

from strongroom.drivers.base import Driver, DriverError, DriverOperation, DriverRequest, OperationInProgress
from strongroom.operator.drivercache import DriverCache
from strongroom.operator.resourceio import Failed
from strongroom.reconcile.stores import Problem

ObjectKey = tuple[str, str]

#: Logged when a driver answers DELETE with 405 (see `no_delete`).
NO_DELETE = "driver %s has no DELETE (405): nothing to delete"

DRIVER_SECONDS = Histogram(
    "strongroom_resource_driver_seconds",
    "Time Resource reconciles spent waiting for drivers (polling after 202/409 included).",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
OVERHEAD_SECONDS = Histogram(
    "strongroom_resource_overhead_seconds",
    "Time one Resource reconcile that called a driver spent outside the driver: the operator's own cost.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5),
)


@dataclass
class Attempt:
    """Bookkeeping of one reconcile."""

    started: float
    driver_seconds: float = 0.0
    called_driver: bool = False


def no_delete(exc: DriverError) -> bool:
    """A driver that answers DELETE with 405 has no delete operation (the older Driver API spec had none,
    and the SDK answers 405 when a driver defines no `delete`): there is nothing it could deprovision, and
    waiting would only keep the finalizer forever."""
    return exc.status == 405


class DriverCalls:
    def __init__(
        self, drivers: DriverCache, waiting: Callable[[], AbstractAsyncContextManager[None]]
    ) -> None:
        self.drivers = drivers
        # The controller's `waiting`: gives the reconcile's slot to another object meanwhile.
        self.waiting = waiting
        # Remote PUTs the driver is still working on (202/409), by Resource, with the driver type they
        # went to: the next reconcile continues them (deadline, backoff, a cookie set by a 202).
        self._operations: dict[ObjectKey, tuple[str, DriverOperation]] = {}

    def forget(self, key: ObjectKey) -> None:
        """A Resource is gone, or its operation ended: nothing to continue."""
        self._operations.pop(key, None)

    async def resolve(self, driver_type: str, namespace: str, *, deleting: bool = False) -> Driver:
        try:
            return await self.drivers.resolve(driver_type, namespace, deleting=deleting)
        except DriverError as exc:
            raise Failed(Problem(exc.reason, str(exc), exc.retryable)) from None

    def operation(self, key: ObjectKey, driver_type: str, method: str) -> DriverOperation:
        """The operation this call continues, or a new one (another driver or method starts over)."""
        current = self._operations.get(key)
        if current is None or current[0] != driver_type or current[1].method != method:
            current = (driver_type, DriverOperation(method))
            self._operations[key] = current
        return current[1]

    async def delete(
        self, key: ObjectKey, attempt: Attempt, driver_type: str, driver: Driver, request: DriverRequest
    ) -> None:
        """DELETE through one driver. Like a PUT, a remote driver's 202 continues on a timer
        (OperationInProgress leaves the reconcile), so a slow deletion holds no worker either."""
        if not driver.in_process:
            request = replace(request, operation=self.operation(key, driver_type, "DELETE"))
        try:
            async with self.timed(attempt, "delete", driver):
                await driver.delete(request)
        except OperationInProgress:
            raise
        except BaseException:
            self._operations.pop(key, None)
            raise
        self._operations.pop(key, None)

    @contextlib.asynccontextmanager
    async def timed(self, attempt: Attempt, operation: str, driver: Driver) -> AsyncIterator[None]:
        """Time a driver call (the driver's time, not the operator's overhead). A remote driver may take
        seconds (202 and polling): its call gives the slot to another Resource meanwhile; waiting to get
        it back afterwards counts as overhead. Built-in drivers answer at once and keep the slot."""
        async with contextlib.nullcontext() if driver.in_process else self.waiting():
            started = time.perf_counter()
            try:
                yield
            finally:
                elapsed = time.perf_counter() - started
                attempt.driver_seconds += elapsed
                DRIVER_SECONDS.labels(operation).observe(elapsed)


__all__ = [
    "DRIVER_SECONDS",
    "NO_DELETE",
    "OVERHEAD_SECONDS",
    "Attempt",
    "DriverCalls",
    "no_delete",
]
