"""Keys a Resource's secret outputs and cookie have in the stores: what to write, what to remove.

Pure: no I/O, no clock, no randomness (see the package docstring)."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from strongroom.api import constants as c
from strongroom.api.common import SecretReference
from strongroom.api.resource import Resource
from strongroom.reconcile.resource.identity import (
    _DATA_KEY,
    _REFERENCE_KEYS,
    cookie_store_key,
    output_store_key,
)
from strongroom.reconcile.resource.outputs import Outputs

# --- Store keys -------------------------------------------------------------------------------------------


def flatten_refs(tree: Mapping[str, Any] | None, prefix: str = "") -> dict[str, SecretReference]:
    """`status.outputs.secretRefs` (nested) by flat output key."""
    flat: dict[str, SecretReference] = {}
    for key, node in (tree or {}).items():
        name = f"{prefix}{key}"
        if isinstance(node, SecretReference):
            flat[name] = node
        elif isinstance(node, Mapping) and _REFERENCE_KEYS.intersection(node):
            flat[name] = SecretReference.model_validate(node)
        elif isinstance(node, Mapping):
            flat.update(flatten_refs(node, name + "."))
    return flat


def keys_to_write(
    outputs: Outputs,
    observed_secret: Mapping[str, bytes],
    previous: Mapping[str, SecretReference],
    store: str,
) -> list[str]:
    """Flat output keys whose value must be written to the default store: new, changed (compared with the
    outputs Secret, which holds exactly what was written last), or recorded for another store."""
    return [
        key
        for key, value in sorted(outputs.secrets.items())
        if key not in previous
        or previous[key].store != store
        or key not in observed_secret
        or not hmac.compare_digest(observed_secret[key], value.reveal())
    ]


def stale_refs(
    resource: Resource, previous: Mapping[str, SecretReference], outputs: Outputs, store: str
) -> list[SecretReference]:
    """Store entries written before that the new outputs no longer use (dropped keys, or a former default
    store's copies), at the keys the operator writes for this Resource (never the recorded key itself)."""
    return [
        SecretReference(store=ref.store, ref=output_store_key(resource.namespace, resource.name, key))
        for key, ref in sorted(previous.items())
        if key not in outputs.secrets or ref.store != store
    ]


def is_output_key(key: str) -> bool:
    """Whether a flat output key is one the operator could have written (a valid Secret data key)."""
    return bool(_DATA_KEY.fullmatch(key)) and len(key) <= c.DATA_KEY_MAX


def is_own_store_key(key: str, namespace: str, name: str) -> bool:
    """Whether `key` is one the operator writes for the Resource `namespace/name` in the default store:
    `strongroom/<namespace>/<name>/outputs/<output key>` or `.../cookie`. Nothing else is ever deleted,
    whatever a status says."""
    if key == cookie_store_key(namespace, name):
        return True
    prefix = output_store_key(namespace, name, "")
    return key.startswith(prefix) and is_output_key(key[len(prefix) :])


def store_entries_to_delete(
    resource: Resource,
    recorded: Mapping[str, SecretReference],
    cookie: SecretReference | None,
    secret_keys: Iterable[str],
    default_store: str | None,
) -> list[SecretReference]:
    """Everything of this Resource in the stores, to delete with it: the outputs the (sealed) status
    records, in the stores it names; output keys the outputs Secret still has (a crash between writing the
    store and the status leaves keys only the Secret knows), in the default store; the cookie. Always at
    the keys the operator writes for this Resource, derived from its namespace and name."""
    namespace, name = resource.namespace, resource.name
    found: set[tuple[str, str]] = set()
    for output_key, ref in recorded.items():
        if is_output_key(output_key):
            found.add((ref.store, output_store_key(namespace, name, output_key)))
    if default_store is not None:
        found.update(
            (default_store, output_store_key(namespace, name, k)) for k in secret_keys if is_output_key(k)
        )
    if cookie is not None:
        found.add((cookie.store, cookie_store_key(namespace, name)))
    return [SecretReference(store=store, ref=key) for store, key in sorted(found)]


def refs_tree(shape: Mapping[str, Any], refs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """`status.outputs.secretRefs`: the nesting of the secret outputs, a reference at each leaf."""
    tree: dict[str, Any] = {}
    for key, node in shape.items():
        tree[key] = refs_tree(node, refs) if isinstance(node, Mapping) else dict(refs[node])
    return tree


def reference(store: str, key: str, version: str | None) -> dict[str, Any]:
    ref: dict[str, Any] = {"store": store, "ref": key}
    if version:
        ref["version"] = version
    return ref
