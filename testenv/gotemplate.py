"""Real Go `text/template` + Sprig as an oracle for strongroom.templating and the Template driver.

The Go program in testenv/gobuild/gotemplate/ reads JSON requests and answers with the output or
the error Go produced: a rendered template, a YAML text read by sigs.k8s.io/yaml, or a whole
Template-driver call rendered and parsed by Go (driver.go). It is built through testenv.gobuild
(cached by content, progress shown), and one long-lived process serves every case of a test
session, because starting a Go process per template would dominate the run time of the differential
suites.
"""

from __future__ import annotations

import atexit
import json
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testenv.gobuild import GoBuild, GoProgram, Sink

GOTEMPLATE = GoBuild(
    module_dir="gotemplate",
    label="gotemplate-sprig-v3.3.0",
    programs=(GoProgram(".", "gotemplate"),),
)


@dataclass(frozen=True)
class GoResult:
    """What Go did with one template: exactly one of output and error is set."""

    output: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class GoTemplateOracle:
    """One running gotemplate process; requests are answered strictly in order."""

    def __init__(self, binary: Path) -> None:
        self._proc = subprocess.Popen(
            [str(binary)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self._lock = threading.Lock()

    def render(
        self, template: str, data: Any, missingkey: str = "default", name: str = "template"
    ) -> GoResult:
        return self._request({"template": template, "data": data, "missingkey": missingkey, "name": name})

    def parse_yaml(self, text: str) -> GoResult:
        """`text` read by sigs.k8s.io/yaml.Unmarshal into an interface{}; the output is that value as JSON."""
        return self._request({"op": "yaml", "text": text})

    def run_driver(
        self,
        *,
        guresid: str,
        resource: Any,
        values: Any,
        secrets: Any,
        cookie: Any = None,
    ) -> GoResult:
        """One Template-driver call with Go rendering and parsing every template (driver.go).

        The output is JSON `{values, secrets, manifests: {name: {location, data}}, cookie}`; `cookie` is
        the previous cookie's JSON value (None: no cookie)."""
        return self._request(
            {
                "op": "driver",
                "input": {
                    "id": guresid,
                    "resource": resource,
                    "values": values,
                    "secrets": secrets,
                    "cookie": cookie,
                },
            }
        )

    def signatures(self) -> dict[str, Any]:
        """Go parameter and result types of every function the oracle registers."""
        result = self._request({"op": "signatures"})
        if result.output is None:
            raise RuntimeError(f"gotemplate could not list signatures: {result.error}")
        table: dict[str, Any] = json.loads(result.output)
        return table

    def _request(self, request: dict[str, Any]) -> GoResult:
        line = json.dumps(request, ensure_ascii=False)
        with self._lock:
            stdin, stdout = self._proc.stdin, self._proc.stdout
            assert stdin is not None
            assert stdout is not None
            stdin.write(line + "\n")
            stdin.flush()
            answer = stdout.readline()
        if not answer:
            stderr = self._proc.stderr.read() if self._proc.stderr else ""
            raise RuntimeError(f"gotemplate exited unexpectedly: {stderr.strip()}")
        decoded = json.loads(answer)
        return GoResult(output=decoded.get("output"), error=decoded.get("error"))

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


_shared: GoTemplateOracle | None = None
_shared_lock = threading.Lock()


def oracle(out: Sink | None = None) -> GoTemplateOracle:
    """The session-wide oracle process, building the binary first if needed."""
    global _shared
    with _shared_lock:
        if _shared is None:
            binary = GOTEMPLATE.ensure(out) / "gotemplate"
            _shared = GoTemplateOracle(binary)
            atexit.register(_shared.close)
        return _shared


def render_with_go(template: str, data: Any, missingkey: str = "default", name: str = "template") -> GoResult:
    """Execute `template` with real Go text/template + Sprig on JSON-serialisable `data`."""
    return oracle().render(template, data, missingkey=missingkey, name=name)
