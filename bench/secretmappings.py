"""SecretMapping benchmark: throughput, no-op refresh writes, memory, first-sync latency, read sharing.

    .venv/bin/python -m bench.secretmappings [--n 1000] [--shared-n 1000] [--new 20] [--refresh 30]
        [--figures b0,c,e,f,g]

Starts its own control plane, OpenBao and operator process (nothing else may run on them), then
prints one table. Measures, per issue "Secret stores" item 6:
  (a) floor: the same client creating N plain Secrets directly;
  (b) N SecretMappings (3 keys each from OpenBao) created at once: time until all are Ready;
  (c) a full refresh that finds nothing new: writes to the apiserver (target 0);
  (d) operator peak RSS;
  (e) time-to-first-sync p50/p99 of new mappings created during a refresh of all N;
  (f) store reads per refresh when N mappings share 10 keys (target 10);
  (g) a forced refresh (`strongroom.dev/force-refresh`) of all N, 10 of their keys rotated first: time
      until all N honoured it, time-to-first-sync p50/p99 of new mappings created meanwhile (target
      p99 <= 1 s), and the store reads and apiserver writes it caused (only the rotated Secrets change).
(a), (b) and (d) always run; `--figures` picks the others (`--figures g --refresh 600`: the forced refresh
alone, no periodic refresh meanwhile).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lightkube import codecs
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

import testenv
from bench.common import (
    CpuMeter,
    ReadyWatch,
    Row,
    SecretMappingRes,
    apiserver_requests,
    bounded,
    client_for,
    ensure_namespace,
    environment_processes,
    metric_sum,
    peak_rss_mib,
    percentile,
    print_table,
    requests_between,
    wait_count,
    write_openbao,
)
from bench.profile import Profile, format_summary, summarise
from strongroom.api.constants import FORCE_REFRESH_ANNOTATION, PART_OF_LABEL, PART_OF_VALUE
from strongroom.api.crds import render_crds_yaml
from testenv import tools
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator

CONCURRENCY = 16  # the same for the floor and for the mappings
WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE")
FIGURES = ("b0", "c", "e", "f", "g")
ROTATED = 10  # keys changed in the store before the forced refresh of (g)
NEW_SPACING = 0.1  # seconds between the creates of new mappings during (g)


def mapping(
    name: str,
    namespace: str,
    store: str,
    entries: list[tuple[str, str, str | None]],
    refresh: str | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "SecretMapping",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            **({"refreshInterval": refresh} if refresh else {}),
            "secretName": name,
            "secretData": [
                {
                    "secretKey": key,
                    "secretStoreName": store,
                    "remoteRef": {"key": ref, **({"property": prop} if prop else {})},
                }
                for key, ref, prop in entries
            ],
        },
    }


def obj(manifest: dict[str, Any]) -> Any:
    """A lightkube object from a manifest (lightkube's types are too narrow for generic resources)."""
    return codecs.from_dict(manifest)


def apiserver_writes(info: dict[str, Any], resources: tuple[str, ...]) -> float:
    return writes_in(apiserver_requests(info), resources)


def writes_in(counts: dict[tuple[str, str], float], resources: tuple[str, ...]) -> float:
    return sum(n for (verb, resource), n in counts.items() if verb in WRITE_VERBS and resource in resources)


def _values(i: int, suffix: str = "") -> dict[str, str]:
    return {k: f"{k}{i}{suffix}" for k in "abc"}


async def seed_openbao(addr: str, token: str, n: int) -> None:
    secrets = {f"bench/m{i}": _values(i) for i in range(n)}
    await write_openbao(addr, token, secrets | {f"shared/k{j}": {"value": f"shared-{j}"} for j in range(10)})


class HonouredWatch(ReadyWatch):
    """When each mapping recorded a force-refresh value as honoured (status.lastForceRefresh)."""

    def __init__(self, client: Any, namespace: str, value: str) -> None:
        super().__init__(client, SecretMappingRes, namespace)
        self.value = value

    def reached(self, found: Any) -> bool:
        return bool((found.status or {}).get("lastForceRefresh") == self.value)


async def force_refresh_figure(
    args: argparse.Namespace,
    client: Any,
    info: dict[str, Any],
    bao: dict[str, Any],
    operator: OperatorProcess,
    watch: ReadyWatch,
    meter: CpuMeter,
) -> list[Row]:
    """(g): rotate 10 keys, annotate all N mappings; create new mappings while the operator works."""
    rotated = {f"bench/m{i}": _values(i, "-rotated") for i in range(min(ROTATED, args.n))}
    await write_openbao(bao["addr"], bao["root_token"], rotated)
    value = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    honoured = HonouredWatch(client, "bench", value)
    honoured.start()
    await asyncio.sleep(0.5)
    store = f"{OPERATOR_NAMESPACE}/bao"
    reads_before = metric_sum(
        operator.metrics(), "strongroom_store_requests_total", store=store, operation="read"
    )
    requests_before = apiserver_requests(info)
    annotated = 0
    created: dict[str, float] = {}

    async def annotate(i: int) -> None:
        nonlocal annotated
        patch = {"metadata": {"annotations": {FORCE_REFRESH_ANNOTATION: value}}}
        await client.patch(SecretMappingRes, f"m{i}", patch, namespace="bench", patch_type=PatchType.MERGE)
        annotated += 1

    async def create_new() -> None:
        while annotated < args.n // 5:  # noqa: ASYNC110 - the patches above have no event to wait on
            await asyncio.sleep(0.01)
        for j in range(args.new):
            name = f"forced-new{j}"
            created[name] = time.perf_counter()
            entries: list[tuple[str, str, str | None]] = [(k, f"bench/m{args.n - 1 - j}", k) for k in "abc"]
            await client.create(obj(mapping(name, "bench", "bao", entries)))
            await asyncio.sleep(NEW_SPACING)

    meter.start()
    started = time.perf_counter()
    await asyncio.gather(bounded(range(args.n), annotate, CONCURRENCY), create_new())
    annotating = time.perf_counter() - started
    await watch.wait_for(set(created), limit=300)
    all_honoured = await honoured.wait_for({f"m{i}" for i in range(args.n)}, limit=600) - started
    cpu = meter.stop()
    await honoured.stop()
    reads = (
        metric_sum(operator.metrics(), "strongroom_store_requests_total", store=store, operation="read")
        - reads_before
    )
    after = apiserver_requests(info)
    made = {key: n - requests_before.get(key, 0.0) for key, n in after.items()}
    secret_writes = writes_in(made, ("secrets",))
    status_writes = writes_in(made, ("secretmappings",)) - args.n - args.new  # less the bench's own
    latencies = [watch.ready_at[name] - at for name, at in created.items()]
    wrong = 0
    for i in range(min(ROTATED, args.n)):
        secret = await client.get(Secret, f"m{i}", namespace="bench")
        data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        wrong += data != _values(i, "-rotated")
    return [
        Row(
            "(g) forced refresh of N: annotated -> all honoured",
            f"{all_honoured:.2f} s",
            "",
            f"the {args.n} annotations took {annotating:.2f} s ({CONCURRENCY} in flight)",
        ),
        Row("(g) time-to-first-sync during a forced refresh, p50", f"{percentile(latencies, 50):.2f} s"),
        Row(
            "(g) time-to-first-sync during a forced refresh, p99",
            f"{percentile(latencies, 99):.2f} s",
            "<= 1 s",
            f"{args.new} new mappings, one every {NEW_SPACING:.1f} s from the {args.n // 5}th annotation on",
        ),
        Row(
            "(g) store reads",
            f"{reads:.0f}",
            f"<= {args.n + args.new}",
            f"{args.n} forced mappings (one key each) + {args.new} new",
        ),
        Row(
            "(g) Secret writes",
            f"{secret_writes:.0f}",
            f"{args.new + min(ROTATED, args.n)}",
            f"{args.new} new + {min(ROTATED, args.n)} rotated keys; {wrong} rotated Secrets wrong",
        ),
        Row(
            "(g) SecretMapping status writes",
            f"{status_writes:.0f}",
            f"{args.n + args.new}",
            "one per mapping",
        ),
        Row("(g) CPU seconds by process", CpuMeter.describe(cpu)),
    ]


async def wait_reconciles(operator: OperatorProcess, count: float, limit: float) -> None:
    await wait_count(lambda: reconciles(operator), count, limit, "SecretMapping reconciles")


def reconciles(operator: OperatorProcess) -> float:
    """SecretMapping reconciles so far (a full refresh is one per mapping)."""
    return metric_sum(operator.metrics(), "strongroom_reconciles_total", kind="SecretMapping")


def install_crds(kubeconfig: Path) -> None:
    tools.apply_crds(kubeconfig, render_crds_yaml(), f"{PART_OF_LABEL}={PART_OF_VALUE}", "bench")


async def run(args: argparse.Namespace, env: testenv.Environment, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    operator: OperatorProcess | None = None
    try:
        info = env.info("kubernetes")
        kubeconfig = Path(info["kubeconfig"])
        client = client_for(kubeconfig)
        for ns in (OPERATOR_NAMESPACE, "bench", "bench-floor", "bench-shared"):
            await ensure_namespace(client, ns)
        bao = env.info("openbao")
        await seed_openbao(bao["addr"], bao["root_token"], args.n)
        await client.apply(
            obj(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": "bao-token", "namespace": OPERATOR_NAMESPACE},
                    "data": {"token": base64.b64encode(bao["root_token"].encode()).decode()},
                }
            )
        )
        for store in ("bao", "bao-shared"):
            await client.apply(_store(store, bao["addr"]))

        # (a) the floor
        async def create_secret(i: int) -> None:
            await client.create(obj(_plain_secret(f"floor-{i}", "bench-floor", i)))

        meter = CpuMeter(environment_processes(env))
        floor, floor_cpu = await meter.measure(bounded(range(args.n), create_secret, CONCURRENCY))
        rows.append(
            Row(
                "(a) floor: create N plain Secrets",
                f"{floor:.2f} s",
                "",
                f"N={args.n}, {CONCURRENCY} in flight",
            )
        )
        rows.append(Row("(a) CPU seconds by process", CpuMeter.describe(floor_cpu)))

        if "b0" in args.figures:
            # (b0) what no operator can undercut: the client itself makes, per mapping, the apiserver writes
            # a sync needs (create the mapping, create its Secret, set Ready), with no store and no watch.
            async def sync_by_hand(i: int) -> None:
                name = f"lb{i}"
                await client.create(
                    obj(mapping(name, "bench-floor", "bao", [(k, f"bench/m{i}", k) for k in "abc"]))
                )
                await client.create(obj(_plain_secret(name, "bench-floor", i)))
                await client.patch(
                    SecretMappingRes.Status,
                    name,
                    {"status": _ready_status()},
                    namespace="bench-floor",
                    patch_type=PatchType.MERGE,
                )

            by_hand, by_hand_cpu = await meter.measure(bounded(range(args.n), sync_by_hand, CONCURRENCY))
            rows.append(
                Row(
                    "(b0) lower bound: the same writes made directly",
                    f"{by_hand:.2f} s",
                    "",
                    f"{by_hand / floor:.2f}x floor; create mapping + create Secret + patch status, "
                    "no operator",
                )
            )
            rows.append(Row("(b0) CPU seconds by process", CpuMeter.describe(by_hand_cpu)))
            await client.deletecollection(SecretMappingRes, namespace="bench-floor")

        operator = start_operator(
            kubeconfig,
            workdir / "operator.log",
            [
                f"--refresh-interval={args.refresh}s",
                "--log-level=warning",
                f"--worker-limit={args.workers}",
                f"--reconcile-limit={args.slots}",
            ],
        )

        # (b) N mappings created at once
        watch = ReadyWatch(client, SecretMappingRes, "bench")
        watch.start()
        await asyncio.sleep(0.5)
        names = {f"m{i}" for i in range(args.n)}

        async def create_mapping(i: int) -> None:
            entries = [(k, f"bench/m{i}", k) for k in "abc"]
            await client.create(SecretMappingRes.from_dict(mapping(f"m{i}", "bench", "bao", entries)))  # type: ignore[arg-type]

        meter = CpuMeter({**environment_processes(env), "operator": operator.process.pid})
        requests_before = apiserver_requests(info)
        profile = (
            Profile(operator.process.pid, args.profile / f"secretmappings-b-n{args.n}.raw")
            if args.profile
            else None
        )
        if profile:
            profile.start()
        meter.start()
        started = time.perf_counter()
        await bounded(range(args.n), create_mapping, CONCURRENCY)
        last_ready = await watch.wait_for(names, limit=600)
        synced_cpu = meter.stop()
        if profile and (recorded := profile.stop()):
            args.recorded_profiles.append(recorded)
        synced = last_ready - started
        rows.append(
            Row(
                "(b) N SecretMappings: created -> all Ready",
                f"{synced:.2f} s",
                f"<= {2 * floor:.2f} s (2x floor)",
                f"{synced / floor:.2f}x floor",
            )
        )
        rows.append(Row("(b) CPU seconds by process", CpuMeter.describe(synced_cpu)))
        rows.append(
            Row(
                "(b) apiserver requests per mapping",
                requests_between(requests_before, apiserver_requests(info), args.n),
            )
        )
        wrong = 0
        async for secret in client.list(Secret, namespace="bench"):
            i = secret.metadata.name[1:]  # type: ignore[union-attr,index]
            data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
            wrong += data != {k: f"{k}{i}" for k in "abc"}
        rows.append(Row("(b) Secrets with wrong or missing data", str(wrong), "0"))

        if "g" in args.figures:
            rows += await force_refresh_figure(args, client, info, bao, operator, watch, meter)

        if "c" in args.figures:
            # (c) a refresh that finds nothing new
            reconciles_before = metric_sum(
                operator.metrics(), "strongroom_reconciles_total", kind="SecretMapping"
            )
            writes_before = apiserver_writes(info, ("secrets", "secretmappings"))
            await wait_reconciles(operator, reconciles_before + args.n, limit=args.refresh * 2 + 60)
            writes = apiserver_writes(info, ("secrets", "secretmappings")) - writes_before
            rows.append(
                Row(
                    "(c) writes to the apiserver during a full no-op refresh",
                    f"{writes:.0f}",
                    "0",
                    f"{args.n} refresh reconciles observed",
                )
            )

        if "e" in args.figures:
            # (e) new mappings during a refresh of all N
            reconciles_now = metric_sum(
                operator.metrics(), "strongroom_reconciles_total", kind="SecretMapping"
            )
            await wait_reconciles(
                operator, reconciles_now + 1, limit=args.refresh * 2 + 60
            )  # the next cycle began
            await wait_reconciles(operator, reconciles_now + args.n // 5, limit=args.refresh * 2 + 60)
            created: dict[str, float] = {}

            async def create_new(j: int) -> None:
                created[f"new{j}"] = time.perf_counter()
                await client.create(
                    obj(mapping(f"new{j}", "bench", "bao", [(k, f"bench/m{j}", k) for k in "abc"]))
                )

            await bounded(range(args.new), create_new, args.new)
            await watch.wait_for(set(created), limit=120)
            latencies = [watch.ready_at[name] - at for name, at in created.items()]
            rows.append(
                Row("(e) time-to-first-sync during a refresh, p50", f"{percentile(latencies, 50):.2f} s")
            )
            rows.append(
                Row(
                    "(e) time-to-first-sync during a refresh, p99",
                    f"{percentile(latencies, 99):.2f} s",
                    "<= 10 s",
                    f"{args.new} new mappings",
                )
            )
        await watch.stop()

        # (f) shared keys
        if "f" in args.figures and args.shared_n:
            shared_watch = ReadyWatch(client, SecretMappingRes, "bench-shared")
            shared_watch.start()

            async def create_shared(i: int) -> None:
                await client.create(
                    obj(
                        mapping(f"s{i}", "bench-shared", "bao-shared", [("value", f"shared/k{i % 10}", None)])
                    )
                )

            await bounded(range(args.shared_n), create_shared, CONCURRENCY)
            await shared_watch.wait_for({f"s{i}" for i in range(args.shared_n)}, limit=600)
            await shared_watch.stop()
            store_label = f"{OPERATOR_NAMESPACE}/bao-shared"
            reads_before = metric_sum(
                operator.metrics(), "strongroom_store_requests_total", store=store_label, operation="read"
            )
            reconciles_now = metric_sum(
                operator.metrics(), "strongroom_reconciles_total", kind="SecretMapping"
            )
            # one full cycle of every mapping (the N of (b) and the shared ones) refreshes
            await wait_reconciles(
                operator, reconciles_now + args.n + args.shared_n, limit=args.refresh * 2 + 60
            )
            reads = (
                metric_sum(
                    operator.metrics(), "strongroom_store_requests_total", store=store_label, operation="read"
                )
                - reads_before
            )
            rows.append(
                Row(
                    "(f) store reads per refresh, mappings sharing 10 keys",
                    f"{reads:.0f}",
                    "10",
                    f"{args.shared_n} mappings",
                )
            )

        existing = args.n + args.new * (("e" in args.figures) + ("g" in args.figures))
        existing += args.shared_n if "f" in args.figures else 0
        rows.append(
            Row(
                "(d) operator peak RSS",
                f"{peak_rss_mib(operator.process.pid):.0f} MiB",
                "<= 256 MiB",
                f"{existing} mappings",
            )
        )
        await client.close()
    finally:
        if operator is not None:
            operator.stop()
    return rows


def _plain_secret(name: str, namespace: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {k: base64.b64encode(f"{k}{i}".encode()).decode() for k in "abc"},
    }


def _ready_status() -> dict[str, Any]:
    """The status the operator writes after a first sync (same fields, same size)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "observedGeneration": 1,
        "lastSyncTime": now,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Synced",
                "message": "the Secret holds 3 keys from 1 store",
                "lastTransitionTime": now,
                "observedGeneration": 1,
            }
        ],
    }


def _store(name: str, addr: str) -> Any:
    return obj(
        {
            "apiVersion": "strongroom.dev/v1alpha1",
            "kind": "SecretStore",
            "metadata": {"name": name, "namespace": OPERATOR_NAMESPACE},
            "spec": {
                "vault": {
                    "url": addr,
                    "path": "secret",
                    "auth": {"tokenSecretRef": {"name": "bao-token", "key": "token"}},
                },
                "rateLimit": {"qps": 2000, "burst": 2000},
                "access": [
                    {"namespaces": ["bench", "bench-floor"], "keyPrefixes": ["bench/"]},
                    {"namespaces": ["bench-shared"], "keyPrefixes": ["shared/"]},
                ],
            },
        }
    )


def _figures(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(chosen) - set(FIGURES))
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown figures {', '.join(unknown)}; choose from {','.join(FIGURES)}"
        )
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=1000, help="mappings for (b)-(e)")
    parser.add_argument(
        "--shared-n", type=int, default=1000, help="mappings sharing 10 keys for (f); 0 skips"
    )
    parser.add_argument("--new", type=int, default=20, help="new mappings created during a refresh for (e)")
    parser.add_argument("--refresh", type=int, default=30, help="refresh interval of the operator, seconds")
    parser.add_argument("--workers", type=int, default=20, help="operator --worker-limit")
    parser.add_argument("--slots", type=int, default=4, help="operator --reconcile-limit")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="record the operator with py-spy during (b) into this directory",
    )
    parser.add_argument(
        "--figures",
        type=_figures,
        default=FIGURES,
        help=f"comma-separated figures to measure besides (a), (b), (d); default {','.join(FIGURES)}",
    )
    args = parser.parse_args()
    profiles: list[Path] = []
    args.recorded_profiles = profiles
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-bench-"))
    env = testenv.start(workdir, ["kubernetes", "openbao"])
    try:
        install_crds(Path(env.info("kubernetes")["kubeconfig"]))
        rows = asyncio.run(run(args, env, workdir))
    finally:
        env.stop()
    print_table(f"SecretMapping benchmark (N={args.n})", rows)
    if profiles:
        print()
        print(
            format_summary(
                summarise(profiles), f"py-spy during (b), N={args.n}: {', '.join(map(str, profiles))}"
            )
        )


if __name__ == "__main__":
    main()
