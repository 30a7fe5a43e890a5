"""Reading what the orchestrator renders from: Score files, resource definitions, shared values.

One module per kind of input, `load_inputs` reads them all:
- `documents`: input files as located YAML documents, in the dialect each file's own tools read;
- `score`: Score files (`score.dev/v1b1`), `--image` overrides, inlined file sources;
- `definitions`: resource definitions in strongroom's and Humanitec's formats, and Driver objects;
- `values`: the shared values file (text, or secret references);
- `model`: what they are once read (`Inputs`).

Every problem is collected (see `problems.py`); nothing here reads a secret value.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from strongroom.orchestrator.inputs.definitions import (
    HUMANITEC_DEFINITION_API_VERSION,
    TEMPLATE_DRIVER_TYPES,
    load_definitions,
)
from strongroom.orchestrator.inputs.documents import yaml_documents
from strongroom.orchestrator.inputs.model import (
    Criterion,
    Inputs,
    ResourceDefinition,
    ScoreWorkload,
    SharedValue,
)
from strongroom.orchestrator.inputs.score import (
    SCORE_API_VERSION,
    ImageOverride,
    load_score,
    parse_image_option,
)
from strongroom.orchestrator.inputs.values import VALUE_KEY, load_values
from strongroom.orchestrator.problems import Problems


def load_inputs(
    score_files: list[Path],
    definition_paths: list[Path],
    values_file: Path | None,
    images: Sequence[ImageOverride] = (),
) -> tuple[Inputs, Problems]:
    """Read every input; problems are collected, not raised."""
    problems = Problems()
    inputs = Inputs()
    seen: dict[str, str] = {}
    used: set[ImageOverride] = set()
    for path in score_files:
        workload, applied = load_score(path, problems, images)
        used |= applied
        if workload is None:
            continue
        if workload.name in seen:
            problems.add(
                workload.source, f"workload {workload.name!r} is also defined in {seen[workload.name]}"
            )
            continue
        seen[workload.name] = workload.source
        inputs.workloads.append(workload)
    for override in images:
        if override.workload is not None and override not in used:
            named = f"workload {override.workload!r}"
            if override.container is not None:
                named += f" with a container {override.container!r}"
            problems.add(override.option, f"no Score file has a {named}")
    load_definitions(definition_paths, inputs, problems)
    if values_file is not None:
        load_values(values_file, inputs, problems)
    inputs.workloads.sort(key=lambda w: w.name)
    return inputs, problems


__all__ = [
    "HUMANITEC_DEFINITION_API_VERSION",
    "SCORE_API_VERSION",
    "TEMPLATE_DRIVER_TYPES",
    "VALUE_KEY",
    "Criterion",
    "ImageOverride",
    "Inputs",
    "ResourceDefinition",
    "ScoreWorkload",
    "SharedValue",
    "load_definitions",
    "load_inputs",
    "load_score",
    "load_values",
    "parse_image_option",
    "yaml_documents",
]
