"""From a SecretStore object to a ready `StoreClient`: one factory per backend, chosen by spec key.

Every backend class has the same factory, `await Backend.create(spec_block, ctx)`, where `ctx` is a
`StoreContext` (store name and namespace, credentials, operator namespace, timeout, Kubernetes
client). Factories validate the spec and read credentials but make no call to the store itself: that
is `check()`'s job, so building a client for a store that is down still succeeds.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from lightkube import AsyncClient

from strongroom.api.secretstore import BackendName, SecretStore
from strongroom.stores.base import InvalidStoreConfig, StoreClient
from strongroom.stores.credentials import CredentialSource, StoreContext

#: A backend's factory: its spec block (e.g. `VaultProvider`) and the context -> a client.
BackendFactory = Callable[[Any, StoreContext], Awaitable[StoreClient]]

#: Backend name -> "module:Class". Modules are imported on first use: the cloud SDKs (gRPC, Azure,
#: botocore) cost tens of MiB each, and a cluster that only uses Vault should not carry them.
BACKENDS: Mapping[BackendName, str] = {
    "vault": "strongroom.stores.vault:VaultStore",
    "awssm": "strongroom.stores.awssm:AWSSecretsManagerStore",
    "gcpsm": "strongroom.stores.gcpsm:GCPSecretManagerStore",
    "azurekv": "strongroom.stores.azurekv:AzureKeyVaultStore",
    "kubernetes": "strongroom.stores.kubernetes:KubernetesStore",
}


def backend_factory(backend: BackendName) -> BackendFactory:
    module_name, _, class_name = BACKENDS[backend].partition(":")
    factory: BackendFactory = getattr(importlib.import_module(module_name), class_name).create
    return factory


#: Seconds for one call to a store (connect and read), unless the caller says otherwise.
DEFAULT_TIMEOUT = 10.0


async def build_store_client(
    store: SecretStore,
    credentials: CredentialSource,
    *,
    operator_namespace: str,
    kube_client: AsyncClient | None = None,
    call_timeout: float = DEFAULT_TIMEOUT,
) -> StoreClient:
    """A client for `store`. `credentials` must be bound to the store's namespace.

    `kube_client` is needed by the `kubernetes` backend only (it is not closed by the store client).
    Raises `InvalidStoreConfig` when the spec cannot work (including tenancy refusals: the operator's
    own identity or other namespaces' Secrets from a store outside the operator namespace).
    """
    backend = store.spec.backend
    ctx = StoreContext(
        name=store.name,
        namespace=store.namespace or operator_namespace,
        credentials=credentials,
        operator_namespace=operator_namespace,
        timeout=call_timeout,
        kube_client=kube_client,
    )
    if backend not in BACKENDS:  # pragma: no cover - BackendName and BACKENDS are kept in step by a unit test
        raise InvalidStoreConfig(f"store {ctx.label!r}: unknown backend {backend!r}")
    return await backend_factory(backend)(getattr(store.spec, backend), ctx)
