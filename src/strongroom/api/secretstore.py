"""SecretStore: how the operator reaches one secret backend."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, model_validator

from strongroom.api import constants as c
from strongroom.api.common import (
    ApiModel,
    HttpUrl,
    KubeObject,
    LocalObjectReference,
    NamespaceName,
    ObjectStatus,
    PemCertificates,
    SecretKeySelector,
    cel,
    count_set,
    exactly_one_of_rule,
)

BackendName = Literal["vault", "awssm", "gcpsm", "azurekv", "kubernetes"]
BACKENDS: tuple[BackendName, ...] = ("vault", "awssm", "gcpsm", "azurekv", "kubernetes")
VAULT_AUTH_METHODS = ("tokenSecretRef", "kubernetes", "appRole")


#: Audience of service account tokens sent to Vault, unless a store in the operator namespace says otherwise.
DEFAULT_VAULT_AUDIENCE = "vault"

# --- Vault / OpenBao --------------------------------------------------------------------------------------


class VaultKubernetesAuth(ApiModel):
    """Vault's Kubernetes auth method: log in with a service account token."""

    role: str = Field(min_length=1, max_length=256)
    """Vault role to log in as."""
    mount_path: str | None = Field(default=None, min_length=1, max_length=256)
    """Mount path of the auth method; `kubernetes` if absent."""
    service_account_ref: LocalObjectReference | None = None
    """Service account (in the store's namespace) whose token is used; the operator's own if absent."""
    audience: str = Field(default=DEFAULT_VAULT_AUDIENCE, min_length=1, max_length=256, pattern=r"^\S+$")
    """Audience of the requested token (the Vault role's `audience` must match); `vault` if absent.

    The token is never valid against the Kubernetes API server, so Vault (or whoever reads it) cannot
    act as the service account in the cluster. Only stores in the operator namespace may set another
    audience (which must not be one the API server accepts)."""


class VaultAppRoleAuth(ApiModel):
    """Vault's AppRole auth method."""

    role_id: str = Field(min_length=1, max_length=256)
    """The AppRole's role_id (not secret)."""
    secret_ref: SecretKeySelector
    """Secret key holding the AppRole's secret_id."""
    mount_path: str | None = Field(default=None, min_length=1, max_length=256)
    """Mount path of the auth method; `approle` if absent."""


class VaultAuth(ApiModel):
    """How to authenticate to Vault: exactly one method."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    exactly_one_of_rule(*VAULT_AUTH_METHODS),
                    "exactly one of tokenSecretRef, kubernetes or appRole must be set",
                )
            ]
        }
    )

    token_secret_ref: SecretKeySelector | None = None
    """Secret key holding a Vault token."""
    kubernetes: VaultKubernetesAuth | None = None
    """Log in with a Kubernetes service account token."""
    app_role: VaultAppRoleAuth | None = None
    """Log in with an AppRole."""

    @model_validator(mode="after")
    def _exactly_one_method(self) -> VaultAuth:
        if count_set(self, "token_secret_ref", "kubernetes", "app_role") != 1:
            raise ValueError("exactly one of tokenSecretRef, kubernetes or appRole must be set")
        return self


class VaultProvider(ApiModel):
    """HashiCorp Vault or OpenBao with a KV secrets engine."""

    url: HttpUrl
    """Address of the server, e.g. `https://vault.example.com:8200`."""
    path: str = Field(min_length=1, max_length=256, pattern=r"^[^/\s]([^\s]*[^/\s])?$")
    """Mount path of the KV secrets engine, e.g. `secret` (no leading or trailing slash)."""
    version: Literal["v1", "v2"] = "v2"
    """KV engine version; v2 if absent. Versioned references need v2."""
    namespace: str | None = Field(default=None, min_length=1, max_length=256)
    """Vault Enterprise / OpenBao namespace."""
    ca_bundle: PemCertificates | None = None
    auth: VaultAuth
    """How to authenticate."""
    insecure_http: bool = Field(default=False, alias="insecureHTTP")
    """Allow sending a service account token or an AppRole secret_id over plain `http://` (test servers
    only). Without it such a store is refused (`InsecureTransport`); token auth over `http://` is always
    allowed, with an `InsecureTransport` warning condition."""


# --- AWS Secrets Manager ----------------------------------------------------------------------------------


class AWSAuth(ApiModel):
    """AWS credentials: empty for ambient credentials (Pod Identity, IRSA, environment), or access keys."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "has(self.accessKeyIDSecretRef) == has(self.secretAccessKeySecretRef)",
                    "accessKeyIDSecretRef and secretAccessKeySecretRef must be set together",
                )
            ]
        }
    )

    access_key_id_secret_ref: SecretKeySelector | None = Field(default=None, alias="accessKeyIDSecretRef")
    """Secret key holding the access key id."""
    secret_access_key_secret_ref: SecretKeySelector | None = None
    """Secret key holding the secret access key."""

    @model_validator(mode="after")
    def _keys_together(self) -> AWSAuth:
        if (self.access_key_id_secret_ref is None) != (self.secret_access_key_secret_ref is None):
            raise ValueError("accessKeyIDSecretRef and secretAccessKeySecretRef must be set together")
        return self


class AWSSMProvider(ApiModel):
    """AWS Secrets Manager."""

    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]+$", max_length=32)
    """Region of the Secrets Manager, e.g. `eu-central-1`."""
    endpoint: HttpUrl | None = None
    """Endpoint override (VPC endpoint, emulator)."""
    role: str | None = Field(
        default=None, pattern=r"^arn:aws[-a-z]*:iam::[0-9]{12}:role/\S+$", max_length=2048
    )
    """ARN of an IAM role to assume with the credentials."""
    auth: AWSAuth | None = None
    """Credentials; ambient if absent or empty."""


# --- GCP Secret Manager -----------------------------------------------------------------------------------


class GCPAuth(ApiModel):
    """GCP credentials: empty for ambient credentials (Workload Identity), or a service account key."""

    credentials_secret_ref: SecretKeySelector | None = None
    """Secret key holding a service account key (JSON)."""


class GCPSMProvider(ApiModel):
    """Google Cloud Secret Manager."""

    project_id: str = Field(
        alias="projectID",
        pattern=r"^(([a-z0-9.-]+:)?[a-z][-a-z0-9]{4,28}[a-z0-9]|[0-9]{1,20})$",
        max_length=100,
    )
    """Project id or number that holds the secrets."""
    endpoint: str | None = Field(default=None, pattern=r"^(https?://)?[^\s/]+/?$", max_length=c.URL_MAX)
    """API endpoint override: `host:port` for gRPC, or an http(s) URL (private endpoint, emulator)."""
    auth: GCPAuth | None = None
    """Credentials; ambient if absent or empty."""


# --- Azure Key Vault --------------------------------------------------------------------------------------

_UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class AzureAuth(ApiModel):
    """Azure credentials: empty for workload identity, or a service principal's client secret."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.clientSecretSecretRef) || has(self.clientID)",
                    "clientSecretSecretRef needs clientID",
                )
            ]
        }
    )

    client_id: str | None = Field(default=None, alias="clientID", pattern=_UUID, max_length=36)
    """Application (client) id of the service principal or user-assigned identity."""
    client_secret_secret_ref: SecretKeySelector | None = None
    """Secret key holding the service principal's client secret."""

    @model_validator(mode="after")
    def _secret_needs_client(self) -> AzureAuth:
        if self.client_secret_secret_ref is not None and self.client_id is None:
            raise ValueError("clientSecretSecretRef needs clientID")
        return self


class AzureKVProvider(ApiModel):
    """Azure Key Vault."""

    url: HttpUrl
    """Vault URI, e.g. `https://my-vault.vault.azure.net/`."""
    tenant_id: str = Field(
        alias="tenantID", pattern=r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$", max_length=256
    )
    """Microsoft Entra tenant id (or domain)."""
    endpoint: HttpUrl | None = None
    """Microsoft Entra authority host override (sovereign clouds, emulators)."""
    ca_bundle: PemCertificates | None = None
    auth: AzureAuth | None = None
    """Credentials; workload identity if absent or empty."""


# --- Kubernetes -------------------------------------------------------------------------------------------


class KubernetesProvider(ApiModel):
    """Kubernetes Secrets in one namespace of this cluster."""

    namespace: NamespaceName
    """Namespace whose Secrets hold the values."""


# --- SecretStore ------------------------------------------------------------------------------------------


class RateLimit(ApiModel):
    """Client-side rate limit for calls to this store."""

    qps: float = Field(gt=0, le=10000)
    """Sustained requests per second."""
    burst: int = Field(ge=1, le=10000)
    """Requests allowed in a burst."""


#: `{namespace}` in a key prefix stands for the namespace of the object that refers to the store.
NAMESPACE_PLACEHOLDER = "{namespace}"
#: Characters a key prefix may not hold: what would let a server resolve a key outside the prefix.
_PREFIX_PATTERN = r"^([^{}\\%?#\s\x00-\x1f\x7f]|\{namespace\})+$"
_NAMESPACE_OR_ALL = r"^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$"
_UNSAFE_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")


def prefix_problem(prefix: str) -> str | None:
    """Why a key prefix is refused, or None. The same rules as the CRD's CEL rules."""
    if prefix.count(NAMESPACE_PLACEHOLDER) > 1:
        return f"key prefix {prefix!r} has more than one {NAMESPACE_PLACEHOLDER}"
    if prefix.startswith("/") or "//" in prefix or _UNSAFE_SEGMENT.search(prefix):
        return f"key prefix {prefix!r} starts with `/`, or has `//`, `.` or `..` segments"
    if not re.match(_PREFIX_PATTERN, prefix):
        return (
            f"key prefix {prefix!r} has `{{`, `}}` other than {NAMESPACE_PLACEHOLDER}, `\\`, `%`, `?`, `#` "
            "or a space"
        )
    return None


class StoreAccess(ApiModel):
    """Namespaces that may read keys of this store, and which keys."""

    namespaces: list[Annotated[str, Field(pattern=_NAMESPACE_OR_ALL, max_length=c.DNS1123_LABEL_MAX)]] = (
        Field(min_length=1, max_length=256, json_schema_extra={"x-kubernetes-list-type": "set"})
    )
    """Namespace names, or `*` for every namespace."""
    key_prefixes: list[
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=512,
                pattern=_PREFIX_PATTERN,
                json_schema_extra={
                    "x-kubernetes-validations": [
                        cel(
                            "!self.matches('\\\\{namespace\\\\}.*\\\\{namespace\\\\}')",
                            "a key prefix holds {namespace} at most once",
                        ),
                        cel(
                            "!self.startsWith('/') && !self.contains('//') "
                            "&& !self.matches('(^|/)[.][.]?(/|$)')",
                            "a key prefix may not start with `/` nor hold `//`, `.` or `..` segments",
                        ),
                    ]
                },
            ),
        ]
    ] = Field(min_length=1, max_length=64, json_schema_extra={"x-kubernetes-list-type": "set"})
    """Keys these namespaces may read start with one of these, e.g. `teams/{namespace}/`, where
    `{namespace}` is the referring namespace. Keys under `strongroom/<namespace>/` (driver outputs) are
    readable by that namespace alone, whatever the prefixes say."""

    @model_validator(mode="after")
    def _well_formed(self) -> StoreAccess:
        for prefix in self.key_prefixes:
            problem = prefix_problem(prefix)
            if problem is not None:
                raise ValueError(problem)
        return self


class SecretStoreSpec(ApiModel):
    """Exactly one backend, plus who may use the store."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    exactly_one_of_rule(*BACKENDS),
                    "exactly one of vault, awssm, gcpsm, azurekv or kubernetes must be set",
                )
            ]
        }
    )

    vault: VaultProvider | None = None
    awssm: AWSSMProvider | None = None
    gcpsm: GCPSMProvider | None = None
    azurekv: AzureKVProvider | None = None
    kubernetes: KubernetesProvider | None = None
    access: list[StoreAccess] | None = Field(default=None, max_length=64)
    """For a store in the operator namespace: which other namespaces may use it and for which keys. Closed
    to every other namespace if absent. Ignored for stores elsewhere, which serve their own namespace
    only."""
    rate_limit: RateLimit | None = None
    """Client-side rate limit; the operator's default if absent."""

    @model_validator(mode="after")
    def _exactly_one_backend(self) -> SecretStoreSpec:
        if count_set(self, *BACKENDS) != 1:
            raise ValueError("exactly one of vault, awssm, gcpsm, azurekv or kubernetes must be set")
        return self

    @property
    def backend(self) -> BackendName:
        """The key of the configured backend."""
        return next(name for name in BACKENDS if getattr(self, name) is not None)


Capability = Literal["read", "write"]


class SecretStoreStatus(ObjectStatus):
    """Observed state of a SecretStore."""

    store_type: BackendName | None = None
    """The configured backend (for `kubectl get`)."""
    capabilities: list[Capability] | None = Field(
        default=None, max_length=2, json_schema_extra={"x-kubernetes-list-type": "set"}
    )
    """What the operator found it can do with the store's credentials."""


class SecretStore(KubeObject[SecretStoreSpec, SecretStoreStatus]):
    """How the operator reaches one secret backend (Vault/OpenBao, AWS, GCP, Azure, Kubernetes).

    The label `strongroom.dev/default-store: "true"` (or `app.humanitec.io/default-store: "true"`) marks
    the store that receives driver secret outputs.
    """

    KIND: ClassVar[str] = "SecretStore"
    PLURAL: ClassVar[str] = "secretstores"

    kind: Literal["SecretStore"] = "SecretStore"

    @property
    def is_default(self) -> bool:
        """Whether one of the default-store labels is "true"."""
        labels = self.metadata.labels or {}
        return any(labels.get(label) == "true" for label in c.DEFAULT_STORE_LABELS)
