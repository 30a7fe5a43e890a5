"""SecretMapping: copy secrets from stores into one Kubernetes Secret the operator owns."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Literal, TypeAlias

from pydantic import Field, model_validator

from strongroom.api.common import (
    ApiModel,
    KubeObject,
    ObjectName,
    ObjectStatus,
    SecretDataKey,
    bounded_duration,
)
from strongroom.api.constants import FORCE_REFRESH_RECORDED_MAX

SECRET_DATA_MAX_ITEMS = 256

#: The shortest refresh: each refresh costs store reads and API-server requests, and a shorter interval
#: lets one object take a large share of both (`1us` requeued at once: 5,910 API requests in 20 s). A
#: secret that must follow its store within seconds is better served by a restart or a spec change.
REFRESH_INTERVAL_MIN = "10s"
#: The longest: a week. Longer intervals are as good as never; say `0` for that.
REFRESH_INTERVAL_MAX = "168h"

if TYPE_CHECKING:
    RefreshInterval: TypeAlias = str
else:
    RefreshInterval = bounded_duration(
        minimum=REFRESH_INTERVAL_MIN,
        maximum=REFRESH_INTERVAL_MAX,
        zero="never",
        description=f"A duration in Go syntax between {REFRESH_INTERVAL_MIN} and {REFRESH_INTERVAL_MAX} "
        "(e.g. 30s, 5m, 1h30m), or 0 for never.",
    )


class RemoteRef(ApiModel):
    """Which secret to read from the store."""

    key: str = Field(min_length=1, max_length=1024)
    """Key of the secret in the store (a secret reference's `ref`)."""
    version: str | None = Field(default=None, max_length=256)
    """Version of the secret; absent or empty means the latest."""
    property: str | None = Field(default=None, min_length=1, max_length=256)
    """For secrets holding a JSON object (or a Vault KV entry with several fields): the field to take."""


class SecretDataEntry(ApiModel):
    """One key of the Kubernetes Secret and where its value comes from."""

    secret_key: SecretDataKey
    """Key in the Kubernetes Secret."""
    secret_store_name: ObjectName
    """Name of the SecretStore to read from (this namespace first, then the operator namespace)."""
    remote_ref: RemoteRef
    """The secret in the store."""


class SecretMappingSpec(ApiModel):
    """The Secret to write and where each of its keys comes from."""

    secret_name: ObjectName
    """Name of the Kubernetes Secret (same namespace) the operator creates and owns."""
    secret_data: list[SecretDataEntry] = Field(
        min_length=1,
        max_length=SECRET_DATA_MAX_ITEMS,
        # A map-type list makes the API server reject duplicate keys and lets server-side apply merge
        # entries by key.
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["secretKey"]},
    )
    """Keys of the Secret, each from one secret in a store."""
    refresh_interval: RefreshInterval | None = None
    """How often to re-read the stores, 10s to 168h (each refresh costs store reads and API requests);
    the operator's default if absent, "0" for never. To refresh now, set the annotation
    `strongroom.dev/force-refresh` to a new value (see `status.lastForceRefresh`)."""

    @model_validator(mode="after")
    def _unique_keys(self) -> SecretMappingSpec:
        keys = [entry.secret_key for entry in self.secret_data]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"secretData has duplicate secretKey values: {', '.join(duplicates)}")
        return self


class SecretMappingStatus(ObjectStatus):
    """Observed state of a SecretMapping."""

    last_sync_time: datetime | None = None
    """When the operator last changed the Secret's content (a refresh that finds nothing new leaves it)."""
    last_force_refresh: str | None = Field(default=None, max_length=FORCE_REFRESH_RECORDED_MAX)
    """The value of the `strongroom.dev/force-refresh` annotation last honoured: the stores were re-read
    (no cached read older than the annotation) and the Secret written if anything changed. Setting the
    annotation to a value other than this one refreshes the mapping once; values longer than 256
    characters are recorded as `sha256:<hex>`."""


class SecretMapping(KubeObject[SecretMappingSpec, SecretMappingStatus]):
    """Materialises secrets from SecretStores into one Kubernetes Secret owned by the mapping."""

    KIND: ClassVar[str] = "SecretMapping"
    PLURAL: ClassVar[str] = "secretmappings"

    kind: Literal["SecretMapping"] = "SecretMapping"
