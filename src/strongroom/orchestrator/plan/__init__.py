"""From the inputs to a plan: the resource graph and the workloads, with every placeholder settled.

What happens, in order (docs/orchestrator.md has the user-facing version):

1. Every resource a Score file declares becomes a node, identified by (type, class, id): private
   resources get `modules.<workload>.externals.<name>`, resources with a Score `id` are shared as
   `shared.<id>` (one node however many workloads declare them), and `environment` resources are the
   environment's shared values, one node `shared.values` per environment.
2. Each node gets its definition (`matching.py`). Placeholders in the definition's driver inputs are
   settled: `${context.*}` and non-secret `${values.*}` become text; `${resources.<type>[.<class>][#<id>]
   .outputs.<key>}` adds the referenced resource to the graph (the id defaults to the node's own) and is
   rewritten to name its Resource object, which the operator resolves in-cluster; a `secrets` leaf that
   is exactly a secret `${values.KEY}` becomes a secret reference. Score `params` become resource inputs,
   with references to the workload's other resources rewritten the same way.
3. Cycles in the graph are errors.
4. A workload whose `workload`-type resource (`modules.<workload>`) has a definition gets it evaluated
   offline, with the built-in echo or template driver: its `update` output becomes a WorkloadPatch.
5. Workload placeholders `${resources.<name>...}` are rewritten to the Resource object names; keys of
   echo-driven resources and of the shared values are checked to exist.

Planning is pure and synchronous: the driver calls of step 4 are listed by the `Planner` and made by its
caller (`orchestrator/render.py`), which hands the answers back. Nothing here reads a secret value: secret
references are carried as references.

Modules: `model` (the plan: resources, workloads, their identities), `planner` (the resource graph and the
two planning steps), `driver_inputs` (a definition's driver inputs settled, step 2), `workloads` (steps 1
and 5), `workload_resource` (step 4).
"""

from __future__ import annotations

from strongroom.orchestrator.plan.driver_inputs import CONTEXT, VALUES, parse_resource_reference
from strongroom.orchestrator.plan.model import (
    BUILTIN_ENVIRONMENT_DEFINITION,
    ECHO_DRIVERS,
    ENVIRONMENT_ID,
    ENVIRONMENT_TYPE,
    RESERVED_RESOURCE_ANNOTATIONS,
    WORKLOAD_NAME_INPUT,
    WORKLOAD_RESOURCE_KEY,
    WORKLOAD_TYPE,
    Plan,
    ResourceNode,
    ResUid,
    WorkloadNode,
)
from strongroom.orchestrator.plan.planner import Planner
from strongroom.orchestrator.plan.workload_resource import OfflineAnswer, OfflineCall

__all__ = [
    "BUILTIN_ENVIRONMENT_DEFINITION",
    "CONTEXT",
    "ECHO_DRIVERS",
    "ENVIRONMENT_ID",
    "ENVIRONMENT_TYPE",
    "RESERVED_RESOURCE_ANNOTATIONS",
    "VALUES",
    "WORKLOAD_NAME_INPUT",
    "WORKLOAD_RESOURCE_KEY",
    "WORKLOAD_TYPE",
    "OfflineAnswer",
    "OfflineCall",
    "Plan",
    "Planner",
    "ResUid",
    "ResourceNode",
    "WorkloadNode",
    "parse_resource_reference",
]
