"""What the operator may believe of a Resource, which tenants can write: its status and pending marker count
only where the operator's HMAC key (operator/inputskey.py) verifies their seal. Holds the key's start-up
(loaded before the first reconciles, checked by the operator's start-up) and the `Tampered` condition of
each reconcile under way, which every status write adds (operator/resourcewrites.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from strongroom.api.resource import Resource
from strongroom.operator.inputskey import InputsKey
from strongroom.operator.resourceio import Failed, Log
from strongroom.operator.resourcewrites import ResourceWrites, trusted_resource
from strongroom.reconcile import resource as plan
from strongroom.reconcile.conditions import ConditionSpec

ObjectKey = tuple[str, str]


class ResourceTrust:
    def __init__(
        self,
        inputs: InputsKey,
        writes: ResourceWrites,
        bodies: Mapping[ObjectKey, Mapping[str, Any]],
        alerts: dict[ObjectKey, ConditionSpec],
        log: Log,
        logger: logging.Logger,
    ) -> None:
        self.inputs = inputs
        self.writes = writes
        self.bodies = bodies
        # The Tampered condition of the reconcile under way (`ResourceWrites` adds it to every status).
        self.alerts = alerts
        self.log = log
        self.logger = logger

    async def preload(self) -> None:
        """Read (or make) the HMAC key before the first reconciles: otherwise every worker of a first burst
        waits on the one that creates it."""
        try:
            await self.inputs.get()
        except Exception as exc:  # the API server may not be reachable yet: the first reconcile retries
            self.logger.warning(
                "HMAC key not loaded at start (%s); loading it on first use", type(exc).__name__
            )

    async def key(self) -> bytes:
        """Load (or make) the inputs HMAC key now; raises what loading it raises (operator start-up check)."""
        try:
            return await self.inputs.get()
        except Failed as failed:
            raise ValueError(failed.problem.message) from None

    def done(self, key: ObjectKey) -> None:
        """The reconcile is over: its Tampered condition is written, or will be found again by the next."""
        self.alerts.pop(key, None)

    async def trusted(self, key: ObjectKey, resource: Resource) -> tuple[Resource, plan.Pending | None]:
        """The Resource as the operator may act on it, and its verified pending marker.

        Tenants can write annotations and (with the common wildcard Role) the status; neither may steer
        what the operator PUTs, DELETEs or removes. A pending marker whose HMAC does not verify is ignored
        and removed; status fields the seal does not cover are forgotten (the next status write removes
        them) and the Resource is planned as never provisioned, so its own spec-derived identity is all
        that is used. Either way the Resource gets the `Tampered` condition for this generation."""
        hmac_key = await self.inputs.get()
        uid = resource.metadata.uid or ""
        marker = plan.pending_of(resource.metadata.annotations, uid, hmac_key)
        status = (self.bodies.get(key) or {}).get("status") or {}
        altered = plan.status_altered(uid, status, hmac_key)
        alert = plan.tamper_condition(status_altered=altered, marker_ignored=marker.ignored)
        if alert is not None:
            self.log(logging.WARNING, key, "ignored: %s", alert.message)
        alert = alert or plan.standing_tamper(status, resource.metadata.generation)
        if alert is not None:
            self.alerts[key] = alert
        if marker.ignored:
            await self.writes.set_annotation(key, plan.PENDING_ANNOTATION, None)
        if altered:
            # Forget the altered fields now (with the condition saying so), before anything reads them.
            conditions = [c for c in status.get("conditions") or [] if c.get("type") != plan.TAMPERED]
            await self.writes.write_status(key, {"conditions": conditions})
        return trusted_resource(self.bodies[key], hmac_key), marker.pending


__all__ = ["ResourceTrust"]
