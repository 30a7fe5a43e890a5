"""Prune the operator's virtualenv after `uv sync`: what the locked dependencies ship but never run.

One script for both ways the operator image is built (the Dockerfile's build stage and
testenv.image), so both produce the same /opt/strongroom. Standard library only: the Dockerfile runs it
with the base image's Python, testenv with the host's.

    python container/prune_venv.py /opt/strongroom

What goes, each for a reason that holds for every release of the dependency:
- botocore's API models of the services strongroom never creates a client for. botocore ships a
  model for each of ~400 AWS services (27 MB); strongroom's AWS store creates `secretsmanager` and
  `sts` (assume role) clients, and botocore's own credential chain (the operator's AWS identity)
  creates `sts` (web identity, assume role), `sso`, `sso-oidc` and `signin` clients. The shared files
  at the top of botocore/data (endpoints, partitions, retry and default configuration) stay.
- google-cloud-secret-manager's beta API versions (`secretmanager_v1beta1`, `v1beta2`): strongroom's
  GCP store uses `secretmanager_v1`, as does the package's own `google.cloud.secretmanager` alias.
- Type stubs (`.pyi`) and the sources of generated or compiled modules (`.proto`, Cython's `.pyx`,
  `.pxd`, `.pxi`): read by type checkers and compilers, never by the interpreter.
- Debug symbols of the compiled extension modules (`strip --strip-unneeded`: the dynamic symbol
  table, which loading needs, stays). Needs binutils' `strip`.
- `tests` packages inside installed distributions (test suites, never imported by the library).

Precompiled bytecode stays: the root filesystem is read-only at run time, so without it every start
compiles every module again in memory.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

# Service model directories under botocore/data that a client is created for (see the docstring).
BOTOCORE_SERVICES = frozenset({"secretsmanager", "sts", "sso", "sso-oidc", "signin"})
UNUSED_PACKAGES = ("google/cloud/secretmanager_v1beta1", "google/cloud/secretmanager_v1beta2")
BUILD_ONLY_SUFFIXES = (".pyi", ".proto", ".pyx", ".pxd", ".pxi")


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_symlink() or p.is_file())


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if len(found) != 1:
        raise SystemExit(f"prune_venv: expected one site-packages under {venv}, found {len(found)}")
    return found[0]


def prune_botocore_models(site: Path) -> int:
    """Remove the model directories of services no client is created for; returns bytes freed."""
    data = site / "botocore" / "data"
    if not data.is_dir():
        return 0
    missing = sorted(s for s in BOTOCORE_SERVICES if not (data / s).is_dir())
    if missing:
        # A botocore without these models could not create the clients strongroom needs.
        raise SystemExit(f"prune_venv: botocore has no model for {', '.join(missing)}")
    freed = 0
    for entry in sorted(data.iterdir()):
        if entry.is_dir() and entry.name not in BOTOCORE_SERVICES:
            freed += _size(entry)
            shutil.rmtree(entry)
    return freed


def remove_unused_packages(site: Path) -> int:
    """Remove the API versions strongroom does not import; returns bytes freed."""
    freed = 0
    for name in UNUSED_PACKAGES:
        package = site / name
        if package.is_dir():
            freed += _size(package)
            shutil.rmtree(package)
    return freed


def remove_build_only_files(site: Path) -> int:
    """Remove type stubs and generator/compiler sources; returns bytes freed."""
    freed = 0
    for path in sorted(site.rglob("*")):
        if path.name.endswith(BUILD_ONLY_SUFFIXES) and (path.is_file() or path.is_symlink()):
            freed += _size(path)
            path.unlink()
    return freed


def remove_test_suites(site: Path) -> int:
    """Remove `tests` packages inside installed packages; returns bytes freed."""
    freed = 0
    for tests in sorted(site.glob("*/**/tests")):
        if tests.is_dir() and not tests.is_symlink() and tests.exists():
            freed += _size(tests)
            shutil.rmtree(tests)
    return freed


def strip_extensions(site: Path) -> int:
    """Strip the shared objects' debug symbols in place; returns bytes freed."""
    strip = shutil.which("strip")
    if strip is None:
        raise SystemExit("prune_venv: `strip` not found (install binutils)")
    objects = sorted(
        p for p in site.rglob("*") if p.is_file() and not p.is_symlink() and _is_shared_object(p.name)
    )
    before = sum(p.stat().st_size for p in objects)
    if objects:
        subprocess.run([strip, "--strip-unneeded", *map(str, objects)], check=True)
    return before - sum(p.stat().st_size for p in objects)


def _is_shared_object(name: str) -> bool:
    return name.endswith(".so") or ".so." in name


def prune(venv: Path) -> dict[str, int]:
    """Prune the virtualenv in place; returns bytes freed per step."""
    site = site_packages(venv)
    return {
        "botocore service models": prune_botocore_models(site),
        "unused API versions": remove_unused_packages(site),
        "test suites": remove_test_suites(site),
        "type stubs and sources": remove_build_only_files(site),
        "debug symbols": strip_extensions(site),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("venv", type=Path, help="the virtualenv made by `uv sync` (e.g. /opt/strongroom)")
    args = parser.parse_args(argv)
    freed = prune(args.venv)
    for step, count in freed.items():
        print(f"prune_venv: {step}: {count / 1e6:.1f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
