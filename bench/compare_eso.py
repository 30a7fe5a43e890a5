"""strongroom side by side with External Secrets Operator (ESO): the table of issue 16, in one run.

    .venv/bin/python -m bench.compare_eso [--n 1000] [--rounds 3] [--quick] [--only strongroom,eso-tuned]

Builds ESO v0.16.2 from Go modules (testenv.eso: cached like the control plane, about 14 min cold, progress
shown), starts one control plane and one OpenBao, installs both operators' CRDs, then runs each operator
alone on fresh namespaces, in interleaved rounds: strongroom, ESO with its defaults, ESO tuned (--concurrent
50 --client-qps 1000 --client-burst 2000). Both operators run out of cluster as processes of this machine,
with their default flags otherwise. The workload: N objects (SecretMappings / ExternalSecrets) of one key
each, 10 distinct OpenBao keys shared among them, refresh interval 1 h. Per run:

  (a) floor: the bench client creates N plain Secrets (16 in flight, as for every create here);
  (b) N objects created -> all Ready: the operator's and kube-apiserver's CPU meanwhile (/proc), the
      operator's API requests per object (API server audit log, by User-Agent), store reads (OpenBao's
      audit log: what the store served, whatever the operator says about itself);
  force: every object's force-refresh annotation set (ESO: `force-sync`); once a fifth of the refresh is
      done, 20 new objects are created in another namespace: their time to Ready, p99. strongroom: only if
      its force-refresh annotation exists on this branch;
  periodic: every object's refresh interval set to 30 s; during the next full refresh (which finds nothing
      new) the operator's writes, the store reads, and again 20 new objects' time to Ready, p99;
  the operator's peak RSS (VmHWM).

Each run waits for an idle machine first (--max-busy); every figure is shown as min / median over the
rounds (counts as their range), with ratios to the floor and to tuned ESO.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.resources.core_v1 import Namespace
from lightkube.types import PatchType

import testenv
from bench.common import (
    WRITE_VERBS_AUDITED,
    BaoReads,
    CpuMeter,
    ReadyWatch,
    SecretMappingRes,
    audit_offset,
    audited_requests,
    bounded,
    client_for,
    ensure_namespace,
    median,
    peak_rss_mib,
    per_object,
    percentile,
    wait_count,
    wait_for_idle,
    watch_objects,
    write_openbao,
)
from bench.profile import Profile, format_summary, summarise
from bench.resources import obj, secret, vault_spec
from bench.secretmappings import install_crds, mapping, reconciles
from strongroom.api import constants
from strongroom.operator.kubeconfig import USER_AGENT
from testenv import eso
from testenv.operator import OPERATOR_NAMESPACE, start_operator
from testenv.stores import openbao

ExternalSecretRes = create_namespaced_resource(
    "external-secrets.io", "v1", "ExternalSecret", "externalsecrets"
)
ClusterSecretStoreRes = create_global_resource(
    "external-secrets.io", "v1", "ClusterSecretStore", "clustersecretstores"
)

CONCURRENCY = 16  # creates and patches in flight, the same for the floor and every operator
SHARED_KEYS = 10
NEW_OBJECTS = 20
REFRESH = "1h"
ESO_TUNED = ("--concurrent=50", "--client-qps=1000", "--client-burst=2000")
ESO_FORCE_ANNOTATION = "force-sync"


def strongroom_force_annotation() -> str | None:
    """strongroom's force-refresh annotation, if this branch has one."""
    found: str | None = getattr(constants, "FORCE_REFRESH_ANNOTATION", None)
    return found


# --- the operators ------------------------------------------------------------------------------------------


@dataclass
class Running:
    """An operator process under test."""

    pid: int
    stop: Callable[[], None]
    # Objects refreshed so far (a counter; only differences count): strongroom's SecretMapping reconciles,
    # ESO's new status.refreshTime values (its reconciles also count the no-op ones its own status writes
    # cause).
    refreshes: Callable[[], float]


@dataclass(frozen=True)
class Contender:
    label: str
    slug: str  # namespace prefix
    resource: type[Any]
    user_agent: str  # prefix of the operator's User-Agent, to find its requests in the audit log
    force_annotation: str | None
    manifest: Callable[[str, str, str, str], dict[str, Any]]  # name, namespace, store key, refresh interval
    start: Callable[[Bench, Path], Running]


def strongroom_manifest(name: str, namespace: str, key: str, refresh: str) -> dict[str, Any]:
    return mapping(name, namespace, "bao", [("value", key, "value")], refresh)


def external_secret(name: str, namespace: str, key: str, refresh: str) -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "refreshInterval": refresh,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": "bao"},
            "target": {"name": name},
            "data": [{"secretKey": "value", "remoteRef": {"key": key, "property": "value"}}],
        },
    }


def start_strongroom(bench: Bench, log: Path) -> Running:
    operator = start_operator(bench.kubeconfig, log)
    return Running(operator.process.pid, operator.stop, lambda: reconciles(operator))


class EsoRefreshes:
    """Counts ESO's refreshes from a watch of every ExternalSecret: each new `status.refreshTime` an object
    reports is one refresh. (Its store reads would count some twice: with --concurrent > 1 a reconcile of a
    stale cached copy reads the store again, then loses its status update to a conflict.)"""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.seen: set[tuple[str, str, str]] = set()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for item in watch_objects(self.client, ExternalSecretRes, "*"):
            found: Any = item
            refreshed = (found.status or {}).get("refreshTime")
            if refreshed:
                self.seen.add((found.metadata.namespace, found.metadata.name, refreshed))

    def count(self) -> float:
        return float(len(self.seen))

    def stop(self) -> None:
        self._task.cancel()


def eso_starter(extra_args: Sequence[str]) -> Callable[[Bench, Path], Running]:
    def start(bench: Bench, log: Path) -> Running:
        process = eso.start_eso(bench.kubeconfig, log, extra_args)
        refreshes = EsoRefreshes(bench.client)

        def stop() -> None:
            refreshes.stop()
            process.stop()

        return Running(process.process.pid, stop, refreshes.count)

    return start


CONTENDERS = {
    "strongroom": Contender(
        "strongroom",
        "sr",
        SecretMappingRes,
        USER_AGENT,
        strongroom_force_annotation(),
        strongroom_manifest,
        start_strongroom,
    ),
    "eso-default": Contender(
        "ESO default",
        "eso",
        ExternalSecretRes,
        eso.ESO_BINARY + "/",
        ESO_FORCE_ANNOTATION,
        external_secret,
        eso_starter(()),
    ),
    "eso-tuned": Contender(
        f"ESO tuned (`{' '.join(ESO_TUNED)}`)",
        "esot",
        ExternalSecretRes,
        eso.ESO_BINARY + "/",
        ESO_FORCE_ANNOTATION,
        external_secret,
        eso_starter(ESO_TUNED),
    ),
}


# --- one run ------------------------------------------------------------------------------------------------


@dataclass
class Bench:
    args: argparse.Namespace
    env: testenv.Environment
    workdir: Path
    client: AsyncClient
    bao: BaoReads

    @property
    def kubeconfig(self) -> Path:
        return Path(self.env.info("kubernetes")["kubeconfig"])

    @property
    def audit_log(self) -> Path:
        return Path(self.env.info("kubernetes")["audit_log"])

    @property
    def apiserver_pid(self) -> int:
        return next(p.pid for p in self.env.services["kubernetes"].processes if p.name == "kube-apiserver")

    @property
    def limit(self) -> float:
        """How long any one phase may take (ESO's defaults refresh about 10 objects a second)."""
        return 120.0 + 0.5 * int(self.args.n)


@dataclass
class Figures:
    gate: str
    floor: float
    synced: float
    operator_cpu: float
    apiserver_cpu: float
    requests: int
    request_mix: str
    reads_synced: int
    reads_refresh: int
    idle_writes: int
    force_p99: float | None
    periodic_p99: float
    rss: float


@dataclass
class Refresh:
    p99: float  # of the new objects' time to Ready
    writes: int  # successful ones by the operator, in the namespace of the N objects
    reads: int  # of the shared keys


async def refresh_with_newcomers(
    bench: Bench,
    contender: Contender,
    running: Running,
    namespace: str,
    new_namespace: str,
    tag: str,
    trigger: Callable[[], Awaitable[None]],
) -> Refresh:
    """`trigger` a refresh of all N objects; once a fifth of it is done, create NEW_OBJECTS new objects in
    `new_namespace`; wait until they are Ready and the whole refresh is done."""
    n = bench.args.n
    watch = ReadyWatch(bench.client, contender.resource, new_namespace)
    watch.start()
    await asyncio.sleep(0.5)
    mark, reads_before, before = (
        audit_offset(bench.audit_log),
        bench.bao.reads("shared/"),
        running.refreshes(),
    )
    await trigger()
    await wait_count(running.refreshes, before + n // 5, bench.limit, f"{tag}: refresh begun")
    created: dict[str, float] = {}

    async def create(j: int) -> None:
        name = f"{tag}{j}"
        created[name] = time.perf_counter()
        await bench.client.create(
            contender.resource.from_dict(contender.manifest(name, new_namespace, f"new/k{j}", REFRESH))
        )

    await bounded(range(NEW_OBJECTS), create, NEW_OBJECTS)
    await watch.wait_for(set(created), bench.limit)
    await watch.stop()
    await wait_count(running.refreshes, before + n + NEW_OBJECTS, bench.limit, f"{tag}: refresh done")
    writes = [
        r
        for r in audited_requests(bench.audit_log, mark, contender.user_agent)
        if r.verb in WRITE_VERBS_AUDITED and r.namespace == namespace and r.code < 400
    ]
    return Refresh(
        p99=percentile([watch.ready_at[name] - at for name, at in created.items()], 99),
        writes=len(writes),
        reads=bench.bao.reads("shared/") - reads_before,
    )


async def run_once(bench: Bench, contender: Contender, round_no: int) -> Figures:
    args, client, n = bench.args, bench.client, bench.args.n
    namespace = f"{contender.slug}-{round_no}"
    floor_ns, new_ns = f"{namespace}-floor", f"{namespace}-new"
    gate = wait_for_idle(args.max_busy, args.gate_timeout, enforce=not args.skip_idle_gate)
    print(f"[bench] round {round_no}, {contender.label}: {gate}", flush=True)
    for name in (namespace, floor_ns, new_ns):
        await ensure_namespace(client, name)

    # (a) the floor
    async def create_secret(i: int) -> None:
        await client.create(secret(floor_ns, f"floor-{i}", {"value": f"shared-{i % SHARED_KEYS}"}))

    floor = await bounded(range(n), create_secret, CONCURRENCY)

    running = contender.start(bench, bench.workdir / f"{namespace}.log")
    try:
        # (b) N objects created at once
        watch = ReadyWatch(client, contender.resource, namespace)
        watch.start()
        await asyncio.sleep(0.5)
        names = [f"o{i}" for i in range(n)]

        async def create(i: int) -> None:
            manifest = contender.manifest(names[i], namespace, f"shared/k{i % SHARED_KEYS}", REFRESH)
            await client.create(contender.resource.from_dict(manifest))

        meter = CpuMeter({"operator": running.pid, "kube-apiserver": bench.apiserver_pid}, trees=["operator"])
        mark, reads_before = audit_offset(bench.audit_log), bench.bao.reads("shared/")
        profile = (
            Profile(running.pid, args.profile / f"{namespace}-b-n{n}.raw")
            if args.profile and contender is CONTENDERS["strongroom"]
            else None
        )
        if profile:
            profile.start()
        meter.start()
        started = time.perf_counter()
        await bounded(range(n), create, CONCURRENCY)
        last = await watch.wait_for(set(names), bench.limit)
        cpu = meter.stop()
        if profile and (recorded := profile.stop()):
            print(format_summary(summarise([recorded]), f"[bench] py-spy during (b): {recorded}"), flush=True)
        await watch.stop()
        reads_synced = bench.bao.reads("shared/") - reads_before
        await asyncio.sleep(1)  # the last requests reach the audit log
        requests = audited_requests(bench.audit_log, mark, contender.user_agent)

        async def patch_all(patch: dict[str, Any]) -> None:
            async def one(name: str) -> None:
                await client.patch(
                    contender.resource, name, patch, namespace=namespace, patch_type=PatchType.MERGE
                )

            await bounded(names, one, CONCURRENCY)

        # force: every object's force-refresh annotation set, new objects meanwhile
        force_p99: float | None = None
        annotation = contender.force_annotation
        if annotation is not None:
            forced = await refresh_with_newcomers(
                bench,
                contender,
                running,
                namespace,
                new_ns,
                "forced",
                lambda: patch_all({"metadata": {"annotations": {annotation: str(time.time())}}}),
            )
            force_p99 = forced.p99

        # periodic: a short refresh interval for all, then one full refresh that finds nothing new
        before = running.refreshes()
        await patch_all({"spec": {"refreshInterval": f"{args.periodic_interval}s"}})
        await wait_count(running.refreshes, before + n, bench.limit, "refresh after the interval change")

        async def nothing() -> None:
            return None

        periodic = await refresh_with_newcomers(
            bench, contender, running, namespace, new_ns, "periodic", nothing
        )
        rss = peak_rss_mib(running.pid)
    finally:
        running.stop()
    await delete_namespaces(client, (namespace, floor_ns, new_ns), bench.limit)
    return Figures(
        gate=gate,
        floor=floor,
        synced=last - started,
        operator_cpu=cpu["operator"],
        apiserver_cpu=cpu["kube-apiserver"],
        requests=len(requests),
        request_mix=per_object(requests, n),
        reads_synced=reads_synced,
        reads_refresh=periodic.reads,
        idle_writes=periodic.writes,
        force_p99=force_p99,
        periodic_p99=periodic.p99,
        rss=rss,
    )


async def delete_namespaces(client: AsyncClient, names: Sequence[str], limit: float) -> None:
    """Delete a run's namespaces and wait until they are gone, so that the next run starts on a quiet
    API server."""
    for name in names:
        await client.delete(Namespace, name)
    deadline = time.perf_counter() + limit
    for name in names:
        while time.perf_counter() < deadline:
            try:
                await client.get(Namespace, name)
            except ApiError as exc:
                if exc.status.code == 404:
                    break
                raise
            await asyncio.sleep(1)


# --- set-up and the table -----------------------------------------------------------------------------------


async def install_stores(bench: Bench) -> None:
    """The OpenBao token and, reading through it, strongroom's SecretStore and ESO's ClusterSecretStore;
    the shared keys and the new objects' keys."""
    bao = bench.env.info("openbao")
    await write_openbao(
        bao["addr"],
        bao["root_token"],
        {f"shared/k{j}": {"value": f"shared-{j}"} for j in range(SHARED_KEYS)}
        | {f"new/k{j}": {"value": f"new-{j}"} for j in range(NEW_OBJECTS)},
    )
    await ensure_namespace(bench.client, OPERATOR_NAMESPACE)
    await bench.client.apply(secret(OPERATOR_NAMESPACE, "bao-token", {"token": bao["root_token"]}))
    await bench.client.apply(
        obj(
            {
                "apiVersion": "strongroom.dev/v1alpha1",
                "kind": "SecretStore",
                "metadata": {"name": "bao", "namespace": OPERATOR_NAMESPACE},
                "spec": {
                    "vault": vault_spec(bao),
                    "access": [{"namespaces": ["*"], "keyPrefixes": ["shared/", "new/"]}],
                },
            }
        )
    )
    if not any(key.startswith("eso") for key in bench.args.only):
        return
    await bench.client.apply(
        obj(
            {
                "apiVersion": "external-secrets.io/v1",
                "kind": "ClusterSecretStore",
                "metadata": {"name": "bao"},
                "spec": {
                    "provider": {
                        "vault": {
                            "server": bao["addr"],
                            "path": "secret",
                            "version": "v2",
                            "auth": {
                                "tokenSecretRef": {
                                    "name": "bao-token",
                                    "key": "token",
                                    "namespace": OPERATOR_NAMESPACE,
                                }
                            },
                        }
                    }
                },
            }
        )
    )


def min_median(values: Sequence[float], unit: str, digits: int) -> str:
    return f"{min(values):.{digits}f} / {median(values):.{digits}f}{unit}"


def spread(values: Sequence[float], unit: str = "", digits: int = 0) -> str:
    low, high = min(values), max(values)
    if round(low, digits) == round(high, digits):
        return f"{low:.{digits}f}{unit}"
    return f"{low:.{digits}f}-{high:.{digits}f}{unit}"


def print_comparison(n: int, results: dict[str, list[Figures]]) -> None:
    keys = list(results)
    tuned = results.get("eso-tuned")

    def ratio(key: str, pick: Callable[[Figures], float | None]) -> str:
        if tuned is None or key == "eso-tuned":
            return ""
        mine = [v for f in results[key] if (v := pick(f)) is not None]
        theirs = [v for f in tuned if (v := pick(f)) is not None]
        if not mine or not theirs or median(theirs) == 0:
            return ""
        return f" ({median(mine) / median(theirs):.2f}x tuned)"

    def row(title: str, cell: Callable[[list[Figures]], str], pick: Callable[[Figures], float | None]) -> str:
        cells = [cell(results[k]) + ratio(k, pick) for k in keys]
        return f"| {title} | " + " | ".join(cells) + " |"

    def timed(pick: Callable[[Figures], float | None], digits: int = 2) -> Callable[[list[Figures]], str]:
        def cell(runs: list[Figures]) -> str:
            values = [v for f in runs if (v := pick(f)) is not None]
            return min_median(values, " s", digits) if values else "n/a (not on this branch)"

        return cell

    def synced(runs: list[Figures]) -> str:
        times = [f.synced for f in runs]
        return f"{min_median(times, ' s', 2)} = {median(times) / median([f.floor for f in runs]):.1f}x floor"

    lines = [
        f"\nstrongroom vs ESO {eso.ESO_VERSION} (N={n}, one key each from {SHARED_KEYS} shared OpenBao keys, "
        f"refresh {REFRESH}; min / median of {len(next(iter(results.values())))} rounds)",
        "| figure | " + " | ".join(CONTENDERS[k].label for k in keys) + " |",
        "|---|" + "---|" * len(keys),
        row(f"(a) floor: {n} plain Secret creates", timed(lambda f: f.floor), lambda f: f.floor),
        row(f"(b) {n} objects created → all synced", synced, lambda f: f.synced),
        row("operator CPU during (b)", timed(lambda f: f.operator_cpu), lambda f: f.operator_cpu),
        row("kube-apiserver CPU during (b)", timed(lambda f: f.apiserver_cpu), lambda f: f.apiserver_cpu),
        row(
            "API requests per object in (b), operator only",
            lambda runs: spread([f.requests / n for f in runs], "", 1),
            lambda f: f.requests / n,
        ),
        row(
            "store reads in (b) / per full refresh",
            lambda runs: (
                f"{spread([f.reads_synced for f in runs])} / {spread([f.reads_refresh for f in runs])}"
            ),
            lambda f: f.reads_synced,
        ),
        row(
            "writes in a periodic refresh that changes nothing",
            lambda runs: spread([f.idle_writes for f in runs]),
            lambda f: f.idle_writes,
        ),
        row(
            f"new object while {n} are force-refreshed, p99",
            timed(lambda f: f.force_p99),
            lambda f: f.force_p99,
        ),
        row(
            f"new object while {n} refresh periodically, p99",
            timed(lambda f: f.periodic_p99),
            lambda f: f.periodic_p99,
        ),
        row("operator peak RSS", lambda runs: spread([f.rss for f in runs], " MiB"), lambda f: f.rss),
    ]
    print("\n".join(lines))
    print("\nAPI requests per object in (b), by verb and resource (last round):")
    for key in keys:
        print(f"  {CONTENDERS[key].label}: {results[key][-1].request_mix}")
    print("\nmachine before each run:")
    for key in keys:
        for i, figures in enumerate(results[key], 1):
            print(f"  round {i}, {CONTENDERS[key].label}: {figures.gate}")


async def run(args: argparse.Namespace, env: testenv.Environment, workdir: Path) -> dict[str, list[Figures]]:
    client = client_for(Path(env.info("kubernetes")["kubeconfig"]))
    bench = Bench(args, env, workdir, client, BaoReads(Path(env.info("openbao")["audit_log"])))
    results: dict[str, list[Figures]] = {key: [] for key in args.only}
    try:
        await install_stores(bench)
        for round_no in range(1, args.rounds + 1):
            for key in args.only:
                figures = await run_once(bench, CONTENDERS[key], round_no)
                results[key].append(figures)
                print(
                    f"[bench] round {round_no}, {CONTENDERS[key].label}: (b) {figures.synced:.2f} s "
                    f"(floor {figures.floor:.2f} s), operator CPU {figures.operator_cpu:.2f} s, "
                    f"RSS {figures.rss:.0f} MiB",
                    flush=True,
                )
    finally:
        await client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="objects per run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds (at least 3 for the record)"
    )
    parser.add_argument(
        "--only",
        default=",".join(CONTENDERS),
        help=f"comma-separated subset of: {', '.join(CONTENDERS)} (in this order)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: N=100, one round")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record strongroom with py-spy during (b) into this directory",
    )
    parser.add_argument(
        "--periodic-interval", type=int, default=30, help="refresh interval (s) for the periodic refresh"
    )
    parser.add_argument(
        "--max-busy",
        type=float,
        default=0.15,
        help="idle gate: most of all CPUs in use over 5 s before a run starts (default 0.15)",
    )
    parser.add_argument(
        "--gate-timeout", type=float, default=600, help="seconds to wait for an idle machine before each run"
    )
    parser.add_argument(
        "--skip-idle-gate",
        action="store_true",
        help="run anyway when the machine is not idle after --gate-timeout (the load seen is printed with "
        "the table): numbers are then not comparable",
    )
    args = parser.parse_args()
    if args.quick:
        args.n, args.rounds = 100, 1
    args.only = [key for key in args.only.split(",") if key]
    unknown = [key for key in args.only if key not in CONTENDERS]
    if unknown:
        parser.error(f"unknown --only {', '.join(unknown)}; known: {', '.join(CONTENDERS)}")

    with_eso = any(key.startswith("eso") for key in args.only)
    if with_eso:
        eso.ESO.ensure()  # before anything is timed: a cold build takes minutes
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-bench-eso-"))
    env = testenv.start(workdir, ["kubernetes"])
    try:
        # OpenBao with an audit log: what it served is the one count of store reads both operators share.
        bao_audit = workdir / "openbao-audit.log"
        env.services["openbao"] = openbao.start(workdir / "openbao", audit_log=bao_audit)
        env.services["openbao"].info["audit_log"] = str(bao_audit)
        kubeconfig = Path(env.info("kubernetes")["kubeconfig"])
        install_crds(kubeconfig)
        if with_eso:
            eso.install_crds(kubeconfig)
        results = asyncio.run(run(args, env, workdir))
    except TimeoutError as exc:
        print(f"bench.compare_eso: {exc}; logs in {workdir}", file=sys.stderr)
        sys.exit(1)
    finally:
        env.stop()
    print_comparison(args.n, results)
    print(f"\noperator logs: {workdir}")


if __name__ == "__main__":
    main()
