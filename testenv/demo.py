"""`make demo`: a local control plane and OpenBao, strongroom's CRDs, and the operator in the foreground.

Stops everything it started on Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import testenv
from testenv import tools
from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, free_port

NAMESPACE = "strongroom-system"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _kubectl(env: dict[str, str], *args: str, stdin: str | None = None) -> None:
    subprocess.run(
        [str(tools.tool("kubectl")), *args],
        input=stdin,
        env=env,
        check=True,
        text=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-demo-"))
    _say("[demo] starting kube-apiserver, etcd, kube-controller-manager and OpenBao on 127.0.0.1 ...")
    env = testenv.start(workdir, ["kubernetes", "openbao"])
    try:
        shell_env = dict(os.environ, **env.env, PATH=f"{tools.bin_dir()}:{os.environ['PATH']}")
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
        _kubectl(shell_env, "create", "namespace", NAMESPACE)
        bao = env.info("openbao")
        _kubectl(
            shell_env,
            "-n",
            NAMESPACE,
            "create",
            "secret",
            "generic",
            "openbao-token",
            f"--from-literal=token={bao['root_token']}",
        )
        store = textwrap.dedent(f"""\
            apiVersion: strongroom.dev/v1alpha1
            kind: SecretStore
            metadata:
              name: openbao
              namespace: {NAMESPACE}
              labels: {{strongroom.dev/default-store: "true"}}
            spec:
              vault:
                url: {bao["addr"]}
                path: secret
                auth:
                  tokenSecretRef: {{name: openbao-token, key: token}}
            """)
        _kubectl(shell_env, "apply", "--server-side", "--field-manager=strongroom", "-f", "-", stdin=store)

        exports = env.export_lines() + f'export PATH={tools.bin_dir()}:"$PATH"\n'
        _say(
            textwrap.dedent(f"""
            [demo] ready. In another shell:

            {textwrap.indent(exports, "    ").strip()}
                kubectl get crds -l app.kubernetes.io/part-of=strongroom
                kubectl get secretstores -A          # the OpenBao store, reconciled by the operator
                bao kv put -mount=secret demo password=s3cret   # (VAULT_ADDR/VAULT_TOKEN are exported above)

            [demo] running the operator in the foreground (Ctrl-C stops it and the control plane) ...
            """)
        )
        operator = subprocess.Popen(
            [
                strongroom,
                "operator",
                "run",
                "--log-format=text",
                f"--operator-namespace={NAMESPACE}",
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
