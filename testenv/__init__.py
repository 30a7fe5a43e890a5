"""strongroom's local test environment: a real Kubernetes control plane and real store servers.

Used three ways: by the pytest fixtures (tests/conftest.py), by `python -m testenv up|down` for a
shell, and by `make demo`. Everything binds 127.0.0.1 on free ports and is stopped by PID.
"""

from __future__ import annotations

import importlib
import json
import shlex
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testenv.service import Service, stop_state

Starter = Callable[[Path], Service]


# Each service is a module with `start(workdir: Path) -> Service`, imported only when started.
SERVICE_MODULES: dict[str, str] = {
    "kubernetes": "testenv.controlplane",
    "openbao": "testenv.stores.openbao",
    "moto": "testenv.stores.moto",
    "gcp": "testenv.stores.gcp",
    "azure": "testenv.stores.azure",
    "postgres": "testenv.stores.postgres",
    "git": "testenv.git_server",
}


def starter(name: str) -> Starter:
    if name not in SERVICE_MODULES:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICE_MODULES)}")
    start_fn: Starter = importlib.import_module(SERVICE_MODULES[name]).start
    return start_fn


@dataclass
class Environment:
    """A set of running services and the merged variables that reach them."""

    workdir: Path
    services: dict[str, Service] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for service in self.services.values():
            merged.update(service.env)
        return merged

    def info(self, service: str) -> dict[str, Any]:
        return self.services[service].info

    def export_lines(self) -> str:
        return "".join(f"export {key}={shlex.quote(value)}\n" for key, value in sorted(self.env.items()))

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()

    def to_state(self) -> dict[str, Any]:
        return {"workdir": str(self.workdir), "services": [s.to_state() for s in self.services.values()]}


def start(workdir: Path, names: Iterable[str] | None = None, node: bool = False) -> Environment:
    """Start the named services (all by default) concurrently; on any failure stop what started.

    `node`: also a kubelet and what it needs (testenv.node), after the control plane is up; needs
    STRONGROOM_TESTENV_HOST=testenv.node.NODE_HOST in the environment before testenv is imported.
    """
    wanted = list(names) if names is not None else list(SERVICE_MODULES)
    if node:
        from testenv import node as node_module
        from testenv.process import LOOPBACK

        if LOOPBACK != node_module.NODE_HOST:
            raise RuntimeError(
                f"a node needs the servers on {node_module.NODE_HOST}: set "
                f"{node_module.HOST_ENV}={node_module.NODE_HOST} before starting Python"
            )
        if "kubernetes" not in wanted:
            wanted.append("kubernetes")
        node_module.prepare_network()  # the servers below bind the bridge's address
    starters = {name: starter(name) for name in wanted}
    workdir.mkdir(parents=True, exist_ok=True)
    env = Environment(workdir=workdir)
    with ThreadPoolExecutor(max_workers=len(wanted) or 1) as pool:
        futures = {name: pool.submit(start_fn, workdir / name) for name, start_fn in starters.items()}
        errors: list[str] = []
        for name, future in futures.items():
            try:
                env.services[name] = future.result()
            except Exception as exc:
                errors.append(f"{name}: {exc}")
    if not errors and node:
        try:
            env.services["node"] = node_module.start(workdir / "node", env.info("kubernetes"))
        except Exception as exc:
            errors.append(f"node: {exc}")
    if errors:
        env.stop()
        raise RuntimeError("test environment failed to start:\n" + "\n".join(errors))
    return env


def save_state(env: Environment, path: Path) -> None:
    path.write_text(json.dumps(env.to_state(), indent=2))


def stop_saved(path: Path) -> list[str]:
    """Stop every service recorded in a state file; return their names."""
    state = json.loads(path.read_text())
    names = []
    for service in reversed(state.get("services", [])):
        stop_state(service)
        names.append(str(service["name"]))
    path.unlink()
    return names
