"""The example app's `web` workload: a small HTTP server that uses what strongroom rendered for it.

It reads its environment (DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD from the database Resource,
API_KEY and LOG_LEVEL from the environment), its file /etc/web/config.yaml, and logs in to the
PostgreSQL database the reference driver created. Endpoints (port 8080):

- /ready: 200 only while a fresh login with DB_PASSWORD succeeds (the pod's readinessProbe), else 503;
- /: what it sees, as JSON: the database it reached, the config file, which variables are set (names
  only: no value of a secret is ever printed or logged).

Runs as any user on a read-only root filesystem (writes nothing). Image: testenv.image.web_image().
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

CONFIG_FILE = Path(os.environ.get("WEB_CONFIG", "/etc/web/config.yaml"))
VARIABLES = ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "API_KEY", "LOG_LEVEL")


def check_database() -> dict[str, Any]:
    """Log in with the credentials from the environment; report the server's view, never the password."""
    try:
        with psycopg.connect(
            host=os.environ["DB_HOST"],
            port=int(os.environ["DB_PORT"]),
            dbname=os.environ["DB_NAME"],
            user=os.environ["DB_USER"],
            password=os.environ["DB_PASSWORD"],
            connect_timeout=3,
        ) as conn:
            row = conn.execute("select current_user, current_database()").fetchone()
            assert row is not None
            return {"connected": True, "user": row[0], "database": row[1]}
    except (KeyError, ValueError, psycopg.Error) as exc:
        # psycopg's messages name the user and host, not the password.
        return {"connected": False, "error": type(exc).__name__}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/ready":
            db = check_database()
            self._send(200 if db["connected"] else 503, db)
        elif self.path == "/":
            config = CONFIG_FILE.read_text() if CONFIG_FILE.exists() else None
            self._send(
                200,
                {
                    "database": check_database(),
                    "config": config,
                    "variables": sorted(name for name in VARIABLES if os.environ.get(name)),
                },
            )
        else:
            self._send(404, {"error": "not found"})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.address_string()} {format % args}", file=sys.stderr, flush=True)


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    print(f"web: listening on :{port}; database {os.environ.get('DB_NAME')}", file=sys.stderr, flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()  # noqa: S104 (a pod's port)


if __name__ == "__main__":
    main()
