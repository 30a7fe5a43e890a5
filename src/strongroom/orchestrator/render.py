"""`strongroom render` as a function: inputs -> plan -> CR set, or every problem at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from strongroom.orchestrator.emit import CRSet, emit
from strongroom.orchestrator.inputs import ImageOverride, load_inputs
from strongroom.orchestrator.plan import Plan, build_plan
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
    plan, plan_problems = build_plan(inputs, app, env, env_type)
    problems.extend(plan_problems)
    problems.raise_if_any()
    crset, emit_problems = emit(plan)
    emit_problems.raise_if_any()
    return Rendered(plan, crset)


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
