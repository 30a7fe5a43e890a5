"""Shared values (`--values`): a YAML mapping `KEY: value`, where a value is text (numbers and booleans are
written as text) or a secret reference `{store, ref, version}`, which is never resolved here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pydantic

from strongroom.api import constants as c
from strongroom.api.common import SecretReference
from strongroom.orchestrator.inputs.documents import report_validation_errors, yaml_documents
from strongroom.orchestrator.inputs.model import Inputs, SharedValue
from strongroom.orchestrator.problems import Problems

#: Keys of shared values: they become keys of a Kubernetes Secret and of echo driver inputs.
VALUE_KEY = c.DATA_KEY


def load_values(path: Path, inputs: Inputs, problems: Problems) -> None:
    docs = list(yaml_documents(path, problems))
    if not docs:
        return
    if len(docs) > 1:
        problems.add(str(path), "the values file must be one YAML mapping")
        return
    where, doc = docs[0]
    if not isinstance(doc, Mapping):
        problems.add(where, "the values file must be a YAML mapping of KEY: value")
        return
    key_pattern = re.compile(VALUE_KEY)
    for key in sorted(doc, key=str):
        value = doc[key]
        at = f"{where}: {key}"
        if not isinstance(key, str) or not key_pattern.fullmatch(key):
            problems.add(at, "a value's key may hold letters, digits, '-', '_' and '.' only")
            continue
        if isinstance(value, Mapping):
            try:
                ref = SecretReference.model_validate(dict(value))
            except pydantic.ValidationError as exc:
                report_validation_errors(at, exc, problems)
                continue
            inputs.values[key] = SharedValue(key, ref=ref)
        elif isinstance(value, bool):
            inputs.values[key] = SharedValue(key, text="true" if value else "false")
        elif isinstance(value, str | int | float):
            inputs.values[key] = SharedValue(key, text=str(value))
        else:
            problems.add(at, "a value must be text, a number, a boolean or a secret reference {store, ref}")
