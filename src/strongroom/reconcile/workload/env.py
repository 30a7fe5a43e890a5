"""The containers' environment variables.

A variable without secret outputs is inlined, one that is exactly one secret output references the
resource's Secret (`secretKeyRef`), and text mixed with secret outputs is composed into the Secret the
Workload owns for its env (one key per variable, unless containers need different values for it).
"""

from __future__ import annotations

from typing import Any

from strongroom.api.workload import Container
from strongroom.reconcile.placeholders import PlaceholderError
from strongroom.reconcile.workload.model import Collected, Problem
from strongroom.reconcile.workload.names import env_secret_name
from strongroom.reconcile.workload.values import Resolver, SecretPart


class EnvVars:
    """The env entries of each container; the composed ones are wired to the env Secret by `finish`."""

    def __init__(self, name: str, resolver: Resolver, collected: Collected) -> None:
        self.name = name
        self.resolver = resolver
        self.collected = collected
        # env vars composed from text and secrets: variable -> container -> value
        self.composed: dict[str, dict[str, bytes]] = {}

    def entries(self, cname: str, container: Container) -> list[dict[str, Any]]:
        """The env of container `cname`; problems go to `collected`."""
        entries: list[dict[str, Any]] = []
        for var in sorted(container.variables or {}):
            where = f"containers.{cname}.variables.{var}"
            try:
                parts = self.resolver.parts((container.variables or {})[var])
                only = self.resolver.secret_only(parts)
                if not any(isinstance(part, SecretPart) for part in parts):
                    entries.append({"name": var, "value": "".join(str(part) for part in parts)})
                elif only is not None:
                    ref = {"name": self.resolver.secret_ref(only), "key": only.key}
                    entries.append({"name": var, "valueFrom": {"secretKeyRef": ref}})
                else:
                    self.composed.setdefault(var, {})[cname] = self.resolver.compose(parts)
                    # Filled in by finish once every container is known (the key may depend on them).
                    entries.append({"name": var, "valueFrom": {"secretKeyRef": None}})
            except (PlaceholderError, Problem) as exc:
                self.collected.problems.append(f"{where}: {exc}")
        return entries

    def finish(self, containers: list[dict[str, Any]]) -> None:
        """The env Secret from the composed variables; the composed entries of `containers` wired to it."""
        if not self.composed:
            return
        secret = env_secret_name(self.name)
        data: dict[str, bytes] = {}
        keys: dict[tuple[str, str], str] = {}
        for var, per_container in self.composed.items():
            # One key per variable, as documented; only when containers need different values for the same
            # variable does each get its own key, `<container>.<variable>`.
            shared = len(set(per_container.values())) == 1
            for cname, value in per_container.items():
                key = var if shared else f"{cname}.{var}"
                if key in data and data[key] != value:
                    # Only possible when a variable is itself called `<container>.<variable>`.
                    self.collected.problems.append(
                        f"containers.{cname}.variables.{var}: key {key!r} of Secret {secret!r} is needed "
                        "for two different values; rename one of the variables"
                    )
                keys[(cname, var)] = key
                data[key] = value
        self.collected.owned_secrets[secret] = data
        self.collected.consumed.add(secret)
        for manifest in containers:
            for entry in manifest.get("env", []):
                if entry.get("valueFrom") == {"secretKeyRef": None}:
                    entry["valueFrom"]["secretKeyRef"] = {
                        "name": secret,
                        "key": keys[(manifest["name"], entry["name"])],
                    }
