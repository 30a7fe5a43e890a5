"""The operator image built without Docker (testenv.image) against the Dockerfile users build.

Docker is not available here, so the Dockerfile's build stage is replayed: its `uv sync` command with
its UV_* settings, into a scratch directory. The image's /opt/strongroom must hold exactly the files
that produces, and the image's user, entrypoint, ports and Python settings must be the Dockerfile's.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from testenv import image
from testenv.paths import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.node]

DOCKERFILE = REPO_ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = "\n".join(
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ).replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def _env(args: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in shlex.split(args))


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def test_venv_has_the_files_the_dockerfile_build_makes(tmp_path: Path) -> None:
    built = image.operator_image()
    build_env: dict[str, str] = {}
    sync: list[str] = []
    for keyword, args in _instructions():
        if keyword == "ENV":
            build_env.update(_env(args))
        if keyword == "RUN" and args.startswith("uv sync"):
            sync = shlex.split(args)
    assert sync, "the Dockerfile installs with `uv sync`"
    venv_path = build_env["UV_PROJECT_ENVIRONMENT"]
    env = dict(os.environ, **{k: v for k, v in build_env.items() if k.startswith("UV_")})
    env["UV_PROJECT_ENVIRONMENT"] = str(tmp_path / venv_path.lstrip("/"))
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [image._uv(), *sync[1:], "--python", "/usr/bin/python3.11"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    docker_files = {
        str(p.relative_to(tmp_path))
        for p in (tmp_path / venv_path.lstrip("/")).rglob("*")
        if p.is_symlink() or not p.is_dir()
    }
    prefix = venv_path.strip("/") + "/"
    image_files = {name for name in image.image_files(built.archive) if name.startswith(prefix)}
    assert len(docker_files) > 1000
    assert image_files == docker_files


def test_config_is_the_dockerfiles() -> None:
    config = image.image_config(image.operator_image().archive)
    stage = _runtime_stage()
    (user,) = [args for keyword, args in stage if keyword == "USER"]
    (entrypoint,) = [json.loads(args) for keyword, args in stage if keyword == "ENTRYPOINT"]
    ports = {f"{p}/tcp" for keyword, args in stage if keyword == "EXPOSE" for p in args.split()}
    env: dict[str, str] = {}
    for keyword, args in stage:
        if keyword == "ENV":
            env.update(_env(args))
    image_env = dict(item.split("=", 1) for item in config["Env"])
    assert config["User"] == user
    assert config["Entrypoint"] == entrypoint
    assert set(config["ExposedPorts"]) == ports
    for key, value in env.items():
        if key == "PATH":  # ${PATH} is the base image's; the virtualenv comes first in both
            assert image_env["PATH"].split(":")[0] == value.split(":")[0]
        else:
            assert image_env[key] == value
