"""Go's net/url, as far as Sprig's `urlJoin` and `urlParse` reach it: url.Parse and URL.String.

Written from the rules of Go's net/url (RFC 3986 as Go applies it), not from its code:

* which bytes each part of a URL escapes (`escape`): letters, digits and `-_.~` never; the host
  keeps the sub-delims, `:`, `[]` and `<>"`; the path keeps every reserved character but `?`; the
  userinfo keeps `$&+,;=` and escapes `@/?:`; the fragment keeps every reserved character and
  `!()*`, but escapes `'`. Everything else, every non-ASCII byte included, becomes `%XX`.
* how a string is taken apart (`parse`): the fragment is cut at the first `#`, control bytes are
  refused, a scheme is `[A-Za-z][A-Za-z0-9+.-]*:`, the query starts at the first `?`, a rootless
  rest after a scheme is opaque, `//` starts an authority that ends at the next `/`; its userinfo
  ends at the last `@`, may only hold the RFC's userinfo characters plus `@`, and splits at its
  first `:`; the host is `[IPv6]:port` or a name whose last `:` starts a numeric port, and may
  %-escape only non-ASCII bytes (and `%25`, the zone separator).
* how a URL is put together (`URL.string`): `scheme:opaque` or `scheme://userinfo@host/path`, the
  `//` written only when there is a host, a path or a userinfo, a `/` added between a host and a
  relative path, `./` before a relative path whose first segment has a colon.

Go strings are bytes, so unescaped parts are bytes here too (`%FF` survives a round trip).

Error messages have Go's wording, with every piece of the input replaced by `…`: the input may be a
credential (a userinfo is user:password), and these messages end up in events and logs.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Final

_REDACTED: Final = '"…"'


class Part(enum.Enum):
    """The parts of a URL that escape differently (Go's encoding modes)."""

    PATH = enum.auto()
    HOST = enum.auto()
    ZONE = enum.auto()
    USER_PASSWORD = enum.auto()
    FRAGMENT = enum.auto()


_ALWAYS_SAFE: Final = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"
)  # RFC 3986 §2.3 unreserved
_RESERVED: Final = frozenset(b"$&+,/:;=?@")  # RFC 2396 §2.2 reserved, which Go still uses
# RFC 3986 §3.2.2 sub-delims, plus `:` (the port), `[]` (IPv6 literals) and `<>"`: Parse refuses a
# host that %-escapes ASCII, so those three are left as they are.
_HOST_SAFE: Final = frozenset(b"!$&'()*+,;=:[]<>\"")
_RESERVED_SAFE: Final = {
    Part.PATH: _RESERVED - frozenset(b"?"),
    Part.USER_PASSWORD: _RESERVED - frozenset(b"@/?:"),  # `:` separates user and password
    Part.FRAGMENT: _RESERVED,
    Part.HOST: frozenset[int](),
    Part.ZONE: frozenset[int](),
}
# Sub-delims a fragment keeps; `'` stays escaped for callers that relied on it (Go issue 19917).
_FRAGMENT_EXTRA: Final = frozenset(b"!()*")


def _safe_bytes(part: Part) -> frozenset[int]:
    safe = _ALWAYS_SAFE | _RESERVED_SAFE[part]
    if part in (Part.HOST, Part.ZONE):
        safe |= _HOST_SAFE
    if part is Part.FRAGMENT:
        safe |= _FRAGMENT_EXTRA
    return safe


_SAFE: Final = {part: _safe_bytes(part) for part in Part}
_ESCAPES: Final = {
    part: tuple(chr(byte) if byte in safe else f"%{byte:02X}" for byte in range(256))
    for part, safe in _SAFE.items()
}
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")
_USERINFO_CHARS: Final = _ALWAYS_SAFE | frozenset(b":!$&'()*+,;=%@")


def should_escape(byte: int, part: Part) -> bool:
    return byte not in _SAFE[part]


def escape(data: bytes, part: Part) -> str:
    table = _ESCAPES[part]
    return "".join(table[byte] for byte in data)


class URLError(ValueError):
    """Go's *url.Error for Parse: `parse "URL": reason`, with the URL left out."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"parse {_REDACTED}: {reason}")


class _PartError(ValueError):
    """An error inside one part of a URL (Go's EscapeError, InvalidHostError, errors.New...)."""


def _escape_error() -> _PartError:
    return _PartError(f"invalid URL escape {_REDACTED}")


def unescape(data: bytes, part: Part) -> bytes:
    """%XX sequences decoded; a bad escape, or a host byte that may not appear, is an error."""
    length = len(data)
    index = 0
    while index < length:
        byte = data[index]
        if byte == 0x25:  # %
            if index + 2 >= length or data[index + 1] not in _HEX or data[index + 2] not in _HEX:
                raise _escape_error()
            escaped = data[index : index + 3]
            value = int(escaped[1:], 16)
            # A host may %-escape only non-ASCII bytes, and %25 (RFC 6874's zone separator); a
            # zone only bytes a host may hold as they are, and a space (Windows zone names).
            if part is Part.HOST and value < 0x80 and escaped != b"%25":
                raise _escape_error()
            if part is Part.ZONE and escaped != b"%25" and value != 0x20 and should_escape(value, Part.HOST):
                raise _escape_error()
            index += 3
        else:
            if part in (Part.HOST, Part.ZONE) and byte < 0x80 and should_escape(byte, part):
                raise _PartError(f"invalid character {_REDACTED} in host name")
            index += 1
    if b"%" not in data:
        return data
    out = bytearray()
    index = 0
    while index < length:
        if data[index] == 0x25:
            out.append(int(data[index + 1 : index + 3], 16))
            index += 3
        else:
            out.append(data[index])
            index += 1
    return bytes(out)


@dataclass(frozen=True)
class Userinfo:
    username: bytes
    password: bytes | None = None  # None: no `:` at all, which is not the same as ""

    def string(self) -> str:
        text = escape(self.username, Part.USER_PASSWORD)
        if self.password is not None:
            text += ":" + escape(self.password, Part.USER_PASSWORD)
        return text


@dataclass(frozen=True)
class URL:
    """The fields of Go's url.URL that Parse sets and String reads. Parts Go keeps escaped
    (opaque, query) are text; unescaped parts (host, path, fragment) are bytes, as Go strings."""

    scheme: str = ""
    opaque: str = ""
    user: Userinfo | None = None
    host: bytes = b""
    path: bytes = b""
    raw_query: str = ""
    fragment: bytes = b""
    omit_host: bool = False
    force_query: bool = False

    def hostname(self) -> bytes:
        """The host without a valid `:port` and without IPv6 brackets (URL.Hostname)."""
        host = self.host
        colon = host.rfind(b":")
        if colon >= 0 and _valid_optional_port(host[colon:]):
            host = host[:colon]
        if host.startswith(b"[") and host.endswith(b"]"):
            host = host[1:-1]
        return host

    def escaped_path(self) -> str:
        # RawPath is never set here: Sprig's urlJoin builds URLs from unescaped parts.
        if self.path == b"*":
            return "*"  # not escaped (Go issue 11202)
        return escape(self.path, Part.PATH)

    def string(self) -> str:
        out: list[str] = []
        if self.scheme:
            out += [self.scheme, ":"]
        if self.opaque:
            out.append(self.opaque)
        else:
            if (self.scheme or self.host or self.user is not None) and not (
                self.omit_host and not self.host and self.user is None
            ):
                if self.host or self.path or self.user is not None:
                    out.append("//")
                if self.user is not None:
                    out += [self.user.string(), "@"]
                if self.host:
                    out.append(escape(self.host, Part.HOST))
            path = self.escaped_path()
            if path and not path.startswith("/") and self.host:
                out.append("/")
            # RFC 3986 §4.2: a relative path whose first segment has a colon would read as a scheme.
            if not out and ":" in path.partition("/")[0]:
                out.append("./")
            out.append(path)
        if self.force_query or self.raw_query:
            out += ["?", self.raw_query]
        if self.fragment:
            out += ["#", escape(self.fragment, Part.FRAGMENT)]
        return "".join(out)


def text(data: bytes) -> str:
    """A Go string as text: each byte that is not part of valid UTF-8 becomes U+FFFD, as Go's
    encoders and range loops read it."""
    decoded = data.decode("utf-8", "surrogateescape")
    return "".join("\ufffd" if "\udc80" <= char <= "\udcff" else char for char in decoded)


def parse(raw: str) -> URL:
    """url.Parse: a URL or a relative reference. Raises URLError with Go's reason."""
    data = raw.encode("utf-8", "surrogatepass")
    before, hash_mark, fragment = data.partition(b"#")
    try:
        url = _parse(before)
    except _PartError as exc:
        raise URLError(str(exc)) from None
    if not hash_mark or not fragment:
        return url
    try:
        return dataclasses.replace(url, fragment=unescape(fragment, Part.FRAGMENT))
    except _PartError as exc:
        raise URLError(str(exc)) from None


def _split_scheme(data: bytes) -> tuple[bytes, bytes]:
    """(scheme, rest): a scheme is a letter, then letters, digits, `+-.`, then `:`."""
    for index, byte in enumerate(data):
        if 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A:
            continue
        if 0x30 <= byte <= 0x39 or byte in b"+-.":
            if index == 0:
                return b"", data
            continue
        if byte == 0x3A:  # :
            if index == 0:
                raise _PartError("missing protocol scheme")
            return data[:index], data[index + 1 :]
        return b"", data
    return b"", data


def _parse(data: bytes) -> URL:
    if any(byte < 0x20 or byte == 0x7F for byte in data):
        raise _PartError("net/url: invalid control character in URL")
    if data == b"*":
        return URL(path=b"*")
    scheme_bytes, rest = _split_scheme(data)
    scheme = scheme_bytes.decode("ascii").lower()
    force_query = False
    raw_query = b""
    if rest.endswith(b"?") and rest.count(b"?") == 1:
        force_query, rest = True, rest[:-1]
    else:
        rest, _, raw_query = rest.partition(b"?")
    query = raw_query.decode("utf-8", "surrogatepass")
    if not rest.startswith(b"/"):
        if scheme:
            # A rootless path after a scheme is opaque (RFC 3986).
            return URL(
                scheme=scheme,
                opaque=rest.decode("utf-8", "surrogatepass"),
                raw_query=query,
                force_query=force_query,
            )
        if b":" in rest.partition(b"/")[0]:
            raise _PartError("first path segment in URL cannot contain colon")
    user: Userinfo | None = None
    host = b""
    omit_host = False
    if (scheme or not rest.startswith(b"///")) and rest.startswith(b"//"):
        authority, slash, path_rest = rest[2:].partition(b"/")
        rest = slash + path_rest
        user, host = _parse_authority(scheme, authority)
    elif scheme and rest.startswith(b"/"):
        omit_host = True
    return URL(
        scheme=scheme,
        user=user,
        host=host,
        path=unescape(rest, Part.PATH),
        raw_query=query,
        omit_host=omit_host,
        force_query=force_query,
    )


def _parse_authority(scheme: str, authority: bytes) -> tuple[Userinfo | None, bytes]:
    userinfo, at, host_port = authority.rpartition(b"@")
    host = _parse_host(scheme, host_port)
    if not at:
        return None, host
    # RFC 3986 §3.2.1 userinfo characters, plus `@` (Go accepts user:p@ss@host).
    if any(byte not in _USERINFO_CHARS for byte in userinfo):
        raise _PartError("net/url: invalid userinfo")
    if b":" not in userinfo:
        return Userinfo(unescape(userinfo, Part.USER_PASSWORD)), host
    username, _, password = userinfo.partition(b":")
    return (
        Userinfo(unescape(username, Part.USER_PASSWORD), unescape(password, Part.USER_PASSWORD)),
        host,
    )


def _valid_optional_port(port: bytes) -> bool:
    return not port or (port[:1] == b":" and all(0x30 <= byte <= 0x39 for byte in port[1:]))


def _parse_host(scheme: str, host: bytes) -> bytes:
    open_bracket = host.rfind(b"[")
    if open_bracket > 0:
        raise _PartError("invalid IP-literal")
    if open_bracket == 0:
        return _parse_ip_literal(host)
    first_colon = host.find(b":")
    if first_colon >= 0:
        # Go allows several colons (host lists of PostgreSQL/MongoDB URLs) except for http(s),
        # where only one may appear; the port starts at the colon that applies.
        colon = first_colon if scheme in ("http", "https") else host.rfind(b":")
        if not _valid_optional_port(host[colon:]):
            raise _PartError(f"invalid port {_REDACTED} after host")
    return unescape(host, Part.HOST)


def _parse_ip_literal(host: bytes) -> bytes:
    """`[IPv6]` or `[IPv6%25zone]`, with an optional `:port` (RFC 3986, RFC 6874)."""
    close_bracket = host.rfind(b"]")
    if close_bracket < 0:
        raise _PartError("missing ']' in host")
    port = host[close_bracket + 1 :]
    if not _valid_optional_port(port):
        raise _PartError(f"invalid port {_REDACTED} after host")
    port = unescape(port, Part.HOST)
    inside = host[1:close_bracket]
    zone_start = inside.find(b"%25")
    if zone_start >= 0:
        address = unescape(inside[:zone_start], Part.HOST) + unescape(inside[zone_start:], Part.ZONE)
    else:
        address = unescape(inside, Part.HOST)
    # Only an IPv6 address may stand in brackets; IPv4-mapped IPv6 is one.
    try:
        is_ipv4 = _parse_addr(address)
    except _AddrError as exc:
        raise _PartError(f"invalid host: {exc}") from None
    if is_ipv4:
        raise _PartError("invalid IP-literal")
    return b"[" + address + b"]" + port


class _AddrError(ValueError):
    """netip.ParseAddr's error: `ParseAddr("IN"): reason (at "REST")`, inputs left out."""

    def __init__(self, reason: str, *, rest: bytes = b"") -> None:
        super().__init__(f"ParseAddr({_REDACTED}): {reason}" + (f" (at {_REDACTED})" if rest else ""))


_HEX_VALUES: Final = {byte: int(chr(byte), 16) for byte in _HEX}


def _parse_addr(text: bytes) -> bool:
    """netip.ParseAddr's rules; True for an IPv4 address, False for IPv6, else _AddrError.

    The first `.`, `:` or `%` decides: dotted IPv4 (four decimal fields, no leading zeros), IPv6
    (hex groups of at most four digits, one `::`, an embedded IPv4 only as the last 32 bits, a
    non-empty zone after `%` that may hold anything), or a zone without an address."""
    for byte in text:
        if byte == 0x2E:  # .
            _parse_ipv4_fields(text)
            return True
        if byte == 0x3A:  # :
            _parse_ipv6(text)
            return False
        if byte == 0x25:  # %
            raise _AddrError("missing IPv6 address")
    raise _AddrError("unable to parse IP")


def _parse_ipv4_fields(text: bytes) -> None:
    value = position = digits = 0
    for index, byte in enumerate(text):
        if 0x30 <= byte <= 0x39:
            if digits == 1 and value == 0:
                raise _AddrError("IPv4 field has octet with leading zero")
            value = value * 10 + byte - 0x30
            digits += 1
            if value > 255:
                raise _AddrError("IPv4 field has value >255")
        elif byte == 0x2E:
            if index == 0 or index == len(text) - 1 or text[index - 1] == 0x2E:
                raise _AddrError("IPv4 field must have at least one digit", rest=text[index:])
            if position == 3:
                raise _AddrError("IPv4 address too long")
            position += 1
            value = digits = 0
        else:
            raise _AddrError("unexpected character", rest=text[index:])
    if position < 3:
        raise _AddrError("IPv4 address too short")


def _parse_ipv6(text: bytes) -> None:
    rest, percent, zone = text.partition(b"%")
    if percent and not zone:
        raise _AddrError("zone must be a non-empty string")
    ellipsis = -1  # the byte offset of `::` in the 16-byte address
    if rest.startswith(b"::"):
        ellipsis, rest = 0, rest[2:]
        if not rest:
            return
    filled = 0
    while filled < 16:
        digits = 0
        value = 0
        while digits < len(rest) and rest[digits] in _HEX_VALUES:
            value = value * 16 + _HEX_VALUES[rest[digits]]
            if digits > 3:
                raise _AddrError("each group must have 4 or less digits", rest=rest)
            digits += 1
        if digits == 0:
            raise _AddrError("each colon-separated field must have at least one digit", rest=rest)
        if digits < len(rest) and rest[digits] == 0x2E:  # an embedded IPv4 address
            if ellipsis < 0 and filled != 12:
                raise _AddrError(
                    "embedded IPv4 address must replace the final 2 fields of the address", rest=rest
                )
            if filled + 4 > 16:
                raise _AddrError(
                    "too many hex fields to fit an embedded IPv4 at the end of the address", rest=rest
                )
            _parse_ipv4_fields(rest)
            rest = b""
            filled += 4
            break
        filled += 2
        rest = rest[digits:]
        if not rest:
            break
        if rest[0] != 0x3A:
            raise _AddrError("unexpected character, want colon", rest=rest)
        if len(rest) == 1:
            raise _AddrError("colon must be followed by more characters", rest=rest)
        rest = rest[1:]
        if rest[0] == 0x3A:
            if ellipsis >= 0:
                raise _AddrError("multiple :: in address", rest=rest)
            ellipsis, rest = filled, rest[1:]
            if not rest:
                break
    if rest:
        raise _AddrError("trailing garbage after address", rest=rest)
    if filled < 16 and ellipsis < 0:
        raise _AddrError("address string too short")
    if filled == 16 and ellipsis >= 0:
        raise _AddrError("the :: must expand to at least one field of zeros")
