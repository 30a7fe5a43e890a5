"""Container images built without Docker or a registry: Debian packages + the project's wheel.

The layout is the Dockerfile's (the documented way for users with Docker): the locked runtime
dependencies and strongroom itself in a virtualenv at /opt/strongroom, bytecode compiled at build
time (the root filesystem is read-only at run time), user 65532:65532, entrypoint
`strongroom operator run`. Differences are the base only: Debian's python3.11 in /usr/bin instead of
the python image's /usr/local/bin, and the root filesystem holds just what python3.11 needs.

Steps, each cached under the testenv cache by the hash of its inputs:
1. a root filesystem of Debian bookworm packages (`mmdebstrap --variant=extract`: the packages and
   their dependencies unpacked, no maintainer scripts, no apt/dpkg state), docs and locales pruned;
2. the virtualenv, by the Dockerfile's commands (`uv sync --frozen --no-dev --no-editable`: the locked
   runtime dependencies and the project's wheel, then container/prune_venv.py), with Debian's
   /usr/bin/python3.11;
3. an OCI image archive (uncompressed layers, so no time is spent compressing what stays local),
   named by the `io.containerd.image.name` annotation so `ctr images import` tags it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testenv.gobuild import Sink
from testenv.paths import REPO_ROOT, cache_dir

SUITE = "bookworm"
REGISTRY = "strongroom.local"  # never pulled: pods use these with imagePullPolicy Never/IfNotPresent
NONROOT = 65532
VENV = "/opt/strongroom"
# No Debian tzdata: the locked dependencies carry the `tzdata` wheel, which zoneinfo falls back to.
# libstdc++6: grpc, protobuf's upb, google-crc32c and frozenlist are C++ (the python image has it).
PYTHON_PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "ca-certificates", "netbase", "libstdc++6")
# Not needed at run time; most of a Debian root filesystem's size that is not the interpreter.
PRUNED_PREFIXES = (
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/lintian/",
    "var/cache/",
    "var/lib/apt/",
    "var/log/",
    "usr/lib/x86_64-linux-gnu/gconv/",  # iconv charsets (8 MB): Python's codecs do not use them
    "usr/lib/python3.11/test/",
    "usr/lib/python3.11/pydoc_data/",
    # Package and admin tools that come as dependencies (dpkg, debconf, tar, openssl's CLI): an image
    # runs its one entrypoint and has no shell or perl that could run them.
    "bin/tar",
    "sbin/start-stop-daemon",
    "usr/bin/c_rehash",
    "usr/bin/debconf",
    "usr/bin/dpkg",
    "usr/bin/openssl",
    "usr/bin/update-alternatives",
    "usr/sbin/dpkg-",
    "usr/sbin/rmt-tar",
    "usr/sbin/tarcat",
    "usr/sbin/update-ca-certificates",
    "usr/share/debconf/",
    "usr/share/dpkg/",
    "usr/share/perl5/",
    # ... and the libraries only those tools link (no Python module does).
    "lib/x86_64-linux-gnu/libselinux.so",
    "usr/lib/x86_64-linux-gnu/libacl.so",
    "usr/lib/x86_64-linux-gnu/libmd.so",
    "usr/lib/x86_64-linux-gnu/libpcre2-8.so",
    "usr/lib/x86_64-linux-gnu/libzstd.so",
    # The `nis` module (deprecated, gone in Python 3.13, imported by nothing here) and the RPC and
    # Kerberos libraries only it links (2 MB).
    "usr/lib/python3.11/lib-dynload/nis.",
    "usr/lib/x86_64-linux-gnu/libnsl.so.2",
    "lib/x86_64-linux-gnu/libtirpc.so",
    "usr/lib/x86_64-linux-gnu/libgssapi_krb5.so",
    "usr/lib/x86_64-linux-gnu/libkrb5",
    "usr/lib/x86_64-linux-gnu/libk5crypto.so",
    "usr/lib/x86_64-linux-gnu/krb5/",
    "lib/x86_64-linux-gnu/libcom_err.so",
    "lib/x86_64-linux-gnu/libkeyutils.so",
)
OPERATOR_ENV = {
    "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}
OPERATOR_ENTRYPOINT = ["strongroom", "operator", "run"]
OPERATOR_PORTS = ("8080/tcp", "8081/tcp")
# Run by the Dockerfile after `uv sync`, and here after the same command.
PRUNE_VENV = REPO_ROOT / "container" / "prune_venv.py"


@dataclass(frozen=True)
class BuiltImage:
    reference: str  # e.g. strongroom.local/strongroom:3f2a9c0d1e2b
    archive: Path  # OCI archive for `ctr images import`
    size_bytes: int  # uncompressed: the sum of the layer tars


@dataclass
class ImageSpec:
    name: str
    packages: tuple[str, ...]
    entrypoint: list[str]
    env: dict[str, str] = field(default_factory=dict)
    user: str = f"{NONROOT}:{NONROOT}"
    ports: tuple[str, ...] = ()
    key_inputs: tuple[bytes, ...] = ()  # what else the image depends on (hashed into its tag)


def _say(sink: Sink | None, line: str) -> None:
    if sink:
        sink(line)
    else:
        print(line, file=sys.stderr, flush=True)


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:12]


def _images_dir() -> Path:
    path = cache_dir() / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path


def rootfs_layer(packages: Iterable[str], sink: Sink | None = None) -> Path:
    """A layer tar of the Debian packages (and their dependencies), pruned; cached by the package list
    and the pruned prefixes."""
    wanted = sorted(packages)
    key = _digest(*(p.encode() for p in wanted), "\0".join(PRUNED_PREFIXES).encode())
    target = _images_dir() / f"rootfs-{SUITE}-{key}.tar"
    if target.exists():
        return target
    _say(sink, f"[testenv] image: unpacking Debian {SUITE} packages {', '.join(wanted)} (mmdebstrap)")
    started = time.monotonic()
    raw = target.with_suffix(".raw.tar")
    subprocess.run(
        [
            "mmdebstrap",
            "--quiet",
            "--mode=root",
            "--variant=extract",
            f"--include={','.join(wanted)}",
            SUITE,
            str(raw),
        ],
        check=True,
        capture_output=True,
    )
    partial = target.with_suffix(".partial")
    with tarfile.open(raw) as src, tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as dst:
        for member in src:
            name = member.name.removeprefix("./")
            if not name or name.startswith(PRUNED_PREFIXES):
                continue
            member.name = name
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    raw.unlink()
    partial.rename(target)
    _say(sink, f"[testenv] image: root filesystem in {time.monotonic() - started:.0f}s -> {target}")
    return target


def _ca_bundle(rootfs: Path) -> bytes:
    """/etc/ssl/certs/ca-certificates.crt as ca-certificates' postinst would write it (not run here)."""
    with tarfile.open(rootfs) as tar:
        pems = [
            tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in sorted(tar.getmembers(), key=lambda m: m.name)
            if m.isfile() and m.name.startswith("usr/share/ca-certificates/") and m.name.endswith(".crt")
        ]
    return b"".join(p if p.endswith(b"\n") else p + b"\n" for p in pems)


def _system_files(rootfs: Path) -> dict[str, tuple[bytes, int]]:
    """Files the maintainer scripts would have made: users, groups, the CA bundle (path -> data, mode)."""
    return {
        "etc/passwd": (
            f"root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:"
            "/usr/sbin/nologin\n".encode(),
            0o644,
        ),
        "etc/group": (f"root:x:0:\nnonroot:x:{NONROOT}:\n".encode(), 0o644),
        "etc/ssl/certs/ca-certificates.crt": (_ca_bundle(rootfs), 0o644),
    }


def _tar_dir(tar: tarfile.TarFile, root: Path, arc_prefix: str) -> None:
    """Add a directory tree owned by root (as the Dockerfile's COPY does), sorted for reproducibility."""
    for path in sorted([root, *root.rglob("*")]):
        arcname = arc_prefix if path == root else f"{arc_prefix}/{path.relative_to(root)}"
        info = tar.gettarinfo(str(path), arcname)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        if info.isfile():
            with path.open("rb") as fh:
                tar.addfile(info, fh)
        else:
            tar.addfile(info)


def _extra_layer(
    path: Path, files: dict[str, tuple[bytes, int]], dirs: dict[str, int], trees: dict[str, Path]
) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in sorted(dirs.items()):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = mode
            tar.addfile(info)
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
        for arc_prefix, root in sorted(trees.items()):
            _tar_dir(tar, root, arc_prefix)


def _uv() -> str:
    for candidate in (REPO_ROOT / ".tools" / "bin" / "uv", Path("/work/main/.tools/bin/uv")):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("uv")
    if found is None:
        raise RuntimeError("uv not found; run `make install` first")
    return found


def build_venv(
    staging: Path, extra_requirements: Iterable[str] = (), project: bool = True, path: str = VENV
) -> Path:
    """The Dockerfile's /opt/strongroom, made by the Dockerfile's own commands: `uv sync --frozen
    --no-dev --no-editable` (the locked runtime dependencies and the project's wheel, bytecode
    compiled) and container/prune_venv.py, into the staging directory. `extra_requirements` go on
    top (workload images, not pruned)."""
    uv = _uv()
    venv = staging / path.lstrip("/")
    venv.parent.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        UV_PYTHON_DOWNLOADS="never",
        UV_LINK_MODE="copy",
        UV_COMPILE_BYTECODE="1",
        UV_PROJECT_ENVIRONMENT=str(venv),
    )
    env.pop("VIRTUAL_ENV", None)

    def run(argv: list[str]) -> None:
        subprocess.run(argv, check=True, capture_output=True, text=True, env=env, cwd=REPO_ROOT)

    # Debian's interpreter, the one the image has at the same path.
    python_flag = ["--python", "/usr/bin/python3.11"]
    if project:
        run([uv, "sync", "--quiet", "--frozen", "--no-dev", "--no-editable", *python_flag])
        # The Dockerfile's next step: the same script, so both images hold the same files.
        run([sys.executable, str(PRUNE_VENV), str(venv)])
    else:
        run([uv, "venv", "--quiet", *python_flag, str(venv)])
    extra = list(extra_requirements)
    if extra:
        run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *extra])
    # Console scripts name the interpreter by the staging path; in the image it lives at `path`.
    for script in (venv / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            data = script.read_bytes()
            if data.startswith(b"#!" + str(venv).encode()):
                script.write_bytes(data.replace(str(venv).encode(), path.encode(), 1))
    return venv


def locked_requirements(*names: str) -> list[str]:
    """`name==version` lines for these packages as uv.lock pins them (any dependency group)."""
    exported = subprocess.run(
        [_uv(), "export", "--quiet", "--frozen", "--all-groups", "--no-emit-project", "--no-hashes"],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    ).stdout
    pins = {}
    for line in exported.splitlines():
        requirement = line.split(";")[0].strip()
        name, sep, _ = requirement.partition("==")
        if sep:
            pins[name.lower()] = requirement
    missing = [n for n in names if n not in pins]
    if missing:
        raise RuntimeError(f"uv.lock pins no {', '.join(missing)}")
    return [pins[n] for n in names]


def _write_archive(spec: ImageSpec, tag: str, layers: list[Path], target: Path) -> int:
    """An OCI image layout archive with one manifest, named for containerd's importer."""
    blobs: dict[str, bytes | Path] = {}
    diff_ids, layer_descs = [], []
    size = 0
    for layer in layers:
        h = hashlib.sha256()
        with layer.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        digest = f"sha256:{h.hexdigest()}"
        layer_size = layer.stat().st_size
        size += layer_size
        diff_ids.append(digest)
        layer_descs.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": layer_size}
        )
        blobs[digest] = layer
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": spec.user,
            "Env": [f"{k}={v}" for k, v in spec.env.items()],
            "Entrypoint": spec.entrypoint,
            "ExposedPorts": {p: {} for p in spec.ports},
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest = f"sha256:{hashlib.sha256(config_bytes).hexdigest()}"
    blobs[config_digest] = config_bytes
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": layer_descs,
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    manifest_digest = f"sha256:{hashlib.sha256(manifest_bytes).hexdigest()}"
    blobs[manifest_digest] = manifest_bytes
    reference = f"{REGISTRY}/{spec.name}:{tag}"
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "annotations": {
                    "io.containerd.image.name": reference,
                    "org.opencontainers.image.ref.name": tag,
                },
            }
        ],
    }
    partial = target.with_suffix(".partial")
    with tarfile.open(partial, "w") as tar:

        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes("index.json", json.dumps(index).encode())
        for digest, blob in blobs.items():
            name = f"blobs/sha256/{digest.removeprefix('sha256:')}"
            if isinstance(blob, Path):
                tar.add(str(blob), name)
            else:
                add_bytes(name, blob)
    partial.rename(target)
    return size


def build(
    spec: ImageSpec, populate: Callable[[Path], dict[str, Path]] | None = None, sink: Sink | None = None
) -> BuiltImage:
    """Build (or reuse) an image: the package root filesystem plus what `populate(staging)` returns."""
    tag = _digest(
        spec.name.encode(),
        *(p.encode() for p in sorted(spec.packages)),
        json.dumps(spec.entrypoint).encode(),
        json.dumps(spec.env, sort_keys=True).encode(),
        spec.user.encode(),
        *spec.key_inputs,
        Path(__file__).read_bytes(),
    )
    target = _images_dir() / f"{spec.name}-{tag}.oci.tar"
    meta = target.with_suffix(".json")
    reference = f"{REGISTRY}/{spec.name}:{tag}"
    if target.exists() and meta.exists():
        return BuiltImage(reference, target, int(json.loads(meta.read_text())["size_bytes"]))
    started = time.monotonic()
    rootfs = rootfs_layer(spec.packages, sink)
    layers = [rootfs]
    staging = _images_dir() / f"{spec.name}-{tag}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        trees = populate(staging) if populate else {}
        if trees or spec.user != "0:0":
            extra = staging / "layer.tar"
            files = _system_files(rootfs) if spec.user != "0:0" else {}
            _extra_layer(
                extra, files, {"tmp": 0o1777, "opt": 0o755, "home": 0o755, "home/nonroot": 0o755}, trees
            )
            layers.append(extra)
        size = _write_archive(spec, tag, layers, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    meta.write_text(json.dumps({"reference": reference, "size_bytes": size}))
    _say(
        sink,
        f"[testenv] image {reference}: {size / 1e6:.0f} MB uncompressed, "
        f"built in {time.monotonic() - started:.0f}s",
    )
    return BuiltImage(reference, target, size)


def _project_inputs() -> tuple[bytes, ...]:
    """What the operator image is made of, for its tag: the lock, the project metadata and the code."""
    paths = [REPO_ROOT / "uv.lock", REPO_ROOT / "pyproject.toml", REPO_ROOT / "README.md", PRUNE_VENV]
    paths += sorted(p for p in (REPO_ROOT / "src").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return tuple(str(p.relative_to(REPO_ROOT)).encode() + b"\0" + p.read_bytes() for p in paths)


OPERATOR = ImageSpec(
    name="strongroom",
    packages=PYTHON_PACKAGES,
    entrypoint=OPERATOR_ENTRYPOINT,
    env=OPERATOR_ENV,
    ports=OPERATOR_PORTS,
)


def operator_image(sink: Sink | None = None) -> BuiltImage:
    """The operator image (the Dockerfile's layout), built from Debian packages and this checkout."""
    spec = ImageSpec(**{**OPERATOR.__dict__, "key_inputs": _project_inputs()})
    return build(spec, lambda staging: {VENV.lstrip("/"): build_venv(staging)}, sink)


def pause_image(sink: Sink | None = None) -> BuiltImage:
    """The pod sandbox image: Debian's catatonit in pause mode (reaps nothing, waits for a signal)."""
    spec = ImageSpec(
        name="pause", packages=("catatonit",), entrypoint=["/usr/bin/catatonit", "-P"], user="65535:65535"
    )
    return build(spec, None, sink)


def _manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    def blob(digest: str) -> dict[str, Any]:
        member = tar.extractfile(f"blobs/sha256/{digest.removeprefix('sha256:')}")
        assert member is not None
        data: dict[str, Any] = json.load(member)
        return data

    index_file = tar.extractfile("index.json")
    assert index_file is not None
    manifest = blob(json.load(index_file)["manifests"][0]["digest"])
    manifest["config_blob"] = blob(manifest["config"]["digest"])
    return manifest


def image_config(archive: Path) -> dict[str, Any]:
    """The `config` of an image archive written here (User, Env, Entrypoint, ExposedPorts)."""
    with tarfile.open(archive) as tar:
        config: dict[str, Any] = _manifest(tar)["config_blob"]["config"]
        return config


def image_files(archive: Path) -> set[str]:
    """Paths of the regular files and symlinks in all layers of an image archive written here."""
    names: set[str] = set()
    with tarfile.open(archive) as tar:
        for layer in _manifest(tar)["layers"]:
            member = tar.extractfile(f"blobs/sha256/{layer['digest'].removeprefix('sha256:')}")
            assert member is not None
            with tarfile.open(fileobj=member, mode="r|") as layer_tar:
                names.update(m.name for m in layer_tar if not m.isdir())
    return names


def unpack(archive: Path, target: Path) -> None:
    """Extract all layers of an image archive written here into `target` (its root filesystem)."""
    with tarfile.open(archive) as tar:
        for layer in _manifest(tar)["layers"]:
            member = tar.extractfile(f"blobs/sha256/{layer['digest'].removeprefix('sha256:')}")
            assert member is not None
            with tarfile.open(fileobj=member, mode="r|") as layer_tar:
                layer_tar.extractall(target, filter="tar")


WEB_APP = REPO_ROOT / "examples" / "app" / "web"
WEB_VENV = "/opt/web"


def web_image(sink: Sink | None = None) -> BuiltImage:
    """The example app's `web` workload (examples/app/web/server.py) with psycopg as uv.lock pins it."""
    requirements = locked_requirements("psycopg", "psycopg-binary", "typing-extensions")
    spec = ImageSpec(
        name="example-web",
        packages=PYTHON_PACKAGES,
        entrypoint=[f"{WEB_VENV}/bin/python", "/app/server.py"],
        env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"},
        ports=("8080/tcp",),
        key_inputs=(*(r.encode() for r in requirements), (WEB_APP / "server.py").read_bytes()),
    )

    def populate(staging: Path) -> dict[str, Path]:
        venv = build_venv(staging, requirements, project=False, path=WEB_VENV)
        return {WEB_VENV.lstrip("/"): venv, "app": WEB_APP}

    return build(spec, populate, sink)
