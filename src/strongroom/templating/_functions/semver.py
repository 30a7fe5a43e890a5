"""Semver versions as Go's *semver.Version: the methods and fields templates may use on them.

gotpl's Version lacks the comparison methods Go's type has and prints under another type name; the
guard hands every version a function returns to templates as a GoVersion (see conversion.py).
"""

from __future__ import annotations

from typing import Final

from gotpl.errors import TemplateExecutionError
from gotpl.funcs.sprig.semver import Version
from gotpl.runtime.gofmt import sprintf

from strongroom.templating._limits import GoFunctionError
from strongroom.templating._values import go_type_name, is_nil

# Go methods and fields of values functions return (semver's *Version) that templates may use.
ALLOWED_ATTRIBUTES: Final = frozenset({"Major", "Minor", "Patch"})
ALLOWED_METHODS: Final = frozenset(
    {"Prerelease", "Metadata", "Original", "Compare", "String", "LessThan", "GreaterThan", "Equal"}
)


class GoVersion(Version):
    """gotpl's semver version plus the comparison methods Go's *semver.Version has."""

    __slots__ = ()

    def String(self) -> str:
        return str(self)

    def Compare(self, other: Version) -> int:
        return super().Compare(_version_argument(other))

    def LessThan(self, other: Version) -> bool:
        return bool(self < _version_argument(other))

    def GreaterThan(self, other: Version) -> bool:
        return bool(self > _version_argument(other))

    def Equal(self, other: Version) -> bool:
        if is_nil(other):
            return False  # the one comparison Go guards against a nil version
        return bool(self == _version_argument(other))

    def __go_format_value__(self, kind: str, mode: str, *, nested: bool) -> str:
        # gotpl's formatter asks this hook for %T/typeOf, %#v and %v.
        del mode, nested
        if kind == "type":
            return "*semver.Version"
        if kind == "syntax":
            fields = f"major:{self.Major:#x}, minor:{self.Minor:#x}, patch:{self.Patch:#x}, " + ", ".join(
                f"{name}:{sprintf('%q', text)}"
                for name, text in (
                    ("pre", self.Prerelease()),
                    ("metadata", self.Metadata()),
                    ("original", self.Original()),
                )
            )
            return f"&semver.Version{{{fields}}}"
        return str(self)


def _version_argument(value: object) -> Version:
    """The *semver.Version parameter of the comparison methods, checked as text/template does."""
    if isinstance(value, Version):
        return value
    if is_nil(value):
        # Go passes a nil pointer, which the method dereferences.
        raise GoFunctionError("runtime error: invalid memory address or nil pointer dereference")
    # The message text/template gives for an argument of the wrong type (conversion.py).
    raise TemplateExecutionError(f"wrong type for value; expected *semver.Version; got {go_type_name(value)}")
