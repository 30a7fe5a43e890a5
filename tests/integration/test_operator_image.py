"""The operator image built without Docker (testenv.image) against the Dockerfile users build.

Docker is not available here, so the Dockerfile's build stage is replayed: its commands that make the
virtualenv (`uv sync`, then container/prune_venv.py) with its UV_* settings, into a scratch directory.
The image's /opt/strongroom must hold exactly the files that produces, and the image's user,
entrypoint, ports and Python settings must be the Dockerfile's.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
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


def _build_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    froms = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[froms[0] : froms[1]]


def test_venv_has_the_files_the_dockerfile_build_makes(tmp_path: Path) -> None:
    built = image.operator_image()
    build_env: dict[str, str] = {}
    steps: list[str] = []  # the RUN commands that make the virtualenv: `uv ...`, `python ...`
    for keyword, args in _build_stage():
        if keyword == "ENV":
            build_env.update(_env(args))
        if keyword == "RUN" and args.split()[0] in ("uv", "python"):
            steps.append(args)
    assert any(step.startswith("uv sync") for step in steps), "the Dockerfile installs with `uv sync`"
    assert any("prune_venv.py" in step for step in steps), "the Dockerfile prunes the virtualenv"
    venv_path = build_env["UV_PROJECT_ENVIRONMENT"]
    # The build stage's tools, as the host has them: its uv, a Python 3.11 as `python`, Debian's
    # interpreter for the virtualenv (the one the image has).
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "uv").symlink_to(image._uv())
    (tools / "python").symlink_to(sys.executable)
    env = dict(os.environ, **{k: v for k, v in build_env.items() if k.startswith("UV_")})
    env["UV_PROJECT_ENVIRONMENT"] = str(tmp_path / venv_path.lstrip("/"))
    env["UV_PYTHON"] = "/usr/bin/python3.11"
    env["PATH"] = f"{tools}:{env['PATH']}"
    env.pop("VIRTUAL_ENV", None)
    for step in steps:  # in the shell, as RUN does: `$UV_PROJECT_ENVIRONMENT` is the scratch venv
        subprocess.run(["/bin/sh", "-c", step], cwd=REPO_ROOT, env=env, check=True, capture_output=True)
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


# Run inside the image: every compiled module loads (the stripped extension modules, the libraries
# left in the pruned root filesystem), every store backend imports, and botocore builds a client from
# each service model the pruned virtualenv keeps for strongroom (Secrets Manager; STS for assumed
# roles) and for botocore's own credential chain (STS web identity, SSO, `aws login`).
IN_IMAGE_CHECK = """
import asyncio, importlib, sys, sysconfig
from pathlib import Path

roots = [Path(sysconfig.get_paths()["platstdlib"]) / "lib-dynload", Path(sysconfig.get_paths()["purelib"])]
modules = []
for root in roots:
    for so in root.rglob("*.so"):
        parts = [*so.relative_to(root).parent.parts, so.name.split(".")[0]]
        if all(part.isidentifier() for part in parts):
            modules.append(".".join(parts))
for name in sorted(modules):
    importlib.import_module(name)

import strongroom.cli, strongroom.operator.app
import strongroom.stores.awssm, strongroom.stores.azurekv, strongroom.stores.gcpsm
import strongroom.stores.kubernetes, strongroom.stores.vault
from aiobotocore.session import get_session

async def clients():
    for service in ("secretsmanager", "sts", "sso", "sso-oidc", "signin"):
        async with get_session().create_client(
            service, region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s"
        ) as client:
            assert client.meta.service_model.service_name == service

asyncio.run(clients())
print(len(modules))
"""


def test_modules_and_store_clients_load_in_the_image(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chroot needs root (the node tests run as root)")
    built = image.operator_image()
    config = image.image_config(built.archive)
    root = tmp_path / "rootfs"
    image.unpack(built.archive, root)
    env = dict(item.split("=", 1) for item in config["Env"])
    result = subprocess.run(
        ["chroot", f"--userspec={config['User']}", str(root), "python", "-c", IN_IMAGE_CHECK],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 20  # the extension modules of the stdlib and of the dependencies
