"""Build Go programs from a pinned Go module, cached by content.

The module is either ours, under testenv/gobuild/<name>/ (a go.mod pinning upstream code, and maybe a small
program), or an upstream module built as it is in its own directory, fetched from the Go module proxy at a
pinned version (`upstream`, e.g. External Secrets Operator for bench/compare_eso.py). The cache key covers
go.mod, go.sum (or the upstream module and version, which the checksum database makes immutable), the
linker flags and the Go version, so a second run with the same inputs builds nothing, and a version bump
builds into a new directory. `go build -v` names each
package as it compiles; we turn that into progress lines, because a cold Kubernetes build takes
minutes and silence looks like a hang.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from testenv.paths import TESTENV_DIR, cache_dir

Sink = Callable[[str], None]  # where progress lines go


@dataclass(frozen=True)
class GoProgram:
    """One binary: its Go package path and the file name it gets in the cache."""

    package: str
    binary: str


@dataclass(frozen=True)
class GoBuild:
    """A Go module and the programs built from it: testenv/gobuild/<module_dir>, or `upstream`."""

    module_dir: str
    label: str  # human and cache name, e.g. "kubernetes-v1.37.2"
    programs: tuple[GoProgram, ...]
    ldflags: str = "-s -w"
    # "module@version": build in that module's own directory, as the Go module proxy serves it
    upstream: str | None = None

    @property
    def source(self) -> Path:
        if self.upstream is not None:
            return download_module(self.upstream)
        return TESTENV_DIR / "gobuild" / self.module_dir

    def cache_key(self) -> str:
        digest = hashlib.sha256()
        if self.upstream is not None:
            digest.update(self.upstream.encode())
        else:
            # go.mod/go.sum pin upstream code; the module's own .go files (a small program) count too.
            source = self.source
            for path in [source / "go.mod", source / "go.sum", *sorted(source.glob("*.go"))]:
                digest.update(path.name.encode())
                digest.update(path.read_bytes())
        digest.update(self.ldflags.encode())
        digest.update(_go_version().encode())
        for prog in self.programs:
            digest.update(f"{prog.package}={prog.binary}".encode())
        return digest.hexdigest()[:12]

    def bin_dir(self) -> Path:
        return cache_dir() / f"{self.label}-{self.cache_key()}" / "bin"

    def binary(self, name: str) -> Path:
        return self.bin_dir() / name

    def is_built(self) -> bool:
        return all((self.bin_dir() / p.binary).is_file() for p in self.programs)

    def ensure(self, out: Sink | None = None) -> Path:
        """Build whatever is missing; return the bin directory."""
        if self.is_built():
            return self.bin_dir()
        sink = out or _stderr
        go = shutil.which("go")
        if go is None:
            raise RuntimeError(
                "`go` is not on PATH; install Go 1.26+ (see README) to build the test environment"
            )
        final = self.bin_dir()
        staging = final.parent / "bin.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod -buildvcs=false")
        started = time.monotonic()
        source = self.source
        for prog in self.programs:
            sink(f"[testenv] building {prog.binary} ({self.label}); a cold build takes minutes")
            _run_with_progress(
                [
                    go,
                    "build",
                    "-v",
                    "-trimpath",
                    "-ldflags",
                    self.ldflags,
                    "-o",
                    str(staging / prog.binary),
                    prog.package,
                ],
                cwd=source,
                env=env,
                label=prog.binary,
                sink=sink,
            )
        staging.rename(final)
        sink(f"[testenv] built {self.label} in {time.monotonic() - started:.0f}s -> {final}")
        return final


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def download_module(module_at_version: str) -> Path:
    """The directory of `module@version` in the Go module cache, fetched through the module proxy if
    missing (read-only: `go build` there only reads, since the module's go.sum is complete)."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("`go` is not on PATH; install Go 1.26+ (see README) to build the test environment")
    done = subprocess.run(
        [go, "mod", "download", "-json", module_at_version],
        cwd=cache_dir(),  # outside any module: the download is not a dependency of one
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"{done.stdout.strip()} {done.stderr.strip()}".strip()
        raise RuntimeError(f"go mod download {module_at_version} failed: {reason}")
    return Path(json.loads(done.stdout)["Dir"])


def _go_version() -> str:
    go = shutil.which("go")
    if go is None:
        return "no-go"
    return subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()


def _run_with_progress(argv: list[str], cwd: Path, env: dict[str, str], label: str, sink: Sink) -> None:
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    compiled = 0
    last_report = time.monotonic()
    tail: list[str] = []
    for raw in proc.stdout:
        line = raw.rstrip()
        tail = [*tail[-30:], line]
        if line and not line.startswith(("go: ", "#")):
            compiled += 1
        now = time.monotonic()
        if now - last_report >= 15:
            sink(f"[testenv]   {label}: {compiled} packages compiled so far (latest: {line[:80]})")
            last_report = now
    if proc.wait() != 0:
        joined = "\n".join(tail)
        raise RuntimeError(f"go build of {label} failed:\n{joined}")


K8S_VERSION = "v1.37.2"
_K8S_VERSION_PKG = "k8s.io/component-base/version"

# Stamp the release into the binaries, as the upstream release build does, so discovery and
# `kubectl version` report v1.37.2 instead of v0.0.0-master.
_K8S_LDFLAGS = " ".join(
    [
        "-s -w",
        f"-X {_K8S_VERSION_PKG}.gitVersion={K8S_VERSION}",
        f"-X {_K8S_VERSION_PKG}.gitMajor=1",
        f"-X {_K8S_VERSION_PKG}.gitMinor=37",
        f"-X {_K8S_VERSION_PKG}.gitTreeState=clean",
    ]
)

KUBERNETES = GoBuild(
    module_dir="kubernetes",
    label=f"kubernetes-{K8S_VERSION}",
    programs=(
        GoProgram("go.etcd.io/etcd/server/v3", "etcd"),
        GoProgram("k8s.io/kubernetes/cmd/kube-apiserver", "kube-apiserver"),
        GoProgram("k8s.io/kubernetes/cmd/kube-controller-manager", "kube-controller-manager"),
    ),
    ldflags=_K8S_LDFLAGS,
)

# The node (`testenv up --node`): same Kubernetes release, its own module directory so that adding it
# left the control plane's cache key (and every cached apiserver build) unchanged, and the fast
# default path never builds a kubelet.
KUBERNETES_NODE = GoBuild(
    module_dir="kubernetes-node",
    label=f"kubernetes-node-{K8S_VERSION}",
    programs=(
        GoProgram("k8s.io/kubernetes/cmd/kubelet", "kubelet"),
        GoProgram("k8s.io/kubernetes/cmd/kube-scheduler", "kube-scheduler"),
        GoProgram("k8s.io/kubernetes/cmd/kube-proxy", "kube-proxy"),
    ),
    ldflags=_K8S_LDFLAGS,
)
