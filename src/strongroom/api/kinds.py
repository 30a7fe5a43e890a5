"""The kinds strongroom serves, and parsing of objects whose kind is only known at run time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from strongroom.api.common import KubeObject
from strongroom.api.driver import Driver
from strongroom.api.resource import Resource
from strongroom.api.secretmapping import SecretMapping
from strongroom.api.secretstore import SecretStore
from strongroom.api.workload import Workload, WorkloadPatch

AnyKubeObject = KubeObject[Any, Any]

ALL_KINDS: tuple[type[AnyKubeObject], ...] = (
    SecretStore,
    SecretMapping,
    Driver,
    Resource,
    Workload,
    WorkloadPatch,
)

KINDS_BY_NAME: dict[str, type[AnyKubeObject]] = {kind.KIND: kind for kind in ALL_KINDS}


def parse_object(obj: Mapping[str, Any]) -> AnyKubeObject:
    """Parse a whole strongroom object (apiVersion, kind, metadata, spec, status) by its `kind`.

    Raises ValueError for kinds strongroom does not serve and pydantic.ValidationError (a ValueError) for
    objects that do not match their schema.
    """
    kind = obj.get("kind")
    model = KINDS_BY_NAME.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ValueError(f"not a strongroom kind: {kind!r} (expected one of {', '.join(KINDS_BY_NAME)})")
    return model.model_validate(obj)
