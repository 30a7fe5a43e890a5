"""Names and patterns shared by every strongroom custom resource.

Patterns are written for both regex engines that check them: the API server's Go RE2 (CRD `pattern`) and
pydantic-core's Rust regex (models). Both search rather than match, so every pattern is anchored, and none
uses look-around or back-references (RE2 has neither).
"""

from __future__ import annotations

from typing import Final

GROUP: Final = "strongroom.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

#: Field manager for every server-side apply the operator and the orchestrator make.
FIELD_MANAGER: Final = "strongroom"

#: Label value "true" marks the store that receives driver secret outputs and cookies.
DEFAULT_STORE_LABEL: Final = "strongroom.dev/default-store"
#: The Humanitec Operator's label with the same meaning; honoured so ported stores keep working.
HUMANITEC_DEFAULT_STORE_LABEL: Final = "app.humanitec.io/default-store"
DEFAULT_STORE_LABELS: Final = (DEFAULT_STORE_LABEL, HUMANITEC_DEFAULT_STORE_LABEL)

#: Label put on objects the operator owns and writes (Secrets of SecretMappings, rendered workloads).
MANAGED_LABEL: Final = "strongroom.dev/managed"

#: Annotation a user sets on a SecretMapping, to any new value (e.g. a timestamp), to have its stores re-read
#: now rather than at the next refresh (External Secrets Operator's `force-sync`). The value last honoured
#: is recorded in `status.lastForceRefresh`, so each new value causes exactly one refresh.
FORCE_REFRESH_ANNOTATION: Final = "strongroom.dev/force-refresh"
#: Longest force-refresh value recorded as it is; a longer one is recorded as its SHA-256 (bounded status).
FORCE_REFRESH_RECORDED_MAX: Final = 256

#: Label on the CRDs themselves, so they can be selected as a set (`kubectl wait crd -l ...`).
PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
PART_OF_VALUE: Final = "strongroom"

# --- Kubernetes names -------------------------------------------------------------------------------------

_LABEL_PART = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"

#: RFC 1123 subdomain: names of most objects (Secrets, SecretStores, Drivers, Workloads, ...).
DNS1123_SUBDOMAIN: Final = rf"^{_LABEL_PART}(\.{_LABEL_PART})*$"
DNS1123_SUBDOMAIN_MAX: Final = 253
#: RFC 1123 label: namespace names, container names, port names.
DNS1123_LABEL: Final = rf"^{_LABEL_PART}$"
DNS1123_LABEL_MAX: Final = 63

#: Keys of a Secret's `data` (and of ConfigMaps): what the API server accepts for them.
DATA_KEY: Final = r"^[-._a-zA-Z0-9]+$"
DATA_KEY_MAX: Final = 253

# --- Values -----------------------------------------------------------------------------------------------

#: A Go `time.ParseDuration` string without sign, e.g. "90s", "1h30m", "1.5h", or "0".
#: (Go also accepts "µs"; it is left out to keep manifests ASCII, "us" means the same.)
DURATION: Final = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$"
DURATION_MAX: Final = 64

#: An http(s) URL: scheme, then a host part that is not empty and holds no whitespace.
HTTP_URL: Final = r"^https?://[^\s/?#]+([/?#]\S*)?$"
URL_MAX: Final = 2048

#: PEM certificates: at least the first BEGIN line must be there (whitespace before it is allowed).
PEM_CERTIFICATES: Final = r"^\s*-----BEGIN CERTIFICATE-----"
PEM_MAX: Final = 262144

#: The ids reference drivers accept for a resource (GUResID), same as the Humanitec reference drivers.
GURESID: Final = r"^[a-z0-9][a-z0-9-]+[a-z0-9]$"
GURESID_MAX: Final = 253

#: Resource types such as `postgres`, `s3`, `k8s-namespace`, `base-env`; upper-case letters too, as Score
#: allows them (`AmazonS3`), compared exactly as written.
RESOURCE_TYPE: Final = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
#: Resource ids and classes such as `shared.db`, `modules.api.externals.cache`, `default`.
RESOURCE_ID: Final = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"

#: A driver type: `<org>/<name>` (built-in `humanitec/echo`, `strongroom/template`, ...) or the name of a
#: Driver object in the same namespace.
DRIVER_TYPE: Final = rf"^({_LABEL_PART}/)?{_LABEL_PART}(\.{_LABEL_PART})*$"

#: Condition types and reasons, as in metav1.Condition.
CONDITION_TYPE: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"

#: A JSON pointer (RFC 6901) into a Workload object; only its `spec` may be patched.
WORKLOAD_PATCH_PATH: Final = r"^/spec(/([^/~]|~[01])*)*$"
