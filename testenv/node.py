"""A real node for the test control plane: containerd, kubelet, kube-scheduler and kube-proxy.

`python -m testenv up --node` (and the `node` pytest fixture) add this to the control plane, so that
rendered workloads and the Helm chart's pod actually run.

Network: a Linux bridge `strongroom0` with the host address 10.244.0.1/24 (NODE_HOST) is the pod
network (the CNI `bridge` plugin attaches every pod to it, host-local IPAM hands out 10.244.0.0/24).
In node mode every testenv server binds NODE_HOST instead of 127.0.0.1 (STRONGROOM_TESTENV_HOST, read
by testenv.process): it is an address of this machine, so the host shell reaches it directly and
pods reach it through their default gateway; nothing is exposed outside the machine. The API server
advertises it too, so the `kubernetes` Service has endpoints and kube-proxy (iptables mode) carries
10.96.0.1:443 to it: pods use in-cluster configuration unchanged.

Images: no registry is reachable. Images are built locally (testenv.image) and imported into this
containerd; the pod sandbox ("pause") image is Debian's catatonit.

Needs root, cgroup v1 or v2, and the Debian packages containerd, runc and containernetworking-plugins
(`ensure_packages()` installs them with apt-get when missing).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from testenv.gobuild import KUBERNETES_NODE, Sink
from testenv.process import ManagedProcess, free_port, pid_alive
from testenv.service import Service

NODE_NAME = "strongroom-node"
BRIDGE = "strongroom0"
POD_CIDR = "10.244.0.0/24"
NODE_HOST = "10.244.0.1"
HOST_ENV = "STRONGROOM_TESTENV_HOST"  # read by testenv.process at import
CNI_BIN_DIR = Path("/usr/lib/cni")
APT_PACKAGES = ("containerd", "runc", "containernetworking-plugins", "iptables", "mmdebstrap")
CONTAINERD_NAMESPACE = "k8s.io"  # the CRI plugin's namespace: images imported here are seen by the kubelet


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def ensure_packages(sink: Sink | None = None) -> None:
    """Install the node's Debian packages if any is missing (one apt-get run, cheap when present)."""
    missing = [p for p in ("containerd", "runc", "iptables", "mmdebstrap") if shutil.which(p) is None]
    if not (CNI_BIN_DIR / "bridge").exists():
        missing.append("containernetworking-plugins")
    if not missing:
        return
    if sink:
        sink(f"[testenv] apt-get install {' '.join(APT_PACKAGES)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES],
    ):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv[:2])} failed (missing: {', '.join(missing)}): {done.stderr[-500:]}"
            )


def _require_root() -> None:
    if os.geteuid() != 0:
        raise RuntimeError("a node needs root (containerd, runc, a network bridge, iptables)")


def prepare_network() -> None:
    """Create the pod bridge with NODE_HOST before any server binds it (idempotent)."""
    _require_root()
    if _run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
        _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    addrs = _run(["ip", "-4", "-o", "addr", "show", "dev", BRIDGE]).stdout
    if f"{NODE_HOST}/" not in addrs:
        _run(["ip", "addr", "add", f"{NODE_HOST}/24", "dev", BRIDGE])
    _run(["ip", "link", "set", BRIDGE, "up"])
    # Pods reach Services through kube-proxy's iptables rules; bridged traffic must see them.
    if shutil.which("modprobe"):
        _run(["modprobe", "br_netfilter"], check=False)
    for key, value in (("net/ipv4/ip_forward", "1"), ("net/bridge/bridge-nf-call-iptables", "1")):
        path = Path("/proc/sys") / key
        if path.exists():
            path.write_text(value)


def _cni_config(workdir: Path) -> Path:
    conf_dir = workdir / "cni" / "net.d"
    conf_dir.mkdir(parents=True, exist_ok=True)
    conflist = {
        "cniVersion": "1.0.0",
        "name": "strongroom",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_HOST}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(workdir / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (conf_dir / "10-strongroom.conflist").write_text(json.dumps(conflist, indent=2))
    return conf_dir


def _containerd_config(workdir: Path, socket: Path, pause_image: str) -> Path:
    conf_dir = _cni_config(workdir)
    config = f"""version = 2
root = "{workdir / "containerd" / "root"}"
state = "{workdir / "containerd" / "state"}"
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  enable_selinux = false
  # The kubelet asks for negative OOM scores (-998 for sandboxes), which need CAP_SYS_RESOURCE; this
  # machine's root lacks it, and runc then fails with "can't get final child's PID from pipe: EOF".
  # Clamp them to containerd's own score instead, as rootless setups do.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{conf_dir}"
"""
    path = workdir / "containerd.toml"
    path.write_text(config)
    return path


def _kubelet_config(workdir: Path, cgroup_driver: str = "cgroupfs") -> Path:
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This machine offers cgroup v1 only; 1.35+ refuses it unless told otherwise.
        "failCgroupV1": False,
        "cgroupDriver": cgroup_driver,
        "address": NODE_HOST,
        "port": free_port(),
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": free_port(),
        # The API server (and `kubectl logs`) may talk to this test kubelet without client certificates.
        "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "podCIDR": POD_CIDR,
        "failSwapOn": False,
        "resolvConf": "/etc/resolv.conf",
        # A shared machine: never evict test pods for disk or memory pressure caused by others.
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "serializeImagePulls": False,
        "syncFrequency": "10s",
        "fileCheckFrequency": "5s",
        "nodeStatusUpdateFrequency": "5s",
        "volumeStatsAggPeriod": "0s",
        "containerLogMaxSize": "10Mi",
        "localStorageCapacityIsolation": False,
    }
    path = workdir / "kubelet-config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _kubectl_ready(kubeconfig: Path, kubectl: Path) -> bool:
    out = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", "get", "node", NODE_NAME, "-o", "json"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return False
    node = yaml.safe_load(out.stdout)
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in node["status"].get("conditions", [])
    )


def ctr(socket: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `ctr` against this node's containerd, in the CRI namespace."""
    return _run(["ctr", f"--address={socket}", f"--namespace={CONTAINERD_NAMESPACE}", *args])


def import_image(socket: Path, archive: Path) -> None:
    """Import an OCI image archive (testenv.image) so pods can use it without a registry."""
    ctr(socket, "images", "import", "--no-unpack", str(archive))


def start(workdir: Path, kubernetes: dict[str, Any], sink: Sink | None = None) -> Service:
    """Start the node against a running control plane (its `info`); return when the Node is Ready."""
    from testenv import image, tools

    _require_root()
    ensure_packages(sink)
    prepare_network()
    bin_dir = KUBERNETES_NODE.ensure(sink)
    kubectl = tools.tool("kubectl")
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = Path(kubernetes["kubeconfig"])
    pause = image.pause_image(sink)

    socket = workdir / "containerd.sock"
    containerd = ManagedProcess(
        "containerd",
        ["containerd", f"--config={_containerd_config(workdir, socket, pause.reference)}"],
        workdir / "containerd.log",
    ).start()
    service = Service(name="node", processes=[containerd], on_stop="testenv.node:clean_up")
    service.info = {"workdir": str(workdir), "containerd_socket": str(socket), "node_name": NODE_NAME}
    try:
        containerd.wait_ready(
            lambda: _run(["ctr", f"--address={socket}", "version"], check=False).returncode == 0
        )
        import_image(socket, pause.archive)
        operator = image.operator_image(sink)
        import_image(socket, operator.archive)
        web = image.web_image(sink)  # the example app's workload (examples/app/web)
        import_image(socket, web.archive)
        service.info["web_image"] = web.reference

        scheduler = ManagedProcess(
            "kube-scheduler",
            [
                str(bin_dir / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--v=1",
            ],
            workdir / "kube-scheduler.log",
        ).start()
        service.processes.append(scheduler)
        proxy = ManagedProcess(
            "kube-proxy",
            [
                str(bin_dir / "kube-proxy"),
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                f"--cluster-cidr={POD_CIDR}",
                "--proxy-mode=iptables",
                # Leave the machine's conntrack sysctls alone (shared, possibly read-only here).
                "--conntrack-max-per-core=0",
                f"--metrics-bind-address=127.0.0.1:{free_port()}",
                f"--healthz-bind-address=127.0.0.1:{free_port()}",
                "--v=1",
            ],
            workdir / "kube-proxy.log",
        ).start()
        service.processes.append(proxy)
        kubelet = ManagedProcess(
            "kubelet",
            [
                str(bin_dir / "kubelet"),
                f"--config={_kubelet_config(workdir)}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={workdir / 'kubelet'}",
                f"--cert-dir={workdir / 'kubelet' / 'pki'}",
                f"--container-runtime-endpoint=unix://{socket}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={NODE_HOST}",
                "--v=1",
            ],
            workdir / "kubelet.log",
        ).start()
        service.processes.append(kubelet)
        kubelet.wait_ready(lambda: _kubectl_ready(kubeconfig, kubectl), timeout=120)
    except BaseException:
        service.stop()
        raise
    service.env = {"STRONGROOM_IMAGE": operator.reference}
    service.info["operator_image_bytes"] = operator.size_bytes
    return service


def clean_up(info: dict[str, Any]) -> None:
    """After the node's processes are stopped: stop the pods' shims and unmount their volumes.

    The containerd shims run in their own sessions (they outlive containerd on purpose), so stopping
    containerd's process group leaves them; they are found by the socket address of this node's
    containerd, which names only processes this testenv started.
    """
    workdir = Path(info["workdir"])
    socket = info["containerd_socket"]
    _kill_containers(workdir)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"containerd-shim" in argv[0] and socket.encode() in argv:
                pid = int(proc.name)
                os.kill(pid, 9)
                for _ in range(50):
                    if not pid_alive(pid):
                        break
                    time.sleep(0.02)
    # The pods' network namespaces outlive their processes (containerd pins them under /run/netns), and
    # with them their veths on the bridge and addresses the next run hands out again: two pods with one
    # IP. Every namespace holding an address of POD_CIDR is a testenv pod (the bridge is testenv's).
    _delete_pod_netns()
    # Volumes (tmpfs secrets, projected tokens) and container root filesystems, deepest first.
    mounts = [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if line.split()[1].startswith(str(workdir) + "/")
    ]
    for mount in sorted(mounts, key=len, reverse=True):
        _run(["umount", "-l", mount], check=False)
    # kube-proxy's Service rules would otherwise outlive it (and point at pods that are gone).
    proxy = KUBERNETES_NODE.binary("kube-proxy")
    if proxy.exists():
        _run([str(proxy), "--cleanup"], check=False)


def _delete_pod_netns() -> None:
    netns_dir = Path("/run/netns")
    if not netns_dir.is_dir():
        return
    prefix = POD_CIDR.rsplit(".", 1)[0] + "."
    for netns in netns_dir.iterdir():
        if not netns.name.startswith("cni-"):
            continue
        addrs = _run(["ip", "-n", netns.name, "-4", "-o", "addr", "show"], check=False).stdout
        if f"inet {prefix}" in addrs:
            _run(["ip", "netns", "delete", netns.name], check=False)


def _kill_containers(workdir: Path) -> None:
    """SIGKILL the containers' processes: they outlive their shims. containerd puts each container in
    the cgroup `k8s.io/<container id>` of every hierarchy; the ids are the task directories of this
    node's own containerd state, so only this run's containers are touched."""
    tasks = workdir / "containerd" / "state" / "io.containerd.runtime.v2.task" / CONTAINERD_NAMESPACE
    if not tasks.is_dir():
        return
    cgroup_roots = [p for p in Path("/sys/fs/cgroup").iterdir() if (p / CONTAINERD_NAMESPACE).is_dir()]
    if Path("/sys/fs/cgroup/cgroup.procs").exists():  # cgroup v2: one hierarchy
        cgroup_roots.append(Path("/sys/fs/cgroup"))
    for task in tasks.iterdir():
        for root in cgroup_roots:
            group = root / CONTAINERD_NAMESPACE / task.name
            with contextlib.suppress(OSError):
                for pid in (group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), 9)
    time.sleep(0.2)
    for task in tasks.iterdir():
        for root in cgroup_roots:
            with contextlib.suppress(OSError):
                (root / CONTAINERD_NAMESPACE / task.name).rmdir()
