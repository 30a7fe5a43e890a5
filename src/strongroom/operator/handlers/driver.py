"""Driver watch events go to the Driver cache (operator/drivercache.py), which wakes the Resources
that name the Driver."""

from __future__ import annotations

from typing import Any

import kopf

from strongroom.api.constants import GROUP, VERSION

PLURAL = "drivers"
KIND = (GROUP, PLURAL)


async def on_driver_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.drivers.observe(event.get("type"), event["object"])
    memo.runtime.driverstatus.observe(event.get("type"), event["object"])


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.event(group=GROUP, version=VERSION, plural=PLURAL, registry=registry, id="driver-events")(
        on_driver_event
    )
