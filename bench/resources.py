"""Resource benchmark: N Resources through the Echo driver and through a remote driver that answers 202
twice before 200; time until all Ready, operator peak RSS, per-resource operator overhead.

    .venv/bin/python -m bench.resources [--n 500] [--workers 20] [--sequential 50] [--skip-echo]
                                        [--skip-template] [--skip-remote]

Starts its own control plane, OpenBao (the default store) and operator process, plus the remote driver (an
SDK app in its own process, JWT-verified), then prints one table. Measures, per issue 4 item 6 and issue 16
item 5:
  (floor) the bench client creating N plain Secrets: its time, and the CPU the client and the API server
      spend per Secret, beside which each driver type's operator CPU per Resource is shown;
  (a) N Echo Resources (two values and one secret reference each, so every one writes a secret output to
      the default store and an owned Secret) created at once: time until all are Ready;
  (t) the same N through the built-in Template driver (one ConfigMap manifest, one output, one secret
      reference each; rendered in the operator's render processes, whose CPU counts as the operator's);
  (b) the same N with the remote driver: 202, 202, then 200 (the operator polls with its default backoff,
      1 s then 2 s, so each Resource spends about 3 s in the driver);
  per-resource operator overhead excluding driver time, p50/p99 (target p99 <= 200 ms), for (a) and (b):
      the wall time each provisioning reconcile spent outside the driver call, as the operator logs it
      ("... driver X s, operator Y s"; the same number feeds the strongroom_resource_overhead_seconds
      histogram), and the operator's CPU time per Resource;
  (c) the same overhead for Echo Resources created one at a time (no queueing behind other reconciles);
  (d) operator peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightkube import AsyncClient, codecs
from lightkube.generic_resource import create_namespaced_resource

import testenv
from bench.common import (
    CpuMeter,
    ReadyWatch,
    Row,
    apiserver_requests,
    bounded,
    client_for,
    ensure_namespace,
    environment_processes,
    peak_rss_mib,
    percentile,
    print_table,
    requests_between,
    write_openbao,
)
from bench.secretmappings import install_crds
from strongroom.drivers.signing import generate_private_key, private_key_pem, public_key_pem
from testenv.operator import OPERATOR_NAMESPACE, OperatorProcess, start_operator
from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, ManagedProcess, free_port, tcp_open

ResourceRes = create_namespaced_resource("strongroom.dev", "v1alpha1", "Resource", "resources")
DriverRes = create_namespaced_resource("strongroom.dev", "v1alpha1", "Driver", "drivers")
CONCURRENCY = 16
ORG = "bench-org"
# The Template driver's work per Resource: one namespaced manifest (a ConfigMap), one output.
TEMPLATES = {
    "init": "name: cfg-{{ .driver.values.index }}\n",
    "manifests": (
        "config.yaml:\n  location: namespace\n  data:\n    apiVersion: v1\n    kind: ConfigMap\n"
        "    metadata:\n      name: {{ .init.name }}\n"
        "    data:\n      DB_HOST: {{ .driver.values.host | quote }}\n"
    ),
    "outputs": "host: {{ .driver.values.host }}\n",
}


# --- the remote driver (run in its own process: `python -m bench.resources serve-driver ...`) -------------


def serve_driver(port: int, public_key: Path) -> None:
    import uvicorn

    from strongroom.drivers.sdk import DriverApp, DriverResponse, PutRequest, in_progress

    polls: dict[str, int] = {}

    async def put(request: PutRequest) -> Any:
        seen = polls.get(request.guresid, 0) + 1
        polls[request.guresid] = seen
        if seen <= 2:
            return in_progress("creating")
        return DriverResponse(values={"id": request.guresid[:12]}, secrets={"token": f"t-{request.guresid}"})

    audience = f"http://{LOOPBACK}:{port}/"
    app = DriverApp(put=put, public_keys=[public_key.read_bytes()], audience=audience, org_id=ORG)
    uvicorn.run(app, host=LOOPBACK, port=port, lifespan="off", log_level="warning", access_log=False)


# --- the benchmark ----------------------------------------------------------------------------------------


def obj(manifest: dict[str, Any]) -> Any:
    return codecs.from_dict(manifest)


def secret(namespace: str, name: str, data: dict[str, str]) -> Any:
    return obj(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )


def resource(name: str, namespace: str, driver_type: str, driver_inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "strongroom.dev/v1alpha1",
        "kind": "Resource",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "postgres",
            "id": f"bench.{name}",
            "driverType": driver_type,
            "driverInputs": driver_inputs,
        },
    }


def overheads(log: Path, names: set[str]) -> tuple[list[float], list[float]]:
    """(operator seconds, driver seconds) of the provisioning reconciles of `names`, from the JSON log, in
    the order they finished."""
    operator, driver = [], []
    for line in log.read_text(errors="replace").splitlines():
        if '"provisioned by' not in line:
            continue
        entry = json.loads(line)
        if (entry.get("object") or {}).get("name") not in names:
            continue
        message: str = entry["message"]
        tail = message.rsplit("; driver ", 1)[1]  # "X s, operator Y s"
        driver_s, operator_s = tail.split(", operator ")
        driver.append(float(driver_s.rstrip("s")))
        operator.append(float(operator_s.rstrip("s")))
    return operator, driver


@dataclass
class Outcome:
    total: float  # created -> all Ready, seconds
    operator_s: list[float]  # per provisioning: wall time outside the driver
    driver_s: list[float]  # per provisioning: time in the driver
    cpu: dict[str, float]  # CPU seconds by process
    requests: str  # apiserver requests per Resource


async def scenario(
    client: AsyncClient,
    env: testenv.Environment,
    namespace: str,
    manifests: list[dict[str, Any]],
    operator: OperatorProcess,
    limit: float,
) -> Outcome:
    await ensure_namespace(client, namespace)
    watch = ReadyWatch(client, ResourceRes, namespace)
    watch.start()
    await asyncio.sleep(0.5)
    names = {m["metadata"]["name"] for m in manifests}

    async def create(manifest: dict[str, Any]) -> None:
        await client.create(ResourceRes.from_dict(manifest))

    info = env.info("kubernetes")
    meter = CpuMeter({**environment_processes(env), "operator": operator.process.pid}, trees=["operator"])
    requests_before = apiserver_requests(info)
    meter.start()
    started = time.perf_counter()
    await bounded(manifests, create, CONCURRENCY)
    last = await watch.wait_for(names, limit)
    cpu = meter.stop()
    requests = requests_between(requests_before, apiserver_requests(info), len(manifests))
    await watch.stop()
    await asyncio.sleep(1)  # the last log lines
    operator_s, driver_s = overheads(operator.log_path, names)
    return Outcome(last - started, operator_s, driver_s, cpu, requests)


def vault_spec(bao: dict[str, Any]) -> dict[str, Any]:
    """The testenv OpenBao as a SecretStore's `vault` spec (its root token in Secret bao-token)."""
    return {
        "url": bao["addr"],
        "path": "secret",
        "auth": {"tokenSecretRef": {"name": "bao-token", "key": "token"}},
    }


async def install_operator_namespace(client: AsyncClient, bao: dict[str, Any], workdir: Path) -> Path:
    """What a remote-driver benchmark needs in the operator namespace: the OpenBao token, the default store
    (reads and driver outputs under bench/, open to every namespace) and the operator's signing key.
    Returns the path of the public key the benchmark's driver verifies requests with."""
    key = generate_private_key(2048)
    public = workdir / "operator.pub"
    public.write_bytes(public_key_pem(key))
    await client.apply(secret(OPERATOR_NAMESPACE, "bao-token", {"token": bao["root_token"]}))
    await client.apply(
        secret(
            OPERATOR_NAMESPACE,
            "strongroom-driver-key",
            {"privateKey": private_key_pem(key).decode(), "organisationID": ORG},
        )
    )
    await client.apply(
        obj(
            {
                "apiVersion": "strongroom.dev/v1alpha1",
                "kind": "SecretStore",
                "metadata": {
                    "name": "bao",
                    "namespace": OPERATOR_NAMESPACE,
                    "labels": {"strongroom.dev/default-store": "true"},
                },
                "spec": {
                    "vault": vault_spec(bao),
                    "rateLimit": {"qps": 5000, "burst": 5000},
                    # Driver outputs go to strongroom/<namespace>/: naming the namespaces is enough.
                    "access": [{"namespaces": ["*"], "keyPrefixes": ["bench/"]}],
                },
            }
        )
    )
    return public


async def start_remote_driver(
    client: AsyncClient, command: list[str], public: Path, workdir: Path, extra: list[str] | None = None
) -> ManagedProcess:
    """Start a benchmark's driver (`python -m <command> --port P --public-key K ...`) and the operator-
    namespace Driver `remote` that points at it, open to every namespace."""
    port = free_port()
    driver = ManagedProcess(
        "bench-driver",
        [sys.executable, "-m", *command, "--port", str(port), "--public-key", str(public), *(extra or [])],
        workdir / "driver.log",
        cwd=REPO_ROOT,
    ).start()
    driver.wait_ready(lambda: tcp_open(port), timeout=30)
    await client.apply(
        obj(
            {
                "apiVersion": "strongroom.dev/v1alpha1",
                "kind": "Driver",
                "metadata": {"name": "remote", "namespace": OPERATOR_NAMESPACE},
                "spec": {"target": f"http://{LOOPBACK}:{port}/", "allowedNamespaces": ["*"]},
            }
        )
    )
    return driver


async def run(args: argparse.Namespace, env: testenv.Environment, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    operator: OperatorProcess | None = None
    driver_proc: ManagedProcess | None = None
    info = env.info("kubernetes")
    client = client_for(Path(info["kubeconfig"]))
    try:
        await ensure_namespace(client, OPERATOR_NAMESPACE)
        bao = env.info("openbao")
        public = await install_operator_namespace(client, bao, workdir)
        await write_openbao(bao["addr"], bao["root_token"], {"bench/db-password": {"value": "pw"}})

        driver_proc = await start_remote_driver(client, ["bench.resources", "serve-driver"], public, workdir)

        # (floor) what one Python client's create of a plain Secret costs, before the operator runs
        await ensure_namespace(client, "bench-floor")

        async def create_secret(i: int) -> None:
            await client.create(secret("bench-floor", f"floor-{i}", {"password": "pw"}))

        floor_meter = CpuMeter(environment_processes(env))
        floor, floor_cpu = await floor_meter.measure(bounded(range(args.n), create_secret, CONCURRENCY))
        client_ms = floor_cpu["bench client"] / args.n * 1000
        apiserver_ms = floor_cpu["kube-apiserver"] / args.n * 1000
        rows.append(
            Row(
                "(floor) create N plain Secrets",
                f"{floor:.2f} s",
                "",
                f"CPU per Secret: bench client {client_ms:.1f} ms, kube-apiserver {apiserver_ms:.1f} ms",
            )
        )
        per_driver: list[tuple[str, Outcome]] = []

        log = workdir / "operator.log"
        operator = start_operator(
            Path(info["kubeconfig"]),
            log,
            ["--log-level=info", f"--worker-limit={args.workers}", f"--reconcile-limit={args.slots}"],
        )

        def summary(label: str, result: Outcome, target: str) -> None:
            per_driver.append((label, result))
            total, operator_s, driver_s = result.total, result.operator_s, result.driver_s
            # The first reconciles of a burst (one per worker) pay one-time costs: connections, the store
            # client, the signing key. Shown separately from the steady state.
            steady = operator_s[args.workers :]

            def ms(values: list[float], pct: float) -> str:
                return f"{percentile(values, pct) * 1000:.0f} ms"

            rows.extend(
                [
                    Row(
                        f"{label}: created -> all Ready",
                        f"{total:.2f} s",
                        target,
                        f"N={args.n}, {args.workers} workers, {args.slots} slots",
                    ),
                    Row(
                        f"{label}: overhead p50 (all)",
                        ms(operator_s, 50),
                        "",
                        f"{len(operator_s)} provisionings",
                    ),
                    Row(
                        f"{label}: overhead p99 (all)",
                        ms(operator_s, 99),
                        "<= 200 ms",
                        "wall time outside the driver",
                    ),
                    Row(
                        f"{label}: overhead p50 (steady)",
                        ms(steady, 50),
                        "",
                        f"without the first {args.workers}",
                    ),
                    Row(f"{label}: overhead p99 (steady)", ms(steady, 99), "<= 200 ms", ""),
                    Row(
                        f"{label}: operator CPU per Resource",
                        f"{result.cpu['operator'] / args.n * 1000:.1f} ms",
                        "",
                        f"utime+stime of the operator and its render processes / N; floor {client_ms:.1f} ms",
                    ),
                    Row(f"{label}: CPU seconds by process", CpuMeter.describe(result.cpu)),
                    Row(f"{label}: apiserver requests per Resource", result.requests),
                    Row(
                        f"{label}: driver time p50",
                        f"{percentile(driver_s, 50):.2f} s",
                        "",
                        "polling included",
                    ),
                ]
            )

        if not args.skip_echo:
            manifests = [
                resource(
                    f"echo-{i}",
                    "bench-echo",
                    "humanitec/echo",
                    {
                        "values": {"host": f"db-{i}.internal", "port": 5432},
                        "secretRefs": {"password": {"store": "bao", "ref": "bench/db-password"}},
                    },
                )
                for i in range(args.n)
            ]
            summary("(a) Echo", await scenario(client, env, "bench-echo", manifests, operator, 900), "")

        if args.sequential:
            # One at a time, each created when the previous is Ready: the operator's own cost per Resource
            # without queueing behind 20 others on a shared API server (Little's law: under a burst, the
            # wall time per reconcile is roughly workers / throughput).
            await ensure_namespace(client, "bench-seq")
            watch = ReadyWatch(client, ResourceRes, "bench-seq")
            watch.start()
            await asyncio.sleep(0.5)
            names = set()
            for i in range(args.sequential):
                manifest = resource(
                    f"seq-{i}",
                    "bench-seq",
                    "humanitec/echo",
                    {
                        "values": {"host": f"db-{i}.internal", "port": 5432},
                        "secretRefs": {"password": {"store": "bao", "ref": "bench/db-password"}},
                    },
                )
                await client.create(ResourceRes.from_dict(manifest))
                await watch.wait_for({f"seq-{i}"}, 60)
                names.add(f"seq-{i}")
            await watch.stop()
            await asyncio.sleep(1)
            operator_s, _ = overheads(operator.log_path, names)
            steady = operator_s[1:]  # the first one may build the namespace's first clients
            rows.append(
                Row(
                    "(c) Echo, one at a time: overhead p50",
                    f"{percentile(steady, 50) * 1000:.0f} ms",
                    "",
                    f"{len(steady)} Resources, sequential",
                )
            )
            rows.append(
                Row(
                    "(c) Echo, one at a time: overhead p99",
                    f"{percentile(steady, 99) * 1000:.0f} ms",
                    "<= 200 ms",
                    "",
                )
            )

        if not args.skip_template:
            manifests = [
                resource(
                    f"tmpl-{i}",
                    "bench-template",
                    "humanitec/template",
                    {
                        "values": {"index": i, "host": f"db-{i}.internal", "templates": TEMPLATES},
                        "secretRefs": {"password": {"store": "bao", "ref": "bench/db-password"}},
                    },
                )
                for i in range(args.n)
            ]
            result = await scenario(client, env, "bench-template", manifests, operator, 900)
            summary("(t) Template", result, "")

        if not args.skip_remote:
            manifests = [
                resource(f"remote-{i}", "bench-remote", "remote", {"values": {"n": i}}) for i in range(args.n)
            ]
            floor = 3.0 * args.n / args.workers
            result = await scenario(client, env, "bench-remote", manifests, operator, 1800)
            summary("(b) remote 202,202,200", result, f"floor {floor:.0f} s (3 s x N / workers)")

        rows.append(
            Row(
                "(d) operator peak RSS",
                f"{peak_rss_mib(operator.process.pid):.0f} MiB",
                "",
                f"{args.n * len(per_driver)} Resources",
            )
        )
        # Per driver type, the operator's CPU per Resource beside the floor: what the bench client spends
        # per plain Secret create, and what the API server spends on it.
        for label, result in per_driver:
            operator_ms = result.cpu["operator"] / args.n * 1000
            rows.append(
                Row(
                    f"per Resource, {label.split(' ', 1)[1]}: operator CPU",
                    f"{operator_ms:.1f} ms",
                    "",
                    f"{operator_ms / client_ms:.1f}x the floor's client CPU per Secret ({client_ms:.1f} ms); "
                    f"kube-apiserver {result.cpu['kube-apiserver'] / args.n * 1000:.1f} ms "
                    f"(floor {apiserver_ms:.1f} ms)",
                )
            )
    finally:
        await client.close()
        if operator is not None:
            operator.stop()
        if driver_proc is not None:
            driver_proc.stop()
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve-driver":
        parser = argparse.ArgumentParser(prog="bench.resources serve-driver")
        parser.add_argument("serve_driver")
        parser.add_argument("--port", type=int, required=True)
        parser.add_argument("--public-key", type=Path, required=True)
        served = parser.parse_args()
        serve_driver(served.port, served.public_key)
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500, help="Resources per scenario")
    parser.add_argument("--workers", type=int, default=20, help="operator --worker-limit")
    parser.add_argument("--slots", type=int, default=4, help="operator --reconcile-limit")
    parser.add_argument("--skip-echo", action="store_true")
    parser.add_argument("--skip-template", action="store_true")
    parser.add_argument("--skip-remote", action="store_true")
    parser.add_argument(
        "--sequential", type=int, default=50, help="Echo Resources created one at a time for (c); 0 skips"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="strongroom-bench-resources-"))
    env = testenv.start(workdir, ["kubernetes", "openbao"])
    try:
        install_crds(Path(env.info("kubernetes")["kubeconfig"]))
        rows = asyncio.run(run(args, env, workdir))
    finally:
        env.stop()
    print_table(f"Resource benchmark (N={args.n})", rows)
    print(f"\noperator log: {workdir / 'operator.log'}")


if __name__ == "__main__":
    main()
