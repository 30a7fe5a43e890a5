"""`strongroom operator run` as a real process against the real control plane.

Covers what only a process shows: it logs in (client certificate, bearer token with CA, bearer token
with an insecure server), becomes ready, acts on a SecretStore, logs JSON lines only (never object
bodies, even at debug level), works with exactly the RBAC the Helm chart grants, and exits 0 within
seconds on SIGTERM and SIGINT.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from testenv.paths import REPO_ROOT

if TYPE_CHECKING:
    from tests.conftest import Cluster

pytestmark = pytest.mark.integration

CHART = REPO_ROOT / "charts" / "strongroom"
# Appears in a SecretStore spec; must never show up in the operator's logs.
MARKER = "marker-" + secrets.token_hex(6)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _eventually(check: Callable[[], bool], timeout: float = 30.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return False


class OperatorProcess:
    """One `strongroom operator run` subprocess with its probe ports and its log file."""

    def __init__(self, cluster: Cluster, args: list[str], log_path: Path) -> None:
        self.health_port = _free_port()
        self.metrics_port = _free_port()
        self.log_path = log_path
        strongroom = shutil.which("strongroom", path=cluster.env["PATH"])
        assert strongroom, "the strongroom console script is not on PATH"
        argv = [
            strongroom,
            "operator",
            "run",
            "--health-address=127.0.0.1",
            f"--health-port={self.health_port}",
            "--metrics-address=127.0.0.1",
            f"--metrics-port={self.metrics_port}",
            *args,
        ]
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(argv, env=cluster.env, stdout=self._log, stderr=subprocess.STDOUT)

    def get(self, path: str, port: int | None = None) -> tuple[int, str]:
        url = f"http://127.0.0.1:{port or self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            assert self.proc.poll() is None, f"operator exited early:\n{self.output()}"
            return self.get("/readyz")[0] == 200

        assert _eventually(ready, timeout=timeout), (
            f"/readyz never became 200:\n{self.get('/readyz')}\n{self.output()}"
        )

    def stop(self, signum: signal.Signals = signal.SIGTERM, timeout: float = 10.0) -> tuple[int, float]:
        """Send `signum`; return the exit code and how long the process took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signum)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"operator did not exit within {timeout}s of {signum.name}:\n{self.output()}")
        return code, time.monotonic() - started

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def lines(self) -> list[dict[str, Any]]:
        parsed = []
        for raw in self.output().splitlines():
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                pytest.fail(f"not a JSON log line: {raw!r}")
            assert isinstance(line, dict), raw
            parsed.append(line)
        return parsed


@pytest.fixture
def start_operator(cluster: Cluster, tmp_path: Path) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(*args: str) -> OperatorProcess:
        process = OperatorProcess(cluster, list(args), tmp_path / f"operator-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


@pytest.fixture(scope="module")
def crds(cluster: Cluster) -> None:
    cluster.install_crds()


def _namespace(cluster: Cluster, prefix: str) -> str:
    name = f"{prefix}-{secrets.token_hex(3)}"
    cluster.kubectl_run("create", "namespace", name)
    return name


def _secretstore(cluster: Cluster, namespace: str, name: str, address: str) -> None:
    manifest = {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "vault": {
                "url": address,
                "path": "secret",
                "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}},
            }
        },
    }
    cluster.kubectl_run("apply", "-f", "-", input=json.dumps(manifest))


def _get_secretstore(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl_run(
        "-n", namespace, "get", "secretstores.strongroom.dev", name, "-o", "json"
    ).stdout
    obj: dict[str, Any] = json.loads(out)
    return obj


def _observed(cluster: Cluster, namespace: str, name: str, generation: int) -> Callable[[], bool]:
    def check() -> bool:
        obj = _get_secretstore(cluster, namespace, name)
        return bool(obj.get("status", {}).get("observedGeneration") == generation)

    return check


@pytest.mark.usefixtures("crds")
def test_operator_runs_acts_logs_json_and_stops_on_sigterm(
    cluster: Cluster, start_operator: Callable[..., OperatorProcess]
) -> None:
    namespace = _namespace(cluster, "op-run")
    try:
        # Debug level on purpose: even then no object body may reach the log.
        operator = start_operator(
            f"--kubeconfig={cluster.kubeconfig}", "--log-level=debug", "--worker-limit=5"
        )
        operator.wait_ready()
        status, body = operator.get("/readyz")
        assert json.loads(body) == {
            "ready": True,
            "role": "leader",  # without --leader-elect the only replica is the leader
            "checks": {"operator": "ok", "watching": "ok", "apiserver": "ok"},
        }
        assert operator.get("/healthz")[0] == 200
        status, metrics = operator.get("/metrics", port=operator.metrics_port)
        assert status == 200
        assert "strongroom_operator_build_info" in metrics
        assert "strongroom_leader 1.0" in metrics  # no election: this process writes
        assert "process_resident_memory_bytes" in metrics

        _secretstore(cluster, namespace, "vault", f"https://{MARKER}.example:8200")
        assert _eventually(_observed(cluster, namespace, "vault", 1)), _get_secretstore(
            cluster, namespace, "vault"
        )

        # A spec change is a new generation; the handler follows it.
        _secretstore(cluster, namespace, "vault", f"https://{MARKER}-2.example:8200")
        assert _eventually(_observed(cluster, namespace, "vault", 2)), _get_secretstore(
            cluster, namespace, "vault"
        )
        obj = _get_secretstore(cluster, namespace, "vault")
        # Level-based: no bookkeeping annotations or finalizers on a SecretStore.
        annotations = obj["metadata"].get("annotations") or {}
        assert not [key for key in annotations if key.startswith("strongroom.dev/")], annotations
        assert not obj["metadata"].get("finalizers")

        code, elapsed = operator.stop(signal.SIGTERM)
        assert code == 0, operator.output()
        assert elapsed < 10
    finally:
        cluster.kubectl_run("delete", "namespace", namespace, "--wait=false")

    lines = operator.lines()
    for line in lines:
        assert {"time", "level", "logger", "message"} <= set(line), line
    messages = [line["message"] for line in lines]
    assert any(str(m).startswith("strongroom operator ") and "starting" in str(m) for m in messages)
    assert any(str(m).startswith("started: watching ") for m in messages)
    assert "received SIGTERM, stopping" in messages
    assert messages[-1] == "stopped"
    # The handler's debug line names the object it worked on.
    # (This operator watches every namespace: objects other tests left behind are reconciled too.)
    recorded = [
        line
        for line in lines
        if str(line["message"]).startswith("reconciled: ") and line["object"]["namespace"] == namespace
    ]
    assert recorded
    assert {line["object"]["name"] for line in recorded} == {"vault"}
    assert MARKER not in operator.output()


def _chart_rbac(cluster: Cluster, release: str, operator_namespace: str, watch: list[str]) -> str:
    """Apply the chart's ServiceAccount and RBAC (namespaced mode) and return the account's name."""
    rendered = cluster.run(
        str(cluster.helm),
        "template",
        release,
        str(CHART),
        "--namespace",
        operator_namespace,
        "--set",
        "watchNamespaces={" + ",".join(watch) + "}",
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
    ).stdout
    cluster.kubectl_run("apply", "-f", "-", input=rendered)
    (account,) = [
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all(rendered)
        if doc and doc["kind"] == "ServiceAccount"
    ]
    return str(account)


def _token_kubeconfig(cluster: Cluster, path: Path, token: str, *, insecure: bool) -> Path:
    tls: dict[str, Any] = (
        {"insecure-skip-tls-verify": True} if insecure else {"certificate-authority": cluster.info["ca"]}
    )
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [{"name": "c", "cluster": {"server": cluster.server, **tls}}],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
            }
        )
    )
    return path


@pytest.mark.usefixtures("crds")
def test_service_account_token_with_exactly_the_charts_rbac(
    cluster: Cluster, start_operator: Callable[..., OperatorProcess], tmp_path: Path
) -> None:
    operator_ns = _namespace(cluster, "op-sys")
    app_ns = _namespace(cluster, "op-app")
    other_ns = _namespace(cluster, "op-other")
    release = f"rbac-{secrets.token_hex(3)}"
    try:
        account = _chart_rbac(cluster, release, operator_ns, [app_ns])
        token = cluster.kubectl_run(
            "-n", operator_ns, "create", "token", account, "--duration=1h"
        ).stdout.strip()

        # Bearer token + CA, namespaced mode: the app namespace plus the operator namespace.
        kubeconfig = _token_kubeconfig(cluster, tmp_path / "token-ca.kubeconfig", token, insecure=False)
        operator = start_operator(
            f"--kubeconfig={kubeconfig}", "-n", app_ns, f"--operator-namespace={operator_ns}"
        )
        operator.wait_ready()
        for namespace in (app_ns, operator_ns, other_ns):
            _secretstore(cluster, namespace, "vault", "https://vault.example:8200")
        assert _eventually(_observed(cluster, app_ns, "vault", 1))
        assert _eventually(_observed(cluster, operator_ns, "vault", 1))
        # Not watched: left alone (and the operator could not have written it anyway).
        time.sleep(1)
        assert "status" not in _get_secretstore(cluster, other_ns, "vault")
        code, elapsed = operator.stop(signal.SIGTERM)
        assert (code, elapsed < 10) == (0, True), operator.output()
        output = operator.output()
        # The chart's RBAC is enough: no watch or request was refused.
        assert "forbidden" not in output.lower()
        assert "not enough permissions" not in output.lower()

        # Bearer token + insecure-skip-tls-verify, text logs, stopped with SIGINT.
        kubeconfig = _token_kubeconfig(cluster, tmp_path / "token-insecure.kubeconfig", token, insecure=True)
        operator = start_operator(
            f"--kubeconfig={kubeconfig}",
            "-n",
            app_ns,
            f"--operator-namespace={operator_ns}",
            "--log-format=text",
        )
        operator.wait_ready()
        code, elapsed = operator.stop(signal.SIGINT)
        assert (code, elapsed < 10) == (0, True), operator.output()
        assert operator.output().rstrip().endswith("strongroom.operator stopped"), operator.output()[-6000:]
    finally:
        for namespace in (operator_ns, app_ns, other_ns):
            cluster.kubectl_run("delete", "namespace", namespace, "--wait=false")
        for kind in ("clusterrolebinding", "clusterrole"):
            cluster.kubectl_run("delete", kind, f"{release}-strongroom-discovery", "--ignore-not-found")


def test_unusable_kubeconfig_is_one_line_and_exit_1(cluster: Cluster, tmp_path: Path) -> None:
    strongroom = shutil.which("strongroom", path=cluster.env["PATH"])
    assert strongroom
    result = subprocess.run(
        [
            strongroom,
            "operator",
            "run",
            f"--kubeconfig={tmp_path / 'absent'}",
            "--health-port",
            str(_free_port()),
        ],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1
    assert "not found" in error_lines[0]


def test_unreachable_api_server_is_alive_not_ready_and_still_stops(
    cluster: Cluster, start_operator: Callable[..., OperatorProcess], tmp_path: Path
) -> None:
    closed = _free_port()  # nothing listens there
    kubeconfig = tmp_path / "unreachable.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "x",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{closed}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            }
        )
    )
    operator = start_operator(f"--kubeconfig={kubeconfig}")

    def watches_started() -> bool:
        status, body = operator.get("/readyz")
        return status != 0 and json.loads(body)["checks"]["operator"] == "ok"

    assert _eventually(watches_started, timeout=30), operator.output()
    status, body = operator.get("/readyz")
    assert status == 503
    checks = json.loads(body)["checks"]
    assert checks["apiserver"].startswith("unreachable: "), checks
    assert checks["watching"] == "resource discovery has not finished"
    assert operator.get("/healthz")[0] == 200
    code, elapsed = operator.stop(signal.SIGTERM)
    assert code == 0, operator.output()
    assert elapsed < 10
