"""GitOps delivery over smart HTTP: git http-backend behind testenv's bridge, with Basic auth."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from strongroom.orchestrator.emit import CRSet
from strongroom.orchestrator.gitops import GitError, GitTarget, publish, read_directory
from strongroom.orchestrator.render import render
from testenv import git_server
from testenv.paths import REPO_ROOT
from testenv.service import Service

pytestmark = pytest.mark.integration

EXAMPLE = REPO_ROOT / "examples" / "app"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = git_server.start(tmp_path_factory.mktemp("git"))
    try:
        yield service
    finally:
        service.stop()


def target(server: Service, token: str | None = None) -> GitTarget:
    info = server.info
    return GitTarget(url=info["url"], username=info["username"], token=token or info["password"])


def crset(env: str) -> CRSet:
    return render(
        [EXAMPLE / "score" / "web.yaml"],
        [EXAMPLE / "definitions"],
        EXAMPLE / "values.yaml",
        app="shop",
        env=env,
    ).crset


def git(server: Service, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", server.info["repo"], *args], check=True, capture_output=True, text=True
    ).stdout


def test_concurrent_deploys_all_land_on_a_linear_history(server: Service) -> None:
    envs = [f"env{n}" for n in range(6)]
    with ThreadPoolExecutor(max_workers=len(envs)) as pool:
        outcomes = list(
            pool.map(lambda env: publish(target(server), crset(env), attempts=10, pause=0.05), envs)
        )
    assert all(outcome.commit for outcome in outcomes)
    assert git(server, "ls-tree", "-d", "--name-only", "main:shop").split() == envs
    # Every commit has at most one parent: nothing was merged, nothing was lost.
    parents = git(server, "log", "--format=%P", "main").splitlines()
    assert all(len(line.split()) <= 1 for line in parents)
    assert len(parents) == len(envs)
    assert read_directory(target(server), "shop", "env3")


def test_a_wrong_token_is_refused_without_showing_it(server: Service) -> None:
    with pytest.raises(GitError) as info:
        publish(target(server, token="wrong-token-5e1f"), crset("dev"))
    assert "authentication failed" in str(info.value)
    assert "wrong-token-5e1f" not in str(info.value)


def test_the_bridge_takes_chunked_pushes_from_git(server: Service, tmp_path: Path) -> None:
    auth = base64.b64encode(f"{server.info['username']}:{server.info['password']}".encode()).decode()
    header = f"http.extraHeader=Authorization: Basic {auth}"
    work = tmp_path / "work"
    subprocess.run(["git", "-c", header, "clone", "-q", server.info["url"], str(work)], check=True)
    (work / "blob.bin").write_bytes(bytes(range(256)) * 8192)  # 2 MiB: above postBuffer, so chunked
    subprocess.run(["git", "-C", str(work), "add", "blob.bin"], check=True)
    subprocess.run(
        ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "big"],
        check=True,
    )
    subprocess.run(
        [
            "git",
            "-C",
            str(work),
            "-c",
            header,
            "-c",
            "http.postBuffer=65536",
            "push",
            "-q",
            "origin",
            "HEAD:main",
        ],
        check=True,
    )
    assert git(server, "log", "-1", "--format=%s", "main").strip() == "big"
    # The orchestrator's next deploy builds on top of it.
    outcome = publish(target(server), crset("after-big"))
    assert outcome.commit == git(server, "rev-parse", "main").strip()
    subjects = git(server, "log", "-2", "--format=%s", "main").splitlines()
    assert subjects == ["strongroom: deploy shop/after-big", "big"]
    assert "blob.bin" in git(server, "ls-tree", "--name-only", "main").split()
