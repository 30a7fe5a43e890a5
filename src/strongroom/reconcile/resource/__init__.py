"""Resource: the decisions of the Resource path (the lifecycle itself is reconcile/lifecycle.py). Pure: no
I/O, no clock, no randomness.

The controller (operator/controllers/resource.py) gathers what these functions need (the Resource, the
Resources it depends on, secret values read from the stores, the driver's answer, the Secrets that
exist) and carries out what they return. Everything that decides something lives here, so it can be
unit-tested without a cluster:

- identity: the GUResID (given, or derived from namespace, type, class and id), the names of the owned
  Secrets, the keys the secret outputs and the cookie get in the default store;
- dependencies: which Resources a Resource's inputs name through `${resources.<name>.outputs.<key>}`,
  cycles among them, and the inputs with those placeholders replaced;
- when to call the driver: inputs changed (an HMAC over the resolved inputs, so secret values are never
  hashed in the clear into the status), an interrupted call to repeat, a driver change, a failed last
  attempt, a missing outputs Secret, the periodic resync;
- what to write from the driver's answer: the outputs Secret, the Secret with container and volume
  manifests, the objects of `namespace`/`cluster` manifests, the WorkloadPatch from `update`, store keys
  to write and to remove, and the status.

One module per concern, re-exported here (callers write `resource.<name>`): `identity` (GUResID, names,
annotations), `trust` (pending marker, status seal), `inputs` (dependencies, request, digest, when to
call the driver), `outputs` (the answer checked, manifest policy), `objects` (owned objects as wanted,
ownership proofs, sizes), `storekeys`, `status`.

Secret values only ever travel as `SecretValue`s or as bytes inside Secret manifests; messages name keys,
resources and placeholders, never values.
"""

from __future__ import annotations

from strongroom.api.resource import derive_guresid as derive_guresid
from strongroom.reconcile.resource.identity import (
    CONTAINERS_KEY as CONTAINERS_KEY,
)
from strongroom.reconcile.resource.identity import (
    FINALIZER as FINALIZER,
)
from strongroom.reconcile.resource.identity import (
    HMAC_PREFIX as HMAC_PREFIX,
)
from strongroom.reconcile.resource.identity import (
    MANIFESTS_HASH_ANNOTATION as MANIFESTS_HASH_ANNOTATION,
)
from strongroom.reconcile.resource.identity import (
    MANIFESTS_SECRET_SUFFIX as MANIFESTS_SECRET_SUFFIX,
)
from strongroom.reconcile.resource.identity import (
    OUTPUTS_SECRET_SUFFIX as OUTPUTS_SECRET_SUFFIX,
)
from strongroom.reconcile.resource.identity import (
    PENDING_ANNOTATION as PENDING_ANNOTATION,
)
from strongroom.reconcile.resource.identity import (
    RESOURCE_ANNOTATION as RESOURCE_ANNOTATION,
)
from strongroom.reconcile.resource.identity import (
    RESOURCE_UID_ANNOTATION as RESOURCE_UID_ANNOTATION,
)
from strongroom.reconcile.resource.identity import (
    STORE_PREFIX as STORE_PREFIX,
)
from strongroom.reconcile.resource.identity import (
    TAMPERED as TAMPERED,
)
from strongroom.reconcile.resource.identity import (
    VOLUMES_KEY as VOLUMES_KEY,
)
from strongroom.reconcile.resource.identity import (
    WORKLOAD_NAME_INPUT as WORKLOAD_NAME_INPUT,
)
from strongroom.reconcile.resource.identity import (
    GuresidPolicy as GuresidPolicy,
)
from strongroom.reconcile.resource.identity import (
    cookie_store_key as cookie_store_key,
)
from strongroom.reconcile.resource.identity import (
    derived_guresid_of as derived_guresid_of,
)
from strongroom.reconcile.resource.identity import (
    derived_name as derived_name,
)
from strongroom.reconcile.resource.identity import (
    duplicate_problem as duplicate_problem,
)
from strongroom.reconcile.resource.identity import (
    duplicate_winner as duplicate_winner,
)
from strongroom.reconcile.resource.identity import (
    guresid_of as guresid_of,
)
from strongroom.reconcile.resource.identity import (
    guresid_problem as guresid_problem,
)
from strongroom.reconcile.resource.identity import (
    identity_key as identity_key,
)
from strongroom.reconcile.resource.identity import (
    manifests_secret_name as manifests_secret_name,
)
from strongroom.reconcile.resource.identity import (
    output_store_key as output_store_key,
)
from strongroom.reconcile.resource.identity import (
    outputs_secret_name as outputs_secret_name,
)
from strongroom.reconcile.resource.inputs import (
    DependencyView as DependencyView,
)
from strongroom.reconcile.resource.inputs import (
    InputProblem as InputProblem,
)
from strongroom.reconcile.resource.inputs import (
    ResolvedInputs as ResolvedInputs,
)
from strongroom.reconcile.resource.inputs import (
    apply_reason as apply_reason,
)
from strongroom.reconcile.resource.inputs import (
    bare_request as bare_request,
)
from strongroom.reconcile.resource.inputs import (
    dependencies as dependencies,
)
from strongroom.reconcile.resource.inputs import (
    dependency_names as dependency_names,
)
from strongroom.reconcile.resource.inputs import (
    dependency_view as dependency_view,
)
from strongroom.reconcile.resource.inputs import (
    driver_request as driver_request,
)
from strongroom.reconcile.resource.inputs import (
    drivers_holding as drivers_holding,
)
from strongroom.reconcile.resource.inputs import (
    drivers_to_release as drivers_to_release,
)
from strongroom.reconcile.resource.inputs import (
    find_cycle as find_cycle,
)
from strongroom.reconcile.resource.inputs import (
    inputs_digest as inputs_digest,
)
from strongroom.reconcile.resource.inputs import (
    merge_secrets as merge_secrets,
)
from strongroom.reconcile.resource.inputs import (
    resolve_placeholders as resolve_placeholders,
)
from strongroom.reconcile.resource.inputs import (
    seconds_until_resync as seconds_until_resync,
)
from strongroom.reconcile.resource.inputs import (
    secret_dependencies as secret_dependencies,
)
from strongroom.reconcile.resource.inputs import (
    secret_ref_paths as secret_ref_paths,
)
from strongroom.reconcile.resource.objects import (
    SECRET_DATA_MAX as SECRET_DATA_MAX,
)
from strongroom.reconcile.resource.objects import (
    STATUS_VALUES_MAX as STATUS_VALUES_MAX,
)
from strongroom.reconcile.resource.objects import (
    applied_reference as applied_reference,
)
from strongroom.reconcile.resource.objects import (
    cluster_object as cluster_object,
)
from strongroom.reconcile.resource.objects import (
    content_hash_of as content_hash_of,
)
from strongroom.reconcile.resource.objects import (
    manifest_conflict as manifest_conflict,
)
from strongroom.reconcile.resource.objects import (
    manifest_owned as manifest_owned,
)
from strongroom.reconcile.resource.objects import (
    manifest_refs as manifest_refs,
)
from strongroom.reconcile.resource.objects import (
    manifests_secret as manifests_secret,
)
from strongroom.reconcile.resource.objects import (
    namespace_object as namespace_object,
)
from strongroom.reconcile.resource.objects import (
    outputs_secret as outputs_secret,
)
from strongroom.reconcile.resource.objects import (
    outputs_size_problem as outputs_size_problem,
)
from strongroom.reconcile.resource.objects import (
    owner_reference as owner_reference,
)
from strongroom.reconcile.resource.objects import (
    recorded_manifests_hash as recorded_manifests_hash,
)
from strongroom.reconcile.resource.objects import (
    secret_current as secret_current,
)
from strongroom.reconcile.resource.objects import (
    stale_manifests as stale_manifests,
)
from strongroom.reconcile.resource.objects import (
    workload_name as workload_name,
)
from strongroom.reconcile.resource.objects import (
    workload_patch as workload_patch,
)
from strongroom.reconcile.resource.outputs import (
    DEFAULT_MANIFEST_KINDS as DEFAULT_MANIFEST_KINDS,
)
from strongroom.reconcile.resource.outputs import (
    SERVICE_ACCOUNT_TOKEN_TYPE as SERVICE_ACCOUNT_TOKEN_TYPE,
)
from strongroom.reconcile.resource.outputs import (
    ManifestPolicy as ManifestPolicy,
)
from strongroom.reconcile.resource.outputs import (
    Outputs as Outputs,
)
from strongroom.reconcile.resource.outputs import (
    check_outputs as check_outputs,
)
from strongroom.reconcile.resource.outputs import (
    cluster_manifest_refusal as cluster_manifest_refusal,
)
from strongroom.reconcile.resource.outputs import (
    kind_name as kind_name,
)
from strongroom.reconcile.resource.outputs import (
    manifest_policy_problem as manifest_policy_problem,
)
from strongroom.reconcile.resource.status import (
    apply_merge_patch as apply_merge_patch,
)
from strongroom.reconcile.resource.status import (
    deletion_problem as deletion_problem,
)
from strongroom.reconcile.resource.status import (
    merge_patch as merge_patch,
)
from strongroom.reconcile.resource.status import (
    problem_status as problem_status,
)
from strongroom.reconcile.resource.status import (
    progress_status as progress_status,
)
from strongroom.reconcile.resource.status import (
    ready_status as ready_status,
)
from strongroom.reconcile.resource.storekeys import (
    flatten_refs as flatten_refs,
)
from strongroom.reconcile.resource.storekeys import (
    is_output_key as is_output_key,
)
from strongroom.reconcile.resource.storekeys import (
    is_own_store_key as is_own_store_key,
)
from strongroom.reconcile.resource.storekeys import (
    keys_to_write as keys_to_write,
)
from strongroom.reconcile.resource.storekeys import (
    reference as reference,
)
from strongroom.reconcile.resource.storekeys import (
    refs_tree as refs_tree,
)
from strongroom.reconcile.resource.storekeys import (
    stale_refs as stale_refs,
)
from strongroom.reconcile.resource.storekeys import (
    store_entries_to_delete as store_entries_to_delete,
)
from strongroom.reconcile.resource.trust import (
    SEALED_FIELDS as SEALED_FIELDS,
)
from strongroom.reconcile.resource.trust import (
    Pending as Pending,
)
from strongroom.reconcile.resource.trust import (
    PendingMarker as PendingMarker,
)
from strongroom.reconcile.resource.trust import (
    pending_of as pending_of,
)
from strongroom.reconcile.resource.trust import (
    standing_tamper as standing_tamper,
)
from strongroom.reconcile.resource.trust import (
    status_altered as status_altered,
)
from strongroom.reconcile.resource.trust import (
    status_seal as status_seal,
)
from strongroom.reconcile.resource.trust import (
    tamper_condition as tamper_condition,
)
from strongroom.reconcile.resource.trust import (
    unsealed_fields as unsealed_fields,
)

__all__ = [
    "CONTAINERS_KEY",
    "DEFAULT_MANIFEST_KINDS",
    "FINALIZER",
    "HMAC_PREFIX",
    "MANIFESTS_HASH_ANNOTATION",
    "MANIFESTS_SECRET_SUFFIX",
    "OUTPUTS_SECRET_SUFFIX",
    "PENDING_ANNOTATION",
    "RESOURCE_ANNOTATION",
    "RESOURCE_UID_ANNOTATION",
    "SEALED_FIELDS",
    "SECRET_DATA_MAX",
    "SERVICE_ACCOUNT_TOKEN_TYPE",
    "STATUS_VALUES_MAX",
    "STORE_PREFIX",
    "TAMPERED",
    "VOLUMES_KEY",
    "WORKLOAD_NAME_INPUT",
    "DependencyView",
    "GuresidPolicy",
    "InputProblem",
    "ManifestPolicy",
    "Outputs",
    "Pending",
    "PendingMarker",
    "ResolvedInputs",
    "applied_reference",
    "apply_merge_patch",
    "apply_reason",
    "bare_request",
    "check_outputs",
    "cluster_manifest_refusal",
    "cluster_object",
    "content_hash_of",
    "cookie_store_key",
    "deletion_problem",
    "dependencies",
    "dependency_names",
    "dependency_view",
    "derive_guresid",
    "derived_guresid_of",
    "derived_name",
    "driver_request",
    "drivers_holding",
    "drivers_to_release",
    "duplicate_problem",
    "duplicate_winner",
    "find_cycle",
    "flatten_refs",
    "guresid_of",
    "guresid_problem",
    "identity_key",
    "inputs_digest",
    "is_output_key",
    "is_own_store_key",
    "keys_to_write",
    "kind_name",
    "manifest_conflict",
    "manifest_owned",
    "manifest_policy_problem",
    "manifest_refs",
    "manifests_secret",
    "manifests_secret_name",
    "merge_patch",
    "merge_secrets",
    "namespace_object",
    "output_store_key",
    "outputs_secret",
    "outputs_secret_name",
    "outputs_size_problem",
    "owner_reference",
    "pending_of",
    "problem_status",
    "progress_status",
    "ready_status",
    "recorded_manifests_hash",
    "reference",
    "refs_tree",
    "resolve_placeholders",
    "seconds_until_resync",
    "secret_current",
    "secret_dependencies",
    "secret_ref_paths",
    "stale_manifests",
    "stale_refs",
    "standing_tamper",
    "status_altered",
    "status_seal",
    "store_entries_to_delete",
    "tamper_condition",
    "unsealed_fields",
    "workload_name",
    "workload_patch",
]
