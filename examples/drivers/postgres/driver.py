"""Reference remote driver: one PostgreSQL database and login role per resource (type `postgres`).

Built with strongroom's driver SDK. Run it next to a PostgreSQL server it may administer:

    DATABASE_URL=postgresql://admin:...@db:5432/postgres \\
        python examples/drivers/postgres/driver.py --port 8080 --public-key operator.pub \\
            --audience https://pg-driver.example.com/

Every request must carry a token the operator minted for it (the SDK checks, see docs/drivers.md "What a
driver must check"): signed by a configured key, for this driver (`aud` = `--audience`, the Driver's
`spec.target`), for this method and URL (`htm`, `htu`), used once (`jti`, kept in a replay cache), and,
with `--org-id`, for this organisation. A token harvested by another driver, or replayed, gets a 401.

- PUT creates (or updates) the role and the database. Both are named after the GUResID, so repeating a PUT
  (after a timeout, a crash, a requeue) finds what the first one made instead of making a second database.
- The password is generated on the first PUT and handed back as the driver cookie; the operator keeps the
  cookie in its default secret store and sends it with every later call, so the password stays the same
  across PUTs. A PUT without a cookie (lost, or reset by a delete) sets a new password: still consistent.
- Rotation: a PUT whose driver input `passwordRotation` differs from the one in the cookie sets a new
  password (the role's, at once) and returns it; the operator stores the new version and the workloads
  using it roll (docs/workloads.md). Change the input, e.g. to today's date, to rotate.
- GET reports the database if it exists (the password only when the cookie is there).
- DELETE drops the database (closing its connections) and the role; deleting again is fine.

The admin connection comes from `DATABASE_URL`, or from the libpq variables (PGHOST, PGPORT, PGUSER,
PGPASSWORD, PGDATABASE) when it is unset. The host and port reported to workloads default to the admin
connection's; set `DRIVER_PUBLIC_HOST` / `DRIVER_PUBLIC_PORT` when workloads reach the server elsewhere.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import uvicorn
from psycopg import sql

from strongroom.drivers.sdk import DriverApp, DriverFailure, DriverResponse, PutRequest, ResourceRequest

RESOURCE_TYPE = "postgres"
log = logging.getLogger("postgres-driver")


def object_name(guresid: str) -> str:
    """Database and role name for a GUResID: readable start, hash for uniqueness, within 63 bytes.

    The same GUResID always gives the same name; that is what makes PUT idempotent.
    """
    digest = hashlib.sha256(guresid.encode()).hexdigest()[:12]
    return f"sr_{guresid.replace('-', '_')[:40]}_{digest}"


def _lock_key(name: str) -> int:
    # Two PUTs for one resource may overlap (a retry while the first is still running); an advisory lock
    # per name makes the second wait instead of racing the first's CREATE DATABASE.
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _cookie_state(cookie: bytes | None) -> dict[str, Any]:
    if not cookie:
        return {}
    try:
        state = json.loads(cookie)
    except ValueError:
        return {}  # not ours: start over with a new password
    return state if isinstance(state, dict) else {}


def _password_from(cookie: bytes | None, rotation: str = "") -> str | None:
    """The password kept in the cookie, unless the inputs ask for another rotation than it was made for."""
    state = _cookie_state(cookie)
    if str(state.get("rotation", "")) != rotation:
        return None
    password = state.get("password")
    return password if isinstance(password, str) and password else None


@contextlib.asynccontextmanager
async def _admin() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    # CREATE/DROP DATABASE cannot run inside a transaction, hence autocommit.
    conninfo = os.environ.get("DATABASE_URL", "")  # "" lets libpq read the PG* variables
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        yield conn


@contextlib.asynccontextmanager
async def _locked(conn: psycopg.AsyncConnection[Any], name: str) -> AsyncIterator[None]:
    await conn.execute("SELECT pg_advisory_lock(%s)", (_lock_key(name),))
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(name),))


async def _exists(conn: psycopg.AsyncConnection[Any], query: str, name: str) -> bool:
    cursor = await conn.execute(query, (name,))
    return await cursor.fetchone() is not None


def _location(conn: psycopg.AsyncConnection[Any]) -> dict[str, Any]:
    host = os.environ.get("DRIVER_PUBLIC_HOST") or conn.info.host
    port = int(os.environ.get("DRIVER_PUBLIC_PORT") or conn.info.port)
    return {"host": host, "port": port}


async def put(request: PutRequest) -> DriverResponse:
    if request.type != RESOURCE_TYPE:
        raise DriverFailure(f"this driver provisions type {RESOURCE_TYPE!r}, not {request.type!r}")
    name = object_name(request.guresid)
    # `passwordRotation` (any text, e.g. a date): changing it makes this PUT set a new password.
    rotation = str(request.values.get("passwordRotation", ""))
    password = _password_from(request.cookie, rotation) or secrets.token_urlsafe(24)
    async with _admin() as conn, _locked(conn, name):
        # The server only ever sees the SCRAM verifier, never the password (statement logs stay clean).
        verifier = conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256").decode()
        role_exists = await _exists(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", name)
        verb = sql.SQL("ALTER") if role_exists else sql.SQL("CREATE")
        await conn.execute(
            sql.SQL("{} ROLE {} WITH LOGIN PASSWORD {}").format(
                verb, sql.Identifier(name), sql.Literal(verifier)
            )
        )
        if not await _exists(conn, "SELECT 1 FROM pg_database WHERE datname = %s", name):
            await conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name))
            )
            log.info("created database and role %s", name)
        # Only the owner (and superusers) may connect: other tenants' roles must not see this database.
        await conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))
        location = _location(conn)
    return DriverResponse(
        values={**location, "name": name},
        secrets={"username": name, "password": password},
        cookie=json.dumps({"password": password, "rotation": rotation}),
    )


async def get(request: ResourceRequest) -> DriverResponse | None:
    name = object_name(request.guresid)
    async with _admin() as conn:
        if not await _exists(conn, "SELECT 1 FROM pg_database WHERE datname = %s", name):
            return None
        location = _location(conn)
    password = _password_from(request.cookie, str(_cookie_state(request.cookie).get("rotation", "")))
    found = {"username": name} | ({"password": password} if password else {})
    return DriverResponse(type=RESOURCE_TYPE, values={**location, "name": name}, secrets=found)


async def delete(request: ResourceRequest) -> None:
    name = object_name(request.guresid)
    async with _admin() as conn, _locked(conn, name):
        # FORCE (PostgreSQL 13+) ends the workload's open sessions, which would otherwise block the drop.
        await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        await conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    log.info("dropped database and role %s", name)


def build_app(
    public_keys: list[bytes], *, audience: str, org_id: str | None = None, prefix: str = "/"
) -> DriverApp:
    """The ASGI app, for `uvicorn` or any other ASGI server. `audience`: the URL the operator calls this
    driver at (the Driver's `spec.target`); tokens minted for any other driver are refused."""
    return DriverApp(
        put=put,
        get=get,
        delete=delete,
        public_keys=public_keys,
        audience=audience,
        org_id=org_id,
        prefix=prefix,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="strongroom reference driver: PostgreSQL databases")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.add_argument(
        "--public-key",
        action="append",
        required=True,
        type=Path,
        help="PEM public key of an operator allowed to call this driver (repeat for more)",
    )
    parser.add_argument(
        "--audience",
        required=True,
        help="the URL the operator calls this driver at, exactly the Driver's spec.target "
        "(e.g. https://pg-driver.example.com/); tokens minted for another driver are refused",
    )
    parser.add_argument("--org-id", help="accept only tokens whose orgID is this")
    parser.add_argument("--prefix", default="/", help="path before the GUResID (default /)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        keys = [path.read_bytes() for path in args.public_key]
        app = build_app(keys, audience=args.audience, org_id=args.org_id, prefix=args.prefix)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, lifespan="off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
