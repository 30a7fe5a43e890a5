"""Placeholders resolved against the workload metadata and its resources' outputs.

A resolved text is a list of parts: plain text, or a `SecretPart` naming a secret output (and its value
when it was read). Callers decide from the parts how the text reaches the pod: inlined when it has no
secret part, by reference when it is exactly one, or composed into a Secret the Workload owns. Secret
values are only revealed in `compose`, never put into a message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from strongroom.api.workload import WorkloadSpec
from strongroom.reconcile.placeholders import Placeholder, PlaceholderError, lookup, parse, to_text
from strongroom.reconcile.workload.checks import check_placeholder
from strongroom.reconcile.workload.model import Collected, Problem, ResourceOutputs
from strongroom.stores.base import SecretValue


@dataclass(frozen=True)
class SecretPart:
    """A placeholder that resolved to a secret output: where it lives, and the value if it was read."""

    resource: str
    secret_name: str | None
    key: str
    value: SecretValue | None


Part = str | SecretPart


class Resolver:
    """Resolves the placeholders of one workload; records the resource Secrets referenced in `collected`."""

    def __init__(
        self, name: str, spec: WorkloadSpec, resources: Mapping[str, ResourceOutputs], collected: Collected
    ) -> None:
        self.spec = spec
        self.resources = resources
        self.collected = collected
        metadata = (
            spec.metadata.model_dump(mode="json", by_alias=True, exclude_none=True) if spec.metadata else {}
        )
        metadata.setdefault("name", name)
        self.metadata = metadata

    def resolve(self, placeholder: Placeholder, *, whole_resource: bool = False) -> Part:
        ref = check_placeholder(placeholder, self.spec, whole_resource=whole_resource)
        if ref is None:
            try:
                return to_text(lookup(self.metadata, placeholder.path[1:]))
            except KeyError:
                raise PlaceholderError(
                    f"placeholder {placeholder.source}: the workload metadata has no such key"
                ) from None
        outputs = self.resources[ref.resource]
        secret_keys = outputs.secret_output_keys()
        if ref.key_text in secret_keys:
            return SecretPart(
                ref.resource, outputs.secret_name, ref.key_text, outputs.secrets.get(ref.key_text)
            )
        try:
            return to_text(lookup(outputs.values, ref.key))
        except KeyError:
            values = ", ".join(sorted(outputs.values)) or "none"
            secrets = ", ".join(sorted(secret_keys)) or "none"
            raise PlaceholderError(
                f"placeholder {placeholder.source}: resource {ref.resource!r} has no output {ref.key_text!r} "
                f"(outputs: {values}; secret outputs: {secrets})"
            ) from None

    def parts(self, text: str) -> list[Part]:
        return [
            seg.text if not isinstance(seg, Placeholder) else self.resolve(seg)
            for seg in parse(text, score=True)
        ]

    @staticmethod
    def secret_only(parts: Sequence[Part]) -> SecretPart | None:
        if len(parts) == 1 and isinstance(parts[0], SecretPart):
            return parts[0]
        return None

    def secret_ref(self, part: SecretPart) -> str:
        if not part.secret_name:
            raise Problem(
                f"resource {part.resource!r} has the secret output {part.key!r} but names no Secret "
                "holding it"
            )
        self.collected.consumed.add(part.secret_name)
        return part.secret_name

    @staticmethod
    def compose(parts: Sequence[Part]) -> bytes:
        out: list[str] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            if part.value is None:
                raise Problem(
                    f"the value of secret output {part.key!r} of resource {part.resource!r} was not "
                    "provided, and it is needed to compose this text"
                )
            try:
                out.append(part.value.reveal_text())
            except UnicodeDecodeError:
                raise Problem(
                    f"secret output {part.key!r} of resource {part.resource!r} is not UTF-8 text and "
                    "cannot be composed with other text; use it on its own"
                ) from None
        return "".join(out).encode()
