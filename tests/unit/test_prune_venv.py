"""container/prune_venv.py, run as the Dockerfile and testenv.image run it, on a small virtualenv."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml._yaml

from testenv.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "container" / "prune_venv.py"
KEPT_SERVICES = ("secretsmanager", "sts", "sso", "sso-oidc", "signin")


def _write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _venv(root: Path, services: tuple[str, ...] = (*KEPT_SERVICES, "ec2", "s3")) -> Path:
    site = root / "lib" / "python3.11" / "site-packages"
    data = site / "botocore" / "data"
    for name in ("endpoints.json", "partitions.json", "_retry.json", "sdk-default-configuration.json"):
        _write(data / name, "{}")
    for service in services:
        _write(data / service / "2020-01-01" / "service-2.json.gz")
    for version in ("secretmanager_v1", "secretmanager_v1beta1", "secretmanager_v1beta2"):
        _write(site / "google" / "cloud" / version / "__init__.py")
    _write(site / "aioitertools" / "tests" / "test_core.py")
    _write(site / "aioitertools" / "tests" / "__pycache__" / "test_core.cpython-311.pyc")
    _write(site / "aioitertools" / "__init__.py")
    _write(site / "aioitertools" / "__init__.pyi")
    _write(site / "aiohttp" / "_http_parser.pyx")
    _write(site / "google" / "rpc" / "status.proto")
    _write(site / "google" / "rpc" / "status_pb2.py")
    return site


def _prune(venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(venv)], capture_output=True, text=True, check=False
    )


def test_keeps_what_runs_and_removes_the_rest(tmp_path: Path) -> None:
    site = _venv(tmp_path)
    result = _prune(tmp_path)
    assert result.returncode == 0, result.stderr
    data = site / "botocore" / "data"
    assert sorted(p.name for p in data.iterdir() if p.is_dir()) == sorted(KEPT_SERVICES)
    assert (data / "sts" / "2020-01-01" / "service-2.json.gz").is_file()
    assert (data / "endpoints.json").is_file()
    assert (data / "partitions.json").is_file()
    assert (data / "_retry.json").is_file()
    assert sorted(p.name for p in (site / "google" / "cloud").iterdir()) == ["secretmanager_v1"]
    assert not (site / "aioitertools" / "tests").exists()
    assert (site / "aioitertools" / "__init__.py").is_file()
    assert not (site / "aioitertools" / "__init__.pyi").exists()
    assert not (site / "aiohttp" / "_http_parser.pyx").exists()
    assert not (site / "google" / "rpc" / "status.proto").exists()
    assert (site / "google" / "rpc" / "status_pb2.py").is_file()
    assert "botocore service models" in result.stderr


def test_strips_extension_modules_which_still_load(tmp_path: Path) -> None:
    site = _venv(tmp_path)
    original = Path(yaml._yaml.__file__ or "")
    module = site / "yaml" / original.name
    module.parent.mkdir()
    shutil.copyfile(original, module)
    result = _prune(tmp_path)
    assert result.returncode == 0, result.stderr
    assert module.stat().st_size < original.stat().st_size
    load = (
        "import importlib.util, sys; "
        "spec = importlib.util.spec_from_file_location('yaml._yaml', sys.argv[1]); "
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
        "print(module.CParser.__name__)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", load, str(module)], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "CParser"


def test_a_botocore_without_a_needed_model_is_an_error(tmp_path: Path) -> None:
    site = _venv(tmp_path, services=("secretsmanager", "ec2"))
    result = _prune(tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "prune_venv: botocore has no model for signin, sso, sso-oidc, sts"
    ]
    assert (site / "botocore" / "data" / "ec2").is_dir()  # nothing removed


def test_not_a_virtualenv_is_an_error(tmp_path: Path) -> None:
    result = _prune(tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip() == f"prune_venv: expected one site-packages under {tmp_path}, found 0"
