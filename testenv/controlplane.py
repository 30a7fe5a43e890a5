"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and kube-controller-manager.

Built from Go modules by testenv.gobuild (Kubernetes v1.37.2). Pods never run (there is no kubelet
or scheduler); tests assert objects. The controller manager runs the controllers that change what
objects look like without a node: garbage collection (ownerReferences), namespace deletion and
service-account tokens.

Authentication: the admin client uses an x509 client certificate in `system:masters`, signed by a
per-run CA that also signs the apiserver's serving certificate, so clients verify TLS for real.
Service-account tokens are signed with a per-run RSA key (TokenReview works, e.g. for OpenBao's
Kubernetes auth).

The API server writes an audit log (JSON lines, Metadata level, one event per request when it
completes; path in the service info as `audit_log`): which client did what, for the RBAC audit test
(tests/integration/test_zz_rbac_audit.py). Cheap enough to be always on: one small write per request.

Go's profiling endpoints (/debug/pprof) are off, as on hardened clusters; `STRONGROOM_TESTENV_PROFILING=1`
turns them on for a benchmark that profiles the API server (bench.blast_radius --apiserver-profile).
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import yaml

from testenv.certs import make_ca
from testenv.gobuild import KUBERNETES, Sink
from testenv.process import LOOPBACK, ManagedProcess, free_port, http_ok
from testenv.service import Service

SERVICE_CIDR = "10.96.0.0/16"
PROFILING_ENV = "STRONGROOM_TESTENV_PROFILING"

# Who asked for what, without bodies. The controller manager's own requests and non-resource URLs
# (discovery, health) are left out: nothing reads them, and they are most of the volume.
AUDIT_POLICY: dict[str, object] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "users": ["system:kube-controller-manager", "system:apiserver"]},
        {"level": "None", "nonResourceURLs": ["*"]},
        {"level": "Metadata"},
    ],
}


def _write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path, user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "testenv", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "testenv", "context": {"cluster": "testenv", "user": user}}],
        "current-context": "testenv",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _loopback() -> bool:
    """True unless testenv binds another address because a node runs (testenv.node)."""
    return LOOPBACK.startswith("127.")


def start(workdir: Path, sink: Sink | None = None) -> Service:
    """Start etcd, kube-apiserver and kube-controller-manager; return when the apiserver is ready."""
    bin_dir = KUBERNETES.ensure(sink)
    workdir.mkdir(parents=True, exist_ok=True)
    pki = workdir / "pki"
    pki.mkdir(exist_ok=True)

    ca = make_ca(pki)
    serving_cert, serving_key = ca.issue_server_cert(
        pki,
        "kube-apiserver",
        [
            LOOPBACK,
            "localhost",
            "10.96.0.1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
    )
    admin_cert, admin_key = ca.issue_client_cert(pki, "admin", ["system:masters"])
    # A test cluster: the controller manager gets admin rights rather than the per-controller roles.
    kcm_cert, kcm_key = ca.issue_client_cert(pki, "system:kube-controller-manager", ["system:masters"])
    sa_key = ca.write_rsa_key(pki / "service-account.key")

    etcd_port, etcd_peer_port, api_port = free_port(), free_port(), free_port()
    etcd_url = f"http://{LOOPBACK}:{etcd_port}"
    etcd = ManagedProcess(
        "etcd",
        [
            str(bin_dir / "etcd"),
            "--name=testenv",
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls=http://{LOOPBACK}:{etcd_peer_port}",
            f"--initial-advertise-peer-urls=http://{LOOPBACK}:{etcd_peer_port}",
            f"--initial-cluster=testenv=http://{LOOPBACK}:{etcd_peer_port}",
            # Test data is disposable; skipping fsync makes the apiserver several times faster here.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        workdir / "etcd.log",
    ).start()
    service = Service(name="kubernetes", processes=[etcd])
    try:
        etcd.wait_ready(lambda: http_ok(f"{etcd_url}/health"), timeout=30)

        server = f"https://{LOOPBACK}:{api_port}"
        audit_policy = workdir / "audit-policy.yaml"
        audit_policy.write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False))
        audit_log = workdir / "audit.log"
        apiserver = ManagedProcess(
            "kube-apiserver",
            [
                str(bin_dir / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--bind-address={LOOPBACK}",
                f"--advertise-address={LOOPBACK}",
                f"--secure-port={api_port}",
                f"--tls-cert-file={serving_cert}",
                f"--tls-private-key-file={serving_key}",
                f"--client-ca-file={ca.cert_path}",
                "--authorization-mode=RBAC",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                # Without a node nothing needs the `kubernetes` Service endpoints, and 1.37 refuses to
                # publish a loopback address there; with one (testenv.node) pods reach us through it.
                f"--endpoint-reconciler-type={'none' if _loopback() else 'lease'}",
                "--enable-priority-and-fairness=false",
                # `kubectl logs/exec` reach the node (testenv.node) by its address, not a DNS name.
                "--kubelet-preferred-address-types=InternalIP",
                # As on hardened clusters: an owner reference with blockOwnerDeletion needs `update` on
                # the owner's `finalizers` (the chart grants it; tests/integration/test_zz_rbac_audit.py).
                "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
                f"--profiling={str(os.environ.get(PROFILING_ENV) == '1').lower()}",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={audit_log}",
                "--audit-log-format=json",
                "--audit-log-maxsize=0",  # never rotate: the audit test reads the whole run
                "--v=1",
            ],
            workdir / "kube-apiserver.log",
        ).start()
        service.processes.append(apiserver)
        client_ctx = ssl.create_default_context(cafile=str(ca.cert_path))
        client_ctx.load_cert_chain(str(admin_cert), str(admin_key))
        apiserver.wait_ready(lambda: http_ok(f"{server}/readyz", context=client_ctx), timeout=90)

        kubeconfig = workdir / "kubeconfig"
        _write_kubeconfig(kubeconfig, server, ca.cert_path, admin_cert, admin_key, "admin")
        kcm_kubeconfig = workdir / "kube-controller-manager.kubeconfig"
        _write_kubeconfig(kcm_kubeconfig, server, ca.cert_path, kcm_cert, kcm_key, "kube-controller-manager")
        kcm = ManagedProcess(
            "kube-controller-manager",
            [
                str(bin_dir / "kube-controller-manager"),
                f"--kubeconfig={kcm_kubeconfig}",
                f"--authentication-kubeconfig={kcm_kubeconfig}",
                f"--authorization-kubeconfig={kcm_kubeconfig}",
                # With a node (testenv.node) all controllers: Deployments, ReplicaSets, EndpointSlices...
                "--controllers="
                + ("garbagecollector,namespace,serviceaccount,serviceaccount-token" if _loopback() else "*"),
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={ca.cert_path}",
                "--use-service-account-credentials=false",
                "--leader-elect=false",
                f"--bind-address={LOOPBACK}",
                f"--secure-port={free_port()}",
                "--v=1",
            ],
            workdir / "kube-controller-manager.log",
        ).start()
        service.processes.append(kcm)
    except BaseException:
        service.stop()
        raise

    service.env = {"KUBECONFIG": str(kubeconfig)}
    service.info = {
        "server": server,
        "kubeconfig": str(kubeconfig),
        "ca": str(ca.cert_path),
        "admin_cert": str(admin_cert),
        "admin_key": str(admin_key),
        "service_account_key": str(sa_key),
        "version": KUBERNETES.label,
        "audit_log": str(audit_log),
    }
    return service
