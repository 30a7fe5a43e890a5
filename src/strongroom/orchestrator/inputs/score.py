"""Score files (`score.dev/v1b1`): one workload each, `--image` overrides applied, file sources inlined.

A file is read as score-go reads YAML and validated by the Workload model (the Score schema's rules) plus
the Score-only rules the Workload API does not have (resource ids). `--image` options set container images
first. A file's `source` is read relative to the Score file and inlined (`content`, or `binaryContent` when
it is not UTF-8 text), because the operator cannot read the developer's disk.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from strongroom.api.workload import PLACEHOLDER_IMAGE, SCORE_RESOURCE_ID, SCORE_RESOURCE_ID_MAX, WorkloadSpec
from strongroom.orchestrator.inputs.documents import report_validation_errors, score_documents
from strongroom.orchestrator.inputs.model import ScoreWorkload
from strongroom.orchestrator.problems import Problems

SCORE_API_VERSION = "score.dev/v1b1"


def _inline_sources(doc: dict[str, Any], base: Path, where: str, problems: Problems) -> None:
    """Replace every container file's `source` with its content (in place)."""
    containers = doc.get("containers")
    if not isinstance(containers, dict):
        return
    for cname, container in containers.items():
        files = container.get("files") if isinstance(container, dict) else None
        entries: list[dict[str, Any]] = []
        if isinstance(files, list):
            entries = [entry for entry in files if isinstance(entry, dict)]
        elif isinstance(files, dict):
            entries = [entry for entry in files.values() if isinstance(entry, dict)]
        for entry in entries:
            source = entry.get("source")
            if not isinstance(source, str):
                continue
            path = (base / source).resolve()
            try:
                data = path.read_bytes()
            except OSError as exc:
                problems.add(f"{where}: containers.{cname}.files", f"source {source!r}: {exc.strerror}")
                continue
            del entry["source"]
            try:
                entry["content"] = data.decode("utf-8")
            except UnicodeDecodeError:
                entry["binaryContent"] = base64.b64encode(data).decode()
                entry.pop("noExpand", None)


@dataclass(frozen=True)
class ImageOverride:
    """One `--image [WORKLOAD[.CONTAINER]=]IMAGE` option: score-k8s's `--image`, per workload or container."""

    image: str
    workload: str | None = None
    container: str | None = None

    @property
    def option(self) -> str:
        """The option as written, for messages."""
        target = ".".join(part for part in (self.workload, self.container) if part)
        return f"--image {target}={self.image}" if target else f"--image {self.image}"


def parse_image_option(text: str) -> ImageOverride:
    """`IMAGE` (every workload's `.` images), `WORKLOAD=IMAGE` (that workload's `.` images) or
    `WORKLOAD.CONTAINER=IMAGE` (that container's image, whatever the Score file says). Images hold no
    `=`, so the first `=` separates the target. Raises ValueError with a readable message."""
    target, equals, image = text.partition("=")
    if not equals:
        target, image = "", text
    if not image or image != image.strip() or any(ch.isspace() for ch in image):
        raise ValueError(f"{text!r}: the image must be non-empty and without whitespace")
    if not equals:
        return ImageOverride(image)
    workload, dot, container = target.partition(".")
    if not workload or (dot and not container):
        raise ValueError(f"{text!r}: expected IMAGE, WORKLOAD=IMAGE or WORKLOAD.CONTAINER=IMAGE")
    return ImageOverride(image, workload, container or None)


def _apply_images(
    doc: dict[str, Any], name: str, where: str, images: Sequence[ImageOverride], problems: Problems
) -> set[ImageOverride]:
    """Set container images from `images` (in place); the overrides that name this workload (and one of its
    containers, for the per-container form)."""
    containers = doc.get("containers")
    if not isinstance(containers, dict):
        return set()
    named = {o for o in images if o.workload == name and (o.container is None or o.container in containers)}
    for cname, container in containers.items():
        if not isinstance(container, dict):
            continue
        exact = [o for o in images if o.workload == name and o.container == cname]
        placeholder = [o for o in images if o.workload == name and o.container is None]
        placeholder = placeholder or [o for o in images if o.workload is None]
        chosen = exact or (placeholder if container.get("image") == PLACEHOLDER_IMAGE else [])
        if len({o.image for o in chosen}) > 1:
            problems.add(
                f"{where}: containers.{cname}.image",
                f"{' and '.join(sorted({o.option for o in chosen}))} give different images",
            )
            continue
        if chosen:
            container["image"] = chosen[0].image
    return named


def _score_file_problems(doc: Mapping[str, Any], where: str, problems: Problems) -> bool:
    """Rules of the Score schema that the Workload API does not have (it holds what the orchestrator
    writes, e.g. a resource id `shared.<id>` longer than Score's 63 characters). True if none."""
    ok = True
    resources = doc.get("resources")
    for rname, resource in resources.items() if isinstance(resources, dict) else ():
        res_id = resource.get("id") if isinstance(resource, dict) else None
        if isinstance(res_id, str) and not (
            2 <= len(res_id) <= SCORE_RESOURCE_ID_MAX and re.fullmatch(SCORE_RESOURCE_ID, res_id)
        ):
            problems.add(
                f"{where}: resources.{rname}.id",
                f"must be 2 to {SCORE_RESOURCE_ID_MAX} characters: labels of lower-case letters, digits and "
                "'-' (not at either end) separated by '.' (Score)",
            )
            ok = False
    return ok


def load_score(
    path: Path, problems: Problems, images: Sequence[ImageOverride] = ()
) -> tuple[ScoreWorkload | None, set[ImageOverride]]:
    """The workload of one Score file (None if it has problems), and the `images` that name it."""
    before = len(problems.lines)
    docs = list(score_documents(path, problems))
    if not docs:
        if len(problems.lines) == before:  # not already reported as unreadable
            problems.add(str(path), "no Score workload in this file")
        return None, set()
    if len(docs) > 1:
        problems.add(str(path), "a Score file holds one workload; found several YAML documents")
        return None, set()
    where, doc = docs[0]
    if not isinstance(doc, dict):
        problems.add(where, "a Score file must be a YAML mapping")
        return None, set()
    doc = dict(doc)
    api_version = doc.pop("apiVersion", None)
    if api_version != SCORE_API_VERSION:
        problems.add(where, f"apiVersion must be {SCORE_API_VERSION}, not {api_version!r}")
        return None, set()
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
    if not isinstance(name, str) or not name:
        problems.add(where, "metadata.name is required")
        return None, set()
    used = _apply_images(doc, name, where, images, problems)
    _inline_sources(doc, path.parent, where, problems)
    if not _score_file_problems(doc, where, problems):
        return None, used
    try:
        spec = WorkloadSpec.model_validate(doc)
    except pydantic.ValidationError as exc:
        report_validation_errors(where, exc, problems)
        return None, used
    data: dict[str, Any] = spec.model_dump(
        mode="json", by_alias=True, exclude_none=True, exclude_defaults=True
    )
    return ScoreWorkload(name=name, source=where, spec=data), used
