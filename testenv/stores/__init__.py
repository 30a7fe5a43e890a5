"""The secret-store servers of the test environment, one module per server.

Each module has `start(workdir) -> Service` (listed in testenv.SERVICE_MODULES; binds 127.0.0.1 on a
free port, logs in `workdir`, stopped by PID through the Service) and an idempotent `install()` for
one-time setup. What each exports is in its module docstring and in README.md beside this file.
"""

from __future__ import annotations

from collections.abc import Callable

from testenv.stores import azure, gcp, moto, openbao, postgres
from testenv.stores._common import progress

_INSTALLERS: dict[str, Callable[[], None]] = {
    "openbao": openbao.install,
    "moto": moto.install,
    "gcp": gcp.install,
    "azure": azure.install,
    "postgres": postgres.install,
}


def install_all() -> None:
    """Every one-time install/build the store servers need; quick and silent-ish when all is present."""
    for name, install in _INSTALLERS.items():
        progress(f"installing {name}")
        install()


__all__ = ["install_all"]
