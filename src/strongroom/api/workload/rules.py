"""The rules of Score v1b1 as pydantic types: name, type, id, annotation, env var and quantity patterns.

The rules of the Score v1b1 JSON schema (score-go's `schema/files/score-v1b1.json`), plus the rules of
Kubernetes that would otherwise refuse the rendered objects later. Each is a pattern in the CRD (so the API
server refuses it at once) and a check here with a message that names the rule, so `strongroom render`,
the operator and `kubectl apply` refuse exactly the same things. docs/workloads.md lists them. One module
because every part of the Workload model draws its field types from here.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError


def rule(pattern: str, message: str, max_length: int) -> tuple[Any, Any, Any]:
    """Length bound, schema pattern (for the CRD) and a check with a readable message (pydantic's own
    message quotes the regex)."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise PydanticCustomError("score_rule", message)
        return value

    schema = WithJsonSchema({"type": "string", "pattern": pattern, "maxLength": max_length})
    return Field(max_length=max_length), schema, AfterValidator(check)


#: Score's name of containers, service ports, resources and the workload: an RFC 1123 label of 2-63 chars.
SCORE_NAME = r"^[a-z0-9][a-z0-9-]{0,61}[a-z0-9]$"
_SCORE_NAME_RULE = rule(
    SCORE_NAME,
    "must be 2 to 63 lower-case letters, digits or '-', starting and ending with a letter or digit "
    "(Score: an RFC 1123 label of at least 2 characters)",
    63,
)
#: Score resource types and classes: as SCORE_NAME, upper-case letters allowed.
SCORE_TYPE = r"^[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z0-9]$"
_SCORE_TYPE_RULE = rule(
    SCORE_TYPE,
    "must be 2 to 63 letters, digits or '-', starting and ending with a letter or digit (Score)",
    63,
)
#: Score resource ids: dot-separated labels of a-z, 0-9 and '-' (not at either end), 2 to 63 characters.
SCORE_RESOURCE_ID = r"^[a-z0-9]+(?:-+[a-z0-9]+)*(?:\.[a-z0-9]+(?:-+[a-z0-9]+)*)*$"
SCORE_RESOURCE_ID_MAX = 63
#: Annotation keys (Score): an optional DNS prefix and '/', then 2-63 letters, digits, '.', '_' or '-'.
ANNOTATION_KEY = (
    r"^(([a-z0-9][a-z0-9-]{0,61}[a-z0-9])(\.[a-z0-9][a-z0-9-]{0,61}[a-z0-9])*/)?"
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,61}[A-Za-z0-9]$"
)
#: Kubernetes: the prefix of a qualified name is a DNS subdomain of at most 253 characters.
ANNOTATION_PREFIX_MAX = 253
#: Kubernetes: all annotations of one object together, keys and values, at most 256 KiB.
ANNOTATIONS_TOTAL_MAX = 256 * 1024
#: Environment variable names: Score refuses '='; Kubernetes takes printable ASCII only.
ENV_VAR_NAME = r"^[ -<>-~]+$"
#: Score CPU quantities: whole or fractional CPUs, or milli-CPUs (`2`, `0.5`, `125m`).
CPU_QUANTITY = r"^\d+(?:m|\.\d+)?$"
#: Score memory quantities: bytes with an optional unit (`125M`, `1.5Gi`).
MEMORY_QUANTITY = r"^(0\.\d+|[1-9]\d*(\.\d+)?)(K|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
#: The placeholder image: score-k8s replaces it with `--image`; so do `strongroom render/deploy`.
PLACEHOLDER_IMAGE = "."


def _annotation_key(key: str) -> str:
    prefix, slash, _ = key.rpartition("/")
    if slash and len(prefix) > ANNOTATION_PREFIX_MAX:
        raise PydanticCustomError(
            "k8s_rule",
            f"the prefix before '/' has more than {ANNOTATION_PREFIX_MAX} characters "
            "(Kubernetes: the prefix of an annotation key is a DNS subdomain)",
        )
    return key


ScoreName = Annotated[str, *_SCORE_NAME_RULE]
ContainerName = ScoreName
PortName = ScoreName
ScoreResourceName = ScoreName
ScoreType = Annotated[str, *_SCORE_TYPE_RULE]
EnvVarName = Annotated[
    str,
    *rule(
        ENV_VAR_NAME,
        "must be printable ASCII characters other than '=' (Score refuses '='; Kubernetes takes printable "
        "ASCII only)",
        256,
    ),
]
AnnotationKey = Annotated[
    str,
    *rule(
        ANNOTATION_KEY,
        "must be an optional DNS prefix and '/', then 2 to 63 letters, digits, '.', '_' or '-', starting "
        "and ending with a letter or digit (Score's annotation key)",
        316,
    ),
    AfterValidator(_annotation_key),
]
Annotations = dict[AnnotationKey, str]
# Absolute or relative, as score-k8s writes it: Kubernetes only requires a mountPath (the kubelet mounts a
# relative one below the container's root, `conf/app.conf` at `/conf/app.conf`).
MountPath = Annotated[str, Field(min_length=1, max_length=4096)]
CpuQuantity = Annotated[
    str,
    *rule(CPU_QUANTITY, "must be whole or fractional CPUs or milli-CPUs, e.g. 2, 0.5 or 125m (Score)", 64),
]
MemoryQuantity = Annotated[
    str,
    *rule(
        MEMORY_QUANTITY,
        "must be a positive number of bytes with an optional unit K, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi or "
        "Ei, e.g. 128Mi or 1.5G (Score)",
        64,
    ),
]
#: A port: an integer (a string such as "80" is refused, as the Score schema does).
Port = Annotated[int, Field(ge=1, le=65535, strict=True)]


def _check_annotations_size(annotations: dict[str, str]) -> dict[str, str]:
    size = sum(len(key) + len(value) for key, value in annotations.items())
    if size > ANNOTATIONS_TOTAL_MAX:
        raise ValueError(
            f"annotations take {size} bytes (Kubernetes: all annotations of an object together may take "
            f"at most {ANNOTATIONS_TOTAL_MAX} bytes)"
        )
    return annotations


#: Annotations of one object: valid keys, at most 256 of them, within Kubernetes' total size.
ObjectAnnotations = Annotated[Annotations, Field(max_length=256), AfterValidator(_check_annotations_size)]


_QUANTITY_UNITS: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    **{unit: Decimal(1000) ** power for power, unit in enumerate("KMGTPE", start=1)},
    **{f"{unit}i": Decimal(1024) ** power for power, unit in enumerate("KMGTPE", start=1)},
}


def quantity_value(text: str) -> Decimal:
    """The value of a Score cpu or memory quantity (already checked against its pattern)."""
    number = text.rstrip("KMGTPEim")
    return Decimal(number) * _QUANTITY_UNITS[text[len(number) :]]
