"""Start, probe and stop the local servers of the test environment by PID.

Every server binds 127.0.0.1 on a port chosen here. Each runs in its own process group so that
stopping it also stops whatever it spawned, and its output goes to a log file that is shown when
it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# The address every testenv server binds and advertises: loopback, unless STRONGROOM_TESTENV_HOST names
# another address of this machine. `--node` sets it to the host's address on the pod bridge
# (testenv.node.NODE_HOST), so that pods reach the same URLs the host shell uses. Read once at import.
LOOPBACK = os.environ.get("STRONGROOM_TESTENV_HOST", "127.0.0.1")


class StartupError(RuntimeError):
    """A server did not become ready; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def tcp_open(port: int, host: str = LOOPBACK) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def http_ok(url: str, context: ssl.SSLContext | None = None, ok_statuses: Sequence[int] = (200,)) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310 (loopback URL we built)
            return int(resp.status) in ok_statuses
    except urllib.error.HTTPError as exc:
        return exc.code in ok_statuses
    except (OSError, ValueError):
        return False


def fetch_text(url: str, timeout: float = 5.0) -> str:
    """The body of a GET of a plain-http URL (a server's /metrics)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback URL we built)
        text: str = resp.read().decode()
        return text


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers signal 0; reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group of `pid`, then SIGKILL what is left after `timeout`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
            if sig == signal.SIGTERM:
                os.killpg(pid, signal.SIGCONT)  # a paused (SIGSTOPped) server only sees SIGTERM once resumed
        deadline = time.monotonic() + (timeout if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.05)


@dataclass
class ManagedProcess:
    """One server process started by testenv."""

    name: str
    argv: list[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    pid: int = 0
    # The probe of the last successful `wait_ready`: `restart` waits on it again.
    ready_probe: Callable[[], bool] | None = field(default=None, repr=False)
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        if self.env:
            full_env.update(self.env)
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=self.cwd,
                start_new_session=True,  # own process group: stop_pid() takes children too
            )
        self.pid = self._popen.pid
        return self

    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return self.pid > 0 and pid_alive(self.pid)

    @property
    def exit_code(self) -> int | None:
        """The exit status once a process started here ended (None while it runs)."""
        return self._popen.poll() if self._popen is not None else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                self.ready_probe = probe
                return
            if not self.alive():
                raise StartupError(f"{self.name} exited during start-up; last log lines:\n{self.log_tail()}")
            time.sleep(0.1)
        self.stop()
        raise StartupError(f"{self.name} not ready after {timeout:.0f}s; last log lines:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        if self.pid:
            stop_pid(self.pid, timeout)
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=1)

    def restart(self, timeout: float = 90.0) -> None:
        """Start again after `stop()`: same argv, so the same ports and data directory; the log is appended
        to. Waits on the probe the first start was ready by (fault tests: a server down, then back)."""
        probe = self.ready_probe
        if probe is None:
            raise RuntimeError(f"{self.name} was never ready; nothing to restart")
        if self.alive():
            raise RuntimeError(f"{self.name} is still running; stop it first")
        self.start()
        self.wait_ready(probe, timeout=timeout)

    def pause(self) -> None:
        """SIGSTOP the process group: the port stays bound and the kernel still accepts connections, but
        nothing answers (a server that hangs, or a network that drops every reply)."""
        os.killpg(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.pid, signal.SIGCONT)
