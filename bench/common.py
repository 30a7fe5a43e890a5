"""What the benchmarks share: a fresh test environment, a lightkube client, watches, RSS, tables."""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import statistics
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
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


async def watch_objects(client: AsyncClient, resource: type[Any], namespace: str) -> AsyncIterator[Any]:
    """Every object of a watch, for good: a watch the API server refuses with 429 (its watch cache of a
    kind whose CRD was just installed is still filling, or a busy one) is opened again; it lists everything
    first."""
    while True:
        try:
            async for _, item in client.watch(resource, namespace=namespace):
                yield item
        except (httpx2.HTTPError, ApiError):
            await asyncio.sleep(0.5)


class ReadyWatch:
    """Records when each object of one kind in a namespace first reports Ready=True (via a watch)."""

    def __init__(self, client: AsyncClient, resource: type[Any], namespace: str) -> None:
        self.client, self.resource, self.namespace = client, resource, namespace
        self.ready_at: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async for item in watch_objects(self.client, self.resource, self.namespace):
            found: Any = item
            name: str = found.metadata.name
            if name not in self.ready_at and self.reached(found):
                self.ready_at[name] = time.perf_counter()

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


async def wait_count(counter: Callable[[], float], target: float, limit: float, what: str) -> None:
    """Wait until `counter()` (a metric, a count of reads...) reaches `target`."""
    deadline = time.perf_counter() + limit
    while (now := counter()) < target:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: {now:.0f} of {target:.0f} after {limit:.0f} s")
        await asyncio.sleep(0.25)


def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process ever had."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (empty if the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc; 0 if it is gone)."""
    fields = _stat(pid)
    if not fields:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its descendants: those running now, and those that ended and were
    waited for (the operator's template render workers, replaced after a timeout)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))  # ppid
    fields = _stat(pid)
    if not fields:
        return 0.0
    total = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime: reaped children
    pending = [pid]
    while pending:
        current = pending.pop()
        total += cpu_seconds(current)
        pending.extend(children.get(current, ()))
    return total


class CpuMeter:
    """CPU seconds each named process spends between `start` and `stop`: where the time of a run goes.
    Those named in `trees` count with their descendants (an operator's worker processes)."""

    def __init__(self, processes: Mapping[str, int], trees: Collection[str] = ()) -> None:
        self.processes = dict(processes)
        self.trees = frozenset(trees)
        self._before: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        return {
            name: (tree_cpu_seconds if name in self.trees else cpu_seconds)(pid)
            for name, pid in self.processes.items()
        }

    def start(self) -> None:
        self._before = self._now()

    def stop(self) -> dict[str, float]:
        return {name: seconds - self._before[name] for name, seconds in self._now().items()}

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
    return format_per_object({key: after[key] - before.get(key, 0.0) for key in after}, per)


def format_per_object(counts: Mapping[tuple[str, str], float], per: int) -> str:
    """Request counts by (verb, resource) as "verb resource n" per object, largest first, those under 0.1
    per object left out."""
    shown = sorted(((n, key) for key, n in counts.items() if n >= per / 10), reverse=True)
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


# --- an idle machine --------------------------------------------------------------------------------------


def cpu_ticks() -> tuple[int, int]:
    """All CPUs' ticks so far: (working, total); working excludes idle and waiting on I/O."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def busy_since(before: tuple[int, int]) -> float:
    """The fraction of all CPUs' time spent working since `before` (a `cpu_ticks()`)."""
    busy_after, total_after = cpu_ticks()
    return (busy_after - before[0]) / max(1, total_after - before[1])


def machine_busy(window: float = 5.0) -> float:
    """The fraction of all CPUs' time spent working (not idle or waiting on I/O) over `window` seconds."""
    before = cpu_ticks()
    time.sleep(window)
    return busy_since(before)


def wait_for_idle(max_busy: float, timeout: float, enforce: bool = True) -> str:
    """Wait until the machine is idle enough to time something: at most `max_busy` of all CPUs used over 5 s
    (the test servers idling use a few percent). Returns what was seen, for the report. After `timeout`
    seconds raises TimeoutError, or with `enforce` off returns what was seen, marked as not idle."""
    deadline = time.monotonic() + timeout
    while True:
        busy = machine_busy()
        load = Path("/proc/loadavg").read_text().split()[0]
        seen = f"{busy:.0%} of {os.cpu_count()} CPUs busy, load average {load}"
        if busy <= max_busy:
            return seen
        if time.monotonic() > deadline:
            if enforce:
                raise TimeoutError(f"the machine never became idle in {timeout:.0f} s (last: {seen})")
            return f"{seen} (NOT idle after {timeout:.0f} s: ran anyway)"
        print(f"[bench] waiting for an idle machine: {seen}", flush=True)


# --- who asked the API server for what: its audit log -----------------------------------------------------

WRITE_VERBS_AUDITED = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class AuditedRequest:
    verb: str
    resource: str  # with "/subresource" when there is one
    namespace: str
    code: int  # the response's HTTP status


def audit_offset(audit_log: Path) -> int:
    """Where the audit log ends now: `audited_requests(since=...)` reads what comes after."""
    return audit_log.stat().st_size


def audited_requests(audit_log: Path, since: int, user_agent_prefix: str) -> list[AuditedRequest]:
    """Completed requests of one client (by User-Agent) recorded in the testenv API server's audit log
    after byte offset `since`."""
    found = []
    with audit_log.open("rb") as log:
        log.seek(since)
        for raw in log:
            event = json.loads(raw)
            if event.get("stage") != "ResponseComplete":
                continue
            if not str(event.get("userAgent", "")).startswith(user_agent_prefix):
                continue
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "") + ("/" + ref["subresource"] if ref.get("subresource") else "")
            code = int((event.get("responseStatus") or {}).get("code", 0))
            found.append(AuditedRequest(event["verb"], resource, ref.get("namespace", ""), code))
    return found


def per_object(requests: Sequence[AuditedRequest], per: int) -> str:
    """Audited requests by verb and resource, per object (format_per_object)."""
    counts: dict[tuple[str, str], float] = {}
    for request in requests:
        counts[request.verb, request.resource] = counts.get((request.verb, request.resource), 0.0) + 1
    return format_per_object(counts, per)


# --- reads a store served: OpenBao's audit log ------------------------------------------------------------


async def write_openbao(addr: str, token: str, secrets: Mapping[str, Mapping[str, str]]) -> None:
    """Write KV v2 secrets (key -> data) to the testenv OpenBao's `secret/` mount, 32 at a time."""
    async with httpx.AsyncClient(base_url=addr, headers={"X-Vault-Token": token}, timeout=30) as bao:

        async def put(key: str) -> None:
            response = await bao.post(f"/v1/secret/data/{key}", json={"data": dict(secrets[key])})
            response.raise_for_status()

        await bounded(secrets, put, 32)


class BaoReads:
    """Counts the KV reads OpenBao answered, by key, from its audit log (testenv.stores.openbao.start with
    `audit_log`): the same count for any client, whatever it reports about itself."""

    def __init__(self, log_path: Path, mount: str = "secret") -> None:
        self.log_path = log_path
        self.prefix = f"{mount}/data/"
        self._offset = 0
        self._reads: dict[str, int] = {}

    def reads(self, key_prefix: str = "") -> int:
        """Reads so far of keys starting with `key_prefix` (the key as clients name it, without the mount)."""
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            for raw in log:
                if not raw.endswith(b"\n"):
                    break  # a line being written: read it next time
                self._offset += len(raw)
                entry = json.loads(raw)
                request = entry.get("request") or {}
                path = str(request.get("path", ""))
                read = entry.get("type") == "response" and request.get("operation") == "read"
                if read and path.startswith(self.prefix):
                    key = path.removeprefix(self.prefix)
                    self._reads[key] = self._reads.get(key, 0) + 1
        return sum(n for key, n in self._reads.items() if key.startswith(key_prefix))
