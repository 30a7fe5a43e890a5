"""Where testenv keeps built binaries (shared across checkouts) and the state of `python -m testenv up`."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTENV_DIR = Path(__file__).resolve().parent


def cache_dir() -> Path:
    """Binaries built or downloaded by testenv, keyed by version; outside the repo so clones share them."""
    override = os.environ.get("STRONGROOM_TESTENV_CACHE")
    if override:
        base = Path(override)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "strongroom-testenv"
    base.mkdir(parents=True, exist_ok=True)
    return base


def state_dir() -> Path:
    """Run-time state of a long-lived `python -m testenv up` environment."""
    override = os.environ.get("STRONGROOM_TESTENV_STATE")
    path = Path(override) if override else REPO_ROOT / ".testenv"
    path.mkdir(parents=True, exist_ok=True)
    return path
