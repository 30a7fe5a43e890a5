"""What the benchmarks share: a fresh test environment, a lightkube client, watches, RSS, tables."""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import statistics
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from lightkube import AsyncClient, KubeConfig, codecs
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource

import testenv

T = TypeVar("T")

SecretMappingRes = create_namespaced_resource("strongroom.dev", "v1alpha1", "SecretMapping", "secretmappings")
SecretStoreRes = create_namespaced_resource("strongroom.dev", "v1alpha1", "SecretStore", "secretstores")


def client_for(kubeconfig: Path) -> AsyncClient:
    # lightkube's 10 s default is too short for a deletecollection of 5000 objects on a busy API server.
    return AsyncClient(KubeConfig.from_file(kubeconfig), field_manager="bench", timeout=httpx2.Timeout(120.0))


async def ensure_namespace(client: AsyncClient, name: str) -> None:
    try:
        namespace: Any = codecs.from_dict(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        )
        await client.create(namespace)
    except ApiError as exc:
        if exc.status.code != 409:
            raise


async def bounded(items: Iterable[Any], action: Callable[[Any], Awaitable[None]], concurrency: int) -> float:
    """Run `action` over `items` with at most `concurrency` in flight; return elapsed seconds."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: Any) -> None:
        async with semaphore:
            await action(item)

    started = time.perf_counter()
    await asyncio.gather(*(one(item) for item in items))
    return time.perf_counter() - started


class ReadyWatch:
    """Records when each object of one kind in a namespace first reports Ready=True (via a watch)."""

    def __init__(self, client: AsyncClient, resource: type[Any], namespace: str) -> None:
        self.client, self.resource, self.namespace = client, resource, namespace
        self.ready_at: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            try:
                async for _, item in self.client.watch(self.resource, namespace=self.namespace):
                    found: Any = item
                    name: str = found.metadata.name
                    if name not in self.ready_at and self.reached(found):
                        self.ready_at[name] = time.perf_counter()
            except (httpx2.HTTPError, ApiError):
                # A busy API server may refuse the watch (429): watch again; it lists everything first.
                await asyncio.sleep(0.5)

    def reached(self, found: Any) -> bool:
        """Whether an object is in the state waited for (here: Ready=True)."""
        conditions = (found.status or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def wait_for(self, names: set[str], limit: float) -> float:
        """Wait until all `names` are Ready; return when the last one became Ready."""
        deadline = time.perf_counter() + limit
        while not names <= self.ready_at.keys():
            if time.perf_counter() > deadline:
                missing = len(names - self.ready_at.keys())
                raise TimeoutError(f"{missing} of {len(names)} objects not Ready after {limit:.0f}s")
            await asyncio.sleep(0.05)
        return max(self.ready_at[n] for n in names)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc; 0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


class CpuMeter:
    """CPU seconds each named process spends between `start` and `stop`: where the time of a run goes."""

    def __init__(self, processes: Mapping[str, int]) -> None:
        self.processes = dict(processes)
        self._before: dict[str, float] = {}

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self.processes.items()}

    def stop(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self._before[name] for name, pid in self.processes.items()}

    async def measure(self, work: Awaitable[T]) -> tuple[T, dict[str, float]]:
        """`work`'s result and the CPU seconds each process spent while it ran."""
        self.start()
        result = await work
        return result, self.stop()

    @staticmethod
    def describe(used: Mapping[str, float]) -> str:
        return ", ".join(f"{name} {seconds:.2f}" for name, seconds in used.items())


def environment_processes(env: testenv.Environment) -> dict[str, int]:
    """Every server process of a test environment by name, plus this benchmark's own process."""
    found = {proc.name: proc.pid for service in env.services.values() for proc in service.processes}
    found["bench client"] = os.getpid()
    return found


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def metric_sum(metrics_text: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus metric's samples whose labels include `labels`."""
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def apiserver_requests(info: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """The apiserver's request counters so far, by (verb, resource), read from its /metrics."""
    ctx = ssl.create_default_context(cafile=info["ca"])
    ctx.load_cert_chain(info["admin_cert"], info["admin_key"])
    with urllib.request.urlopen(f"{info['server']}/metrics", context=ctx, timeout=10) as resp:  # noqa: S310
        text: str = resp.read().decode()
    counts: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        key = (labels.get("verb", ""), labels.get("resource", ""))
        counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def requests_between(
    before: Mapping[tuple[str, str], float], after: Mapping[tuple[str, str], float], per: int
) -> str:
    """The requests made between two `apiserver_requests` readings, per object, largest first."""
    made = {key: after[key] - before.get(key, 0.0) for key in after}
    shown = sorted(((n, key) for key, n in made.items() if n >= per / 10), reverse=True)
    return ", ".join(f"{verb} {resource} {n / per:.2f}" for n, (verb, resource) in shown)


@dataclass
class Row:
    measure: str
    value: str
    target: str = ""
    note: str = ""


def print_table(title: str, rows: Sequence[Row]) -> None:
    headers = ("measure", "value", "target", "note")
    cells = [headers, *((r.measure, r.value, r.target, r.note) for r in rows)]
    widths = [max(len(str(c[i])) for c in cells) for i in range(4)]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
