"""External Secrets Operator, built from Go modules and run out of cluster: bench/compare_eso.py's yardstick.

ESO's module builds as it is in its own directory (testenv.gobuild, `upstream`), cached like the control
plane. Only its core controller runs (the root command: ExternalSecrets, SecretStores and their cluster
variants, PushSecrets), against a testenv API server through a kubeconfig. The webhook and the certificate
controller are other subcommands and never start; the CRDs are installed without conversion webhooks
(ESO's bundle has none; its Helm chart adds them), so nothing calls a webhook.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testenv.gobuild import GoBuild, GoProgram, Sink
from testenv.process import LOOPBACK, ManagedProcess, fetch_text, free_port, http_ok
from testenv.tools import apply_crds

ESO_VERSION = "v0.16.2"
ESO_MODULE = "github.com/external-secrets/external-secrets"
# The binary's name is its API User-Agent's first word (client-go's default): the audit log tells it apart.
ESO_BINARY = "external-secrets"

ESO = GoBuild(
    module_dir="",
    label=f"external-secrets-{ESO_VERSION}",
    programs=(GoProgram(".", ESO_BINARY),),
    upstream=f"{ESO_MODULE}@{ESO_VERSION}",
)


def install_crds(kubeconfig: Path) -> None:
    """ESO's CRDs from its module (deploy/crds/bundle.yaml), Established."""
    bundle = ESO.source / "deploy" / "crds" / "bundle.yaml"
    apply_crds(kubeconfig, bundle.read_text(), "external-secrets.io/component=controller", "external-secrets")


@dataclass
class EsoProcess:
    process: ManagedProcess
    metrics_port: int

    def metrics(self) -> str:
        return fetch_text(f"http://{LOOPBACK}:{self.metrics_port}/metrics")

    def stop(self) -> None:
        self.process.stop(timeout=15)


def start_eso(
    kubeconfig: Path, log_path: Path, extra_args: Sequence[str] = (), sink: Sink | None = None
) -> EsoProcess:
    """Build ESO if needed, start its core controller and wait until its metrics endpoint answers."""
    binary = ESO.ensure(sink) / ESO_BINARY
    metrics_port = free_port()
    argv = [str(binary), f"--metrics-addr={LOOPBACK}:{metrics_port}", *extra_args]
    process = ManagedProcess("external-secrets", argv, log_path, env={"KUBECONFIG": str(kubeconfig)}).start()
    process.wait_ready(lambda: http_ok(f"http://{LOOPBACK}:{metrics_port}/metrics"), timeout=60)
    return EsoProcess(process, metrics_port)
