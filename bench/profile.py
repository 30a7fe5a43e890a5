"""Where an operator's CPU goes during a benchmark figure: py-spy samples, summarised by what the code does.

py-spy is not a project dependency (it is a sampling profiler, used by hand): install it anywhere
(`python3 -m pip install --target /tmp/pyspy py-spy`) and put it on PATH or in STRONGROOM_PYSPY. A benchmark
given `--profile DIR` records the operator during its main figure (`Profile`) and prints the summary
below its table; `python -m bench.profile FILE...` summarises recorded files again.

Each sample is one stack (py-spy's raw format: frames joined by `;`, then the count). A sample counts for
the first category, in `CATEGORIES` order, one of whose markers appears in any of its frames: the most
specific work first (a JSON decode inside a watch is the watch's), the event loop's own bookkeeping last.
Only samples of the thread running the event loop and of the render workers are recorded (`--idle` off:
a waiting thread is not work).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

# (category, markers in a frame's text): the first category with a marker in any frame of a sample wins.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("imports", ("_find_and_load",)),
    ("watch events: read, decode, hand to controllers", ("listwatch.py",)),
    ("drift watch (owned objects)", ("owned.py",)),
    ("store reads (Vault, AWS, GCP, Azure, Kubernetes)", ("strongroom/stores/",)),
    ("Events (operator/events.py)", ("strongroom/operator/events.py",)),
    ("Kubernetes requests: build, send, parse the answer", ("kubejson.py", "lightkube/", "httpx2/")),
    (
        "reconcile logic (reconcile/, controllers)",
        ("strongroom/reconcile/", "strongroom/operator/controllers/"),
    ),
    ("work queue, slots, timers", ("workqueue.py", "slots.py")),
    ("metrics and logging", ("prometheus_client/", "logging/__init__.py", "pythonjsonlogger")),
    (
        "aiohttp and sockets (connection I/O)",
        ("aiohttp/", "asyncio/selector_events.py", "asyncio/sslproto.py", "ssl.py"),
    ),
    ("event loop and other", ("",)),
)


def pyspy() -> str | None:
    return os.environ.get("STRONGROOM_PYSPY") or shutil.which("py-spy")


class Profile:
    """py-spy recording one process into `path` (raw format) between `start` and `stop`; does nothing
    (and says so) when py-spy is not installed."""

    def __init__(self, pid: int, path: Path, rate: int = 200) -> None:
        self.pid = pid
        self.path = path
        self.rate = rate
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = pyspy()
        if binary is None:
            print("[profile] py-spy not found (PATH or STRONGROOM_PYSPY): not profiling")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(self.pid),
                "--format",
                "raw",
                "--rate",
                str(self.rate),
                "--nonblocking",
                "--subprocesses",
                "--output",
                str(self.path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> Path | None:
        if self._process is None:
            return None
        self._process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._process = None
        return self.path if self.path.exists() else None


def categorise(stack: str) -> str:
    for category, markers in CATEGORIES:
        if any(marker in stack for marker in markers):
            return category
    return CATEGORIES[-1][0]


def summarise(paths: Iterable[Path]) -> list[tuple[str, int, float]]:
    """(category, samples, share) in `CATEGORIES` order, over every sample of the raw files."""
    counts: Counter[str] = Counter()
    for path in paths:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                counts[categorise(stack)] += int(count)
    total = sum(counts.values()) or 1
    return [(name, counts[name], counts[name] / total) for name, _ in CATEGORIES if counts[name]]


def format_summary(rows: Sequence[tuple[str, int, float]], title: str) -> str:
    total = sum(samples for _, samples, _ in rows)
    lines = [
        f"{title} ({total} samples)",
        "| where the operator's CPU went | samples | share |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {samples} | {share:.0%} |" for name, samples, share in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("files", nargs="+", type=Path, help="py-spy raw files")
    args = parser.parse_args()
    print(format_summary(summarise(args.files), ", ".join(str(p) for p in args.files)))


if __name__ == "__main__":
    main()
