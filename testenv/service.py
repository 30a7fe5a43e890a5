"""A running test-environment service: its processes, the variables that reach it, its details."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from testenv.process import ManagedProcess, stop_pid


@dataclass
class Service:
    """What a service starter returns.

    `env` holds what a shell user exports to reach the service (printed by `python -m testenv up`);
    `info` holds any further connection details tests need (ports, tokens, CA paths), JSON-serialisable.
    """

    name: str
    processes: list[ManagedProcess] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    # "module:function" called with `info` after the processes stopped, for what outlives them
    # (the node's container shims and mounts); a name, so `python -m testenv down` can call it too.
    on_stop: str | None = None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid]

    def stop(self) -> None:
        # Reverse start order: dependants (e.g. the apiserver) go before what they depend on (etcd).
        for proc in reversed(self.processes):
            proc.stop()
        _run_on_stop(self.on_stop, self.info)

    def to_state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pids": self.pids,
            "env": self.env,
            "info": self.info,
            "on_stop": self.on_stop,
        }


def stop_state(state: dict[str, Any]) -> None:
    """Stop a service recorded by `Service.to_state()` (used by `python -m testenv down`)."""
    for pid in reversed(state.get("pids", [])):
        stop_pid(int(pid))
    _run_on_stop(state.get("on_stop"), state.get("info", {}))


def _run_on_stop(hook: str | None, info: dict[str, Any]) -> None:
    if hook:
        module, _, function = hook.partition(":")
        getattr(importlib.import_module(module), function)(info)
