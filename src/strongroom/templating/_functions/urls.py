"""Sprig's urlParse and urlJoin over _gourl, Go's net/url."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from strongroom.templating import _gourl
from strongroom.templating._functions.reflection import go_kind
from strongroom.templating._limits import GoFunctionError
from strongroom.templating._values import is_nil

_URL_KEYS: Final = ("scheme", "host", "path", "query", "opaque", "fragment", "userinfo")


def _url_part(parts: Mapping[str, object], key: str) -> str:
    """Sprig's dictGetOrEmpty: a missing key is "", a present one must be a string."""
    if key not in parts:
        return ""
    value = parts[key]
    if is_nil(value):
        # reflect.TypeOf(nil).Kind() dereferences a nil Type; text/template reports the panic.
        raise GoFunctionError("runtime error: invalid memory address or nil pointer dereference")
    if not isinstance(value, str):
        raise GoFunctionError(
            f"unable to parse {key} key, must be of type string, but {go_kind(value)} found"
        )
    return value


def url_join(parts: Mapping[str, object]) -> str:
    """Sprig's urlJoin: a Go url.URL from the dict's parts, printed by URL.String.

    The userinfo goes through url.Parse("proto://USERINFO@host") first, as in Sprig, so it is
    taken apart (and may fail, or vanish when a `/`, `?` or `#` ends the authority early) the way
    Go parses it, then escaped again."""
    scheme, host, path, query, opaque, fragment, userinfo = (_url_part(parts, key) for key in _URL_KEYS)
    user = None
    if userinfo:
        try:
            user = _gourl.parse(f"proto://{userinfo}@host").user
        except _gourl.URLError as exc:
            raise GoFunctionError(f"unable to parse userinfo in dict: {exc}") from None
    url = _gourl.URL(
        scheme=scheme,
        opaque=opaque,
        user=user,
        host=host.encode(),
        path=path.encode(),
        raw_query=query,
        fragment=fragment.encode(),
    )
    return url.string()


def url_parse(raw: str) -> dict[str, object]:
    """Sprig's urlParse: url.Parse, then the parts as strings (the userinfo escaped again)."""
    try:
        url = _gourl.parse(raw)
    except _gourl.URLError as exc:
        raise GoFunctionError(f"unable to parse url: {exc}") from None
    return {
        "scheme": url.scheme,
        "host": _gourl.text(url.host),
        "hostname": _gourl.text(url.hostname()),
        "path": _gourl.text(url.path),
        "query": url.raw_query,
        "opaque": url.opaque,
        "fragment": _gourl.text(url.fragment),
        "userinfo": url.user.string() if url.user is not None else "",
    }
