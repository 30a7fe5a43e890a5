"""Injective names for backends whose secret names cannot hold every key (Kubernetes, GCP, Azure).

A reference's key is the *logical* key everywhere: in SecretMappings, in a Resource's status, in the
access rules of `reconcile.stores` (which check prefixes such as `strongroom/<namespace>/` on it).
`NameEncoding.encode` turns it into the backend's name, for reads, writes and deletes alike, so a
prefix check on the logical key is a check on the secret it reaches:

- a key that already is a valid name and does not start with the marker `key--` is its own name, so
  existing secrets are read by their names as before;
- any other key becomes `key--` + an escaped form: characters of the literal alphabet stay, `/` becomes
  the backend's separator where it sits between two literal characters, every other character is
  `--` + two lower-case hex digits per UTF-8 byte, and `-` stays `-` only before a literal character.

The escaped form decodes back (`decode`), and no key of the first kind starts with the marker, so no two
keys share a name (tests/unit/test_store_names.py checks it with hypothesis). Before this encoding,
`strongroom/team/db-x/...` and `strongroom/team-db/x/...` both became `strongroom-team-db-x-...`.
Backends whose names are case-insensitive (Azure) get a lower-case-only alphabet, so two keys share a
name only if they are raw names that differ in case, which name one secret there anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strongroom.stores.base import InvalidReference

#: Every escaped name starts with this; a key that does is escaped too, so it never names itself.
MARKER = "key--"
_ESCAPE = "--"
_HEX = re.compile(r"^[0-9a-f]{2}$")


@dataclass(frozen=True)
class NameEncoding:
    """How one backend's secret names are made from logical keys."""

    backend: str
    #: Characters kept as they are in an escaped name (never `-` nor `separator`).
    literal: frozenset[str]
    #: What `/` becomes between two literal characters; None: always escaped.
    separator: str | None
    #: A name the backend accepts.
    valid: re.Pattern[str]
    max_length: int
    case_insensitive: bool = False

    def is_raw_name(self, key: str) -> bool:
        """Whether `key` is its own name: a valid name outside the escaped names."""
        marked = key.lower().startswith(MARKER) if self.case_insensitive else key.startswith(MARKER)
        return not marked and len(key) <= self.max_length and bool(self.valid.match(key))

    def encode(self, key: str) -> str:
        """The backend name of `key`; `InvalidReference` when it has none (too long, or empty)."""
        if not key:
            raise InvalidReference(f"empty {self.backend} secret key")
        try:
            key.encode()
        except UnicodeEncodeError:
            raise InvalidReference(f"{self.backend} secret key {key[:80]!r} is not valid Unicode") from None
        if self.is_raw_name(key):
            return key
        name = MARKER + self._escape(key)
        if len(name) > self.max_length:
            raise InvalidReference(
                f"{self.backend} names are at most {self.max_length} characters; key {key[:40]!r}... is "
                f"{len(name)} once escaped"
            )
        if not self.valid.match(name):  # pragma: no cover - the escaping only emits valid names
            raise InvalidReference(f"{self.backend} secret key {key[:80]!r} has no valid name")
        return name

    def decode(self, name: str) -> str:
        """The logical key of a backend name (the inverse of `encode`)."""
        if not name.startswith(MARKER):
            return name
        body = name[len(MARKER) :]
        out = bytearray()
        i = 0
        while i < len(body):
            if body.startswith(_ESCAPE, i):
                digits = body[i + 2 : i + 4]
                if not _HEX.match(digits):
                    raise InvalidReference(f"{name[:80]!r} is not an escaped {self.backend} name")
                out.append(int(digits, 16))
                i += 4
                continue
            char = body[i]
            out += b"/" if char == self.separator else char.encode()
            i += 1
        return out.decode()

    def _escape(self, key: str) -> str:
        out: list[str] = []
        for i, char in enumerate(key):
            following = key[i + 1] if i + 1 < len(key) else ""
            previous = out[-1][-1] if out else ""
            if char in self.literal:
                out.append(char)
            elif char == "-" and following in self.literal:
                out.append("-")
            elif char == "/" and self.separator and previous in self.literal and following in self.literal:
                out.append(self.separator)
            else:
                out.append("".join(f"{_ESCAPE}{byte:02x}" for byte in char.encode()))
        return "".join(out)


_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"

#: Kubernetes Secret names: RFC 1123 subdomains, lower case, at most 253 characters.
KUBERNETES = NameEncoding(
    backend="Kubernetes Secret",
    literal=frozenset(_LOWER + _DIGITS),
    separator=".",
    valid=re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"),
    max_length=253,
)
#: GCP Secret Manager secret ids: letters, digits, `_` and `-`, at most 255.
GCP = NameEncoding(
    backend="GCP Secret Manager",
    literal=frozenset(_LOWER + _LOWER.upper() + _DIGITS),
    separator="_",
    valid=re.compile(r"^[A-Za-z0-9_-]+$"),
    max_length=255,
)
#: Azure Key Vault secret names: letters, digits and `-`, at most 127, compared without case.
AZURE = NameEncoding(
    backend="Azure Key Vault",
    literal=frozenset(_LOWER + _DIGITS),
    separator=None,
    valid=re.compile(r"^[0-9A-Za-z-]+$"),
    max_length=127,
    case_insensitive=True,
)
