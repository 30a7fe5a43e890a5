"""SecretMapping watch events go to the SecretMapping controller (operator/controllers/secretmapping.py)."""

from __future__ import annotations

from typing import Any

import kopf

from strongroom.api.constants import GROUP, VERSION

PLURAL = "secretmappings"
KIND = (GROUP, PLURAL)


async def on_secretmapping_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.secretmappings.observe(event.get("type"), event["object"])


def register(registry: kopf.OperatorRegistry) -> None:
    handler = kopf.on.event(
        group=GROUP, version=VERSION, plural=PLURAL, registry=registry, id="secretmapping-events"
    )
    handler(on_secretmapping_event)
