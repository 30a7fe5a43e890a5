"""Which SecretStore a reference means, and which store is the default one. Pure rules.

A reference names a store; the store is looked up in the referrer's namespace first, then in the
operator namespace. A store in the operator namespace may restrict its users with
`allowedNamespaces`. The default store (label strongroom.dev/default-store or
app.humanitec.io/default-store = "true") is found the same way; two defaults at the same level are
a conflict that is reported, never resolved by a silent pick.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class StoreKey:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class StoreView:
    """What store resolution needs to know about one SecretStore."""

    key: StoreKey
    is_default: bool = False
    allowed_namespaces: tuple[str, ...] | None = None  # None: everyone


@dataclass(frozen=True)
class Problem:
    """Why something cannot proceed: a condition reason and an actionable, value-free message."""

    reason: str
    message: str
    retryable: bool = True


def resolve_store(
    name: str, referrer_namespace: str, operator_namespace: str, stores: Mapping[StoreKey, StoreView]
) -> StoreKey | Problem:
    own = StoreKey(referrer_namespace, name)
    if own in stores:
        return own
    shared = StoreKey(operator_namespace, name)
    view = stores.get(shared)
    if view is None:
        return Problem(
            "StoreNotFound",
            f"secret store {name!r} is not found in namespace {referrer_namespace!r} nor in the operator "
            f"namespace {operator_namespace!r}; it is used as soon as it is created",
        )
    if view.allowed_namespaces is not None and referrer_namespace not in view.allowed_namespaces:
        return Problem(
            "StoreNotAllowed",
            f"secret store {shared} does not allow namespace {referrer_namespace!r}; add it to the store's "
            "spec.allowedNamespaces or create a store in this namespace",
        )
    return shared


def default_store(
    referrer_namespace: str, operator_namespace: str, stores: Iterable[StoreView]
) -> StoreKey | Problem:
    """The default store for objects in `referrer_namespace`: its own namespace's, else the operator's."""
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
            if (
                namespace != referrer_namespace
                and view.allowed_namespaces is not None
                and (referrer_namespace not in view.allowed_namespaces)
            ):
                return Problem(
                    "StoreNotAllowed",
                    f"the default secret store {view.key} does not allow namespace {referrer_namespace!r}",
                )
            return here[0]
    return Problem(
        "NoDefaultStore",
        f"no default secret store in namespace {referrer_namespace!r} or {operator_namespace!r}; label one "
        "SecretStore with strongroom.dev/default-store=true",
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
