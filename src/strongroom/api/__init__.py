"""strongroom.api: the custom resources (`strongroom.dev/v1alpha1`) as pydantic models.

The models parse whole objects (`SecretStore.model_validate(obj)`), carry the defaults that apply in code,
and are the single source of the CRDs (`strongroom.api.crds`) and of docs/api.md.
"""

from strongroom.api.common import (
    Condition,
    ConditionStatus,
    KubeObject,
    ObjectMeta,
    ObjectReference,
    ObjectStatus,
    SecretKeySelector,
    SecretReference,
    iter_secret_refs,
    parse_duration,
)
from strongroom.api.constants import (
    API_VERSION,
    DEFAULT_STORE_LABEL,
    DEFAULT_STORE_LABELS,
    FIELD_MANAGER,
    GROUP,
    HUMANITEC_DEFAULT_STORE_LABEL,
    MANAGED_LABEL,
    VERSION,
)
from strongroom.api.driver import BUILTIN_DRIVER_TYPES, Driver, DriverSpec, DriverStatus
from strongroom.api.kinds import ALL_KINDS, KINDS_BY_NAME, AnyKubeObject, parse_object
from strongroom.api.resource import Resource, ResourceSpec, ResourceStatus
from strongroom.api.secretmapping import SecretMapping, SecretMappingSpec, SecretMappingStatus
from strongroom.api.secretstore import SecretStore, SecretStoreSpec, SecretStoreStatus
from strongroom.api.workload import (
    Workload,
    WorkloadPatch,
    WorkloadPatchSpec,
    WorkloadPatchStatus,
    WorkloadSpec,
    WorkloadStatus,
    ordered_patches,
)

__all__ = [
    "ALL_KINDS",
    "API_VERSION",
    "BUILTIN_DRIVER_TYPES",
    "DEFAULT_STORE_LABEL",
    "DEFAULT_STORE_LABELS",
    "FIELD_MANAGER",
    "GROUP",
    "HUMANITEC_DEFAULT_STORE_LABEL",
    "KINDS_BY_NAME",
    "MANAGED_LABEL",
    "VERSION",
    "AnyKubeObject",
    "Condition",
    "ConditionStatus",
    "Driver",
    "DriverSpec",
    "DriverStatus",
    "KubeObject",
    "ObjectMeta",
    "ObjectReference",
    "ObjectStatus",
    "Resource",
    "ResourceSpec",
    "ResourceStatus",
    "SecretKeySelector",
    "SecretMapping",
    "SecretMappingSpec",
    "SecretMappingStatus",
    "SecretReference",
    "SecretStore",
    "SecretStoreSpec",
    "SecretStoreStatus",
    "Workload",
    "WorkloadPatch",
    "WorkloadPatchSpec",
    "WorkloadPatchStatus",
    "WorkloadSpec",
    "WorkloadStatus",
    "iter_secret_refs",
    "ordered_patches",
    "parse_duration",
    "parse_object",
]
