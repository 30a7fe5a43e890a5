"""The Template driver (`humanitec/template`, `strongroom/template`): outputs and manifests from Go templates.

Inputs, as in Humanitec's Template driver:
- `values.templates.{init, manifests, outputs, secrets, cookie}` and `secrets.templates.{init, manifests,
  outputs, secrets, cookie}`, every one optional. A template is a string (rendered, then parsed as YAML) or an
  object or list whose string leaves are rendered one by one (they stay strings).
- Templates are Go `text/template` with Sprig (`strongroom.templating.render`), rendered in this order, each
  seeing what came before: `init`, `manifests`, `outputs`, `secrets`, `cookie`; for each, the `values`
  template first, then the `secrets` one.

Context (`.` in a template):
- `.id`: the GUResID; `.resource`: the resource inputs; `.driver.values` / `.driver.secrets`: the driver
  inputs (secrets in plain text);
- `.cookie`: the cookie this driver returned last time (its YAML value), or null;
- `.init`: the `init` result (values `init`, then secrets `init` merged over it); null before.
Numbers have the Go types Humanitec's driver gives them: what a string template's YAML or the stored cookie's
JSON holds is a float64 (`{{ .init.big }}` of 1000000 prints `1e+06`, as in Go); driver and resource inputs,
and the literal numbers of object templates, are decoded as Kubernetes decodes a custom resource (int64).

Results:
- `values.templates.outputs` (a YAML mapping) -> output values;
- `values.templates.secrets`, `secrets.templates.secrets` and `secrets.templates.outputs` (mappings,
  deep-merged in that order) -> output secrets;
- `manifests`: a mapping of name -> `{location, data}`, location one of `namespace`, `cluster`,
  `containers`, `volumes`, data a mapping (the object) or a string of YAML for it (the usual form of an
  object template: `data: |` followed by the manifest with `{{ }}`);
- `cookie` (any YAML) -> the cookie, kept by the operator and given back as `.cookie`;
- for `workload`-type resources, `outputs.update` is the list of JSON-patch operations for the workload.

Rendered text is read as sigs.k8s.io/yaml reads it (go-yaml v2 rules, the engine's `fromYaml` loader, with
its alias/size budget): `y`, `on` are booleans, `1e3` is a number, numbers are JSON numbers.

Isolation: every call renders in a worker process of a `sandbox.RenderPool`, with a hard wall-clock limit
for the whole call and a memory cap (docs/templates.md, "Limits"); a call that hits a limit fails with
`TemplateLimitExceeded`, never with the operator blocked or out of memory. `answer()` is what a worker
runs for one request.

Errors name the template (`values.templates.outputs`) and the line, never a value: messages from the
template engine are redacted with every secret the request carries and every secret `init` produced.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from strongroom.drivers.base import (
    MANIFEST_LOCATIONS,
    DriverRequest,
    DriverResult,
    Manifest,
    TemplateFailed,
    redact,
    reveal_tree,
    split_update,
    to_secret_tree,
)
from strongroom.drivers.sandbox import (
    RenderPool,
    SandboxLimitExceeded,
    SandboxLimits,
    SandboxUnavailable,
    format_bytes,
)
from strongroom.stores.base import SecretValue
from strongroom.templating import DEFAULT_LIMITS, Limits, TemplateError, parse_yaml, render

TEMPLATE_KEYS: Final = ("init", "manifests", "outputs", "secrets", "cookie")


class TemplateLimitExceeded(TemplateFailed):
    """A render went past a limit (time, memory, size, alias expansion): the templates must change."""

    reason = "TemplateLimitExceeded"
    retryable = False


class TemplateDriver:
    """Renders the templates for every call in a worker process; stateless apart from the cookie the
    operator keeps. Owns its pool of workers: `close()` ends them."""

    # The call waits on another process for up to the time limit, so the caller's slot is freed meanwhile.
    in_process = False

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.pool = RenderPool(limits)

    async def apply(self, req: DriverRequest) -> DriverResult:
        return await self._render(req)

    async def close(self) -> None:
        self.pool.close()

    async def delete(self, req: DriverRequest) -> None:
        # Nothing was created outside the cluster; the operator removes the manifests it applied.
        return None

    async def _render(self, req: DriverRequest) -> DriverResult:
        try:
            reply = await self.pool.call(_request_document(req), group=req.namespace)
        except SandboxLimitExceeded as exc:
            raise TemplateLimitExceeded(str(exc)) from None
        except SandboxUnavailable as exc:
            raise TemplateFailed(str(exc), retryable=True) from None
        if "error" in reply:
            error = reply["error"]
            failure = TemplateLimitExceeded if error.get("limit") else TemplateFailed
            # Redacted in the worker already; once more here, with the request's own secrets, costs little.
            raise failure(req.redact(str(error.get("message", "rendering failed"))))
        return _result_of(reply["result"])


# --- Crossing the process boundary ------------------------------------------------------------------------


def _request_document(req: DriverRequest) -> dict[str, Any]:
    return {
        "guresid": req.guresid,
        "type": req.type,
        "resource_id": req.resource_id,
        "resource_class": req.resource_class,
        "resource_inputs": dict(req.resource_inputs),
        "values": dict(req.values),
        "secrets": reveal_tree(req.secrets),
        "cookie": None if req.cookie is None else req.cookie.reveal().decode(errors="replace"),
        "namespace": req.namespace,
    }


def _request_of(document: Mapping[str, Any]) -> DriverRequest:
    cookie = document.get("cookie")
    return DriverRequest(
        guresid=document["guresid"],
        type=document["type"],
        resource_id=document["resource_id"],
        resource_class=document["resource_class"],
        resource_inputs=document["resource_inputs"],
        values=document["values"],
        secrets=to_secret_tree(document["secrets"]),
        cookie=None if cookie is None else SecretValue(cookie),
        namespace=document["namespace"],
    )


def _result_document(result: DriverResult) -> dict[str, Any]:
    return {
        "id": result.id,
        "type": result.type,
        "values": result.values,
        "secrets": reveal_tree(result.secrets),
        "manifests": [{"location": m.location, "data": m.data, "name": m.name} for m in result.manifests],
        "cookie": None if result.cookie is None else result.cookie.reveal().decode(),
        "update": result.update,
    }


def _result_of(document: Mapping[str, Any]) -> DriverResult:
    cookie = document.get("cookie")
    return DriverResult(
        id=document["id"],
        type=document["type"],
        values=document["values"],
        secrets=to_secret_tree(document["secrets"]),
        manifests=[
            Manifest(location=m["location"], data=m["data"], name=m["name"]) for m in document["manifests"]
        ],
        cookie=None if cookie is None else SecretValue(cookie),
        update=document.get("update"),
    )


def answer(document: Mapping[str, Any], limits: SandboxLimits) -> dict[str, Any]:
    """What a worker answers for one request document: `{"result": ...}` or `{"error": {message, limit}}`.

    Never raises: whatever fails is reported without its text unless it is one of ours (redacted)."""
    try:
        return {"result": _result_document(render_request(_request_of(document), limits))}
    except TemplateFailed as exc:
        return {"error": {"message": str(exc), "limit": isinstance(exc, TemplateLimitExceeded)}}
    except MemoryError:
        return {
            "error": {
                "message": f"rendering ran out of its memory limit of {format_bytes(limits.memory_bytes)} "
                "(--template-memory)",
                "limit": True,
            }
        }
    except RecursionError:
        return {"error": {"message": "templates or their results nest too deeply", "limit": True}}
    except Exception as exc:  # a bug here must not end the worker with a value in a message
        return {"error": {"message": f"rendering failed: {type(exc).__name__}", "limit": False}}


def render_request(req: DriverRequest, limits: SandboxLimits | None = None) -> DriverResult:
    """Render every template of `req` in this process (what a worker does for one call)."""
    return _Run(req, limits or SandboxLimits()).result()


class _Run:
    """One rendering of a request's templates."""

    def __init__(self, req: DriverRequest, limits: SandboxLimits) -> None:
        self.req = req
        self.sandbox = limits
        # The engine's cooperative deadline is per render; the call's own limit is enforced by the pool.
        self.limits: Limits = replace(DEFAULT_LIMITS, timeout_seconds=limits.timeout_seconds)
        self.plain_secrets = reveal_tree(req.secrets)
        self.templates = {
            "values": _templates(req.values.get("templates"), "values.templates"),
            "secrets": _templates(self.plain_secrets.get("templates"), "secrets.templates"),
        }
        self.context: dict[str, Any] = {
            "id": req.guresid,
            "resource": dict(req.resource_inputs),
            "driver": {"values": dict(req.values), "secrets": self.plain_secrets},
            "cookie": _previous_cookie(req.cookie),
            "init": None,
        }
        # Secrets `init` produced (generated passwords, ...) are hidden from error messages too.
        self.extra_secrets: list[str] = []

    def result(self) -> DriverResult:
        # `.init` is context only: it holds what Go holds, float64s where YAML was parsed.
        init = self._stage("init", go_numbers=True)
        self.context["init"] = _merge(*init)
        if init[1] is not None:
            self._hide(init[1])

        manifests = self._manifests(*self._stage("manifests"))
        values_out, secrets_out = self._stage("outputs")
        values = self._mapping(values_out, "values.templates.outputs")
        # Secret outputs may come from a `secrets` template on either side (Humanitec's own resource packs
        # write `values.templates.secrets`) and from `secrets.templates.outputs`, merged in that order.
        secrets: dict[str, Any] = {}
        for document, name in (
            *zip(
                self._stage("secrets"), ("values.templates.secrets", "secrets.templates.secrets"), strict=True
            ),
            (secrets_out, "secrets.templates.outputs"),
        ):
            secrets = _merge(secrets, self._mapping(document, name))
        self._hide(secrets)
        cookie = _merge(*self._stage("cookie"))

        try:
            values, update = split_update(self.req.type, values)
        except ValueError as exc:
            raise self._fail(f"values.templates.outputs: {exc}") from None
        return DriverResult(
            id=self.req.guresid,
            type=self.req.type,
            values=values,
            secrets=to_secret_tree(secrets),
            manifests=manifests,
            cookie=None if cookie is None else SecretValue(_dump_json(cookie)),
            update=update,
        )

    def _hide(self, secrets: Any) -> None:
        """Keep rendered secrets out of the messages of later templates."""
        # Very short strings ("1", "true") would blot out half of every message for nothing.
        self.extra_secrets.extend(leaf for leaf in _string_leaves(secrets) if len(leaf) >= 4)

    def _stage(self, key: str, *, go_numbers: bool = False) -> tuple[Any, Any]:
        """The values and the secrets result of one template (None where absent)."""
        found: list[Any] = []
        for side in ("values", "secrets"):
            source = self.templates[side].get(key)
            name = f"{side}.templates.{key}"
            found.append(None if source is None else self._evaluate(source, name, go_numbers=go_numbers))
        return found[0], found[1]

    def _evaluate(self, source: Any, name: str, *, go_numbers: bool = False) -> Any:
        """`go_numbers`: numbers parsed from YAML as the float64s Go has (for the context), not as JSON."""
        if isinstance(source, str):
            parsed = self._parse_yaml(self._render(source, name), name)
            return _go_numbers(parsed) if go_numbers else parsed
        # An object or list has its string leaves rendered; any other value (`cookie: 1`) is itself.
        return self._evaluate_leaf(source, name)

    def _evaluate_leaf(self, source: Any, name: str) -> Any:
        # Inside an object template, string leaves are templates whose text is the value (no YAML parsing:
        # "5432" stays a string, as written).
        if isinstance(source, str):
            return self._render(source, name)
        if isinstance(source, Mapping):
            return {str(key): self._evaluate_leaf(value, f"{name}.{key}") for key, value in source.items()}
        if isinstance(source, list):
            return [self._evaluate_leaf(value, f"{name}[{index}]") for index, value in enumerate(source)]
        return source

    def _render(self, source: str, name: str) -> str:
        try:
            return render(source, self.context, name=name, limits=self.limits)
        except TemplateError as exc:
            message = str(exc) if name in str(exc) else f"{name}: {exc}"
            raise self._fail(message, limit=exc.limit_exceeded) from None
        except Exception as exc:  # the engine's own bugs must not crash the reconcile loop with a value
            raise self._fail(f"{name}: rendering failed: {type(exc).__name__}: {exc}") from None

    def _parse_yaml(self, text: str, name: str) -> Any:
        try:
            return parse_yaml(text, limits=self.limits)
        except TemplateError as exc:
            if exc.limit_exceeded:
                raise self._fail(f"{name}: rendered YAML {exc}", limit=True) from None
            raise self._fail(f"{name}: rendered text is not valid YAML ({exc})") from None

    def _mapping(self, document: Any, name: str) -> dict[str, Any]:
        if document is None:
            return {}
        if not isinstance(document, dict):
            raise self._fail(f"{name} must produce a YAML mapping, not {_kind(document)}")
        return document

    def _manifests(self, *documents: Any) -> list[Manifest]:
        found: dict[str, Manifest] = {}
        for side, document in zip(("values", "secrets"), documents, strict=True):
            name = f"{side}.templates.manifests"
            for key, entry in self._mapping(document, name).items():
                where = f"{name}[{key}]"
                if not isinstance(entry, dict):
                    raise self._fail(f"{where} must be a mapping with location and data, not {_kind(entry)}")
                location = entry.get("location")
                if location not in MANIFEST_LOCATIONS:
                    raise self._fail(
                        f"{where}.location must be one of {', '.join(sorted(MANIFEST_LOCATIONS))}"
                    )
                data = entry.get("data")
                if isinstance(data, str):
                    # `data: |` with the manifest as a template (object templates keep leaves as text).
                    data = self._parse_yaml(data, f"{where}.data")
                if not isinstance(data, dict):
                    raise self._fail(
                        f"{where}.data must be a mapping (the object) or YAML text of one, not {_kind(data)}"
                    )
                found[key] = Manifest(location=location, data=data, name=key)
        return [found[key] for key in sorted(found)]

    def _fail(self, message: str, *, limit: bool = False) -> TemplateFailed:
        if limit and "out of memory" in message:
            message += f" (memory limit {format_bytes(self.sandbox.memory_bytes)}, --template-memory)"
        failure = TemplateLimitExceeded if limit else TemplateFailed
        return failure(redact(message, [*self.req.secret_values(), *self.extra_secrets]))


def _templates(node: Any, name: str) -> dict[str, Any]:
    # Other keys are ignored, as Go's JSON decoding in Humanitec's driver ignores them: definitions keep
    # shared snippets there (`{{ tpl .driver.values.templates.helpers . }}`), and refusing them would refuse
    # definitions Humanitec runs.
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise TemplateFailed(f"{name} must be an object with {', '.join(TEMPLATE_KEYS)}, not {_kind(node)}")
    return {key: node[key] for key in TEMPLATE_KEYS if node.get(key) is not None}


def _previous_cookie(cookie: SecretValue | None) -> Any:
    # The cookie is the JSON this driver stored; anything else (a remote driver's cookie after a driver
    # change) is handed over as the string it is.
    if cookie is None:
        return None
    text = cookie.reveal().decode(errors="replace")
    try:
        return _go_numbers(json.loads(text))
    except ValueError:
        return text


def _go_numbers(value: Any) -> Any:
    """`value` as Go has it after decoding JSON or YAML into an interface{}: every number a float64."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # only a foreign cookie holds such a number; Go would have refused it
            return value
    if isinstance(value, dict):
        return {key: _go_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_go_numbers(item) for item in value]
    return value


def _merge(base: Any, over: Any) -> Any:
    """`over` deep-merged onto `base` when both are mappings; otherwise `over` if present, else `base`."""
    if base is None:
        return over
    if over is None:
        return base
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _merge(merged.get(key), value)
        return merged
    return over


def _string_leaves(node: Any) -> Iterable[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _string_leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from _string_leaves(value)


def _dump_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"a {type(value).__name__}"
