"""Workload watch events go to the Workload controller (operator/controllers/workload.py).

Resource events go there too: a Workload renders from its Resources' status and Secrets, so it must be
woken when one of them becomes Ready or changes. This is a second event handler on Resources next to
the Resource controller's own; kopf runs both on the one watch it keeps per kind.
"""

from __future__ import annotations

from typing import Any

import kopf

from strongroom.api.constants import GROUP, VERSION

PLURAL = "workloads"
KIND = (GROUP, PLURAL)


async def on_workload_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.workloads.observe(event.get("type"), event["object"])


async def on_resource_event_for_workloads(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.workloads.resource_event(event.get("type"), event["object"])


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.event(group=GROUP, version=VERSION, plural=PLURAL, registry=registry, id="workload-events")(
        on_workload_event
    )
    kopf.on.event(
        group=GROUP, version=VERSION, plural="resources", registry=registry, id="workload-resource-events"
    )(on_resource_event_for_workloads)
