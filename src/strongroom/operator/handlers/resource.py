"""Resource watch events go to the Resource controller (operator/controllers/resource.py).

(The Workload controller registers a second handler on Resources, see handlers/workload.py.)
"""

from __future__ import annotations

from typing import Any

import kopf

from strongroom.api.constants import GROUP, VERSION

PLURAL = "resources"
KIND = (GROUP, PLURAL)


async def on_resource_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.resources.observe(event.get("type"), event["object"])


def register(registry: kopf.OperatorRegistry) -> None:
    # An event handler, not on.create/update/delete: the controller is level-based and adds and removes
    # its finalizer itself (kopf keeps no diff-base annotation and adds no finalizer of its own).
    kopf.on.event(group=GROUP, version=VERSION, plural=PLURAL, registry=registry, id="resource-events")(
        on_resource_event
    )
