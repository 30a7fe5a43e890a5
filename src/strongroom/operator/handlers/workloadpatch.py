"""WorkloadPatch watch events go to the WorkloadPatch controller the Workload controller holds
(operator/controllers/workloadpatch.py), which wakes the Workload a patch names."""

from __future__ import annotations

from typing import Any

import kopf

from strongroom.api.constants import GROUP, VERSION

PLURAL = "workloadpatches"
KIND = (GROUP, PLURAL)


async def on_workloadpatch_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.workloadpatches.observe(event.get("type"), event["object"])


def register(registry: kopf.OperatorRegistry) -> None:
    kopf.on.event(group=GROUP, version=VERSION, plural=PLURAL, registry=registry, id="workloadpatch-events")(
        on_workloadpatch_event
    )
