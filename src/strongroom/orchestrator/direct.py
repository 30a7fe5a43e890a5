"""Direct mode: no operator. The orchestrator provisions the resources itself and applies what the operator
would have rendered: Deployments or StatefulSets, Services, ConfigMaps and Secrets.

It runs the operator's own code on the same CR set that operator mode would apply:
`reconcile.resource` (placeholder resolution between Resources, the driver request, checking the driver's
answer, the outputs Secret and manifests), the drivers (`drivers.registry`, remote drivers signed with
`--signing-key`), and `reconcile.workload.render` for the workloads. So direct and operator mode yield
the same Deployments and Secrets, under the same names.

Secrets: references are read from the stores named in them — the embedded store (`local`, see
`localstore.py`) or a SecretStore given with `--secret-store` (its credentials are read from the cluster
like the operator does). Driver secret outputs and cookies are kept in the default store (`local`
unless `--default-store` names another); the secret outputs also land in the Kubernetes Secrets the
workloads read, which is what direct mode delivers.

Objects it applies carry the labels `strongroom.dev/app` and `strongroom.dev/env`, so the next deploy
prunes what left the set. What was provisioned is recorded (identity, driver, the pending marker of a
driver call under way; never a secret) in the ConfigMap `strongroom-direct` of the namespace: Resources go
through the same lifecycle machine as in the operator (`direct_lifecycle.py` executes it over that
record), and a resource that left the set is deleted through its drivers, then its store entries and
Secret go.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from strongroom.api import constants as c
from strongroom.api.driver import BUILTIN_DRIVER_TYPES
from strongroom.api.driver import Driver as DriverObject
from strongroom.api.resource import Resource
from strongroom.api.secretmapping import SecretMapping
from strongroom.api.secretstore import SecretStore
from strongroom.api.workload import Workload, WorkloadPatch
from strongroom.drivers.base import Driver, DriverError
from strongroom.drivers.registry import DriverRegistry, close_drivers
from strongroom.drivers.signing import SigningKey
from strongroom.orchestrator import naming
from strongroom.orchestrator.direct_lifecycle import DirectError as DirectError  # re-exported
from strongroom.orchestrator.direct_lifecycle import ResourceExecutor
from strongroom.orchestrator.emit import CRSet
from strongroom.orchestrator.inputs import yaml_documents
from strongroom.orchestrator.kube import Cluster
from strongroom.orchestrator.localstore import LOCAL_STORE_NAME, LocalStore
from strongroom.orchestrator.plan import Plan
from strongroom.orchestrator.problems import Problems
from strongroom.reconcile import resource as rr
from strongroom.reconcile.placeholders import PlaceholderError
from strongroom.reconcile.secretdata import CONTENT_HASH_ANNOTATION, MANAGED_BY_LABEL, content_hash
from strongroom.reconcile.stores import Problem, resolve_store, view_of
from strongroom.reconcile.workload import ResourceOutputs, render, required_resources
from strongroom.reconcile.workloadpatch import apply_patches, describe_validation_error
from strongroom.stores.base import SecretRef, SecretValue, StoreClient, StoreError
from strongroom.stores.credentials import KubernetesCredentialSource
from strongroom.stores.registry import build_store_client

STATE_CONFIGMAP = "strongroom-direct"
STATE_KEY = "state.json"
#: Kinds direct mode applies into the namespace and prunes by label.
PRUNED_KINDS = (
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
)


@dataclass
class DirectSettings:
    operator_namespace: str = "strongroom-system"
    secret_stores: list[SecretStore] = field(default_factory=list)
    default_store: str = LOCAL_STORE_NAME
    signing_key: SigningKey | None = None
    local_store: LocalStore = field(default_factory=LocalStore)


@dataclass
class DirectOutcome:
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    """(kind, name, what happened) for the status table."""

    def add(self, kind: str, name: str, what: str) -> None:
        self.rows.append((kind, name, what))


def load_secret_stores(paths: Sequence[Path], operator_namespace: str) -> list[SecretStore]:
    """SecretStore objects from YAML files (the namespace defaults to the operator namespace)."""
    stores: list[SecretStore] = []
    for path in paths:
        problems = Problems()
        docs = [doc for _, doc in yaml_documents(path, problems)]
        if problems.lines:
            raise DirectError(problems.lines[0])
        for doc in docs:
            try:
                store = SecretStore.model_validate(doc)
            except pydantic.ValidationError as exc:
                raise DirectError(f"{path}: not a SecretStore: {describe_validation_error(exc)}") from None
            if not store.metadata.namespace:
                store.metadata.namespace = operator_namespace
            stores.append(store)
    return stores


class Stores:
    """Store clients by name: the embedded store and the configured SecretStores, built on first use."""

    def __init__(self, cluster: Cluster, settings: DirectSettings, namespace: str) -> None:
        self.cluster = cluster
        self.settings = settings
        self.namespace = namespace
        self._clients: dict[str, StoreClient] = {}
        self._configured = {store.name: store for store in settings.secret_stores}
        self._views = {view.key: view for view in map(view_of, settings.secret_stores)}

    async def client(self, name: str) -> StoreClient:
        if name in self._clients:
            return self._clients[name]
        store = self._configured.get(name)
        client: StoreClient
        if store is not None:
            credentials = KubernetesCredentialSource(self.cluster.client, store.namespace)
            client = await build_store_client(
                store,
                credentials,
                operator_namespace=self.settings.operator_namespace,
                kube_client=self.cluster.client,
            )
        elif name == LOCAL_STORE_NAME:
            client = self.settings.local_store
        else:
            known = ", ".join(sorted({LOCAL_STORE_NAME, *self._configured}))
            raise DirectError(
                f"secret store {name!r} is not configured (known: {known}; add --secret-store FILE)"
            )
        self._clients[name] = client
        return client

    async def read(self, store: str, key: str, version: str | None, prop: str | None = None) -> SecretValue:
        if store in self._configured:
            # The same access rules as the operator's: a store of the operator namespace serves this
            # namespace only where its spec.access says so.
            resolved = resolve_store(
                store, self.namespace, self.settings.operator_namespace, self._views, key=key
            )
            if isinstance(resolved, Problem):
                raise DirectError(f"reading {key!r} from store {store!r}: {resolved.message}")
        client = await self.client(store)
        try:
            return await client.read(SecretRef(key, version or None, prop))
        except StoreError as exc:
            raise DirectError(f"reading {key!r} from store {store!r}: {exc}") from None

    async def close(self) -> None:
        for name, client in self._clients.items():
            if name != LOCAL_STORE_NAME:
                await client.close()


def _labelled(obj: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """A copy for direct mode: no owner (there is no CR to own it), the app/env labels for pruning."""
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    meta.pop("ownerReferences", None)
    meta["labels"] = {**(meta.get("labels") or {}), **labels}
    return out


def _ident(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(obj["apiVersion"]), str(obj["kind"]), str(obj["metadata"]["name"]))


class DirectRun:
    def __init__(self, cluster: Cluster, crset: CRSet, plan: Plan, settings: DirectSettings) -> None:
        self.cluster = cluster
        self.crset = crset
        self.plan = plan
        self.settings = settings
        self.stores = Stores(cluster, settings, crset.namespace)
        self.namespace = crset.namespace
        self.labels = naming.labels_for(crset.app, crset.env)
        self.outcome = DirectOutcome()
        self.applied: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.cluster_applied: list[dict[str, Any]] = []
        self.secret_hashes: dict[str, str] = {}
        self.outputs: dict[str, rr.Outputs] = {}
        self.views: dict[str, rr.DependencyView] = {}
        self.update_patches: list[WorkloadPatch] = []
        # What the state ConfigMap records, by resource name, as last saved.
        self.records: dict[str, Any] = {}
        self.registry = DriverRegistry()
        # Built drivers by (type, spec): one HTTP client per remote driver for the whole run.
        self._drivers: dict[tuple[str, str], Driver] = {}

    def objects(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.crset.objects if obj["kind"] == kind]

    async def apply(self, obj: dict[str, Any], *, namespaced: bool = True) -> None:
        manifest = _labelled(obj, self.labels)
        await self.cluster.apply(manifest)
        if namespaced:
            self.applied[_ident(manifest)] = manifest
        else:
            self.cluster_applied.append(manifest)
        if manifest["kind"] == "Secret":
            annotations = manifest["metadata"].get("annotations") or {}
            if CONTENT_HASH_ANNOTATION in annotations:
                self.secret_hashes[manifest["metadata"]["name"]] = annotations[CONTENT_HASH_ANNOTATION]
        self.outcome.add(manifest["kind"], manifest["metadata"]["name"], "applied")

    # --- state ----------------------------------------------------------------------------------------

    async def load_state(self) -> dict[str, Any]:
        found = await self.cluster.get("v1", "ConfigMap", self.namespace, STATE_CONFIGMAP)
        if found is None:
            return {"resources": {}, "cluster": []}
        try:
            state: dict[str, Any] = json.loads((found.get("data") or {}).get(STATE_KEY) or "{}")
        except ValueError:
            raise DirectError(f"ConfigMap {self.namespace}/{STATE_CONFIGMAP} holds no valid state") from None
        state.setdefault("resources", {})
        state.setdefault("cluster", [])
        return state

    async def save_state(self, resources: Mapping[str, Any]) -> None:
        state = {
            "resources": dict(sorted(resources.items())),
            "cluster": [
                {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"]}
                for obj in self.cluster_applied
            ],
        }
        manifest = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": STATE_CONFIGMAP, "namespace": self.namespace, "labels": dict(self.labels)},
            "data": {STATE_KEY: json.dumps(state, indent=2, sort_keys=True)},
        }
        await self.cluster.apply(manifest)
        self.applied[_ident(manifest)] = manifest

    # --- drivers --------------------------------------------------------------------------------------

    def driver(self, driver_type: str, spec: Mapping[str, Any] | None) -> Driver:
        key = (driver_type, json.dumps(spec, sort_keys=True))
        if key not in self._drivers:
            self._drivers[key] = self._build_driver(driver_type, spec)
        return self._drivers[key]

    async def close_drivers(self) -> None:
        await close_drivers([*self._drivers.values()])
        await self.registry.close()

    def _build_driver(self, driver_type: str, spec: Mapping[str, Any] | None) -> Driver:
        if driver_type in BUILTIN_DRIVER_TYPES:
            return self.registry.resolve(driver_type)
        if spec is None:
            raise DirectError(
                f"driver type {driver_type!r} is not built in; direct mode needs its Driver object among the "
                "definition files (there is no operator namespace to find it in)"
            )
        obj = DriverObject.model_validate({"metadata": {"name": driver_type}, "spec": spec})
        if obj.spec.sign and self.settings.signing_key is None:
            raise DirectError(
                f"driver {driver_type!r} signs its requests: give --signing-key (and --org-id), or set "
                "sign: false in its Driver object"
            )
        try:
            return self.registry.resolve(driver_type, obj, signing_key=self.settings.signing_key)
        except DriverError as exc:
            raise DirectError(f"driver {driver_type!r}: {exc}") from None

    def driver_specs(self) -> dict[str, dict[str, Any]]:
        # The definition files' Driver objects: the CR set has none (they are the platform's), and there
        # is no operator namespace to read them from.
        return {name: driver["spec"] for name, driver in self.plan.drivers.items()}

    # --- shared values --------------------------------------------------------------------------------

    async def secret_mappings(self) -> None:
        """SecretMappings become the Secret they describe, read from the stores here."""
        for obj in self.objects("SecretMapping"):
            mapping = SecretMapping.model_validate(obj)
            data: dict[str, bytes] = {}
            for entry in mapping.spec.secret_data:
                value = await self.stores.read(
                    entry.secret_store_name,
                    entry.remote_ref.key,
                    entry.remote_ref.version,
                    entry.remote_ref.property,
                )
                data[entry.secret_key] = value.reveal()
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": mapping.spec.secret_name,
                    "namespace": self.namespace,
                    "labels": {c.MANAGED_LABEL: "true", MANAGED_BY_LABEL: "strongroom"},
                    "annotations": {CONTENT_HASH_ANNOTATION: content_hash(data)},
                },
                "type": "Opaque",
                "data": {key: base64.b64encode(value).decode() for key, value in sorted(data.items())},
            }
            await self.apply(secret)

    # --- workloads ------------------------------------------------------------------------------------

    def resource_for(self, spec_entry: Mapping[str, Any], workload: str, rname: str) -> str | None:
        res_id = spec_entry.get("id") or naming.private_resource_id(workload, rname)
        res_class = spec_entry.get("class") or naming.DEFAULT_CLASS
        for obj in self.objects("Resource"):
            spec = obj["spec"]
            if (spec["type"], spec.get("class") or naming.DEFAULT_CLASS, spec["id"]) == (
                spec_entry.get("type"),
                res_class,
                res_id,
            ):
                return str(obj["metadata"]["name"])
        return None

    async def workloads(self) -> None:
        patches = [WorkloadPatch.model_validate(obj) for obj in self.objects("WorkloadPatch")]
        patches += self.update_patches
        for obj in self.objects("Workload"):
            workload = Workload.model_validate(obj)
            spec = apply_patches(workload, patches).spec
            declared = {
                name: entry.model_dump(mode="json", by_alias=True, exclude_none=True)
                for name, entry in (spec.resources or {}).items()
            }
            inputs: dict[str, ResourceOutputs] = {}
            for rname in required_resources(workload, patches):
                target = self.resource_for(declared[rname], workload.name, rname)
                if target is None or target not in self.outputs:
                    continue  # the renderer reports it as missing
                out = self.outputs[target]
                secret_name = rr.outputs_secret_name(target)
                inputs[rname] = ResourceOutputs(
                    ready=True,
                    values=out.values,
                    secret_name=secret_name,
                    secrets=out.secrets,
                    containers=out.containers,
                    volumes=out.volumes,
                    content_hash=self.secret_hashes.get(secret_name),
                )
            result = render(workload, patches, inputs, self.secret_hashes)
            if not result.complete:
                problems = [f"{name}: {why}" for name, why in sorted(result.patch_problems.items())]
                problems += result.problems
                problems += [f"resource {name!r} is missing" for name in result.waiting_for]
                raise DirectError(f"Workload {workload.name}: {'; '.join(problems)}")
            for manifest in result.objects:
                await self.apply(manifest)

    # --- prune ----------------------------------------------------------------------------------------

    async def prune(self, state: Mapping[str, Any]) -> None:
        for api_version, kind in PRUNED_KINDS:
            for obj in await self.cluster.list(api_version, kind, self.namespace, self.labels):
                ident = (api_version, kind, obj["metadata"]["name"])
                if ident in self.applied or (kind == "ConfigMap" and ident[2] == STATE_CONFIGMAP):
                    continue
                if await self.cluster.delete(api_version, kind, self.namespace, ident[2]):
                    self.outcome.add(kind, ident[2], "pruned")
        kept = {(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in self.cluster_applied}
        for ref in state.get("cluster") or []:
            ident = (ref["apiVersion"], ref["kind"], ref["name"])
            if ident not in kept and await self.cluster.delete(ident[0], ident[1], None, ident[2]):
                self.outcome.add(ident[1], ident[2], "pruned")

    # --- the whole run --------------------------------------------------------------------------------

    async def run(self) -> DirectOutcome:
        namespace = next(obj for obj in self.crset.objects if obj["kind"] == "Namespace")
        await self.cluster.apply(namespace)
        state = await self.load_state()
        specs = self.driver_specs()
        resources = {
            obj["metadata"]["name"]: Resource.model_validate(obj) for obj in self.objects("Resource")
        }
        self.records = dict(state["resources"])
        in_set: set[str] = set()
        for node in self.plan.order():
            resource = resources[node.name]
            in_set.add(node.name)
            executor = ResourceExecutor(self, node.name)
            outputs = await executor.provision(resource, specs.get(resource.spec.driver_type))
            self.outputs[node.name] = outputs
            self.views[node.name] = rr.DependencyView(
                True, values=outputs.values, secret_keys=frozenset(outputs.secrets), secrets=outputs.secrets
            )
        await self.secret_mappings()
        await self.workloads()
        # Workloads no longer use what left the set: prune their objects, then let the drivers delete
        # the resources (each one stays recorded until its driver confirmed the deletion).
        await self.prune(state)
        for name in sorted(set(self.records) - in_set):
            await ResourceExecutor(self, name).deprovision()
        await self.save_state(self.records)
        return self.outcome


async def deploy(cluster: Cluster, crset: CRSet, plan: Plan, settings: DirectSettings) -> DirectOutcome:
    run = DirectRun(cluster, crset, plan, settings)
    try:
        return await run.run()
    except (PlaceholderError, StoreError) as exc:
        raise DirectError(str(exc)) from None
    finally:
        await run.close_drivers()
        await run.stores.close()
