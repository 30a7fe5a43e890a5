"""A Git smart-HTTP server for GitOps tests: `git http-backend` behind a small WSGI bridge on loopback.

`git http-backend` (shipped with git) is a CGI program; the bridge runs it once per request with the CGI
variables it needs and Basic authentication in front (one user, password from the environment, so it
never shows in `ps`). Two things a plain CGI hand-off gets wrong, and this bridge does not:

- **Chunked request bodies.** libgit2 always, and git itself for packs above `http.postBuffer`, send
  `Transfer-Encoding: chunked`; wsgiref passes such a body through undecoded, and http-backend then reads
  garbage ("could not read report from remote"). The bridge decodes it and sets CONTENT_LENGTH.
- **Pushes need REMOTE_USER.** http-backend refuses receive-pack for anonymous users unless the
  repository says otherwise; the authenticated user is passed on.

`start(workdir)` runs it as its own process (stopped by PID like every testenv server) with one bare
repository `gitops.git` (branch `main`, empty) and returns its URL and credentials in `info`.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import os
import secrets
import socketserver
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from testenv.paths import REPO_ROOT
from testenv.process import LOOPBACK, ManagedProcess, free_port, tcp_open
from testenv.service import Service

HTTP_BACKEND = Path("/usr/lib/git-core/git-http-backend")
PASSWORD_ENV = "GIT_SERVER_PASSWORD"
REPO_NAME = "gitops.git"
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def dechunk(stream: BinaryIO) -> bytes:
    """Read a `Transfer-Encoding: chunked` body (RFC 9112 section 7.1) to its end; trailers are dropped."""
    body = bytearray()
    while True:
        line = stream.readline(1024)
        if not line:
            raise ValueError("chunked body ended early")
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailer fields
            return bytes(body)
        chunk = stream.read(size)
        if len(chunk) != size:
            raise ValueError("chunked body ended inside a chunk")
        body += chunk
        stream.readline(1024)  # the CRLF after the chunk


def _request_body(environ: dict[str, Any]) -> bytes:
    stream: BinaryIO = environ["wsgi.input"]
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return dechunk(stream)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return stream.read(length) if length else b""


def _authorised(environ: dict[str, Any], username: str, password: str) -> bool:
    header = environ.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Basic "):
        return False
    try:
        given = base64.b64decode(header[6:], validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return False
    user, _, secret = given.partition(":")
    return hmac.compare_digest(user, username) and hmac.compare_digest(secret, password)


def make_app(
    root: Path, username: str, password: str
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI application: authenticate, then hand the request to git http-backend."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not _authorised(environ, username, password):
            start_response(
                "401 Unauthorized",
                [("WWW-Authenticate", 'Basic realm="git"'), ("Content-Type", "text/plain")],
            )
            return [b"authentication required\n"]
        try:
            body = _request_body(environ)
        except ValueError as exc:
            start_response("400 Bad Request", [("Content-Type", "text/plain")])
            return [f"{exc}\n".encode()]
        cgi = {
            "GIT_PROJECT_ROOT": str(root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": username,
            "REMOTE_ADDR": environ.get("REMOTE_ADDR", LOOPBACK),
            "REQUEST_METHOD": environ["REQUEST_METHOD"],
            "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": environ.get("QUERY_STRING", ""),
            "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        }
        # http-backend inflates gzip bodies itself; protocol v2 is negotiated through GIT_PROTOCOL.
        for header, variable in (
            ("HTTP_CONTENT_ENCODING", "HTTP_CONTENT_ENCODING"),
            ("HTTP_GIT_PROTOCOL", "GIT_PROTOCOL"),
        ):
            if header in environ:
                cgi[variable] = environ[header]
        done = subprocess.run([str(HTTP_BACKEND)], input=body, env=cgi, capture_output=True, check=False)
        output = done.stdout
        split = output.find(b"\r\n\r\n")
        sep = 4
        if split < 0:
            split, sep = output.find(b"\n\n"), 2
        if split < 0:
            start_response("502 Bad Gateway", [("Content-Type", "text/plain")])
            return [b"git http-backend failed\n" + done.stderr[-2000:]]
        status = "200 OK"
        headers: list[tuple[str, str]] = []
        for line in output[:split].decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name.strip(), value.strip()))
        if done.stderr:
            sys.stderr.write(done.stderr.decode(errors="replace"))
        start_response(status, headers)
        return [output[split + sep :]]

    return app


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve(root: Path, port: int, username: str, password: str) -> None:
    server = make_server(
        LOOPBACK,
        port,
        make_app(root, username, password),
        server_class=_ThreadingServer,
        handler_class=WSGIRequestHandler,
    )
    sys.stderr.write(f"git server on http://{LOOPBACK}:{port}/ serving {root}\n")
    sys.stderr.flush()
    server.serve_forever()


def init_bare(path: Path, branch: str = "main") -> None:
    subprocess.run(["git", "init", "--quiet", "--bare", f"--initial-branch={branch}", str(path)], check=True)


def start(workdir: Path) -> Service:
    """Start the server with one empty bare repository; `info` has `url`, `username`, `password`, `repo`."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "repos"
    root.mkdir(exist_ok=True)
    repo = root / REPO_NAME
    if not repo.exists():
        init_bare(repo)
    port = free_port()
    username, password = "strongroom", secrets.token_urlsafe(16)
    argv = [
        sys.executable,
        "-m",
        "testenv.git_server",
        "--root",
        str(root),
        "--port",
        str(port),
        "--username",
        username,
    ]
    proc = ManagedProcess(
        "git-server", argv, workdir / "git-server.log", env={PASSWORD_ENV: password}, cwd=REPO_ROOT
    )
    proc.start()
    service = Service("git", [proc])
    try:
        proc.wait_ready(lambda: tcp_open(port), timeout=30)
    except Exception:
        service.stop()
        raise
    url = f"http://{LOOPBACK}:{port}/{REPO_NAME}"
    service.info = {"url": url, "port": port, "username": username, "password": password, "repo": str(repo)}
    service.env = {"STRONGROOM_GIT_URL": url}
    return service


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, required=True, help="directory holding the bare repositories")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--username", default="strongroom")
    args = parser.parse_args()
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        parser.error(f"set the password in ${PASSWORD_ENV}")
    serve(args.root, args.port, args.username, password)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
