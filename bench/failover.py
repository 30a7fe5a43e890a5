"""Failover benchmark: SIGKILL the leader in the middle of a burst and measure the hand-over to the standby.

    .venv/bin/python -m bench.failover [--mappings 500] [--resources 100] [--lease-duration 15]

Starts its own control plane, OpenBao and a remote driver (an SDK app in its own process that answers 202
twice before 200 for a new resource, and 200 at once afterwards, and records every PUT), then two operator
processes with --leader-elect (defaults: lease 15 s, renew deadline 10 s, retry 2 s). Once the first leads
and the second stands by, it creates the SecretMappings (Vault) and remote-driver Resources at once, and
SIGKILLs the leader when a quarter of the mappings are Ready (the remote Resources are then in their 202
polling). Right after the kill it changes the spec of some mappings (another Vault key) and Resources
(another input), while nobody leads. It reports:

  takeover: kill -> the standby holds the Lease (target <= lease duration + 2 s);
  all Ready: kill -> every object Ready at its latest generation;
  duplicate first provisionings: PUTs the driver received for a resource, with the inputs it had already
      answered 200 for (the new leader redoing a provisioning that had finished) (target 0);
  orphans: resources the driver was asked to create that no Resource's status names at the end (target 0);
  lost updates: spec changes made during the hand-over that are not in effect at the end: a mapping's
      Secret without the new key's value, a Resource whose driver did not get its new input (target 0).

A benchmark, not a test: it prints a table. Timings depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import Secret
from lightkube.types import PatchType

import testenv
from bench.common import Row, SecretMappingRes, bounded, client_for, ensure_namespace, print_table
from bench.resources import (
    ResourceRes,
    install_operator_namespace,
    obj,
    resource,
    secret,
    start_remote_driver,
    vault_spec,
)
from bench.secretmappings import install_crds, mapping
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from testenv.process import LOOPBACK, ManagedProcess

ORG = "bench-org"
LEASE = "strongroom-operator"
MAPPINGS_NS, RESOURCES_NS = "fo-maps", "fo-res"
CONCURRENCY = 16


def digest(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


# --- the remote driver (its own process: `python -m bench.failover serve-driver ...`) ---------------------


def serve_driver(port: int, public_key: Path, record: Path) -> None:
    import uvicorn

    from strongroom.drivers.sdk import DriverApp, DriverResponse, PutRequest, in_progress

    polls: dict[str, int] = {}
    done: set[str] = set()
    out = record.open("a", buffering=1)  # a line per PUT, flushed: the benchmark reads it afterwards

    async def put(request: PutRequest) -> Any:
        guresid = request.guresid
        polls[guresid] = polls.get(guresid, 0) + 1
        finished = guresid in done or polls[guresid] > 2
        entry = {"guresid": guresid, "inputs": digest(request.values), "code": 200 if finished else 202}
        out.write(json.dumps(entry) + "\n")
        if not finished:
            return in_progress("creating")
        done.add(guresid)
        return DriverResponse(values={"id": guresid[:12]}, secrets={"token": f"t-{guresid}"})

    audience = f"http://{LOOPBACK}:{port}/"
    app = DriverApp(put=put, public_keys=[public_key.read_bytes()], audience=audience, org_id=ORG)
    uvicorn.run(app, host=LOOPBACK, port=port, lifespan="off", log_level="warning", access_log=False)


@dataclass
class DriverRecord:
    duplicates: int  # PUTs with inputs already answered 200 for that resource
    created: set[str]  # every GUResID the driver was asked to create
    last_inputs: dict[str, str]  # GUResID -> inputs of its last PUT
    puts: int


def read_record(path: Path) -> DriverRecord:
    answered: dict[str, set[str]] = {}
    duplicates = puts = 0
    last: dict[str, str] = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        guresid, inputs = entry["guresid"], entry["inputs"]
        puts += 1
        if inputs in answered.get(guresid, set()):
            duplicates += 1
        if entry["code"] == 200:
            answered.setdefault(guresid, set()).add(inputs)
        last[guresid] = inputs
    return DriverRecord(duplicates, set(last), last, puts)


# --- the benchmark ----------------------------------------------------------------------------------------


@dataclass
class Timeline:
    created: float = 0.0  # the burst's creation started
    killed: float = 0.0
    took_over: float | None = None
    all_ready: float | None = None
    settled_at_kill: int = 0
    settled_at_takeover: int = 0


async def lease_holder(client: AsyncClient) -> str | None:
    try:
        lease = await client.get(Lease, LEASE, namespace=OPERATOR_NAMESPACE)
    except ApiError:
        return None
    return lease.spec.holderIdentity if lease.spec else None


def settled(item: Any) -> bool:
    status = item.status or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or [])
    return ready and status.get("observedGeneration") == item.metadata.generation


async def until(check: Callable[[], Awaitable[bool]], interval: float) -> None:
    while True:
        if await check():
            return
        await asyncio.sleep(interval)


async def lease_holder_is(client: AsyncClient, identity: str) -> bool:
    return await lease_holder(client) == identity


async def settled_at_least(client: AsyncClient, count: int) -> bool:
    return await count_settled(client) >= count


async def count_settled(client: AsyncClient) -> int:
    count = 0
    for kind, namespace in ((SecretMappingRes, MAPPINGS_NS), (ResourceRes, RESOURCES_NS)):
        async for item in client.list(kind, namespace=namespace):
            count += settled(item)
    return count


async def setup(client: AsyncClient, env: testenv.Environment, workdir: Path) -> ManagedProcess:
    for namespace in (OPERATOR_NAMESPACE, MAPPINGS_NS, RESOURCES_NS):
        await ensure_namespace(client, namespace)
    bao = env.info("openbao")
    async with httpx.AsyncClient(base_url=bao["addr"], headers={"X-Vault-Token": bao["root_token"]}) as vault:
        for path, value in (("bench/fo-old", "v1"), ("bench/fo-new", "v2")):
            response = await vault.post(f"/v1/secret/data/{path}", json={"data": {"value": value}})
            response.raise_for_status()
    public = await install_operator_namespace(client, bao, workdir)
    await client.apply(secret(MAPPINGS_NS, "bao-token", {"token": bao["root_token"]}))
    await client.apply(
        obj(
            {
                "apiVersion": "strongroom.dev/v1alpha1",
                "kind": "SecretStore",
                "metadata": {"name": "bao", "namespace": MAPPINGS_NS},
                "spec": {"vault": vault_spec(bao), "rateLimit": {"qps": 5000, "burst": 5000}},
            }
        )
    )
    return await start_remote_driver(
        client,
        ["bench.failover", "serve-driver"],
        public,
        workdir,
        ["--record", str(workdir / "driver-puts.jsonl")],
    )


def election_args(args: argparse.Namespace, identity: str) -> list[str]:
    return [
        "--log-level=info",
        "--leader-elect",
        f"--leader-elect-identity={identity}",
        f"--leader-elect-lease-name={LEASE}",
        f"--leader-elect-lease-duration={args.lease_duration:g}s",
        f"--leader-elect-renew-deadline={args.renew_deadline:g}s",
        f"--leader-elect-retry-period={args.retry_period:g}s",
    ]


async def run(args: argparse.Namespace, env: testenv.Environment, workdir: Path) -> list[Row]:
    info = env.info("kubernetes")
    client = client_for(Path(info["kubeconfig"]))
    operators: list[OperatorProcess] = []
    driver: ManagedProcess | None = None
    timeline = Timeline()
    try:
        driver = await setup(client, env, workdir)
        for identity in ("replica-a", "replica-b"):
            operators.append(
                start_operator(
                    Path(info["kubeconfig"]), workdir / f"{identity}.log", election_args(args, identity)
                )
            )
            if identity == "replica-a":
                await until(lambda: lease_holder_is(client, "replica-a"), 0.1)
        leader, standby = operators
        print(f"replica-a leads, replica-b stands by; {args.mappings} mappings, {args.resources} Resources")

        maps = [
            mapping(f"m-{i}", MAPPINGS_NS, "bao", [("value", "bench/fo-old", "value")])
            for i in range(args.mappings)
        ]
        resources = [
            resource(f"r-{i}", RESOURCES_NS, "remote", {"values": {"n": i, "rev": 1}})
            for i in range(args.resources)
        ]

        async def create(manifest: dict[str, Any]) -> None:
            kind = SecretMappingRes if manifest["kind"] == "SecretMapping" else ResourceRes
            await client.create(kind.from_dict(manifest))

        # Interleaved, so both kinds are in flight when the leader dies.
        interleaved = [
            m for pair in zip(maps, resources + [None] * len(maps), strict=False) for m in pair if m
        ]
        timeline.created = time.perf_counter()
        await bounded(interleaved, create, CONCURRENCY)
        kill_at = args.mappings // 4
        await until(lambda: settled_at_least(client, kill_at), 0.2)
        os.kill(leader.process.pid, signal.SIGKILL)
        timeline.killed = time.perf_counter()
        timeline.settled_at_kill = await count_settled(client)
        print(f"SIGKILLed replica-a with {timeline.settled_at_kill} of {len(interleaved)} objects Ready")

        # Changes while nobody leads: the standby must pick them up (its watches queued them).
        changed_maps = [f"m-{i}" for i in range(0, args.mappings, max(1, args.mappings // args.updates))][
            : args.updates
        ]
        changed_resources = [f"r-{i}" for i in range(0, args.resources, 5)]
        for name in changed_maps:
            patch = {
                "spec": {
                    "secretData": [
                        {
                            "secretKey": "value",
                            "secretStoreName": "bao",
                            "remoteRef": {"key": "bench/fo-new", "property": "value"},
                        }
                    ]
                }
            }
            await client.patch(
                SecretMappingRes, name, patch, namespace=MAPPINGS_NS, patch_type=PatchType.MERGE
            )
        for name in changed_resources:
            i = int(name.split("-")[1])
            inputs = {"spec": {"driverInputs": {"values": {"n": i, "rev": 2}}}}
            await client.patch(ResourceRes, name, inputs, namespace=RESOURCES_NS, patch_type=PatchType.MERGE)

        total = len(interleaved)
        deadline = time.perf_counter() + args.limit
        while time.perf_counter() < deadline:
            if timeline.took_over is None and await lease_holder(client) == "replica-b":
                timeline.took_over = time.perf_counter()
                timeline.settled_at_takeover = await count_settled(client)
            if timeline.took_over is not None and await count_settled(client) == total:
                timeline.all_ready = time.perf_counter()
                break
            await asyncio.sleep(0.1 if timeline.took_over is None else 0.5)

        # Orphans and lost updates, from the objects and the driver's record.
        await asyncio.sleep(1)
        record = read_record(workdir / "driver-puts.jsonl")
        named: dict[str, str] = {}
        last_inputs: dict[str, str] = {}
        async for found in client.list(ResourceRes, namespace=RESOURCES_NS):
            item: Any = found
            status: dict[str, Any] = item.status or {}
            if status.get("guresid"):
                named[item.metadata.name] = status["guresid"]
                last_inputs[item.metadata.name] = digest(item.spec["driverInputs"]["values"])
        orphans = record.created - set(named.values())
        lost = 0
        for name in changed_maps:
            target = await client.get(Secret, name, namespace=MAPPINGS_NS)
            if base64.b64decode((target.data or {}).get("value", "")).decode() != "v2":
                lost += 1
        for name in changed_resources:
            guresid = named.get(name)
            if guresid is None or record.last_inputs.get(guresid) != last_inputs[name]:
                lost += 1
        standby_alive = standby.process.alive()
    finally:
        await client.close()
        for operator in operators:
            operator.stop()
        if driver is not None:
            driver.stop()

    def since_kill(at: float | None) -> str:
        return f"{at - timeline.killed:.1f} s" if at is not None else f"not within {args.limit:.0f} s"

    lease = args.lease_duration
    rate_after = "-"
    if timeline.took_over is not None and timeline.all_ready is not None:
        left = len(maps) + len(resources) - timeline.settled_at_takeover
        rate_after = f"{left / (timeline.all_ready - timeline.took_over):.1f}"
    return [
        Row(
            "objects",
            f"{args.mappings} SecretMappings + {args.resources} Resources",
            "",
            f"SIGKILL at {timeline.settled_at_kill} Ready",
        ),
        Row(
            "old leader: objects Ready per second",
            f"{timeline.settled_at_kill / (timeline.killed - timeline.created):.1f}",
            "",
            "creation start -> kill",
        ),
        Row(
            "kill -> standby holds the Lease",
            since_kill(timeline.took_over),
            f"<= {lease + 2:.0f} s",
            f"lease {lease:.0f} s, renew {args.renew_deadline:.0f} s, retry {args.retry_period:.0f} s",
        ),
        Row(
            "kill -> every object Ready (latest generation)",
            since_kill(timeline.all_ready),
            "",
            f"{len(changed_maps)} mappings and {len(changed_resources)} Resources changed after the kill",
        ),
        Row(
            "new leader: objects Ready per second",
            rate_after,
            "",
            "takeover -> all Ready (work left at takeover / time)",
        ),
        Row(
            "duplicate first provisionings (driver PUTs)",
            str(record.duplicates),
            "0",
            f"{record.puts} PUTs in all",
        ),
        Row("orphaned driver resources", str(len(orphans)), "0", f"{len(record.created)} created"),
        Row("lost updates", str(lost), "0", f"of {len(changed_maps) + len(changed_resources)} changes"),
        Row("standby still running", "yes" if standby_alive else "NO"),
    ]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve-driver":
        parser = argparse.ArgumentParser(prog="bench.failover serve-driver")
        parser.add_argument("serve_driver")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--public-key", type=Path, required=True)
        parser.add_argument("--record", type=Path, required=True)
        served = parser.parse_args()
        serve_driver(served.port, served.public_key, served.record)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mappings", type=int, default=500)
    parser.add_argument("--resources", type=int, default=100)
    parser.add_argument("--updates", type=int, default=50, help="mappings changed after the kill")
    parser.add_argument("--lease-duration", type=float, default=15.0)
    parser.add_argument("--renew-deadline", type=float, default=10.0)
    parser.add_argument("--retry-period", type=float, default=2.0)
    parser.add_argument("--limit", type=float, default=600.0, help="seconds to wait for everything Ready")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-bench-failover-"))
    env = testenv.start(workdir, ["kubernetes", "openbao"])
    try:
        install_crds(Path(env.info("kubernetes")["kubeconfig"]))
        rows = asyncio.run(run(args, env, workdir))
    finally:
        env.stop()
    print_table("Failover benchmark (two replicas, leader SIGKILLed mid-burst)", rows)
    print(f"\nlogs: {workdir}")


if __name__ == "__main__":
    main()
