"""`make demo`: a local control plane, OpenBao and PostgreSQL, strongroom's CRDs and operator, and the
example app (examples/app) deployed in operator mode.

What a new user sees: the platform admin's step, the example's postgres Driver installed in the operator
namespace from `strongroom render --drivers` for the demo's environments (shop-dev, and shop-staging for
the README's gitops walkthrough); then `strongroom deploy` applying the app's CRs and printing the status
table once the operator has provisioned a real database through the reference postgres driver (signed
JWT), written the outputs to OpenBao and rendered the web Deployment with secrets as `secretKeyRef`s;
plus a SecretMapping materialising a Secret from OpenBao. With STRONGROOM_TESTENV_HOST set to the node
address (`make demo` does), a real node (testenv.node) runs the web pod from the image built of
examples/app/web: the demo waits until it is Ready (it logged in to its database with DB_PASSWORD) and
shows its answer on the Service. The operator then keeps running in the foreground; Ctrl-C (or SIGTERM)
stops it and everything the demo started.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import testenv
from strongroom.drivers.signing import generate_private_key, private_key_pem, public_key_pem
from testenv import tools
from testenv.node import NODE_HOST
from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, ManagedProcess, free_port, tcp_open

OPERATOR_NAMESPACE = "strongroom-system"
APP_NAMESPACE = "demo"
APP = "shop"
#: The example app's environments: dev is deployed by the demo, staging by the README's gitops walkthrough.
APP_ENVS = ("dev", "staging")


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


DRIVER_KEY_SECRET = "strongroom-driver-key"
ORG_ID = "demo-org"
EXAMPLE = REPO_ROOT / "examples" / "app"
DRIVER_SCRIPT = REPO_ROOT / "examples" / "drivers" / "postgres" / "driver.py"
EXAMPLE_DRIVER_TARGET = "http://postgres-driver.strongroom-system.svc:8080/"
EXAMPLE_WEB_IMAGE = "ghcr.io/example/web:1.0.0"


def _start_driver(workdir: Path, postgres_env: dict[str, str]) -> tuple[ManagedProcess, str, bytes]:
    """The reference postgres driver on loopback, trusting a key pair made for this demo."""
    key = generate_private_key(2048)
    public = workdir / "operator.pub"
    public.write_bytes(public_key_pem(key))
    port = free_port()
    driver = ManagedProcess(
        "postgres-driver",
        [
            sys.executable,
            str(DRIVER_SCRIPT),
            "--port",
            str(port),
            "--public-key",
            str(public),
            "--org-id",
            ORG_ID,
            "--audience",
            f"http://{LOOPBACK}:{port}/",
            "--host",
            LOOPBACK,
        ],
        workdir / "postgres-driver.log",
        env=postgres_env,
        cwd=REPO_ROOT,
    ).start()
    driver.wait_ready(lambda: tcp_open(port), timeout=30)
    return driver, f"http://{LOOPBACK}:{port}/", private_key_pem(key)


def _definitions(workdir: Path, driver_target: str, web_image: str | None) -> Path:
    """The example's resource definitions, with the Driver pointed at the driver running here, and its
    Score file next to them (`web.yaml`), with the web image built here when a node runs it."""
    definitions = workdir / "definitions"
    shutil.copytree(EXAMPLE / "definitions", definitions)
    text = (definitions / "postgres.yaml").read_text()
    (definitions / "postgres.yaml").write_text(text.replace(EXAMPLE_DRIVER_TARGET, driver_target))
    score = (EXAMPLE / "score" / "web.yaml").read_text()
    if web_image:
        score = score.replace(EXAMPLE_WEB_IMAGE, web_image)
    (workdir / "web.yaml").write_text(score)
    return definitions


def _show_running_app(shell_env: dict[str, str]) -> str:
    """Wait for the web pod (Ready only once it logged in to its database); its answer on the Service."""
    namespace = f"{APP}-dev"
    _kubectl(shell_env, "-n", namespace, "rollout", "status", "deployment/web", "--timeout=180s")
    kubectl = str(tools.tool("kubectl"))
    pods = subprocess.run(
        [kubectl, "-n", namespace, "get", "pods", "-o", "wide"], env=shell_env, capture_output=True, text=True
    ).stdout
    ip = subprocess.run(
        [kubectl, "-n", namespace, "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"],
        env=shell_env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    with urllib.request.urlopen(f"http://{ip}/", timeout=10) as resp:
        answer = resp.read().decode()
    _say(
        f"\n[demo] the web pod runs on the node:\n{pods}\n[demo] curl http://{ip}/  (its Service)\n{answer}\n"
    )
    return ip


def _example_args(definitions: Path, env: str) -> list[str]:
    return [
        "-f", str(definitions.parent / "web.yaml"), "-d", str(definitions),
        "--values", str(EXAMPLE / "values.yaml"), "--app", APP, "--env", env,
    ]  # fmt: skip


def _install_platform_drivers(shell_env: dict[str, str], definitions: Path) -> None:
    """The platform admin's step: the example's Drivers in the operator namespace, allowing each environment.

    `allowedNamespaces` is a set: applied under one field manager per environment, each apply adds its
    namespace and keeps the others'.
    """
    strongroom = str(REPO_ROOT / ".venv" / "bin" / "strongroom")
    for env in APP_ENVS:
        drivers = subprocess.run(
            [strongroom, "render", "--drivers", f"--operator-namespace={OPERATOR_NAMESPACE}",
             *_example_args(definitions, env)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        manager = f"--field-manager=platform-{APP}-{env}"
        _kubectl(shell_env, "apply", "--server-side", manager, "-f", "-", stdin=drivers)


def _set_up(shell_env: dict[str, str], bao: dict[str, Any], driver_key: bytes) -> None:
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
    kinds = "secretstores,secretmappings,drivers,resources,workloads,workloadpatches"
    while not _kubectl(shell_env, "get", kinds, "-A", check=False) and time.monotonic() < deadline:
        time.sleep(0.2)
    _seed_openbao(
        bao["addr"], bao["root_token"], "demo/db", {"username": "demo", "password": secrets.token_urlsafe(12)}
    )
    # The example app's shared secret API_KEY (examples/app/values.yaml refers to it, never holds it).
    _seed_openbao(
        bao["addr"], bao["root_token"], "strongroom-example/api-key", {"value": secrets.token_urlsafe(16)}
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
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": DRIVER_KEY_SECRET, "namespace": OPERATOR_NAMESPACE},
            "stringData": {"privateKey": driver_key.decode(), "organisationID": ORG_ID},
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
                },
                # Closed to other namespaces unless named: the demo app reads demo/*, and every app/env
                # namespace the example app deploys to reads the shared API key (and receives its driver
                # outputs under strongroom/<namespace>/).
                "access": [
                    {"namespaces": [APP_NAMESPACE], "keyPrefixes": ["demo/"]},
                    {"namespaces": ["*"], "keyPrefixes": ["strongroom-example/"]},
                ],
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
    # With STRONGROOM_TESTENV_HOST (the Makefile sets it) a real node runs the app's pods.
    node = LOOPBACK == NODE_HOST
    _say(
        "[demo] starting kube-apiserver, etcd, kube-controller-manager, OpenBao, PostgreSQL"
        + (", and a node (containerd, kubelet)" if node else "")
        + f" on {LOOPBACK} ..."
    )
    env = testenv.start(workdir, ["kubernetes", "openbao", "postgres"], node=node)
    driver: ManagedProcess | None = None
    operator: subprocess.Popen[bytes] | None = None
    try:
        shell_env = dict(os.environ, **env.env, PATH=f"{tools.bin_dir()}:{os.environ['PATH']}")
        driver, driver_target, driver_key = _start_driver(workdir, env.services["postgres"].env)
        _set_up(shell_env, env.info("openbao"), driver_key)
        strongroom = str(REPO_ROOT / ".venv" / "bin" / "strongroom")
        operator = subprocess.Popen(
            [
                strongroom,
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
        definitions = _definitions(workdir, driver_target, env.info("node")["web_image"] if node else None)
        _say(
            f"[demo] installing the example's postgres Driver in {OPERATOR_NAMESPACE} for "
            + ", ".join(f"{APP}-{env}" for env in APP_ENVS)
            + " (strongroom render --drivers) ..."
        )
        _install_platform_drivers(shell_env, definitions)
        _say("\n[demo] deploying the example app (examples/app) in operator mode ...\n")
        deploy = [
            strongroom, "deploy", "--mode", "operator", f"--operator-namespace={OPERATOR_NAMESPACE}",
            *_example_args(definitions, "dev"), "--timeout", "3m",
        ]  # fmt: skip
        deployed = subprocess.run(deploy, env=shell_env, check=False)
        if deployed.returncode != 0:
            _say(
                f"[demo] the deploy failed; the operator keeps running, logs of every server are in {workdir}"
            )
        elif node:
            web_ip = _show_running_app(shell_env)
        # kubectl and helm, bao (.venv), psql (PostgreSQL's bin directory).
        tool_path = ":".join(
            [str(tools.bin_dir()), str(REPO_ROOT / ".venv" / "bin"), env.info("postgres")["bin_dir"]]
        )
        exports = (
            env.export_lines()
            + f'export PATH={tool_path}:"$PATH"\n'
            # The example's definitions with the Driver pointed at the local driver (README: gitops).
            + f"export DEMO_DEFINITIONS={definitions}\n"
        )
        _say(
            "\n[demo] ready. In another shell, paste these lines, then try the commands below:\n\n"
            + exports
            + "\n"
            "# the app, provisioned by the operator; the Deployment reads secrets only by reference:\n"
            "kubectl -n shop-dev get resources,workloads,deployments,secrets\n"
            "kubectl -n shop-dev get deployment web -o yaml | grep -B2 -A3 secretKeyRef\n"
            "psql -c '\\l'     # the database the reference postgres driver created\n"
            + (
                f"kubectl -n shop-dev get pods   # the web pod: Ready only while DB_PASSWORD logs in\n"
                f"curl http://{web_ip}/          # the web Service, from this shell\n"
                if node and deployed.returncode == 0
                else ""
            )
            + "# a SecretMapping in namespace demo; rotate its source and watch the Secret follow (30 s):\n"
            "kubectl get secretstores,secretmappings -A\n"
            f"kubectl -n {OPERATOR_NAMESPACE} get driver postgres -o yaml   # the platform's Driver\n"
            "bao kv put -mount=secret demo/db username=demo password=rotated\n"
            f"# logs of every server are in {workdir}\n"
            "\n[demo] the operator runs in the foreground (Ctrl-C stops it and all the demo started) ...\n"
        )

        def _forward(signum: int, _frame: object) -> None:
            if operator is not None:
                operator.send_signal(signum)

        signal.signal(signal.SIGTERM, _forward)
        try:
            return operator.wait()
        except KeyboardInterrupt:
            operator.send_signal(signal.SIGINT)
            return operator.wait()
    finally:
        _say("[demo] stopping the operator, the driver, the control plane, OpenBao and PostgreSQL ...")
        if operator is not None and operator.poll() is None:
            operator.terminate()
            operator.wait(timeout=30)
        if driver is not None:
            driver.stop()
        env.stop()


if __name__ == "__main__":
    sys.exit(main())
