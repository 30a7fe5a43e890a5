"""`make demo`: a local control plane and OpenBao, strongroom's CRDs, and the operator in the foreground.

It seeds one secret in OpenBao and applies a SecretStore and a SecretMapping, so the first thing a
new user sees is a Kubernetes Secret materialised from their own store. Ctrl-C (or SIGTERM) stops
the operator and everything the demo started.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import testenv
from testenv import tools
from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, free_port

OPERATOR_NAMESPACE = "strongroom-system"
APP_NAMESPACE = "demo"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _kubectl(env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True) -> bool:
    result = subprocess.run(
        [str(tools.tool("kubectl")), *args], input=stdin, env=env, text=True, capture_output=True, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.returncode == 0


def _apply(env: dict[str, str], *objects: dict[str, Any]) -> None:
    docs = "\n---\n".join(json.dumps(obj) for obj in objects)
    _kubectl(env, "apply", "--server-side", "--field-manager=strongroom-demo", "-f", "-", stdin=docs)


def _seed_openbao(addr: str, token: str, path: str, data: dict[str, str]) -> None:
    request = urllib.request.Request(  # noqa: S310 (loopback URL of the OpenBao we started)
        f"{addr}/v1/secret/data/{path}",
        data=json.dumps({"data": data}).encode(),
        headers={"X-Vault-Token": token, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def _set_up(shell_env: dict[str, str], bao: dict[str, Any]) -> None:
    strongroom = str(REPO_ROOT / ".venv" / "bin" / "strongroom")
    crds = subprocess.run([strongroom, "crds"], check=True, capture_output=True, text=True).stdout
    _kubectl(shell_env, "apply", "--server-side", "--field-manager=strongroom", "-f", "-", stdin=crds)
    _kubectl(
        shell_env,
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "-l",
        "app.kubernetes.io/part-of=strongroom",
    )
    # A CRD is Established a moment before its storage serves lists; wait for that too, so the
    # operator's first watch does not start with a retry.
    deadline = time.monotonic() + 30
    while not _kubectl(shell_env, "get", "secretmappings", "-A", check=False) and time.monotonic() < deadline:
        time.sleep(0.2)
    _seed_openbao(
        bao["addr"], bao["root_token"], "demo/db", {"username": "demo", "password": secrets.token_urlsafe(12)}
    )
    _apply(
        shell_env,
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APP_NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "openbao-token", "namespace": OPERATOR_NAMESPACE},
            "stringData": {"token": bao["root_token"]},
        },
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "SecretStore",
            "metadata": {
                "name": "openbao",
                "namespace": OPERATOR_NAMESPACE,
                "labels": {"strongroom.dev/default-store": "true"},
            },
            "spec": {
                "vault": {
                    "url": bao["addr"],
                    "path": "secret",
                    "auth": {"tokenSecretRef": {"name": "openbao-token", "key": "token"}},
                }
            },
        },
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "SecretMapping",
            "metadata": {"name": "db-credentials", "namespace": APP_NAMESPACE},
            "spec": {
                "secretName": "db-credentials",
                "refreshInterval": "30s",
                "secretData": [
                    {
                        "secretKey": "username",
                        "secretStoreName": "openbao",
                        "remoteRef": {"key": "demo/db", "property": "username"},
                    },
                    {
                        "secretKey": "password",
                        "secretStoreName": "openbao",
                        "remoteRef": {"key": "demo/db", "property": "password"},
                    },
                ],
            },
        },
    )


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-demo-"))
    _say("[demo] starting kube-apiserver, etcd, kube-controller-manager and OpenBao on 127.0.0.1 ...")
    env = testenv.start(workdir, ["kubernetes", "openbao"])
    try:
        shell_env = dict(os.environ, **env.env, PATH=f"{tools.bin_dir()}:{os.environ['PATH']}")
        _set_up(shell_env, env.info("openbao"))
        exports = env.export_lines() + f'export PATH={tools.bin_dir()}:"$PATH"\n'
        _say(
            "\n[demo] ready. In another shell, paste these lines, then try the commands below:\n\n"
            + exports
            + "\n"
            "kubectl get secretstores,secretmappings -A     # READY True once the operator has checked them\n"
            "kubectl -n demo get secret db-credentials -o jsonpath='{.data.password}' | base64 -d; echo\n"
            "bao kv put -mount=secret demo/db username=demo password=rotated   # picked up within 30 s\n"
            f"# bao is {REPO_ROOT / '.venv' / 'bin' / 'bao'}; logs of every server are in {workdir}\n"
            "\n[demo] running the operator in the foreground (Ctrl-C stops it and the control plane) ...\n"
        )
        operator = subprocess.Popen(
            [
                str(REPO_ROOT / ".venv" / "bin" / "strongroom"),
                "operator",
                "run",
                "--log-format=text",
                f"--operator-namespace={OPERATOR_NAMESPACE}",
                f"--health-address={LOOPBACK}",
                f"--health-port={free_port()}",
                f"--metrics-address={LOOPBACK}",
                f"--metrics-port={free_port()}",
            ],
            env=shell_env,
        )

        def _forward(signum: int, _frame: object) -> None:
            operator.send_signal(signum)

        signal.signal(signal.SIGTERM, _forward)
        try:
            return operator.wait()
        except KeyboardInterrupt:
            operator.send_signal(signal.SIGINT)
            return operator.wait()
    finally:
        _say("[demo] stopping the control plane and OpenBao ...")
        env.stop()


if __name__ == "__main__":
    sys.exit(main())
