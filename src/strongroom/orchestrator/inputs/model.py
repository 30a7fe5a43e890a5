"""What the orchestrator's inputs are once read: workloads, definitions (one shape for both formats), values.

The loaders in this package produce these; matching and planning consume them. Nothing here holds a secret
value: a secret shared value is a reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from strongroom.api.common import SecretReference


@dataclass(frozen=True)
class Criterion:
    """One matching criterion of a definition; an unset field matches anything (class: see matching)."""

    app: str | None = None
    env: str | None = None
    env_type: str | None = None
    res_class: str | None = None
    res_id: str | None = None


@dataclass(frozen=True)
class ResourceDefinition:
    """A resource definition, whichever format it was written in."""

    name: str
    source: str
    """Where it was read (`file.yaml#2`), for messages."""
    type: str
    driver_type: str
    values: dict[str, Any] | None = None
    secrets: dict[str, Any] | None = None
    secret_refs: dict[str, Any] | None = None
    """Secret reference tree as plain data (`{store, ref, version}` leaves), already validated."""
    criteria: tuple[Criterion, ...] = ()
    in_place_driver_change: bool = False
    builtin: bool = False
    """True for the orchestrator's own fallback definitions (they lose against any user definition)."""


@dataclass(frozen=True)
class ScoreWorkload:
    name: str
    source: str
    spec: dict[str, Any]
    """The Score document without apiVersion, validated and in wire form (camelCase, maps)."""


@dataclass(frozen=True)
class SharedValue:
    key: str
    text: str | None = None
    ref: SecretReference | None = None

    @property
    def is_secret(self) -> bool:
        return self.ref is not None


@dataclass
class Inputs:
    workloads: list[ScoreWorkload] = field(default_factory=list)
    definitions: list[ResourceDefinition] = field(default_factory=list)
    drivers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Driver objects by name, as plain manifests (metadata reduced to the name)."""
    values: dict[str, SharedValue] = field(default_factory=dict)
