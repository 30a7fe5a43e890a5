"""The process-wide write fence: whether this process may change anything outside itself right now.

With leader election on, only the replica that holds the Lease may write: Kubernetes objects, store
entries, driver calls. Every such effect of the operator leaves through one of two doors, and both ask
here just before it goes:

* the one HTTP stack (`AiohttpTransport`): every request whose method is not a read (GET, HEAD,
  OPTIONS, LIST) — Kubernetes writes on the operator's lightkube client, remote driver calls, Vault
  writes — is checked once the connection is ready, immediately before its bytes are sent;
* the store guard (`stores/guard.py`): `write` and `delete` of every store client (AWS, GCP and Azure
  talk through their own SDKs, not through this stack).

A process that never installs a check (the CLI, tests, the operator without leader election) is never
fenced. The check is a plain function call on the event loop (a monotonic-clock comparison), so it costs
nothing next to the request it guards.
"""

from __future__ import annotations

from collections.abc import Callable

#: Methods that never change anything on the server (Vault's LIST included).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "LIST"})


class WriteFenced(Exception):
    """This process may not write now (it does not hold, or can no longer prove it holds, the lease)."""


# None: no fence installed, every write is allowed. Else a function returning None when writes are
# allowed now, or the reason they are not.
_check: Callable[[], str | None] | None = None


def install_fence(check: Callable[[], str | None]) -> None:
    """Make every write of this process ask `check` first (None: allowed, else the reason it is not)."""
    global _check
    _check = check


def remove_fence() -> None:
    global _check
    _check = None


def ensure_may_write(what: str) -> None:
    """Raise WriteFenced when the installed check refuses writes now (`what`: the write, for the message)."""
    check = _check
    if check is None:
        return
    reason = check()
    if reason is not None:
        raise WriteFenced(f"not writing ({what}): {reason}")


def is_write(method: str) -> bool:
    return method.upper() not in READ_METHODS
