"""What a driver author's handlers receive, return and raise: the vocabulary of the driver SDK.

`DriverApp` (drivers/sdk/app.py) turns an HTTP request into a `PutRequest` or `ResourceRequest`, calls the
author's handler, and turns what it returns into the answer: a `DriverResponse` (200 with OutputData), an
`InProgress` (202, or 409 with `conflict`), None (404 for GET, 204 for DELETE), or a raised `DriverFailure`
(400 `{error, message}`). These types hold no HTTP and no verification; their reprs never show secrets
or cookies, since authors log requests more often than they think.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

#: Error codes the app uses in 400/500 bodies (the Driver API reserves RES-1xx for drivers).
INVALID_REQUEST: Final = "RES-100"
DRIVER_FAILURE: Final = "RES-101"
INTERNAL_ERROR: Final = "RES-199"


@dataclass(frozen=True)
class ResourceRequest:
    """A GET or DELETE: which resource, the cookie set last time, and the verified token claims."""

    guresid: str
    cookie: bytes | None = None
    """The cookie this driver set last time for `guresid` (decoded from base64), None if none."""
    claims: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        # The cookie may hold credentials (the postgres example keeps a password in it).
        cookie = "None" if self.cookie is None else f"<{len(self.cookie)} bytes>"
        return f"{type(self).__name__}(guresid={self.guresid!r}, cookie={cookie})"


@dataclass(frozen=True)
class PutRequest(ResourceRequest):
    """A PUT: create or update the resource `guresid` to match these inputs."""

    type: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    """Resource inputs."""
    values: dict[str, Any] = field(default_factory=dict)
    """`driver.values`."""
    secrets: dict[str, Any] = field(default_factory=dict)
    """`driver.secrets`, in plain text."""

    def __repr__(self) -> str:
        # The dataclass repr would print the secrets; authors log requests more often than they think.
        return f"PutRequest(guresid={self.guresid!r}, type={self.type!r}, secrets=<{len(self.secrets)} keys>)"


@dataclass
class DriverResponse:
    """The state of a resource: 200 with OutputData."""

    values: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    """Secret outputs (strings, nested objects, or `SecretValue`s)."""
    manifests: list[dict[str, Any]] = field(default_factory=list)
    """`{location, data}` objects; location one of namespace, cluster, containers, volumes."""
    type: str | None = None
    """Resource type; defaults to the request's for PUT, required for GET (which has no body)."""
    cookie: bytes | str | None = None
    """New cookie (sent base64-encoded); None leaves the caller's cookie as it is."""
    clear_cookie: bool = False
    """Tell the caller to forget its cookie."""

    def __repr__(self) -> str:
        return (
            f"DriverResponse(type={self.type!r}, values={self.values!r}, secrets=<{len(self.secrets)} keys>)"
        )


@dataclass(frozen=True)
class InProgress:
    """The operation is still running: 202 (or 409 with `conflict`); the caller repeats the same request."""

    status: Literal["creating", "updating", "deleting"] | None = None
    conflict: bool = False
    """409: an operation that cannot be interrupted is running and this request would change it."""
    retry_after: float | None = None
    """Seconds the caller should wait before asking again (`Retry-After`)."""
    estimated_completion_time: str | None = None
    """ISO-8601 hint."""
    cookie: bytes | str | None = None
    """New cookie, e.g. the id of the long operation, so the next poll can find it."""


def in_progress(
    status: Literal["creating", "updating", "deleting"] | None = None,
    *,
    retry_after: float | None = None,
    conflict: bool = False,
    cookie: bytes | str | None = None,
) -> InProgress:
    """ "Still working, ask again": what a handler returns while a long operation runs."""
    return InProgress(status=status, conflict=conflict, retry_after=retry_after, cookie=cookie)


class DriverFailure(Exception):
    """Raise in a handler to answer 400 `{error, message}`: the request cannot succeed as it is."""

    def __init__(self, message: str, code: str = DRIVER_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


PutHandler = Callable[[PutRequest], Awaitable[DriverResponse | InProgress]]
GetHandler = Callable[[ResourceRequest], Awaitable[DriverResponse | InProgress | None]]
DeleteHandler = Callable[[ResourceRequest], Awaitable[InProgress | None]]


__all__ = [
    "DRIVER_FAILURE",
    "INTERNAL_ERROR",
    "INVALID_REQUEST",
    "DeleteHandler",
    "DriverFailure",
    "DriverResponse",
    "GetHandler",
    "InProgress",
    "PutHandler",
    "PutRequest",
    "ResourceRequest",
    "in_progress",
]
