"""SecretStore watch events go to the SecretStore controller (operator/controllers/secretstore.py)."""

from __future__ import annotations

from typing import Any

import kopf

from strongroom.api.constants import GROUP, VERSION

PLURAL = "secretstores"
KIND = (GROUP, PLURAL)


async def on_secretstore_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.secretstores.observe(event.get("type"), event["object"])


def register(registry: kopf.OperatorRegistry) -> None:
    # An event handler, not on.create/update: level-based, and kopf keeps no diff-base annotation.
    kopf.on.event(group=GROUP, version=VERSION, plural=PLURAL, registry=registry, id="secretstore-events")(
        on_secretstore_event
    )
