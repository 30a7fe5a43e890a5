"""Blast-radius benchmark: with one tenant's hostile objects present, how do another namespace's fresh
objects fare? (issue 11 item 6)

    .venv/bin/python -m bench.blast_radius [--probes 20] [--only alias-bomb,hung-driver] [--hold 8]
        [--rounds 1] [--operator-arg=--namespace-reconcile-rate=5] [--profile DIR] [--apiserver-profile DIR]

Starts its own control plane and OpenBao. For each scenario it starts a fresh operator that watches the
operator namespace, a fresh hostile namespace and a fresh victim namespace; creates the hostile objects,
lets them work for `--hold` seconds, then creates `--probes` Echo Resources and `--probes` SecretMappings
in the victim namespace (one of each every 0.3 s) and records, per probe, the time from its create to
Ready (seen by a watch). Per scenario it prints:

- p50 / p99 time-to-Ready of the victim's Echo Resources and SecretMappings,
- the first probe's times: the victim namespace had been quiet until it (as a team that deploys now and
  then always is when its next object arrives),
- the operator's event-loop lag p99 (`strongroom_event_loop_lag_seconds`, during the probes),
- the peak RSS of the operator and its child processes (VmHWM),
- restarts: whether the operator process is still the one that was started,
- the whole machine's CPU use while the probes ran, and each process's share (the operator with its
  render processes, the API server, etcd, OpenBao, this benchmark, the churn load generator).

With `--rounds R` every scenario runs R times, each round with its own baseline; the table shows the
median of the rounds' percentiles and the ratio to the baseline as a median over rounds with its range.
A p99 of 20 probes is the slowest of them: on a shared 2-core machine single runs scatter by 2x, so
compare medians over rounds, not single runs. `--profile` records the operator with py-spy and
`--apiserver-profile` fetches a Go CPU profile of the API server (`go tool pprof -top FILE`), both during
the probes.

Targets (issue 11): p99 within 2x of the baseline (no hostile object); lag p99 <= 100 ms; RSS below half
the chart's memory limit (512 MiB); zero restarts.

Hostile objects (each a scenario):
  alias-bomb      Template Resources whose outputs are a YAML alias bomb
  regex-bomb      Template Resources running regexMatch over `repeat 200000`
  trickle-driver  Resources on a driver that sends its answer one byte a second
  big-answer      Resources on a driver that answers 5 MB
  hung-driver     50 Resources on a driver that accepts and never answers
  churn           a namespace changing 100 SecretMapping specs a second
  min-refresh     200 SecretMappings at the smallest refreshInterval the CRD accepts
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import multiprocessing.process
import os
import ssl
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import httpx2
from aiohttp import web
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource

import testenv
from bench.common import (
    CpuMeter,
    ReadyWatch,
    Row,
    SecretMappingRes,
    busy_since,
    client_for,
    cpu_ticks,
    ensure_namespace,
    environment_processes,
    percentile,
    print_table,
)
from bench.profile import Profile
from bench.secretmappings import install_crds
from strongroom.net import kube_transport
from strongroom.net.kubejson import MERGE_PATCH, KubeJson, object_path
from strongroom.operator.kubeconfig import connection_info, load_cluster_access
from testenv.controlplane import PROFILING_ENV
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from testenv.process import LOOPBACK, free_port

ResourceRes = create_namespaced_resource("strongroom.dev", "v1alpha1", "Resource", "resources")
DriverRes = create_namespaced_resource("strongroom.dev", "v1alpha1", "Driver", "drivers")

CHART_MEMORY_LIMIT_MIB = 512
LAG_TARGET_S = 0.1
PROBE_SPACING_S = 0.3
MIN_REFRESH = "10s"
PROFILE_SECONDS = 5.0

# A YAML alias bomb: each level refers to the one above nine times (9^8 leaves, a few hundred characters).
ALIAS_BOMB = "\n".join(
    [
        'a0: &a0 ["x","x","x","x","x","x","x","x","x"]',
        *(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)),
        "bomb: *a8",
    ]
)
REGEX_BOMB = '{{ regexMatch "a*a*a*a*b" (repeat 200000 "a") }}'


# --- hostile drivers (served by this process) --------------------------------------------------------------


async def trickle(request: web.Request) -> web.StreamResponse:
    """Headers at once, then the body one byte a second: per-read inactivity never expires."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    body = json.dumps({"resource": {"values": {"v": "x" * 600}}}).encode()
    # The operator hangs up at its deadline: that is the point, not an error worth a traceback.
    with contextlib.suppress(ConnectionError):
        await response.prepare(request)
        for byte in body:
            await response.write(bytes([byte]))
            await asyncio.sleep(1.0)
    return response


async def big_answer(request: web.Request) -> web.Response:
    await request.read()
    body = json.dumps({"resource": {"values": {"blob": "x" * (5 * 1024 * 1024)}, "secrets": {}}})
    return web.Response(body=body.encode(), content_type="application/json")


async def hung(request: web.Request) -> web.Response:
    await asyncio.sleep(3600)
    return web.Response(status=500)


HANDLERS: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = {
    "trickle": trickle,
    "big": big_answer,
    "hung": hung,
}


async def serve_hostile_drivers() -> tuple[web.AppRunner, dict[str, str]]:
    targets: dict[str, str] = {}
    runner_app = web.Application()
    for name, handler in HANDLERS.items():
        runner_app.router.add_route("*", f"/{name}/{{guresid}}", handler)
    runner = web.AppRunner(runner_app, access_log=None, handler_cancellation=True)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, LOOPBACK, port).start()
    for name in HANDLERS:
        targets[name] = f"http://{LOOPBACK}:{port}/{name}/"
    return runner, targets


# --- objects -----------------------------------------------------------------------------------------------


def obj(manifest: dict[str, Any]) -> Any:
    return codecs.from_dict(manifest)


def secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def store(namespace: str, addr: str) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretStore",
        "metadata": {"name": "bao", "namespace": namespace},
        "spec": {
            "vault": {
                "url": addr,
                "path": "secret",
                "auth": {"tokenSecretRef": {"name": "bao-token", "key": "token"}},
            }
        },
    }


def resource(name: str, namespace: str, driver_type: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "Resource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "config", "id": f"blast.{name}", "driverType": driver_type, "driverInputs": inputs},
    }


def template_resource(name: str, namespace: str, outputs_template: str) -> dict[str, Any]:
    return resource(
        name, namespace, "humanitec/template", {"values": {"templates": {"outputs": outputs_template}}}
    )


def driver(name: str, namespace: str, target: str) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "Driver",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"target": target, "sign": False, "timeouts": {"request": "5s", "operation": "30s"}},
    }


def mapping(name: str, namespace: str, refresh: str | None = None, key: str = "value") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "secretName": name,
        "secretData": [{"secretKey": key, "secretStoreName": "bao", "remoteRef": {"key": "blast/shared"}}],
    }
    if refresh is not None:
        spec["refreshInterval"] = refresh
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretMapping",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


# --- measuring ---------------------------------------------------------------------------------------------


def lag_buckets(metrics_text: str) -> dict[float, float]:
    """Cumulative bucket counts of the event-loop lag histogram (empty if the operator has none)."""
    buckets: dict[float, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("strongroom_event_loop_lag_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if bound == "+Inf" else float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def histogram_p99(before: dict[float, float], after: dict[float, float]) -> float:
    """The upper bound of the bucket holding the 99th percentile of the observations between two reads."""
    if not after:
        return float("nan")
    delta = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    total = delta.get(float("inf"), 0.0)
    if total <= 0:
        return float("nan")
    for bound in sorted(delta):
        if delta[bound] >= 0.99 * total:
            return bound
    return float("inf")


def family_peak_rss_mib(pid: int) -> float:
    """VmHWM of a process plus that of its children (template workers count against the pod too)."""
    total = 0.0
    pids = [pid]
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            pids.extend(int(child) for child in children)
    for one in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
    return total


@dataclass
class Outcome:
    scenario: str
    echo: list[float] = field(default_factory=list)
    mapping: list[float] = field(default_factory=list)
    unready: int = 0
    lag_p99: float = float("nan")
    busy: str = ""  # CPU use of the operator and the API server while the probes ran
    rss_mib: float = float("nan")
    restarted: bool = False
    hostile_rate: str = ""  # what a load generator achieved while the probes ran, e.g. "98 changes/s"
    # The first probe's Echo and SecretMapping times (nan: never Ready): the victim namespace had been
    # quiet until then, as a team that deploys now and then always is when its next object arrives.
    first: tuple[float, float] = (float("nan"), float("nan"))


# --- scenarios ---------------------------------------------------------------------------------------------


@dataclass
class Context:
    client: AsyncClient
    kubeconfig: Path
    hostile: str
    targets: dict[str, str]
    stop: asyncio.Event
    background: list[asyncio.Task[None]] = field(default_factory=list)
    # Load generators in their own processes, and how many operations each has done so far.
    processes: list[multiprocessing.process.BaseProcess] = field(default_factory=list)
    done: Any = None  # multiprocessing.Value("q"): operations completed by the load generator


async def create_all(client: AsyncClient, manifests: list[dict[str, Any]]) -> None:
    for manifest in manifests:
        resource_type = {"Resource": ResourceRes, "Driver": DriverRes, "SecretMapping": SecretMappingRes}[
            manifest["kind"]
        ]
        await client.create(resource_type.from_dict(manifest))


async def alias_bomb(ctx: Context) -> None:
    await create_all(ctx.client, [template_resource(f"alias-{i}", ctx.hostile, ALIAS_BOMB) for i in range(3)])


async def regex_bomb(ctx: Context) -> None:
    await create_all(ctx.client, [template_resource(f"regex-{i}", ctx.hostile, REGEX_BOMB) for i in range(3)])


async def remote(ctx: Context, kind: str, count: int) -> None:
    await create_all(ctx.client, [driver(kind, ctx.hostile, ctx.targets[kind])])
    await create_all(
        ctx.client, [resource(f"{kind}-{i}", ctx.hostile, kind, {"values": {"n": i}}) for i in range(count)]
    )


CHURN_RATE = 100  # spec changes a second
MAX_IN_FLIGHT = 50  # churn patches waiting for an answer at once


def _patch_forever(kubeconfig: str, namespace: str, names: list[str], done: Any) -> None:
    """The churn load generator. It runs in its own process: in the benchmark's event loop, 100 patches
    a second would delay the watches that time the victims, and bill that delay to the operator.

    Open loop, as a tenant's scripts would be: a patch starts every 1/CHURN_RATE s whether or not the
    ones before it have been answered (up to MAX_IN_FLIGHT at once), so the rate the API server sees is
    CHURN_RATE when it keeps up, never a catch-up burst above it after a slow spell.

    It sends with the operator's lean JSON client (aiohttp, answers checked, not decoded), not lightkube:
    the tenant's scripts run on the tenant's machine, and a generator that took a quarter of a core
    (lightkube and httpx decode every answer into objects) took it from the API server and the operator
    on this shared machine, in the control row as much as in the measured one."""

    async def patcher() -> None:
        access = load_cluster_access(kubeconfig)
        transport = kube_transport(access.config, "strongroom-bench-churn", fenced=False)
        client = KubeJson(
            transport,
            access.config.cluster.server,
            lambda: connection_info(access).as_http_headers(),
            "tenant",
        )
        in_flight: set[asyncio.Task[None]] = set()

        async def patch(turn: int) -> None:
            name = names[turn % len(names)]
            body = {"spec": {"secretData": [{"secretKey": f"k{turn}", "secretStoreName": "bao",
                                             "remoteRef": {"key": "blast/shared"}}]}}  # fmt: skip
            path = object_path("strongroom.dev/v1alpha1", "secretmappings", namespace, name)
            # Refused or timed out: the later turns go on.
            with contextlib.suppress(ApiError, httpx2.HTTPError):
                await client.patch_only(path, body, MERGE_PATCH)
                with done.get_lock():
                    done.value += 1

        turn = 0
        next_at = time.perf_counter()
        try:
            while True:
                if len(in_flight) < MAX_IN_FLIGHT:
                    task = asyncio.create_task(patch(turn))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                turn += 1
                next_at = max(next_at + 1 / CHURN_RATE, time.perf_counter() - 1 / CHURN_RATE)
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        finally:
            for task in in_flight:
                task.cancel()
            await transport.aclose()

    asyncio.run(patcher())


async def churn(ctx: Context) -> None:
    names = [f"churn-{i}" for i in range(100)]
    await create_all(ctx.client, [mapping(name, ctx.hostile) for name in names])
    spawn = multiprocessing.get_context("spawn")
    ctx.done = spawn.Value("q", 0)
    process = spawn.Process(
        target=_patch_forever,
        args=(str(ctx.kubeconfig), ctx.hostile, names, ctx.done),
        name="churn",
        daemon=True,
    )
    process.start()
    ctx.processes.append(process)  # terminated with the scenario


async def min_refresh(ctx: Context) -> None:
    await create_all(ctx.client, [mapping(f"fast-{i}", ctx.hostile, refresh=MIN_REFRESH) for i in range(200)])


SCENARIOS: dict[str, Callable[[Context], Awaitable[None]]] = {
    "baseline": lambda ctx: asyncio.sleep(0),
    "alias-bomb": alias_bomb,
    "regex-bomb": regex_bomb,
    "trickle-driver": lambda ctx: remote(ctx, "trickle", 5),
    "big-answer": lambda ctx: remote(ctx, "big", 5),
    "hung-driver": lambda ctx: remote(ctx, "hung", 50),
    "churn": churn,
    # A control for `churn`: the same load on the API server, in a namespace the operator does not watch.
    # What the victims lose here is the machine's (2 cores shared with the API server), not the operator's.
    "churn-unwatched": churn,
    "min-refresh": min_refresh,
}
UNWATCHED = frozenset({"churn-unwatched"})


async def probe(
    client: AsyncClient, namespace: str, count: int, limit: float
) -> tuple[list[float], list[float], int, tuple[float, float]]:
    """Create `count` Echo Resources and SecretMappings, one of each every PROBE_SPACING_S; their times to
    Ready (seconds), how many never became Ready within `limit`, and the first pair's times."""
    resources = ReadyWatch(client, ResourceRes, namespace)
    mappings = ReadyWatch(client, SecretMappingRes, namespace)
    resources.start()
    mappings.start()
    await asyncio.sleep(0.5)
    created: dict[tuple[str, str], float] = {}
    for i in range(count):
        echo = resource(
            f"probe-{i}", namespace, "humanitec/echo", {"values": {"host": f"db-{i}", "port": 5432}}
        )
        created[("Resource", echo["metadata"]["name"])] = time.perf_counter()
        await client.create(ResourceRes.from_dict(echo))
        sync = mapping(f"probe-{i}", namespace)
        created[("SecretMapping", sync["metadata"]["name"])] = time.perf_counter()
        await client.create(SecretMappingRes.from_dict(sync))
        await asyncio.sleep(PROBE_SPACING_S)
    deadline = time.perf_counter() + limit
    watches = {"Resource": resources, "SecretMapping": mappings}
    while time.perf_counter() < deadline and not all(  # noqa: ASYNC110 (the watches fill ready_at)
        name in watches[kind].ready_at for kind, name in created
    ):
        await asyncio.sleep(0.1)
    await resources.stop()
    await mappings.stop()
    times: dict[str, list[float]] = {"Resource": [], "SecretMapping": []}
    unready = 0
    for (kind, name), at in created.items():
        ready_at = watches[kind].ready_at.get(name)
        if ready_at is None:
            unready += 1
        else:
            times[kind].append(ready_at - at)

    def first(kind: str) -> float:
        ready_at = watches[kind].ready_at.get("probe-0")
        return float("nan") if ready_at is None else ready_at - created[(kind, "probe-0")]

    return times["Resource"], times["SecretMapping"], unready, (first("Resource"), first("SecretMapping"))


async def run_scenario(
    name: str,
    args: argparse.Namespace,
    env: testenv.Environment,
    workdir: Path,
    targets: dict[str, str],
    round_index: int = 0,
) -> Outcome:
    info = env.info("kubernetes")
    bao = env.info("openbao")
    client = client_for(Path(info["kubeconfig"]))
    suffix = uuid.uuid4().hex[:5]
    hostile, victim = f"hostile-{suffix}", f"victim-{suffix}"
    outcome = Outcome(name)
    operator: OperatorProcess | None = None
    ctx = Context(client, Path(info["kubeconfig"]), hostile, targets, asyncio.Event())
    try:
        for namespace in (hostile, victim):
            await ensure_namespace(client, namespace)
            await client.apply(obj(secret(namespace, "bao-token", {"token": bao["root_token"]})))
            await client.apply(obj(store(namespace, bao["addr"])))
        operator = start_operator(
            Path(info["kubeconfig"]),
            workdir / f"operator-{name}-{round_index + 1}.log",
            [
                "--log-level=info",
                f"--namespace={OPERATOR_NAMESPACE}",
                f"--namespace={victim}",
                *([] if name in UNWATCHED else [f"--namespace={hostile}"]),
                *args.operator_arg,
            ],
        )
        pid = operator.process.pid
        await SCENARIOS[name](ctx)
        await asyncio.sleep(args.hold)
        before = lag_buckets(operator.metrics())
        apiserver = next(
            proc.pid for proc in env.services["kubernetes"].processes if proc.name == "kube-apiserver"
        )
        others = {
            who: proc_pid
            for who, proc_pid in environment_processes(env).items()
            if who not in ("kube-apiserver", "kube-controller-manager")
        }
        generators = {process.name or "load": process.pid for process in ctx.processes if process.pid}
        meter = CpuMeter(
            {"operator": pid, "API server": apiserver, **others, **generators}, trees=("operator",)
        )
        done_before = ctx.done.value if ctx.done is not None else 0
        started = time.perf_counter()
        ticks = cpu_ticks()
        recorder = (
            Profile(pid, args.profile / f"operator-{name}-{round_index + 1}.raw") if args.profile else None
        )
        if recorder is not None:
            recorder.start()
        profiling = (
            asyncio.create_task(
                apiserver_profile(info, args.apiserver_profile / f"apiserver-{name}-{round_index + 1}.pprof")
            )
            if args.apiserver_profile
            else None
        )
        (outcome.echo, outcome.mapping, outcome.unready, outcome.first), used = await meter.measure(
            probe(client, victim, args.probes, args.limit)
        )
        if profiling is not None:
            await profiling
        if recorder is not None:
            recorder.stop()
        elapsed = time.perf_counter() - started
        if ctx.done is not None:
            outcome.hostile_rate = f"hostile {(ctx.done.value - done_before) / elapsed:.0f} changes/s; "
        outcome.busy = f"machine {busy_since(ticks):.0%} of {os.cpu_count()} CPUs: " + ", ".join(
            f"{who} {100 * cpu / elapsed:.0f}%" for who, cpu in used.items()
        )
        with contextlib.suppress(OSError):
            outcome.lag_p99 = histogram_p99(before, lag_buckets(operator.metrics()))
        outcome.rss_mib = family_peak_rss_mib(pid)
        outcome.restarted = not operator.process.alive()
    finally:
        ctx.stop.set()
        for task in ctx.background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for process in ctx.processes:
            process.terminate()
            process.join(10)
        if operator is not None:
            operator.stop()
        await client.close()
    return outcome


async def apiserver_profile(info: dict[str, str], path: Path) -> None:
    """A CPU profile of the API server during the probes (`go tool pprof -top PATH` reads it): where the
    server's time goes when one namespace churns."""
    tls = ssl.create_default_context(cafile=info["ca"])
    tls.load_cert_chain(info["admin_cert"], info["admin_key"])
    async with httpx.AsyncClient(base_url=info["server"], verify=tls, timeout=30) as http:
        answer = await http.get("/debug/pprof/profile", params={"seconds": int(PROFILE_SECONDS)})
        answer.raise_for_status()
    await asyncio.to_thread(_write, path, answer.content)


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def rows_of(rounds: list[list[Outcome]]) -> list[Row]:
    """One row per scenario. Over several rounds: the median of each round's percentiles, and the ratio to
    the baseline taken within each round (paired: both ran minutes apart on the same machine) as a median
    with its range; the worst round's lag, RSS and restarts."""

    def ms(runs: list[Outcome], kind: str, pct: float) -> str:
        return f"{statistics.median(percentile(getattr(o, kind), pct) for o in runs) * 1000:.0f}"

    rows: list[Row] = []
    for index, first in enumerate(rounds[0]):
        runs = [outcomes[index] for outcomes in rounds]
        ratios = []
        for outcomes, o in zip(rounds, runs, strict=True):
            baseline = outcomes[0]
            if o is not baseline:
                ratios.append(max(percentile(o.echo, 99) / percentile(baseline.echo, 99),
                                  percentile(o.mapping, 99) / percentile(baseline.mapping, 99)))  # fmt: skip
        ratio = "-"
        if ratios:
            ratio = f"{statistics.median(ratios):.1f}x"
            if len(ratios) > 1:
                ratio += f" ({min(ratios):.1f}-{max(ratios):.1f}x over {len(ratios)} rounds)"
        firsts = [f"{statistics.median(o.first[which] for o in runs) * 1000:.0f}" for which in (0, 1)]
        lags = [o.lag_p99 for o in runs if o.lag_p99 == o.lag_p99]
        lag = f"{max(lags) * 1000:.0f} ms" if lags else "n/a"
        rows.append(
            Row(
                first.scenario,
                f"echo {ms(runs, 'echo', 50)}/{ms(runs, 'echo', 99)} ms, "
                f"mapping {ms(runs, 'mapping', 50)}/{ms(runs, 'mapping', 99)} ms",
                "p99 <= 2x baseline" if index else "",
                f"vs baseline {ratio}; first probe {firsts[0]}/{firsts[1]} ms; {first.hostile_rate}"
                f"lag p99 {lag}; "
                f"RSS {max(o.rss_mib for o in runs):.0f} MiB; restarts {sum(o.restarted for o in runs)}; "
                f"never Ready {sum(o.unready for o in runs)}; {first.busy}",
            )
        )
    return rows


async def main_async(
    args: argparse.Namespace, env: testenv.Environment, workdir: Path
) -> list[list[Outcome]]:
    info = env.info("kubernetes")
    bao = env.info("openbao")
    client = client_for(Path(info["kubeconfig"]))
    try:
        await ensure_namespace(client, OPERATOR_NAMESPACE)
    finally:
        await client.close()
    async with httpx.AsyncClient(base_url=bao["addr"], headers={"X-Vault-Token": bao["root_token"]}) as vault:
        response = await vault.post("/v1/secret/data/blast/shared", json={"data": {"value": "v"}})
        response.raise_for_status()
    runner, targets = await serve_hostile_drivers()
    rounds: list[list[Outcome]] = []
    try:
        names = ["baseline", *(n for n in SCENARIOS if n != "baseline")]
        if args.only:
            names = ["baseline", *(n for n in args.only.split(",") if n != "baseline")]
        for round_index in range(args.rounds):
            outcomes: list[Outcome] = []
            for name in names:
                print(f"[bench] round {round_index + 1}/{args.rounds}: {name} ...", flush=True)
                outcomes.append(await run_scenario(name, args, env, workdir, targets, round_index))
            rounds.append(outcomes)
    finally:
        await runner.cleanup()
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--probes", type=int, default=20, help="Echo Resources and SecretMappings per scenario"
    )
    parser.add_argument(
        "--hold", type=float, default=8.0, help="seconds the hostile objects work before probing"
    )
    parser.add_argument("--limit", type=float, default=120.0, help="seconds a probe may take to become Ready")
    parser.add_argument(
        "--only", help=f"comma-separated scenarios (baseline always runs): {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run every scenario this many times (each round with its own baseline); report medians",
    )
    parser.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        help="an extra operator flag for every scenario, e.g. --operator-arg=--namespace-reconcile-rate=5",
    )
    parser.add_argument(
        "--apiserver-profile",
        type=Path,
        help=f"write a {PROFILE_SECONDS:.0f} s CPU profile of the API server during each scenario's probes",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="write a py-spy profile of the operator during each scenario's probes here",
    )
    args = parser.parse_args()
    if args.apiserver_profile:
        os.environ[PROFILING_ENV] = "1"
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-bench-blast-"))
    env = testenv.start(workdir, ["kubernetes", "openbao"])
    try:
        install_crds(Path(env.info("kubernetes")["kubeconfig"]))
        rounds = asyncio.run(main_async(args, env, workdir))
    finally:
        env.stop()
    print_table(
        f"Blast radius: a fresh Echo Resource and SecretMapping in another namespace, p50/p99 time to Ready "
        f"({args.probes} each); targets: lag p99 <= {LAG_TARGET_S * 1000:.0f} ms, "
        f"RSS <= {CHART_MEMORY_LIMIT_MIB // 2} MiB, 0 restarts",
        rows_of(rounds),
    )
    print(f"\noperator logs: {workdir}")


if __name__ == "__main__":
    main()
