"""The driver contract: what the operator hands a driver and what it gets back.

Modelled on crossplane-runtime's external client: two calls, each idempotent for one GUResID, so the
operator can repeat either after a crash, a timeout or a requeue without creating a second resource.

There is no `observe` (Driver API `GET`): the Driver API's GET reports a resource's outputs, not whether it
still matches the inputs, so it cannot replace the PUT that both checks and repairs; the lifecycle
(reconcile/lifecycle.py) PUTs when something calls for it and at each resync, and polls a 202 by repeating
the PUT or DELETE, as the Driver API allows. A GET would only add a round trip (issue 15). The remote
client still speaks it (`RemoteDriver.observe`), for tools and the SDK's conformance tests.

- `apply(req)`: create or update to match the request (`PUT`).
- `delete(req)`: deprovision (`DELETE`); a resource that is already gone counts as deleted.

Secrets travel as `SecretValue` leaves (driver secrets in, secret outputs and the cookie out), so a request
or result that lands in a log line or an exception prints placeholders. Error messages never contain a
secret value: remote drivers may echo their inputs in error bodies, so every text that goes into a
`DriverError` is passed through `redact()` with the request's secrets first.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from strongroom.stores.base import SecretValue

#: Where a driver's manifest goes: an object in the resource's namespace, a cluster-scoped object, a
#: container merged into workloads, or a volume merged into workloads.
ManifestLocation: TypeAlias = Literal["namespace", "cluster", "containers", "volumes"]
MANIFEST_LOCATIONS: frozenset[str] = frozenset({"namespace", "cluster", "containers", "volumes"})

#: A tree of secrets: nested string-keyed mappings whose leaves are `SecretValue`s.
SecretNode: TypeAlias = "SecretValue | Mapping[str, SecretNode]"
SecretTree: TypeAlias = Mapping[str, SecretNode]

#: Resource type whose drivers may return an `update` output (JSON-patch operations for the workload).
WORKLOAD_TYPE = "workload"
JSON_PATCH_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})

REDACTED = "<redacted>"


# --- Errors -----------------------------------------------------------------------------------------------


class DriverError(Exception):
    """A driver call failed.

    `reason` is a CamelCase word for the Resource's conditions; `retryable` tells the operator whether
    trying again later can help (False: the inputs or the driver's configuration must change first).
    The message never contains a secret value.
    """

    reason: str = "DriverError"
    retryable: bool = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        """HTTP status of a remote driver's answer, when there was one."""
        # Subclasses fix reason and retryable; callers may still override them for one error.
        if reason is not None:
            self.reason = reason
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message


class DriverUnavailable(DriverError):
    """Network error, request timeout, 5xx: the driver may come back."""

    reason = "DriverUnavailable"


class DriverTimeout(DriverError):
    """The operation (polling after 202/409 included) did not finish before its deadline."""

    reason = "DriverTimeout"


class DriverRejected(DriverError):
    """The driver refused the request (400): the inputs must change first."""

    reason = "DriverRejected"
    retryable = False


class DriverAuthFailed(DriverError):
    """The driver refused our signature (401/403): the key registration must change first."""

    reason = "DriverAuthenticationFailed"
    retryable = False


class DriverProtocolError(DriverError):
    """The driver answered something the Driver API does not allow (bad body, oversized cookie, ...)."""

    reason = "DriverProtocolError"
    retryable = False


class DriverAnswerTooLarge(DriverProtocolError):
    """The driver's answer is larger than the operator reads (after decompression): nothing of it is used,
    and trying again would only fetch it again."""

    reason = "DriverAnswerTooLarge"


class DriverNotAllowed(DriverError):
    """A Driver of the operator namespace that does not name the Resource's namespace in
    `allowedNamespaces`: the platform admin must allow it first (a change of the Driver re-runs it)."""

    reason = "DriverNotAllowed"
    retryable = False


class SigningKeyNotAllowed(DriverError):
    """A Driver outside the operator namespace that signs but names no key of its own: the operator's key
    signs only for the platform admin's Drivers. Nothing is sent."""

    reason = "SigningKeyNotAllowed"
    retryable = False


class DriverConfigError(DriverError):
    """The Driver object, the signing key or the request cannot be used as given."""

    reason = "InvalidDriverConfig"
    retryable = False


class DriverNotFound(DriverError):
    """No built-in driver has this name and no Driver object was given; it may be created later."""

    reason = "DriverNotFound"


class TemplateFailed(DriverError):
    """A Template driver template did not render, or rendered something unusable."""

    reason = "TemplateError"
    retryable = False


class OperationInProgress(Exception):
    """The driver is still working (202/409) on an operation the caller tracks (`DriverRequest.operation`):
    send the same request again, with the same operation, after `retry_after` seconds.

    Deliberately not a `DriverError`: nothing failed, and no handler of failures must catch it.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


# --- Redaction --------------------------------------------------------------------------------------------

# Lines of a multi-line secret (a PEM key, a kubeconfig) are redacted one by one too, because a driver may
# quote a single line; lines shorter than this are too common (e.g. "-----") to be worth hiding.
_MIN_LINE_TO_REDACT = 8


def _forms(secret: bytes) -> Iterator[str]:
    """The ways a secret may appear in text a driver sends back: as is, JSON-escaped, URL-encoded, base64."""
    yield base64.b64encode(secret).decode()
    yield base64.urlsafe_b64encode(secret).decode()
    yield base64.b64encode(secret).decode().rstrip("=")
    try:
        text = secret.decode()
    except UnicodeDecodeError:
        return
    yield text
    yield json.dumps(text)[1:-1]
    yield json.dumps(text, ensure_ascii=False)[1:-1]
    yield repr(text)[1:-1]
    yield urllib.parse.quote(text, safe="")
    yield urllib.parse.quote_plus(text)
    if "\n" in text:
        for line in text.splitlines():
            if len(line.strip()) >= _MIN_LINE_TO_REDACT:
                yield line.strip()


def redact(text: str, secrets: Iterable[SecretValue | bytes | str]) -> str:
    """`text` with every occurrence of any of `secrets` (in its common encodings) replaced by `<redacted>`.

    Longer forms are replaced first, so a secret that contains another one disappears whole. Empty
    secrets are ignored (there is nothing to hide, and replacing "" would insert a marker everywhere).
    """
    forms: set[str] = set()
    for secret in secrets:
        raw = (
            secret.reveal()
            if isinstance(secret, SecretValue)
            else secret.encode()
            if isinstance(secret, str)
            else secret
        )
        if raw:
            forms.update(form for form in _forms(raw) if form)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


# --- Secret trees -----------------------------------------------------------------------------------------


def iter_secret_values(tree: Mapping[str, Any] | None) -> Iterator[SecretValue]:
    """Every `SecretValue` leaf of a secret tree (other leaves are skipped)."""
    if not tree:
        return
    for node in tree.values():
        if isinstance(node, SecretValue):
            yield node
        elif isinstance(node, Mapping):
            yield from iter_secret_values(node)


def reveal_tree(tree: Mapping[str, Any] | None) -> dict[str, Any]:
    """The plain JSON form of a secret tree (strings at the leaves), for the single place that sends it."""
    plain: dict[str, Any] = {}
    for key, node in (tree or {}).items():
        if isinstance(node, SecretValue):
            plain[key] = _leaf_text(node)
        elif isinstance(node, Mapping):
            plain[key] = reveal_tree(node)
        else:
            plain[key] = node
    return plain


def _leaf_text(value: SecretValue) -> str:
    # Secret bytes that are not UTF-8 (a binary key) cannot travel in JSON as they are; drivers get them
    # as replacement characters rather than an exception that would name the key.
    return value.reveal().decode(errors="replace")


def to_secret_tree(data: Mapping[str, Any] | None) -> dict[str, SecretNode]:
    """Wrap plain JSON (e.g. a driver's `resource.secrets`) into a secret tree.

    Nested objects stay trees; strings become `SecretValue`s as they are; other leaves (numbers, booleans,
    lists) become their JSON text; nulls are left out.
    """
    tree: dict[str, SecretNode] = {}
    for key, node in (data or {}).items():
        if node is None:
            continue
        if isinstance(node, SecretValue):
            tree[str(key)] = node
        elif isinstance(node, Mapping):
            tree[str(key)] = to_secret_tree(node)
        elif isinstance(node, str):
            tree[str(key)] = SecretValue(node)
        else:
            tree[str(key)] = SecretValue(json.dumps(node, separators=(",", ":"), sort_keys=True))
    return tree


# --- Manifests and JSON patch -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """One object a driver asks the operator to apply (`namespace`, `cluster`) or merge (`containers`,
    `volumes`). `name` is the key the Template driver gave it; remote drivers send none."""

    location: ManifestLocation
    data: dict[str, Any]
    name: str | None = None


def validate_json_patch(ops: Any, *, what: str = "update") -> list[dict[str, Any]]:
    """Check that `ops` is a list of RFC 6902 operations; raises ValueError naming the first bad one.

    Messages name the index and the field, never a `value` (it may be derived from a secret).
    """
    if not isinstance(ops, list):
        raise ValueError(f"{what} must be a list of JSON-patch operations, not {type(ops).__name__}")
    checked: list[dict[str, Any]] = []
    for index, op in enumerate(ops):
        where = f"{what}[{index}]"
        if not isinstance(op, Mapping):
            raise ValueError(f"{where} must be an object, not {type(op).__name__}")
        name = op.get("op")
        if name not in JSON_PATCH_OPS:
            raise ValueError(f"{where}.op must be one of {', '.join(sorted(JSON_PATCH_OPS))}")
        path = op.get("path")
        if not isinstance(path, str) or (path and not path.startswith("/")):
            raise ValueError(f'{where}.path must be a JSON pointer ("" or starting with /)')
        if name in {"add", "replace", "test"} and "value" not in op:
            raise ValueError(f"{where} ({name}) needs a value")
        if name in {"move", "copy"}:
            source = op.get("from")
            if not isinstance(source, str) or (source and not source.startswith("/")):
                raise ValueError(f"{where}.from must be a JSON pointer for {name}")
        checked.append(dict(op))
    return checked


# --- Request and result -----------------------------------------------------------------------------------


@dataclass(eq=False)
class DriverOperation:
    """One create, update or delete that a remote driver answers 202/409 to, across several calls.

    The caller keeps it in memory per object while the operation runs and passes it in
    `DriverRequest.operation` with every repeat: the driver then answers each call at once (raising
    `OperationInProgress` while it works) instead of polling inside the call, so the caller's wait is a
    timer and not a parked task. It holds what must survive between calls: when the operation started
    (its deadline), the backoff, a cookie the driver set in a 202 answer (sent with the next call), and
    driver-specific state (`state`, e.g. the HTTP cookies of a load balancer's affinity). A restart of
    the caller starts a new operation.
    """

    method: str
    """`PUT`, `GET` or `DELETE`: an operation is never continued with another method."""
    started: float | None = None
    """`time.monotonic()` of the first call, set by the driver."""
    cookie: SecretValue | None = None
    cookie_set: bool = False
    """Whether a 202/409 answer set (or cleared) the cookie: then `cookie` replaces the request's."""
    polls: int = 0
    """Answers 202/409 so far."""
    state: dict[str, Any] = field(default_factory=dict)
    """The driver's own bookkeeping."""

    def __repr__(self) -> str:
        return f"DriverOperation(method={self.method!r}, polls={self.polls})"


@dataclass(frozen=True)
class DriverRequest:
    """Everything one driver call needs, secrets resolved. The same request may be sent many times."""

    guresid: str
    """Stable id of the resource; remote drivers are called at `{target}{guresid}`."""
    type: str
    """Resource type, e.g. `postgres`, `workload`."""
    resource_id: str
    """Resource id, e.g. `shared.db`."""
    resource_class: str = "default"
    resource_inputs: Mapping[str, Any] = field(default_factory=dict)
    """`resource` in the Driver API: non-secret inputs about the resource itself (plain JSON)."""
    values: Mapping[str, Any] = field(default_factory=dict)
    """`driver.values`: non-secret driver inputs (plain JSON)."""
    secrets: SecretTree = field(default_factory=dict)
    """`driver.secrets`: secret driver inputs, `SecretValue` leaves."""
    cookie: SecretValue | None = None
    """What the driver returned as cookie last time for this GUResID (None: never, or reset)."""
    namespace: str = ""
    """Namespace of the Resource object (context for drivers that need it, e.g. templates)."""
    operation: DriverOperation | None = field(default=None, compare=False)
    """The operation this call continues (remote drivers answer at once and raise `OperationInProgress`
    while working); None: the driver finishes the operation within the call, polling as needed.
    In-process drivers ignore it."""

    @property
    def subject(self) -> str:
        """Who the request is for, as remote drivers see it (the JWT `sub`): `<namespace>/<resource id>`."""
        return f"{self.namespace}/{self.resource_id}"

    def secret_values(self) -> list[SecretValue]:
        """Every secret this request carries: the driver secrets and the cookie (the operation's too)."""
        found = list(iter_secret_values(self.secrets))
        if self.cookie is not None:
            found.append(self.cookie)
        if self.operation is not None and self.operation.cookie is not None:
            found.append(self.operation.cookie)
        return found

    def redact(self, text: str, *extra: SecretValue | bytes | str) -> str:
        """`text` with every secret of this request (and `extra`) replaced by `<redacted>`."""
        return redact(text, [*self.secret_values(), *extra])


@dataclass(frozen=True)
class DriverResult:
    """What a driver reports for one resource."""

    id: str
    """The GUResID."""
    type: str
    values: dict[str, Any] = field(default_factory=dict)
    """Non-secret outputs (plain JSON)."""
    secrets: SecretTree = field(default_factory=dict)
    """Secret outputs, `SecretValue` leaves; the operator writes them to the default store."""
    manifests: list[Manifest] = field(default_factory=list)
    cookie: SecretValue | None = None
    """The cookie to send with the next call for this GUResID; None clears it."""
    update: list[dict[str, Any]] | None = None
    """For `workload`-type resources: JSON-patch operations for the workload spec (the `update` output)."""

    def secret_values(self) -> list[SecretValue]:
        found = list(iter_secret_values(self.secrets))
        if self.cookie is not None:
            found.append(self.cookie)
        return found


def split_update(resource_type: str, values: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any] | None]:
    """For `workload`-type resources, move the `update` output out of the values (checked as JSON patch).

    Other types keep an `update` value like any other output. Raises ValueError on malformed operations.
    """
    plain = dict(values)
    if resource_type != WORKLOAD_TYPE or "update" not in plain:
        return plain, None
    ops = plain.pop("update")
    if ops is None:
        return plain, None
    return plain, validate_json_patch(ops)


# --- The protocol -----------------------------------------------------------------------------------------


@runtime_checkable
class Driver(Protocol):
    """A driver. Every call is idempotent for one GUResID and safe to repeat after any failure."""

    #: True when calls are answered in this process at once (built-ins); False when they wait on a
    #: remote party that may take seconds (the operator frees the caller's slot meanwhile).
    in_process: bool

    async def apply(self, req: DriverRequest) -> DriverResult:
        """Create the resource or update it to match `req`."""
        ...

    async def delete(self, req: DriverRequest) -> None:
        """Deprovision the resource; succeeds if it is already gone."""
        ...

    async def close(self) -> None:
        """Release what the driver holds open (connections); the owner calls it once done with it."""
        ...
