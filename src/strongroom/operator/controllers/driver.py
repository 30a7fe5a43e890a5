"""The status of Driver objects (the Driver objects themselves are kept by operator/drivercache.py)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from urllib.parse import urlsplit

from pydantic import ValidationError

from strongroom.api.driver import Driver as DriverObject
from strongroom.drivers.base import DriverError, SigningKeyNotAllowed
from strongroom.operator.controllers.base import Controller
from strongroom.operator.drivercache import DriverCache
from strongroom.operator.kube import DriverResource, Kube
from strongroom.reconcile.conditions import merge_conditions, not_ready, ready
from strongroom.reconcile.secretmapping import status_differs
from strongroom.reconcile.stores import Problem

ObjectKey = tuple[str, str]

# Seconds a reachability check waits for a TCP connection to a Driver's target.
REACH_TIMEOUT = 5.0


class DriverStatusController(Controller):
    """The status of Driver objects, matching their READY/REASON printer columns.

    Ready when the signing key the Driver uses is there and parses (or it does not sign) and the operator
    can open a TCP connection to the target's host and port. Nothing is sent over that connection: no
    request, no token. (A tenant's Driver could point at any address; the status says no more than a
    Resource on that Driver would, whose driver call the operator makes anyway.) Re-checked at the store
    check interval and whenever the Driver's spec changes.
    """

    kind = "Driver"
    status_resource = DriverResource

    def __init__(self, kube: Kube, cache: DriverCache, check_interval: float) -> None:
        super().__init__()
        self.kube = kube
        self.cache = cache
        self.operator_namespace = cache.operator_namespace
        self.check_interval = check_interval

    async def reconcile(self, key: ObjectKey) -> str:
        body = self.bodies[key]
        generation = (body.get("metadata") or {}).get("generation")
        problem: Problem | None = None
        retry = True
        try:
            obj = DriverObject.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)
            )
            problem, retry = Problem("InvalidSpec", f"the spec is not valid: {problems}", False), False
        else:
            problem = await self._check(obj)
        condition = (
            ready("Reachable", "the signing key is loaded and the target accepts connections")
            if problem is None
            else not_ready(problem.reason, problem.message)
        )
        previous = (body.get("status") or {}).get("conditions")
        status = {
            "observedGeneration": generation,
            "conditions": merge_conditions(previous, [condition], datetime.now(UTC), generation),
        }
        if status_differs(body.get("status"), status):
            await self.kube.patch_status(DriverResource, key[0], key[1], status)
            body["status"] = {**(body.get("status") or {}), **status}
            self.report(key, "Normal" if problem is None else "Warning", condition.reason, condition.message)
        if problem is None:
            self.succeeded(key, self.check_interval)
            return "ready"
        self.failed(key, retry and problem.retryable, self.check_interval)
        return "failed"

    async def _check(self, obj: DriverObject) -> Problem | None:
        if obj.spec.sign:
            if obj.namespace != self.operator_namespace and obj.spec.private_key_secret_ref is None:
                return Problem(
                    SigningKeyNotAllowed.reason,
                    "this Driver signs requests but names no privateKeySecretRef: the operator's own key "
                    f"signs only for Drivers in namespace {self.operator_namespace!r}; create a key Secret "
                    "here (strongroom keys generate) and name it in spec.privateKeySecretRef, or set "
                    "sign: false",
                    False,
                )
            try:
                await self.cache.signing_key(obj)
            except DriverError as exc:
                return Problem(exc.reason, str(exc), exc.retryable)
        url = urlsplit(str(obj.spec.target))
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            async with asyncio.timeout(REACH_TIMEOUT):
                _, writer = await asyncio.open_connection(url.hostname, port)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        except (OSError, TimeoutError) as exc:
            return Problem(
                "Unreachable",
                f"cannot connect to {url.hostname}:{port} ({type(exc).__name__}); check spec.target and that "
                "the driver runs and the operator's network may reach it",
            )
        return None
