"""docs/security.md names a test for every attack; each named test must exist, so the table cannot rot."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "security.md"
# `file.py::test_name` (a path under tests/integration/ unless it says tests/unit/), or `::test_name`
# meaning the same file as the reference before it in the cell.
_REFERENCE = re.compile(r"`((?:tests/unit/)?[\w./]*\.py)?::(test_\w+)(?:\[[^\]`]*\])?`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def test_every_test_the_attack_table_names_exists() -> None:
    named: list[tuple[str, str]] = []
    for line in DOC.read_text().splitlines():
        if not line.startswith("| "):
            continue
        current: str | None = None
        for file, test in _REFERENCE.findall(line):
            current = file or current
            assert current, f"{test} in docs/security.md names no file"
            named.append((current, test))
    assert len(named) >= 40, "the attack table lost its test references"
    missing = []
    for file, test in named:
        path = REPO / file if file.startswith("tests/") else REPO / "tests" / "integration" / file
        if not path.exists() or test not in _tests_in(path):
            missing.append(f"{file}::{test}")
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"


def test_every_tenancy_test_module_is_in_the_attack_table() -> None:
    text = DOC.read_text()
    modules = sorted(p.name for p in (REPO / "tests" / "integration").glob("test_tenancy_*.py"))
    assert modules, "no tenancy test modules found"
    assert [m for m in modules if m not in text] == []
