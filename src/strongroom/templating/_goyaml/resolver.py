"""go-yaml v2's resolution of plain scalars (YAML 1.1): which tag and value untagged text gets.

Both directions need it: fromYaml resolves plain scalars by it (loader.py), and toYaml double-quotes
a string exactly when go-yaml would read it back as something else (needs_quotes, dumper.py).
"""

from __future__ import annotations

import calendar
import math
import re
from typing import Final

STR: Final = "tag:yaml.org,2002:str"
INT: Final = "tag:yaml.org,2002:int"
FLOAT: Final = "tag:yaml.org,2002:float"
BOOL: Final = "tag:yaml.org,2002:bool"
NULL: Final = "tag:yaml.org,2002:null"
MERGE: Final = "tag:yaml.org,2002:merge"
MAP: Final = "tag:yaml.org,2002:map"
SEQ: Final = "tag:yaml.org,2002:seq"

# go-yaml v2's fixed words (YAML 1.1 booleans, nulls, special floats). Its table also has "<<",
# but only text starting with one of these characters is ever looked up, so "<<" stays a string.
_WORDS: Final[dict[str, tuple[str, object]]] = {
    **{w: (BOOL, True) for w in ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")},
    **{
        w: (BOOL, False) for w in ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
    },
    **{w: (NULL, None) for w in ("", "~", "null", "Null", "NULL")},
    **{w: (FLOAT, float("nan")) for w in (".nan", ".NaN", ".NAN")},
    **{w: (FLOAT, float("inf")) for w in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{w: (FLOAT, float("-inf")) for w in ("-.inf", "-.Inf", "-.INF")},
}
_WORD_START: Final = frozenset("yYnNtTfFoO~")
_NUMBER_START: Final = frozenset("+-0123456789")
_YAML_FLOAT: Final = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT: Final = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_BASE60_FLOAT: Final = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_DATE_PREFIX: Final = re.compile(r"[0-9]{4}-")
# go-yaml tries time.Parse with "2006-1-2T15:4:5.999999999Z07:00" (also with a lower-case t),
# "2006-1-2 15:4:5.999999999" and "2006-1-2"; the groups mirror those layouts.
_TIMESTAMP: Final = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{1,2})-(?P<d>[0-9]{1,2})"
    r"(?:(?P<sep>[Tt ])(?P<h>[0-9]{1,2}):(?P<mi>[0-9]{1,2}):(?P<s>[0-9]{1,2})(?:[.,][0-9]+)?"
    r"(?P<zone>Z|[-+](?P<zh>[0-9]{2}):(?P<zm>[0-9]{2}))?)?"
)
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_UINT64_MAX: Final = (1 << 64) - 1


_GO_INT: Final = re.compile(
    r"[-+]?(?:0[xX](?P<hex>[0-9a-fA-F]+)|0[oO](?P<oct>[0-7]+)|0[bB](?P<bin>[01]+)"
    r"|0(?P<legacy>[0-7]+)|(?P<dec>[0-9]+))"
)


def parse_go_int(text: str) -> int | None:
    """strconv.ParseInt, or ParseUint, with base 0, on text whose underscores are already gone."""
    match = _GO_INT.fullmatch(text)
    if match is None:
        return None
    if match["hex"] is not None:
        magnitude = int(match["hex"], 16)
    elif match["oct"] is not None:
        magnitude = int(match["oct"], 8)
    elif match["bin"] is not None:
        magnitude = int(match["bin"], 2)
    elif match["legacy"] is not None:
        magnitude = int(match["legacy"], 8)
    else:
        magnitude = int(match["dec"], 10)
    value = -magnitude if text.startswith("-") else magnitude
    if _INT64_MIN <= value <= _INT64_MAX or (value >= 0 and value <= _UINT64_MAX):
        return value
    return None


def _looks_like_timestamp(text: str) -> bool:
    if not _DATE_PREFIX.match(text):
        return False  # go-yaml's quick check: four digits and a dash
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return False
    year, month, day = int(match["y"]), int(match["mo"]), int(match["d"])
    if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year or 2000, month)[1]:
        return False
    if match["sep"] is None:
        return True
    if int(match["h"]) > 23 or int(match["mi"]) > 59 or int(match["s"]) > 59:
        return False
    # The T/t layouts need a zone; the space layout must not have one.
    if (match["sep"] == " ") == (match["zone"] is not None):
        return False
    return match["zh"] is None or (int(match["zh"]) <= 24 and int(match["zm"]) <= 60)


def resolve_plain(text: str) -> tuple[str, object]:
    """go-yaml v2's resolution of an untagged plain scalar: (tag, Python value)."""
    if text in _WORDS:
        return _WORDS[text]
    first = text[:1]
    if first == ".":
        if _DOT_FLOAT.fullmatch(text) and not math.isinf(float(text)):
            return FLOAT, float(text)
        return STR, text
    if first in _NUMBER_START:
        if _looks_like_timestamp(text):
            # Decoded into interface{}, go-yaml keeps timestamps as strings (but quotes them when
            # writing, see needs_quotes).
            return "timestamp", text
        plain = text.replace("_", "")
        as_int = parse_go_int(plain)
        if as_int is not None:
            return INT, as_int
        # Out-of-range floats are a ParseFloat error in Go, so the text stays a string.
        if _YAML_FLOAT.fullmatch(plain) and not math.isinf(float(plain)):
            return FLOAT, float(plain)
        for prefix, sign in (("0b", 1), ("-0b", -1)):
            digits = plain[len(prefix) :]
            if plain.startswith(prefix) and digits and set(digits) <= {"0", "1"}:
                return INT, sign * int(digits, 2)
        return STR, text
    return STR, text


def needs_quotes(text: str) -> bool:
    """Whether go-yaml v2 double-quotes a single-line string so it reads back as a string."""
    tag, _ = resolve_plain(text)
    if tag != STR:
        return True
    return text[:1] in _NUMBER_START and ":" in text and bool(_BASE60_FLOAT.fullmatch(text))
