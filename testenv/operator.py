"""Run `strongroom operator run` as a real process against a testenv cluster (tests, bench, demo)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, ManagedProcess, fetch_text, free_port, http_ok

OPERATOR_NAMESPACE = "strongroom-system"


@dataclass
class OperatorProcess:
    process: ManagedProcess
    health_port: int
    metrics_port: int

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def logs(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        return fetch_text(f"http://{LOOPBACK}:{self.metrics_port}/metrics")

    def stop(self) -> None:
        self.process.stop(timeout=15)


def start_operator(
    kubeconfig: Path,
    log_path: Path,
    extra_args: Sequence[str] = (),
    operator_namespace: str = OPERATOR_NAMESPACE,
    log_format: str = "json",
    ready_timeout: float = 60.0,
) -> OperatorProcess:
    """Start the operator and wait until /readyz answers 200."""
    health_port, metrics_port = free_port(), free_port()
    argv = [
        str(REPO_ROOT / ".venv" / "bin" / "strongroom"),
        "operator",
        "run",
        f"--kubeconfig={kubeconfig}",
        f"--operator-namespace={operator_namespace}",
        f"--log-format={log_format}",
        f"--health-address={LOOPBACK}",
        f"--health-port={health_port}",
        f"--metrics-address={LOOPBACK}",
        f"--metrics-port={metrics_port}",
        *extra_args,
    ]
    process = ManagedProcess("strongroom-operator", argv, log_path).start()
    process.wait_ready(lambda: http_ok(f"http://{LOOPBACK}:{health_port}/readyz"), timeout=ready_timeout)
    return OperatorProcess(process, health_port, metrics_port)
