"""The Services in front of the pods: the workload's Service (when it has ports) and, for a StatefulSet,
the headless Service that governs the pods' network identities, both as score-k8s renders them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from strongroom.api.workload import WorkloadSpec
from strongroom.reconcile.workload.names import ObjectMeta, headless_service_name, service_name


def service_ports(spec: WorkloadSpec) -> list[dict[str, Any]]:
    """The Service ports of the workload, by name; empty when it exposes none."""
    return [
        {
            "name": pname,
            "port": port.port,
            "targetPort": port.target_port or port.port,
            "protocol": port.protocol or "TCP",
        }
        for pname, port in sorted(((spec.service.ports if spec.service else None) or {}).items())
    ]


def headless_service(
    meta: ObjectMeta, annotations: Mapping[str, str], ports: list[dict[str, Any]]
) -> dict[str, Any]:
    """The StatefulSet's governing Service (its `serviceName`)."""
    headless_spec: dict[str, Any] = {"clusterIP": "None", "selector": dict(meta.selector)}
    if ports:
        headless_spec["ports"] = copy.deepcopy(ports)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.of(headless_service_name(meta.name), annotations),
        "spec": headless_spec,
    }


def service(meta: ObjectMeta, annotations: Mapping[str, str], ports: list[dict[str, Any]]) -> dict[str, Any]:
    """The workload's Service, exposing `ports`."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta.of(service_name(meta.name), annotations),
        "spec": {"selector": dict(meta.selector), "ports": ports},
    }
