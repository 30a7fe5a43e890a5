"""Which SecretStore a reference means, whether the referrer may use that key of it, and which store is
the default one. Pure rules: the one place that decides store access for every caller (SecretMappings,
Resources' secretRefs, driver cookies, store deletes, direct mode).

A reference names a store; the store is looked up in the referrer's namespace first, then in the
operator namespace.

- A store in the referrer's own namespace serves every key (it is the namespace's own store, with its
  own credentials).
- A store in the operator namespace is closed to other namespaces until an entry of its
  `spec.access` names them, and then serves only keys under that entry's `keyPrefixes` (`{namespace}`
  replaced by the referrer's namespace). Such keys must be canonical (no `..`, `//`, `%`, ...), so a
  server cannot resolve a granted-looking key to another one.
- Keys under `strongroom/<ns>/` (where the operator keeps driver outputs and cookies) belong to `<ns>`
  alone, in every store: another namespace is refused whatever the grants say; `<ns>` itself needs only
  to be granted the store (any entry naming it), not a prefix. The operator's own writes and deletes
  are allowed there and nowhere else.

The default store (label strongroom.dev/default-store or app.humanitec.io/default-store = "true") is
found the same way; two defaults at the same level are a conflict that is reported, never resolved by
a silent pick.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from strongroom.api.secretstore import SecretStore

#: Keys the operator writes for a Resource in namespace `<ns>` start with `strongroom/<ns>/`.
RESERVED_PREFIX = "strongroom/"
NAMESPACE_PLACEHOLDER = "{namespace}"
ALL_NAMESPACES = "*"

#: "read": a reference a tenant wrote. "write": the operator writes or deletes one of its own keys.
Purpose = Literal["read", "write"]

_UNSAFE_CHARS = re.compile(r"[\\%?#\x00-\x1f\x7f]")


@dataclass(frozen=True, order=True)
class StoreKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class AccessGrant:
    """One `spec.access` entry: these namespaces may read keys under these prefixes."""

    namespaces: frozenset[str]
    key_prefixes: tuple[str, ...]

    def names(self, namespace: str) -> bool:
        return ALL_NAMESPACES in self.namespaces or namespace in self.namespaces

    def prefixes_for(self, namespace: str) -> tuple[str, ...]:
        return tuple(prefix.replace(NAMESPACE_PLACEHOLDER, namespace) for prefix in self.key_prefixes)


@dataclass(frozen=True)
class StoreView:
    """What store resolution needs to know about one SecretStore."""

    key: StoreKey
    is_default: bool = False
    access: tuple[AccessGrant, ...] = ()  # empty: closed to every other namespace


def view_of(store: SecretStore) -> StoreView:
    return StoreView(
        key=StoreKey(store.namespace, store.name),
        is_default=store.is_default,
        access=tuple(
            AccessGrant(frozenset(entry.namespaces), tuple(entry.key_prefixes))
            for entry in store.spec.access or ()
        ),
    )


@dataclass(frozen=True)
class Problem:
    """Why something cannot proceed: a condition reason and an actionable, value-free message."""

    reason: str
    message: str
    retryable: bool = True


def key_problem(key: str) -> str | None:
    """Why `key` is not canonical (and so cannot be matched against a prefix), or None."""
    if not key:
        return "is empty"
    if key.startswith("/"):
        return "starts with `/`"
    if "//" in key:
        return "holds `//`"
    if any(segment in (".", "..") for segment in key.split("/")):
        return "holds a `.` or `..` segment"
    if _UNSAFE_CHARS.search(key):
        return "holds a backslash, `%`, `?`, `#` or a control character"
    return None


def reserved_owner(key: str) -> str | None:
    """The namespace whose reserved area `key` is in (`strongroom/<ns>/...`), else None."""
    if not key.startswith(RESERVED_PREFIX):
        return None
    owner, _, _ = key[len(RESERVED_PREFIX) :].partition("/")
    return owner


def _granted(view: StoreView, namespace: str) -> list[AccessGrant]:
    return [grant for grant in view.access if grant.names(namespace)]


def check_key(
    store: StoreKey, view: StoreView | None, referrer_namespace: str, key: str, purpose: Purpose
) -> Problem | None:
    """Whether `referrer_namespace` may use `key` of `store` (a store it may use at all), or the refusal."""
    # Leading slashes too: Vault drops them, so `/strongroom/team-a/x` is team-a's key there.
    reserved = reserved_owner(key.lstrip("/"))
    shown = key[:200]
    if reserved is not None or purpose == "write":
        # The reserved area: checked canonically in every store, since a server would resolve
        # `strongroom/team-b/../team-a/x` into another namespace's area.
        problem = key_problem(key)
        if problem is None and reserved == referrer_namespace:
            return None
        why = (
            f"it {problem}"
            if problem is not None
            else f"keys under {RESERVED_PREFIX}{reserved}/ belong to namespace {reserved!r} alone"
            if reserved is not None
            else f"the operator writes and deletes only keys under {RESERVED_PREFIX}{referrer_namespace}/"
        )
        return Problem(
            "KeyNotAllowed",
            f"key {shown!r} of secret store {store} is refused for namespace {referrer_namespace!r}: {why}",
            retryable=False,
        )
    if store.namespace == referrer_namespace:
        return None
    assert view is not None
    problem = key_problem(key)
    if problem is not None:
        return Problem(
            "KeyNotAllowed",
            f"key {shown!r} of shared secret store {store} is refused for namespace "
            f"{referrer_namespace!r}: it {problem}; keys of a shared store must be canonical",
            retryable=False,
        )
    prefixes = [
        p for grant in _granted(view, referrer_namespace) for p in grant.prefixes_for(referrer_namespace)
    ]
    if any(key.startswith(prefix) for prefix in prefixes):
        return None
    allowed = ", ".join(repr(p) for p in dict.fromkeys(prefixes))
    return Problem(
        "KeyNotAllowed",
        f"key {shown!r} of shared secret store {store} is outside the prefixes namespace "
        f"{referrer_namespace!r} may read ({allowed}); the platform admin adds a keyPrefixes entry to the "
        f"store's spec.access, or use a store of this namespace",
        retryable=False,
    )


def _store_not_allowed(store: StoreKey, referrer_namespace: str, what: str) -> Problem:
    return Problem(
        "StoreNotAllowed",
        f"{what} {store} is not open to namespace {referrer_namespace!r}; the platform admin adds the "
        "namespace to an entry of the store's spec.access, or use a store of this namespace",
        retryable=False,
    )


def resolve_store(
    name: str,
    referrer_namespace: str,
    operator_namespace: str,
    stores: Mapping[StoreKey, StoreView],
    *,
    key: str,
    purpose: Purpose = "read",
) -> StoreKey | Problem:
    """The store `name` means for an object in `referrer_namespace`, if that object may use `key` of it."""
    own = StoreKey(referrer_namespace, name)
    if own in stores:
        return check_key(own, stores[own], referrer_namespace, key, purpose) or own
    shared = StoreKey(operator_namespace, name)
    view = stores.get(shared)
    if view is None:
        return Problem(
            "StoreNotFound",
            f"secret store {name!r} is not found in namespace {referrer_namespace!r} nor in the operator "
            f"namespace {operator_namespace!r}; it is used as soon as it is created",
        )
    if not _granted(view, referrer_namespace):
        return _store_not_allowed(shared, referrer_namespace, "secret store")
    return check_key(shared, view, referrer_namespace, key, purpose) or shared


def default_store(
    referrer_namespace: str, operator_namespace: str, stores: Iterable[StoreView]
) -> StoreKey | Problem:
    """The default store for objects in `referrer_namespace`: its own namespace's, else the operator's.

    The operator writes only keys under `strongroom/<referrer_namespace>/` there, so a shared default
    store needs only to name the namespace in its `spec.access`, not a prefix."""
    defaults = [view for view in stores if view.is_default]
    for namespace in dict.fromkeys((referrer_namespace, operator_namespace)):
        here = sorted(view.key for view in defaults if view.key.namespace == namespace)
        if len(here) > 1:
            names = ", ".join(str(key) for key in here)
            return Problem(
                "DefaultStoreConflict",
                f"more than one default secret store in namespace {namespace!r} ({names}); set the label "
                "strongroom.dev/default-store=true on exactly one",
            )
        if here:
            view = next(v for v in defaults if v.key == here[0])
            if namespace != referrer_namespace and not _granted(view, referrer_namespace):
                return _store_not_allowed(view.key, referrer_namespace, "the default secret store")
            return here[0]
    return Problem(
        "NoDefaultStore",
        f"no default secret store in namespace {referrer_namespace!r} or {operator_namespace!r}; label one "
        "SecretStore with strongroom.dev/default-store=true",
    )


#: Condition type of a store whose traffic is not encrypted (status True, next to Ready).
INSECURE_TRANSPORT_CONDITION = "InsecureTransport"


def insecure_transport(store: SecretStore) -> str | None:
    """Why the store's connection is a warning (plain `http://`), or None.

    Login credentials over HTTP are refused by the Vault backend unless `insecureHTTP` opts in; a token
    from a Secret is allowed (OpenBao's dev server), but either way values and tokens cross the network
    unencrypted, which the store's status says."""
    vault = store.spec.vault
    if vault is None or not vault.url.lower().startswith("http://"):
        return None
    what = "a login credential, a Vault token" if vault.insecure_http else "a Vault token"
    return (
        f"{vault.url} is plain http://: {what} and every secret value cross the network unencrypted; "
        "use https:// outside tests"
    )


def default_store_conflicts(stores: Iterable[StoreView]) -> dict[StoreKey, list[StoreKey]]:
    """For every default store that shares its namespace with another default: the others."""
    by_namespace: dict[str, list[StoreKey]] = {}
    for view in stores:
        if view.is_default:
            by_namespace.setdefault(view.key.namespace, []).append(view.key)
    conflicts: dict[StoreKey, list[StoreKey]] = {}
    for keys in by_namespace.values():
        if len(keys) > 1:
            for key in keys:
                conflicts[key] = sorted(k for k in keys if k != key)
    return conflicts
