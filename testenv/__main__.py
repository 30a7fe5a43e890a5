"""`python -m testenv up|down|status|install`.

`up` starts the services in the background, prints `export` lines on stdout (progress goes to
stderr), so `eval "$(python -m testenv up)"` points a shell at them. `down` stops them by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import testenv
from testenv import gobuild, node, tools
from testenv.paths import state_dir
from testenv.process import pid_alive


def _state_file() -> Path:
    return state_dir() / "state.json"


def cmd_up(args: argparse.Namespace) -> int:
    state = _state_file()
    if state.exists():
        print(f"testenv: already up (state in {state}); run `python -m testenv down` first", file=sys.stderr)
        return 1
    names = args.only.split(",") if args.only else None
    if args.node and os.environ.get(node.HOST_ENV) != node.NODE_HOST:
        # Every server must bind the pod bridge's address; testenv.process reads it at import.
        os.execve(  # noqa: S606 (this same program, again, with one more variable)
            sys.executable,
            [sys.executable, "-m", "testenv", *sys.argv[1:]],
            dict(os.environ, **{node.HOST_ENV: node.NODE_HOST}),
        )
    run_dir = state_dir() / "run"
    shutil.rmtree(run_dir, ignore_errors=True)  # every `up` starts from empty data, like the fixtures
    env = testenv.start(run_dir, names, node=args.node)
    testenv.save_state(env, state)
    sys.stdout.write(env.export_lines())
    sys.stdout.write(f'export PATH={tools.bin_dir()}:"$PATH"\n')
    print(f"testenv: up ({', '.join(env.services)}); logs in {env.workdir}", file=sys.stderr)
    return 0


def cmd_down(_: argparse.Namespace) -> int:
    state = _state_file()
    if not state.exists():
        print("testenv: nothing is up", file=sys.stderr)
        return 0
    stopped = testenv.stop_saved(state)
    print(f"testenv: stopped {', '.join(stopped)}", file=sys.stderr)
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    state = _state_file()
    if not state.exists():
        print("testenv: down")
        return 0
    data = json.loads(state.read_text())
    for service in data["services"]:
        alive = all(pid_alive(int(pid)) for pid in service["pids"])
        print(f"{service['name']:<12} {'running' if alive else 'DEAD'}  pids={service['pids']}")
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    """Build and fetch everything the services need, so later starts are quick."""
    from testenv.stores import install_all

    tools.ensure()
    gobuild.KUBERNETES.ensure()
    install_all()
    if args.eso:
        from testenv import eso

        eso.ESO.ensure()
    if args.node:
        from testenv import image

        node.ensure_packages()
        gobuild.KUBERNETES_NODE.ensure()
        image.pause_image()
        image.operator_image()
    print("testenv: installed", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testenv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the services in the background and print export lines")
    up.add_argument("--only", help=f"comma-separated subset of: {', '.join(testenv.SERVICE_MODULES)}")
    up.add_argument(
        "--node",
        action="store_true",
        help="also a real node (containerd, kubelet, scheduler, kube-proxy) and the operator image (root)",
    )
    up.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop what `up` started").set_defaults(func=cmd_down)
    sub.add_parser("status", help="show what is running").set_defaults(func=cmd_status)
    install = sub.add_parser("install", help="build/fetch all binaries (cached)")
    install.add_argument("--node", action="store_true", help="also the node's binaries and images (root)")
    install.add_argument(
        "--eso",
        action="store_true",
        help="also External Secrets Operator (bench/compare_eso.py; ~14 min cold)",
    )
    install.set_defaults(func=cmd_install)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"testenv: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
