"""Template-driver renders in worker processes, each call with a hard time limit and a memory cap.

Templates come from tenants, and the operator is one process serving every namespace: a render that runs
on the event loop blocks every controller for as long as it takes, and one that allocates without bound
takes the pod (and everyone's reconciles) down with it. The engine's own limits are cooperative — checked
between function calls — so a single call that is slow in C (`regexMatch` over `repeat 200000`) or a
YAML document whose aliases expand nine-fold per level get past them. So every Template-driver call is sent to
a small pool of worker processes:

- **time**: the whole call (every template rendered and parsed) must answer within `timeout_seconds` of
  wall-clock time; otherwise the worker is killed (SIGKILL) and replaced, and the call fails with
  `TemplateLimitExceeded`. Waiting for a free worker does not count;
- **memory**: a worker's address space is capped (`RLIMIT_AS`) at `memory_bytes`, so an allocation past
  it fails inside the worker (a `MemoryError`, or the worker dying), never the operator;
- **CPU**: a worker runs at `RENDER_NICENESS` (10): while a render burns its time limit, the operator's
  event loop, which serves every namespace, gets the CPU first (in a pod the two share the container's
  CPU; the kernel gives a nice-0 process about nine times the share of a nice-10 one). A render that
  waits for the CPU still has only its wall-clock limit;
- the event loop only awaits: each call waits in one of `workers` threads (a dedicated executor, not the
  loop's default one, which aiohttp needs for DNS), so a slow render holds a thread and a worker, nothing
  else. The pool works from any event loop (the CLI runs one per command).

Requests and results cross the process boundary as length-prefixed JSON on the worker's stdin/stdout:
never pickle (a worker that renders hostile templates must not be able to make the operator run code by
what it answers), and secrets travel as plain strings only on this pipe. A worker starts with an empty
environment (the operator's holds credentials) and its stderr goes nowhere (a traceback could quote a
value).

Run as `python -m strongroom.drivers.sandbox --memory BYTES --timeout SECONDS`: the worker loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Final

#: Frames are an 8-byte big-endian length, then that many bytes of UTF-8 JSON.
_HEADER: Final = struct.Struct(">Q")
#: Largest answer the operator reads from a worker; the engine's output limit keeps real ones far below.
MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024
#: How long a new worker may take to import the engine and say it is ready (not part of a call's time).
STARTUP_SECONDS: Final = 60.0

DEFAULT_TIMEOUT_SECONDS: Final = 5.0
# Two workers at their cap plus the operator itself (~150 MiB at a few thousand objects) stay below the
# chart's 512Mi container limit: pool workers count against the pod's memory like the operator does.
DEFAULT_MEMORY_BYTES: Final = 128 * 1024 * 1024
DEFAULT_WORKERS: Final = 2
#: How much lower than the operator's a worker's CPU priority is (nice(2): 0 to 19).
RENDER_NICENESS: Final = 10
#: Below this the worker cannot even import the engine (its own address space at rest is ~45 MiB).
MIN_MEMORY_BYTES: Final = 96 * 1024 * 1024

_READY: Final = b'{"ready":true}'


_UNITS: Final = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "K": 1000, "M": 1000**2, "G": 1000**3}


def parse_bytes(text: str) -> int:
    """A byte count in Kubernetes quantity units: `134217728`, `128Mi`, `1Gi`, `500M`."""
    match = re.fullmatch(r"([0-9]+)(Ki|Mi|Gi|K|M|G)?", text.strip())
    if match is None:
        raise ValueError(f"not a byte count: {text!r} (expected e.g. 128Mi, 1Gi)")
    return int(match[1]) * _UNITS[match[2] or ""]


def format_bytes(size: int) -> str:
    """A byte count the way the flags take it: `256Mi`, `1Gi`, or plain bytes."""
    for unit, factor in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


@dataclass(frozen=True)
class SandboxLimits:
    """Bounds on Template-driver calls (operator flags `--template-timeout`, `--template-memory`,
    `--template-workers`)."""

    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    workers: int = DEFAULT_WORKERS

    def __post_init__(self) -> None:
        if self.timeout_seconds <= 0:
            raise ValueError("the template timeout must be > 0")
        if self.memory_bytes < MIN_MEMORY_BYTES:
            raise ValueError(f"the template memory limit must be at least {format_bytes(MIN_MEMORY_BYTES)}")
        if self.workers < 1:
            raise ValueError("at least one template worker is needed")


class SandboxLimitExceeded(Exception):
    """A call went past the time limit, or its worker died (the memory cap, most likely)."""


class SandboxUnavailable(Exception):
    """No worker could be started, or the pool is closed."""


# --- Frames -----------------------------------------------------------------------------------------------


def _frame(document: Any) -> bytes:
    body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    return _HEADER.pack(len(body)) + body


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise EOFError
    return data


# --- The parent's side ------------------------------------------------------------------------------------


class _Worker:
    """One worker process and the pipes to it."""

    def __init__(self, limits: SandboxLimits) -> None:
        env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "strongroom.drivers.sandbox",
                "--memory",
                str(limits.memory_bytes),
                "--timeout",
                repr(limits.timeout_seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**env, "LC_ALL": "C.UTF-8"},
            close_fds=True,
        )
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.stdin: IO[bytes] = self.process.stdin
        self.stdout_fd = self.process.stdout.fileno()
        os.set_blocking(self.stdout_fd, False)
        self.ready = False

    def wait_ready(self) -> None:
        if not self.ready:
            if self._receive(time.monotonic() + STARTUP_SECONDS) != _READY:
                raise EOFError
            self.ready = True

    def call(self, request: bytes, timeout: float) -> bytes:
        """Send one request; the answer, or TimeoutError/EOFError (the worker is then unusable)."""
        self.stdin.write(request)
        self.stdin.flush()
        return self._receive(time.monotonic() + timeout)

    def _receive(self, deadline: float) -> bytes:
        header = self._read(_HEADER.size, deadline)
        (size,) = _HEADER.unpack(header)
        if size > MAX_ANSWER_BYTES:
            raise EOFError
        return self._read(size, deadline)

    def _read(self, size: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        missing = size
        while missing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            readable, _, _ = select.select([self.stdout_fd], [], [], remaining)
            if not readable:
                raise TimeoutError
            try:
                chunk = os.read(self.stdout_fd, min(missing, 1 << 20))
            except BlockingIOError:
                continue
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class RenderPool:
    """Up to `limits.workers` worker processes, started on first use and replaced when killed."""

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._executor = ThreadPoolExecutor(
            max_workers=self.limits.workers, thread_name_prefix="strongroom-render"
        )
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False
        #: Workers killed at the time limit or found dead (tests and metrics read it).
        self.replaced = 0
        # Calls of one group (a namespace) may use all workers but one: whatever one tenant's templates
        # do, a render process stays free for the others. Calls beyond wait here, not in the executor's
        # queue, where they would stand before every other group's.
        self.group_limit = max(1, self.limits.workers - 1)
        self._groups: dict[str, tuple[asyncio.Semaphore, int]] = {}

    async def call(self, request: Mapping[str, Any], group: str = "") -> Any:
        """Run one request in a worker; its JSON answer. Raises SandboxLimitExceeded, SandboxUnavailable.
        `group` (the namespace): at most `group_limit` calls of one group run at once."""
        if self._closed:
            raise SandboxUnavailable("the template render pool is closed")
        payload = _frame(request)
        loop = asyncio.get_running_loop()
        semaphore, users = self._groups.get(group) or (asyncio.Semaphore(self.group_limit), 0)
        self._groups[group] = (semaphore, users + 1)
        try:
            async with semaphore:
                answer = await loop.run_in_executor(self._executor, self._call, payload)
        finally:
            semaphore, users = self._groups[group]
            if users == 1:
                del self._groups[group]  # no state kept for namespaces that render nothing now
            else:
                self._groups[group] = (semaphore, users - 1)
        return json.loads(answer)

    def _call(self, payload: bytes) -> bytes:
        worker = self._take()
        try:
            answer = worker.call(payload, self.limits.timeout_seconds)
        except TimeoutError:
            self._discard(worker)
            raise SandboxLimitExceeded(
                f"rendering took longer than the limit of {self.limits.timeout_seconds:g}s of wall-clock "
                "time for one driver call (--template-timeout); the render was stopped"
            ) from None
        except (EOFError, OSError):
            self._discard(worker)
            if self._closed:
                raise SandboxUnavailable("the operator is shutting down") from None
            raise SandboxLimitExceeded(
                "the render process ended abruptly, most likely at its memory limit of "
                f"{format_bytes(self.limits.memory_bytes)} (--template-memory)"
            ) from None
        self._give_back(worker)
        return answer

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise SandboxUnavailable("the template render pool is closed")
            worker = self._idle.pop() if self._idle else None
            if worker is None:
                worker = self._start()
            self._busy.add(worker)
        try:
            worker.wait_ready()
        except (EOFError, OSError, TimeoutError):
            self._discard(worker, replace=False)
            raise SandboxUnavailable("a template render process could not be started") from None
        return worker

    def _start(self) -> _Worker:
        try:
            return _Worker(self.limits)
        except OSError as exc:
            raise SandboxUnavailable(f"cannot start a template render process: {exc.strerror}") from None

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._busy.discard(worker)
            if self._closed:
                worker.kill()
            else:
                self._idle.append(worker)

    def _discard(self, worker: _Worker, *, replace: bool = True) -> None:
        worker.kill()
        with self._lock:
            self._busy.discard(worker)
            if replace and not self._closed:
                self.replaced += 1
                # Started now, so the next call finds it importing or ready rather than waiting for it.
                with contextlib.suppress(SandboxUnavailable):
                    self._idle.append(self._start())

    def pids(self) -> list[int]:
        """Process ids of the workers (tests)."""
        with self._lock:
            return [w.process.pid for w in (*self._idle, *self._busy)]

    def close(self) -> None:
        """Kill every worker; calls in flight fail with SandboxUnavailable."""
        with self._lock:
            self._closed = True
            workers = [*self._idle, *self._busy]
            self._idle.clear()
        for worker in workers:
            worker.kill()
        self._executor.shutdown(wait=False, cancel_futures=True)


# --- The worker's side ------------------------------------------------------------------------------------


def _cap_memory(memory_bytes: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def serve(handle: Callable[[Any], Any], stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """Answer requests until stdin closes: one JSON answer per JSON request."""
    stdout.write(_HEADER.pack(len(_READY)) + _READY)
    stdout.flush()
    while True:
        header = stdin.read(_HEADER.size)
        if len(header) != _HEADER.size:
            return
        (size,) = _HEADER.unpack(header)
        request = json.loads(_read_exactly(stdin, size))
        stdout.write(_frame(handle(request)))
        stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m strongroom.drivers.sandbox")
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    _cap_memory(args.memory)
    os.nice(RENDER_NICENESS)
    # Imported under the cap: what the engine needs at rest counts against it like any render.
    from strongroom.drivers.template import answer

    limits = SandboxLimits(timeout_seconds=args.timeout, memory_bytes=args.memory)
    # Frames go out on a copy of stdout; stdout itself then points where stderr does (nowhere), so a stray
    # print anywhere below cannot corrupt the framing.
    frames = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(lambda request: answer(request, limits), sys.stdin.buffer, frames)


if __name__ == "__main__":
    main()
