"""Small helpers the store modules share."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def progress(message: str) -> None:
    """One-time install/build steps report here; stdout stays free for `testenv up`'s export lines."""
    print(f"testenv: {message}", file=sys.stderr, flush=True)


def venv_tool(name: str) -> Path:
    """A console script installed with the project's Python environment.

    The one beside the running interpreter wins over PATH, so a test run from `.venv/bin/pytest`
    uses the pinned dev dependency even when the shell did not activate the venv.
    """
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"`{name}` not found beside {sys.executable} or on PATH; install the dev dependencies (uv sync)"
        )
    return Path(found)
