"""GCP Secret Manager: the in-repo gRPC emulator (`testenv/stores/gcp_emulator.py`) in its own process.

Why in-repo: no third-party emulator was obtainable (see gcp_emulator.py and README.md). It runs
with this interpreter, so there is nothing to install or build.

Clients: the SDK has no emulator switch, so code under test builds its transport from the variable:

    channel = grpc.aio.insecure_channel(os.environ["SECRETMANAGER_EMULATOR_HOST"])
    client = SecretManagerServiceAsyncClient(
        transport=SecretManagerServiceGrpcAsyncIOTransport(channel=channel))

Exports:
    SECRETMANAGER_EMULATOR_HOST  127.0.0.1:<port> (host:port, plaintext gRPC; named after Google's
                                 *_EMULATOR_HOST convention)
    GOOGLE_CLOUD_PROJECT         strongroom-test (any project id is accepted)
Info: host, port, target, project, emulator.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, ManagedProcess, free_port, tcp_open
from testenv.service import Service
from testenv.stores._common import progress

PROJECT = "strongroom-test"
EMULATOR_MODULE = "testenv.stores.gcp_emulator"


def install() -> None:
    """Nothing to fetch: the emulator is Python code in this repository."""
    progress(f"gcp: in-repo emulator {EMULATOR_MODULE}")


def start(workdir: Path) -> Service:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proc = ManagedProcess(
        "gcp-secret-manager",
        [sys.executable, "-m", EMULATOR_MODULE, "--host", LOOPBACK, "--port", str(port)],
        workdir / "gcp-secret-manager.log",
        env={"PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"},
        cwd=workdir,
    ).start()
    service = Service("gcp", [proc])
    try:
        proc.wait_ready(lambda: tcp_open(port), timeout=30)
    except Exception:
        service.stop()
        raise
    target = f"{LOOPBACK}:{port}"
    service.env = {"SECRETMANAGER_EMULATOR_HOST": target, "GOOGLE_CLOUD_PROJECT": PROJECT}
    service.info = {
        "host": LOOPBACK,
        "port": port,
        "target": target,
        "project": PROJECT,
        "emulator": EMULATOR_MODULE,
    }
    return service
