"""Field-by-field comparison of strongroom's JSON values with the Go oracle's."""

from __future__ import annotations

from typing import Any


def assert_same(ours: Any, theirs: Any, path: str = "$") -> None:
    """`ours` is the JSON value `theirs` (decoded from Go's JSON), field by field.

    Stricter than `==`: a boolean is not the number 1, a string is not a number; numbers compare by value
    (JSON does not tell 5432 from 5432.0). The message names the first differing path."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: Go has a mapping, we have {ours!r}"
        assert sorted(ours) == sorted(theirs), f"{path}: keys {sorted(ours)} != Go's {sorted(theirs)}"
        for key, value in theirs.items():
            assert_same(ours[key], value, f"{path}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list), f"{path}: Go has a list, we have {ours!r}"
        assert len(ours) == len(theirs), f"{path}: {len(ours)} items, Go has {len(theirs)}"
        for index, (mine, its) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(mine, its, f"{path}[{index}]")
    elif theirs is None or isinstance(theirs, (bool, str)):
        assert type(ours) is type(theirs), f"{path}: {ours!r} is not Go's {theirs!r}"
        assert ours == theirs, f"{path}: {ours!r} != Go's {theirs!r}"
    else:
        assert isinstance(ours, (int, float)), f"{path}: {ours!r} is not Go's number {theirs!r}"
        assert not isinstance(ours, bool), f"{path}: {ours!r} is not Go's number {theirs!r}"
        assert ours == theirs, f"{path}: {ours!r} != Go's {theirs!r}"
