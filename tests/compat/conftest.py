"""The Go oracle for the compatibility tests (the same process the template fidelity suite uses)."""

from __future__ import annotations

import shutil

import pytest

from testenv.gotemplate import GoTemplateOracle, oracle


@pytest.fixture(scope="session")
def go() -> GoTemplateOracle:
    if shutil.which("go") is None:
        pytest.skip("Go is not installed; the compatibility tests need it (see README)")
    return oracle()
