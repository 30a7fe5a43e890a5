"""AWS Secrets Manager: moto in server mode (`moto_server`, dev dependency `moto[server]`).

One moto server emulates every AWS service at one endpoint, so STS/IAM calls made next to Secrets
Manager land there too. State is in memory and dies with the process.

Exports:
    AWS_ENDPOINT_URL_SECRETS_MANAGER  http://127.0.0.1:<port> (botocore's service-specific endpoint
                                      variable: service id "Secrets Manager" -> SECRETS_MANAGER)
    AWS_ENDPOINT_URL                  the same, for every other service botocore creates a client for
    AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY  test values (moto accepts any)
    AWS_DEFAULT_REGION                us-east-1
Info: endpoint, port, region.
"""

from __future__ import annotations

from pathlib import Path

from testenv.process import LOOPBACK, ManagedProcess, free_port, http_ok
from testenv.service import Service
from testenv.stores._common import progress, venv_tool

REGION = "us-east-1"
ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"


def install() -> None:
    """Nothing to build: `moto_server` arrives with the dev dependencies."""
    progress(f"moto: {venv_tool('moto_server')}")


def start(workdir: Path) -> Service:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    endpoint = f"http://{LOOPBACK}:{port}"
    proc = ManagedProcess(
        "moto",
        [str(venv_tool("moto_server")), "-H", LOOPBACK, "-p", str(port)],
        workdir / "moto.log",
        cwd=workdir,
    ).start()
    service = Service("moto", [proc])
    try:
        # moto's own management API: answers once the server is up, without touching any emulated service.
        proc.wait_ready(lambda: http_ok(f"{endpoint}/moto-api/data.json"), timeout=30)
    except Exception:
        service.stop()
        raise
    service.env = {
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }
    service.info = {"endpoint": endpoint, "port": port, "region": REGION}
    return service
