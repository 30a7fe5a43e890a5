"""The data of a rendering: what it is given per resource, what it returns, and what its parts collect.

`ResourceOutputs` and `RenderResult` are the renderer's contract with the controller (and with
`strongroom render`); `Collected` and `Problem` are how the parts of one rendering (env, files, volumes,
resource manifests) report back to the renderer that assembles them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strongroom.stores.base import SecretValue


@dataclass(frozen=True)
class ResourceOutputs:
    """What the controller observed about one resource the workload uses."""

    ready: bool
    values: Mapping[str, Any] = field(default_factory=dict)
    """Non-secret outputs (may be nested); inlined where referenced."""
    secret_name: str | None = None
    """Kubernetes Secret (workload's namespace) holding the secret outputs, one data key per output key."""
    secrets: Mapping[str, SecretValue] = field(default_factory=dict)
    """Secret output values by key, as read from that Secret. Only needed to compose a secret with text
    (an env var or file that is exactly one secret output is wired by reference)."""
    containers: Sequence[Mapping[str, Any]] = ()
    """Container manifests the resource emits (manifest location `containers`): sidecars."""
    volumes: Sequence[Mapping[str, Any]] = ()
    """Volume manifests the resource emits (manifest location `volumes`)."""
    content_hash: str | None = None
    """Content hash of its outputs Secret (`strongroom.dev/content-hash`), for the rollout checksum."""
    secret_keys: Collection[str] = ()
    """Further secret output keys whose values were not read (keys of `secrets` count anyway)."""

    def secret_output_keys(self) -> set[str]:
        return set(self.secrets) | set(self.secret_keys)


@dataclass(frozen=True)
class RenderResult:
    """What to apply, or why not."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    """Complete manifests for server-side apply, dependencies first: ConfigMaps, Secrets, the Deployment
    or the headless Service and StatefulSet, Service. Empty whenever anything below is non-empty."""
    waiting_for: list[str] = field(default_factory=list)
    """Resources (names in spec.resources) that are missing or not Ready."""
    patch_problems: dict[str, str] = field(default_factory=dict)
    """WorkloadPatch name -> why it does not apply."""
    problems: list[str] = field(default_factory=list)
    """Other actionable problems with the Workload (placeholders, files, volumes, manifests)."""
    consumed_secrets: list[str] = field(default_factory=list)
    """Names of the Secrets the pod reads (resource Secrets, owned Secrets, Secrets sidecars name)."""
    applied_patches: list[str] = field(default_factory=list)
    """WorkloadPatches applied, in order (for `status.patches`)."""

    @property
    def complete(self) -> bool:
        """True when `objects` is a full rendering that may be applied."""
        return not (self.waiting_for or self.patch_problems or self.problems)


class Problem(Exception):
    """One problem found while rendering; collected, never shown with a value."""


@dataclass
class Collected:
    """What the parts of one rendering add to as they go; the renderer turns it into the result."""

    problems: list[str] = field(default_factory=list)
    """Problems in the order found (`RenderResult.problems`)."""
    consumed: set[str] = field(default_factory=set)
    """Names of the Secrets the pod reads."""
    owned_secrets: dict[str, dict[str, bytes]] = field(default_factory=dict)
    """Secrets this Workload owns (text composed with secret outputs): name -> data."""
    config_maps: list[dict[str, Any]] = field(default_factory=list)
    """ConfigMaps of the containers' plain files, as manifests."""
