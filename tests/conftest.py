"""Shared fixtures: the real local control plane (and later the store servers) from testenv."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import testenv
from testenv import tools
from testenv.paths import REPO_ROOT, state_dir


@dataclass
class Cluster:
    """A running kube-apiserver (+ etcd, kube-controller-manager) and the binaries to talk to it."""

    kubeconfig: Path
    server: str
    kubectl: Path
    helm: Path
    info: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Cluster:
        """The cluster a testenv `kubernetes` service describes (its `info`), with kubectl and helm."""
        bin_dir = tools.ensure()
        kubeconfig = Path(info["kubeconfig"])
        env = dict(
            os.environ,
            KUBECONFIG=str(kubeconfig),
            PATH=f"{bin_dir}:{REPO_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
        )
        return cls(
            kubeconfig=kubeconfig,
            server=info["server"],
            kubectl=bin_dir / "kubectl",
            helm=bin_dir / "helm",
            info=info,
            env=env,
        )

    def run(
        self, *argv: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command (kubectl, helm, strongroom ...) with KUBECONFIG and PATH pointing here."""
        return subprocess.run(
            list(argv), input=input, env=self.env, capture_output=True, text=True, check=check, timeout=120
        )

    def kubectl_run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.kubectl), *args, input=input, check=check)

    def install_crds(self) -> None:
        """Apply strongroom's CRDs (server-side) and wait until they are Established."""
        from strongroom.api.crds import render_crds_yaml

        self.kubectl_run(
            "apply",
            "--server-side",
            "--field-manager=strongroom-tests",
            "--force-conflicts",
            "-f",
            "-",
            input=render_crds_yaml(),
        )
        self.kubectl_run(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "-l",
            "app.kubernetes.io/part-of=strongroom",
        )


def _reused_environment() -> dict[str, Any] | None:
    """With STRONGROOM_TESTENV_REUSE=1, tests use the environment of `python -m testenv up` (fast loop)."""
    if os.environ.get("STRONGROOM_TESTENV_REUSE") != "1":
        return None
    state = state_dir() / "state.json"
    if not state.exists():
        return None
    data: dict[str, Any] = json.loads(state.read_text())
    return data


STORE_SERVICES = ("openbao", "moto", "gcp", "azure")


@pytest.fixture(scope="session")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testenv.Environment]:
    """OpenBao, moto (AWS Secrets Manager), the GCP and Azure emulators: started once per test run."""
    env = testenv.start(tmp_path_factory.mktemp("stores"), STORE_SERVICES)
    try:
        yield env
    finally:
        env.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reused = _reused_environment()
    env_started: testenv.Environment | None = None
    if reused is not None:
        info = next(s["info"] for s in reused["services"] if s["name"] == "kubernetes")
    else:
        env_started = testenv.start(tmp_path_factory.mktemp("testenv"), ["kubernetes"])
        info = env_started.info("kubernetes")
    try:
        yield Cluster.from_info(info)
    finally:
        if env_started is not None:
            env_started.stop()


@dataclass
class NodeEnvironment:
    """The control plane with a real node (testenv.node), OpenBao, PostgreSQL and the images built here."""

    cluster: Cluster
    env: testenv.Environment
    image: str  # the operator image reference, imported into the node's containerd
    web_image: str  # the example app's web workload image, imported too


@pytest.fixture(scope="session")
def node_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeEnvironment]:
    """`python -m testenv up --node` for tests marked `node` (run them with `make test-node`).

    Needs root and STRONGROOM_TESTENV_HOST=10.244.0.1 before Python starts (the Makefile sets it),
    because every server must bind the pod bridge's address for pods to reach it.
    """
    bin_dir = tools.ensure()
    env_started = testenv.start(
        tmp_path_factory.mktemp("testenv-node"), ["kubernetes", "openbao", "postgres"], node=True
    )
    info = env_started.info("kubernetes")
    kubeconfig = Path(info["kubeconfig"])
    env = dict(
        os.environ,
        KUBECONFIG=str(kubeconfig),
        PATH=f"{bin_dir}:{REPO_ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
    )
    cluster = Cluster(
        kubeconfig=kubeconfig,
        server=info["server"],
        kubectl=bin_dir / "kubectl",
        helm=bin_dir / "helm",
        info=info,
        env=env,
    )
    try:
        yield NodeEnvironment(
            cluster, env_started, env_started.env["STRONGROOM_IMAGE"], env_started.info("node")["web_image"]
        )
    finally:
        env_started.stop()
