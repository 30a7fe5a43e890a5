"""Names the orchestrator derives: namespace, object names, resource ids, labels.

GUResIDs are not derived here: the orchestrator uses the operator's own derivation
(`strongroom.api.resource.derive_guresid`, from the namespace), so both address the same driver resource.

Every name is a pure function of what the user wrote (app, env, workload and resource names, types,
classes, ids), never of the order inputs were read in or of what else is in the set, so an unrelated
change never renames an object (a renamed Resource would be deprovisioned and provisioned again).
docs/orchestrator.md documents these functions; keep them in step.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from strongroom.api import constants as c

# Re-exported: the orchestrator spells every naming rule as naming.*; the definitions are the API's.
from strongroom.api.resource import DEFAULT_CLASS as DEFAULT_CLASS
from strongroom.api.resource import private_resource_id as private_resource_id

#: Labels on every object the orchestrator emits; pruning selects by them.
APP_LABEL: Final = "strongroom.dev/app"
ENV_LABEL: Final = "strongroom.dev/env"
#: Annotation on Resources naming the resource definition that was matched (non-secret, for debugging).
DEFINITION_ANNOTATION: Final = "strongroom.dev/definition"


_LABEL = re.compile(c.DNS1123_LABEL)
_NOT_LABEL_CHARS = re.compile(r"[^a-z0-9-]+")


def digest(text: str, length: int = 8) -> str:
    """A short hex digest, used to keep shortened or cleaned names unique."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def is_dns_label(text: str) -> bool:
    return len(text) <= c.DNS1123_LABEL_MAX and bool(_LABEL.fullmatch(text))


def dns_label(text: str) -> str:
    """`text` if it is an RFC 1123 label; otherwise a cleaned, shortened form with a digest of `text`.

    The digest is added whenever anything had to change, so two different inputs that clean to the same
    characters (`Web_DB`, `web-db`) still get different names.
    """
    if is_dns_label(text):
        return text
    clean = _NOT_LABEL_CHARS.sub("-", text.lower()).strip("-")
    suffix = digest(text)
    room = c.DNS1123_LABEL_MAX - len(suffix) - 1
    clean = clean[:room].rstrip("-")
    return f"{clean}-{suffix}" if clean else suffix


def namespace_for(app: str, env: str) -> str:
    """The namespace of an app's environment: `<app>-<env>`, shortened with a digest past 63 characters."""
    return dns_label(f"{app}-{env}")


def labels_for(app: str, env: str) -> dict[str, str]:
    return {APP_LABEL: app, ENV_LABEL: env}


def label_selector(app: str, env: str) -> str:
    return f"{APP_LABEL}={app},{ENV_LABEL}={env}"


def shared_resource_id(score_id: str) -> str:
    """Humanitec's id for a resource shared by id between workloads: `shared.<id>`."""
    return f"shared.{score_id}"


def workload_resource_id(workload: str) -> str:
    """Id of the implicit `workload`-type resource of a workload: `modules.<workload>`."""
    return f"modules.{workload}"


def _short_id(res_id: str) -> str:
    parts = res_id.split(".")
    if len(parts) == 4 and parts[0] == "modules" and parts[2] == "externals":
        return f"{parts[1]}-{parts[3]}"
    return "-".join(parts)


def resource_object_name(res_type: str, res_class: str, res_id: str) -> str:
    """Name of the Resource object for one resource: `<type>-<short id>[-<class>]`.

    The short id of `modules.<w>.externals.<n>` is `<w>-<n>`, of any other id its dots turned into `-`
    (`shared.db` -> `shared-db`). It is an RFC 1123 label (no dots) so that it can also be the key of the
    resource in a Workload's `spec.resources`, whose keys have no dots. Names that needed cleaning or
    shortening end in a digest of (type, class, id).
    """
    raw = f"{res_type}-{_short_id(res_id)}"
    if res_class != DEFAULT_CLASS:
        raw += f"-{res_class}"
    if is_dns_label(raw):
        return raw
    clean = _NOT_LABEL_CHARS.sub("-", raw.lower()).strip("-")
    suffix = digest(f"{res_type}\n{res_class}\n{res_id}")
    clean = clean[: c.DNS1123_LABEL_MAX - len(suffix) - 1].rstrip("-")
    return f"{clean}-{suffix}" if clean else suffix


def workload_patch_name(workload: str) -> str:
    """The WorkloadPatch holding the `update` output of a workload's `workload`-type resource."""
    return dns_label(f"{workload}-workload")


SHARED_VALUES_SECRET: Final = "shared-values"  # noqa: S105 (an object name, not a credential)
"""The Secret (and its SecretMapping) holding every secret shared value of an environment."""
