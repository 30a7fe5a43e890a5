"""Store resolution: own namespace first, then the operator namespace; allowedNamespaces; defaults."""

from __future__ import annotations

from strongroom.reconcile.stores import (
    Problem,
    StoreKey,
    StoreView,
    default_store,
    default_store_conflicts,
    resolve_store,
)

OP = "strongroom-system"


def views(*items: StoreView) -> dict[StoreKey, StoreView]:
    return {v.key: v for v in items}


def test_own_namespace_wins_over_operator_namespace() -> None:
    stores = views(StoreView(StoreKey("app", "vault")), StoreView(StoreKey(OP, "vault")))
    assert resolve_store("vault", "app", OP, stores) == StoreKey("app", "vault")


def test_operator_namespace_store_is_shared() -> None:
    stores = views(StoreView(StoreKey(OP, "vault")))
    assert resolve_store("vault", "app", OP, stores) == StoreKey(OP, "vault")


def test_allowed_namespaces_is_enforced() -> None:
    stores = views(StoreView(StoreKey(OP, "vault"), allowed_namespaces=("team-a",)))
    refused = resolve_store("vault", "team-b", OP, stores)
    assert isinstance(refused, Problem)
    assert refused.reason == "StoreNotAllowed"
    assert resolve_store("vault", "team-a", OP, stores) == StoreKey(OP, "vault")


def test_missing_store_is_a_retryable_problem() -> None:
    missing = resolve_store("nope", "app", OP, {})
    assert isinstance(missing, Problem)
    assert missing.reason == "StoreNotFound"
    assert missing.retryable


def test_two_defaults_in_one_namespace_conflict() -> None:
    stores = [StoreView(StoreKey(OP, "a"), is_default=True), StoreView(StoreKey(OP, "b"), is_default=True)]
    result = default_store("app", OP, stores)
    assert isinstance(result, Problem)
    assert result.reason == "DefaultStoreConflict"
    assert default_store_conflicts(stores) == {
        StoreKey(OP, "a"): [StoreKey(OP, "b")],
        StoreKey(OP, "b"): [StoreKey(OP, "a")],
    }


def test_namespace_default_overrides_operator_default() -> None:
    stores = [StoreView(StoreKey(OP, "a"), is_default=True), StoreView(StoreKey("app", "b"), is_default=True)]
    assert default_store("app", OP, stores) == StoreKey("app", "b")
    assert default_store("other", OP, stores) == StoreKey(OP, "a")


def test_no_default_store() -> None:
    result = default_store("app", OP, [StoreView(StoreKey(OP, "a"))])
    assert isinstance(result, Problem)
    assert result.reason == "NoDefaultStore"
