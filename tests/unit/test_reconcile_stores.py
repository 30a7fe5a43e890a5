"""Store resolution and access: own namespace first, then the operator namespace (closed until its
spec.access names the namespace, and then only for the granted key prefixes); the reserved
`strongroom/<ns>/` area; defaults."""

from __future__ import annotations

import pytest

from strongroom.api.secretstore import SecretStore
from strongroom.reconcile.stores import (
    AccessGrant,
    Problem,
    StoreKey,
    StoreView,
    default_store,
    default_store_conflicts,
    key_problem,
    resolve_store,
    view_of,
)

OP = "strongroom-system"
TEAMS = AccessGrant(frozenset({"team-a", "team-b"}), ("teams/{namespace}/", "shared/"))
EVERYONE = AccessGrant(frozenset({"*"}), ("public/",))


def views(*items: StoreView) -> dict[StoreKey, StoreView]:
    return {v.key: v for v in items}


def shared(*grants: AccessGrant, default: bool = False) -> dict[StoreKey, StoreView]:
    return views(StoreView(StoreKey(OP, "vault"), is_default=default, access=grants))


def refused(result: StoreKey | Problem, reason: str) -> Problem:
    assert isinstance(result, Problem), result
    assert result.reason == reason, result
    return result


def test_own_namespace_wins_over_operator_namespace() -> None:
    stores = views(StoreView(StoreKey("app", "vault")), StoreView(StoreKey(OP, "vault"), access=(EVERYONE,)))
    assert resolve_store("vault", "app", OP, stores, key="any/key") == StoreKey("app", "vault")


def test_own_store_serves_every_key_even_non_canonical_ones() -> None:
    stores = views(StoreView(StoreKey("app", "vault")))
    assert resolve_store("vault", "app", OP, stores, key="x/../y%2f") == StoreKey("app", "vault")


def test_operator_namespace_store_is_closed_without_access() -> None:
    problem = refused(resolve_store("vault", "app", OP, shared(), key="teams/app/x"), "StoreNotAllowed")
    assert f"{OP}/vault" in problem.message
    assert "'app'" in problem.message
    assert "spec.access" in problem.message


def test_operator_namespace_sees_its_own_stores_whole() -> None:
    assert resolve_store("vault", OP, OP, shared(), key="anything") == StoreKey(OP, "vault")


def test_namespace_not_named_is_refused() -> None:
    refused(resolve_store("vault", "team-c", OP, shared(TEAMS), key="teams/team-c/x"), "StoreNotAllowed")


def test_granted_prefix_with_namespace_substituted() -> None:
    stores = shared(TEAMS)
    assert resolve_store("vault", "team-a", OP, stores, key="teams/team-a/db") == StoreKey(OP, "vault")
    assert resolve_store("vault", "team-b", OP, stores, key="shared/ca") == StoreKey(OP, "vault")


def test_key_outside_prefixes_is_refused() -> None:
    problem = refused(
        resolve_store("vault", "team-b", OP, shared(TEAMS), key="teams/team-a/db"), "KeyNotAllowed"
    )
    assert "'teams/team-a/db'" in problem.message
    assert "'teams/team-b/'" in problem.message
    assert not problem.retryable


def test_star_grants_every_namespace() -> None:
    stores = shared(EVERYONE)
    assert resolve_store("vault", "whoever", OP, stores, key="public/x") == StoreKey(OP, "vault")
    refused(resolve_store("vault", "whoever", OP, stores, key="private/x"), "KeyNotAllowed")


def test_prefixes_of_every_entry_naming_the_namespace_count() -> None:
    stores = shared(TEAMS, EVERYONE)
    assert resolve_store("vault", "team-a", OP, stores, key="public/x") == StoreKey(OP, "vault")


@pytest.mark.parametrize(
    "key",
    [
        "teams/team-b/../team-a/db",
        "teams/team-b/./x",
        "teams/team-b//x",
        "teams/team-b/x\\..\\y",
        "teams/team-b/%2e%2e/team-a",
        "teams/team-b/x?version=1",
        "teams/team-b/x#frag",
        "teams/team-b/x\n",
    ],
)
def test_non_canonical_keys_are_refused_in_shared_stores(key: str) -> None:
    problem = refused(resolve_store("vault", "team-b", OP, shared(TEAMS), key=key), "KeyNotAllowed")
    assert "canonical" in problem.message


def test_key_problem() -> None:
    assert key_problem("a/b.c/d") is None
    assert key_problem("") == "is empty"
    assert key_problem("/a") == "starts with `/`"


def test_reserved_area_of_another_namespace_is_refused_whatever_the_grants() -> None:
    stores = shared(AccessGrant(frozenset({"*"}), ("strongroom/",)))
    problem = refused(
        resolve_store("vault", "team-b", OP, stores, key="strongroom/team-a/db/outputs/password"),
        "KeyNotAllowed",
    )
    assert "belong to namespace 'team-a' alone" in problem.message


def test_reserved_area_of_another_namespace_is_refused_in_own_stores_too() -> None:
    stores = views(StoreView(StoreKey("team-b", "vault")))
    refused(resolve_store("vault", "team-b", OP, stores, key="strongroom/team-a/x"), "KeyNotAllowed")


@pytest.mark.parametrize(
    "key", ["strongroom/team-b/../team-a/x", "/strongroom/team-a/x", "//strongroom/team-b/x"]
)
def test_reserved_area_spelled_otherwise_is_refused(key: str) -> None:
    stores = views(StoreView(StoreKey("team-b", "vault")))
    refused(resolve_store("vault", "team-b", OP, stores, key=key), "KeyNotAllowed")


def test_own_reserved_area_needs_only_the_namespace_grant() -> None:
    stores = shared(TEAMS)
    key = "strongroom/team-a/db/outputs/password"
    assert resolve_store("vault", "team-a", OP, stores, key=key) == StoreKey(OP, "vault")
    assert resolve_store("vault", "team-a", OP, stores, key=key, purpose="write") == StoreKey(OP, "vault")
    refused(resolve_store("vault", "team-c", OP, stores, key=key), "StoreNotAllowed")


def test_the_operator_writes_and_deletes_only_in_the_reserved_area() -> None:
    # Delete refs come from a tenant-writable status: a forged `platform/victim-key` must not be deleted.
    for stores, namespace in (
        (shared(TEAMS), "team-a"),
        (views(StoreView(StoreKey("team-a", "vault"))), "team-a"),
    ):
        problem = refused(
            resolve_store("vault", namespace, OP, stores, key="teams/team-a/x", purpose="write"),
            "KeyNotAllowed",
        )
        assert "only keys under strongroom/team-a/" in problem.message


def test_missing_store() -> None:
    missing = refused(resolve_store("nope", "app", OP, {}, key="k"), "StoreNotFound")
    assert "nope" in missing.message


def test_view_of_a_store() -> None:
    store = SecretStore.model_validate(
        {
            "metadata": {"name": "v", "namespace": OP, "labels": {"strongroom.dev/default-store": "true"}},
            "spec": {
                "kubernetes": {"namespace": "x"},
                "access": [{"namespaces": ["team-a"], "keyPrefixes": ["teams/{namespace}/"]}],
            },
        }
    )
    assert view_of(store) == StoreView(
        StoreKey(OP, "v"), True, (AccessGrant(frozenset({"team-a"}), ("teams/{namespace}/",)),)
    )


def test_two_defaults_in_one_namespace_are_a_conflict() -> None:
    stores = [StoreView(StoreKey(OP, "a"), True), StoreView(StoreKey(OP, "b"), True)]
    result = default_store("app", OP, stores)
    refused(result, "DefaultStoreConflict")
    assert default_store_conflicts(stores) == {
        StoreKey(OP, "a"): [StoreKey(OP, "b")],
        StoreKey(OP, "b"): [StoreKey(OP, "a")],
    }


def test_own_default_wins() -> None:
    stores = [StoreView(StoreKey(OP, "a"), True, (EVERYONE,)), StoreView(StoreKey("app", "b"), True)]
    assert default_store("app", OP, stores) == StoreKey("app", "b")
    assert default_store("other", OP, stores) == StoreKey(OP, "a")


def test_shared_default_is_closed_until_it_names_the_namespace() -> None:
    closed = [StoreView(StoreKey(OP, "a"), True)]
    refused(default_store("app", OP, closed), "StoreNotAllowed")
    assert default_store(OP, OP, closed) == StoreKey(OP, "a")
    granted = [StoreView(StoreKey(OP, "a"), True, (TEAMS,))]
    assert default_store("team-a", OP, granted) == StoreKey(OP, "a")
    refused(default_store("team-c", OP, granted), "StoreNotAllowed")


def test_no_default_store() -> None:
    result = default_store("app", OP, [StoreView(StoreKey(OP, "a"))])
    refused(result, "NoDefaultStore")
