"""PostgreSQL from Debian's packages, one throw-away cluster per start.

`initdb` creates the cluster with a superuser `strongroom` and a random password; `postgres` listens
on 127.0.0.1:<port> (password auth, scram-sha-256) and on a unix socket in a private directory
(trust). fsync is off: the data is disposable and this makes start-up and DDL fast.

PostgreSQL refuses to run as root. When testenv runs as root (CI does), the server runs as the
`postgres` system user that the Debian package creates, and the data directory `workdir/data` is
handed to that user. If that user cannot reach `workdir` (pytest's /tmp/pytest-of-root is 0700), the
data lives in a fresh directory under the system temp dir instead, `workdir/data` links to it, and
stopping the service removes it (stopping by PID alone, as `python -m testenv down` does, leaves it).

Exports:
    PGHOST=127.0.0.1, PGPORT, PGUSER, PGPASSWORD, PGDATABASE=postgres
    DATABASE_URL  postgresql://<user>:<password>@127.0.0.1:<port>/postgres
Info: host, port, user, password, database, dsn, data_dir, socket_dir, version.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from testenv.process import LOOPBACK, ManagedProcess, free_port
from testenv.service import Service
from testenv.stores._common import progress

SUPERUSER = "strongroom"
DATABASE = "postgres"
# The account Debian's postgresql-common creates; used only when we are root.
SYSTEM_USER = "postgres"
PG_LIB = Path("/usr/lib/postgresql")


def bin_dir() -> Path | None:
    """The newest /usr/lib/postgresql/<major>/bin that has a server, or None if none is installed."""
    if not PG_LIB.is_dir():
        return None
    candidates = [p / "bin" for p in PG_LIB.iterdir() if (p / "bin" / "postgres").exists()]
    candidates.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return candidates[-1] if candidates else None


def install() -> None:
    """Install Debian's `postgresql` if no server is present (needs root); a no-op otherwise."""
    found = bin_dir()
    if found is not None:
        progress(f"postgres: {found} present")
        return
    if os.geteuid() != 0:
        raise RuntimeError("PostgreSQL is not installed; run `apt-get install -y postgresql` as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    progress("postgres: apt-get update")
    subprocess.run(["apt-get", "update"], check=True, env=env)
    progress("postgres: apt-get install -y postgresql")
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "postgresql"], check=True, env=env)
    if bin_dir() is None:
        raise RuntimeError(f"apt-get installed postgresql but no server binary is under {PG_LIB}")


def _require_bin_dir() -> Path:
    found = bin_dir()
    if found is None:
        raise RuntimeError("PostgreSQL is not installed; run `python -m testenv install` (as root)")
    return found


@dataclass
class _Postgres(ManagedProcess):
    """The postmaster, stopped with a fast shutdown, then its temporary data directory removed."""

    remove_on_stop: Path | None = None
    link_on_stop: Path | None = None

    def stop(self, timeout: float = 10.0) -> None:
        # SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client to disconnect;
        # SIGINT ("fast") rolls back open sessions and exits at once.
        if self.pid and self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGINT)
            deadline = time.monotonic() + 5
            while self.alive() and time.monotonic() < deadline:
                time.sleep(0.05)
        super().stop(timeout)
        if self.remove_on_stop is not None:
            shutil.rmtree(self.remove_on_stop, ignore_errors=True)
        if self.link_on_stop is not None and self.link_on_stop.is_symlink():
            self.link_on_stop.unlink()


def _reachable_by_others(path: Path) -> bool:
    """Whether another user (the `postgres` account) can traverse every directory down to `path`."""
    resolved = path.resolve()
    return all(p.stat().st_mode & stat.S_IXOTH for p in (resolved, *resolved.parents))


def _clear(path: Path) -> None:
    """Remove what a previous start left at `path` (a directory, or the link to a temporary one)."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _fresh_dir(path: Path) -> Path:
    _clear(path)
    path.mkdir()
    return path


def start(workdir: Path) -> Service:
    workdir.mkdir(parents=True, exist_ok=True)
    pg_bin = _require_bin_dir()
    as_root = os.geteuid() == 0
    password = secrets.token_hex(16)
    port = free_port()

    link: Path | None = None
    temporary = False
    if as_root:
        owner = pwd.getpwnam(SYSTEM_USER)
        if _reachable_by_others(workdir):
            root = _fresh_dir(workdir / "data")
        else:
            root = Path(tempfile.mkdtemp(prefix="strongroom-pg-"))
            temporary = True
            link = workdir / "data"
            _clear(link)
            link.symlink_to(root, target_is_directory=True)
        os.chown(root, owner.pw_uid, owner.pw_gid)
        # setpriv execs in place (unlike runuser/su), so the PID we track is the postmaster itself.
        run_as = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--init-groups", "--"]
    else:
        root = _fresh_dir(workdir / "data")
        run_as = []

    data, socket_dir, pwfile = root / "pgdata", root / "socket", root / "pwfile"
    try:
        socket_dir.mkdir()
        pwfile.write_text(password + "\n")
        if as_root:
            for path in (socket_dir, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        pwfile.chmod(0o600)
        initdb_log = workdir / "initdb.log"
        with initdb_log.open("wb") as log:
            result = subprocess.run(
                [
                    *run_as,
                    str(pg_bin / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=root,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {result.returncode}):\n{initdb_log.read_text()[-3000:]}")
        if not LOOPBACK.startswith("127."):
            # With a node (testenv.node) pods log in too, from the bridge's subnet: password auth as on
            # loopback. `samenet`: the subnets of this machine's own addresses, the pod bridge included.
            with (data / "pg_hba.conf").open("a") as hba:
                hba.write("host all all samenet scram-sha-256\n")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        if link is not None:
            _clear(link)
        raise
    finally:
        pwfile.unlink(missing_ok=True)

    proc = _Postgres(
        "postgres",
        [
            *run_as,
            str(pg_bin / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            f"listen_addresses={LOOPBACK}",
            "-c",
            f"unix_socket_directories={socket_dir}",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ],
        workdir / "postgres.log",
        cwd=root,
        remove_on_stop=root if temporary else None,
        link_on_stop=link,
    ).start()
    service = Service("postgres", [proc])

    def ready() -> bool:
        argv = [str(pg_bin / "pg_isready"), "-q", "-h", LOOPBACK, "-p", str(port), "-U", SUPERUSER]
        probe = subprocess.run([*argv, "-d", DATABASE], check=False)
        return probe.returncode == 0

    try:
        proc.wait_ready(ready, timeout=60)
    except Exception:
        service.stop()
        raise

    dsn = f"postgresql://{SUPERUSER}:{password}@{LOOPBACK}:{port}/{DATABASE}"
    service.env = {
        "PGHOST": LOOPBACK,
        "PGPORT": str(port),
        "PGUSER": SUPERUSER,
        "PGPASSWORD": password,
        "PGDATABASE": DATABASE,
        "DATABASE_URL": dsn,
    }
    version_match = re.search(r"/(\d+)/bin$", str(pg_bin))
    service.info = {
        "host": LOOPBACK,
        "port": port,
        "user": SUPERUSER,
        "password": password,
        "database": DATABASE,
        "dsn": dsn,
        "data_dir": str(data),
        "socket_dir": str(socket_dir),
        "bin_dir": str(pg_bin),  # psql & co., for the PATH the demo prints
        "version": version_match.group(1) if version_match else "",
    }
    return service
