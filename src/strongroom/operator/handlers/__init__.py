"""Registration of kopf handlers, one module per kind.

Handlers are registered on a registry passed in (never kopf's global default registry), so the
process, the tests and a future second operator instance in one interpreter each get exactly the
handlers they ask for. Each kind module exposes `KIND` (group, plural) and `register(registry)`;
`/readyz` waits until every kind listed here is being served.
"""

from __future__ import annotations

import kopf

from strongroom.operator.handlers import driver, resource, secretmapping, secretstore, workload, workloadpatch

_MODULES = (secretstore, secretmapping, workload, workloadpatch, driver, resource)

REQUIRED_KINDS: frozenset[tuple[str, str]] = frozenset(module.KIND for module in _MODULES)


def register_all(registry: kopf.OperatorRegistry) -> None:
    for module in _MODULES:
        module.register(registry)
