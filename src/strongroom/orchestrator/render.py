"""`strongroom render` as a function: inputs -> plan -> CR set, or every problem at once.

Planning is pure; the built-in driver calls it needs (workload-type resources evaluated offline) are made
here, the one place rendering runs an event loop, and only when there are any.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from strongroom.drivers.base import DriverError
from strongroom.drivers.registry import builtin_drivers, close_drivers
from strongroom.orchestrator.emit import CRSet, emit
from strongroom.orchestrator.inputs import ImageOverride, load_inputs
from strongroom.orchestrator.plan import OfflineAnswer, OfflineCall, Plan, Planner
from strongroom.orchestrator.problems import InputProblems, Problems


@dataclass(frozen=True)
class Rendered:
    plan: Plan
    crset: CRSet


def render(
    score_files: list[Path],
    definition_paths: list[Path],
    values_file: Path | None,
    *,
    app: str,
    env: str,
    env_type: str | None = None,
    images: Sequence[ImageOverride] = (),
) -> Rendered:
    """Render the CR set of one environment; raises InputProblems listing every problem found.

    `images`: `--image` options, applied to the Score files before anything is checked."""
    inputs, problems = load_inputs(score_files, definition_paths, values_file, images)
    if not score_files:
        problems.add("-f/--score", "give at least one Score file")
    planner = Planner(inputs, app, env, env_type)
    answers = asyncio.run(_call_builtin_drivers(planner.calls)) if planner.calls else {}
    plan, plan_problems = planner.finish(answers)
    problems.extend(plan_problems)
    problems.raise_if_any()
    crset, emit_problems = emit(plan)
    emit_problems.raise_if_any()
    return Rendered(plan, crset)


async def _call_builtin_drivers(calls: Sequence[OfflineCall]) -> dict[str, OfflineAnswer]:
    """Make planning's driver calls, offline, one after the other; answers by workload name.

    A DriverError is an answer (planning reports it); the Template driver's render process ends here."""
    drivers = builtin_drivers()
    answers: dict[str, OfflineAnswer] = {}
    try:
        for call in calls:
            try:
                answers[call.workload] = await drivers[call.driver_type].apply(call.request)
            except DriverError as exc:
                answers[call.workload] = exc
    finally:
        await close_drivers(drivers.values())
    return answers


def describe_graph(plan: Plan) -> str:
    """The resource graph as text, for `strongroom render --graph`."""
    lines = [f"namespace {plan.namespace} (app {plan.app}, env {plan.env}, env type {plan.env_type})"]
    lines.append("resources (dependencies first):")
    for node in plan.order():
        definition = node.definition
        lines.append(
            f"  {node.name}: {node.uid} via definition {definition.name!r} ({definition.driver_type})"
        )
        for dep in sorted(node.depends_on):
            lines.append(f"    depends on {dep.object_name}")
    lines.append("workloads:")
    for workload in sorted(plan.workloads, key=lambda w: w.name):
        uses = ", ".join(f"{name} -> {uid.object_name}" for name, uid in sorted(workload.resources.items()))
        lines.append(f"  {workload.name}: {uses or 'no resources'}")
        if workload.patch:
            lines.append(
                f"    patched by {len(workload.patch)} operation(s) from {workload.patch_definition!r}"
            )
    if plan.shared_secrets:
        lines.append(f"shared secret values: {', '.join(sorted(plan.shared_secrets))}")
    return "\n".join(lines) + "\n"


__all__ = ["InputProblems", "Problems", "Rendered", "describe_graph", "render"]
