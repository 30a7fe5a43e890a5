"""Azure Key Vault: the in-repo HTTPS emulator (`testenv/stores/azure_emulator.py`) in its own process.

Why in-repo: no third-party emulator was obtainable (see azure_emulator.py and README.md).

TLS: the serving certificate (127.0.0.1 and localhost) comes from a test CA (testenv/certs.py); pass
`ca=` to share one CA with other services, otherwise one is made in `workdir/ca`. Clients trust it
explicitly, and must skip the SDK's check that the challenge resource matches the vault's domain
(127.0.0.1 is not under vault.azure.net):

    SecretClient(os.environ["AZURE_KEYVAULT_URL"], credential,
                 verify_challenge_resource=False,
                 connection_verify=os.environ["AZURE_KEYVAULT_CA_BUNDLE"])

`credential` may be any object with (async) `get_token`; the vault accepts any bearer token. For
code that builds a real azure-identity credential, the emulator also issues tokens:
`ClientSecretCredential(info["tenant_id"], info["client_id"], info["client_secret"],
authority=info["authority"], disable_instance_discovery=True, connection_verify=<ca>)`.

Exports:
    AZURE_KEYVAULT_URL        https://127.0.0.1:<port>
    AZURE_KEYVAULT_CA_BUNDLE  PEM file of the CA that signed the emulator's certificate
Info: url, port, ca_bundle, tenant_id, client_id, client_secret, authority, emulator.
"""

from __future__ import annotations

import os
import ssl
import sys
from pathlib import Path

from testenv.certs import CA, make_ca
from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, ManagedProcess, free_port, http_ok
from testenv.service import Service
from testenv.stores._common import progress

EMULATOR_MODULE = "testenv.stores.azure_emulator"
TENANT_ID = "00000000-0000-0000-0000-000000000000"
CLIENT_ID = "6f1d3c1e-5a7b-4c2d-9e8f-0a1b2c3d4e5f"  # a UUID, as Entra ID client ids are
# Any API version the SDK sends is accepted; this one is only for the readiness probe.
_PROBE_API_VERSION = "7.5"


def install() -> None:
    """Nothing to fetch: the emulator is Python code in this repository."""
    progress(f"azure: in-repo emulator {EMULATOR_MODULE}")


def start(workdir: Path, ca: CA | None = None) -> Service:
    workdir.mkdir(parents=True, exist_ok=True)
    ca = ca or make_ca(workdir / "ca")
    cert, key = ca.issue_server_cert(workdir / "tls", "azure-keyvault", [LOOPBACK, "localhost"])
    port = free_port()
    url = f"https://{LOOPBACK}:{port}"
    client_secret = os.urandom(16).hex()
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    proc = ManagedProcess(
        "azure-keyvault",
        [
            sys.executable,
            "-m",
            EMULATOR_MODULE,
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--tenant",
            TENANT_ID,
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            client_secret,
        ],
        workdir / "azure-keyvault.log",
        env={"PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"},
        cwd=workdir,
    ).start()
    service = Service("azure", [proc])
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    # An unauthenticated request must come back as the 401 challenge: that proves TLS and routing.
    probe = f"{url}/secrets?api-version={_PROBE_API_VERSION}"
    try:
        proc.wait_ready(lambda: http_ok(probe, context=context, ok_statuses=(401,)), timeout=30)
    except Exception:
        service.stop()
        raise
    service.env = {"AZURE_KEYVAULT_URL": url, "AZURE_KEYVAULT_CA_BUNDLE": str(ca.cert_path)}
    service.info = {
        "url": url,
        "port": port,
        "ca_bundle": str(ca.cert_path),
        "tenant_id": TENANT_ID,
        "client_id": CLIENT_ID,
        "client_secret": client_secret,
        "authority": url,
        "emulator": EMULATOR_MODULE,
    }
    return service
