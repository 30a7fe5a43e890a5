"""List+watch of one kind in one namespace (or all of them), read as JSON straight off the transport.

This is how the operator learns of every object it serves: its own kinds, fed to the controllers, and the
objects it wrote, fed to the drift watch (`owned.py`). What it does, as client-go's reflector does:

- list the collection in pages (`limit`, `continue`), hand the whole list over, and note its
  `resourceVersion`;
- watch from there with bookmarks (`allowWatchBookmarks`: the API server moves the version on even when
  nothing of ours changes, so a re-watch after a quiet hour resumes, rather than failing with 410);
- when the API server ends a watch (`timeoutSeconds`; it does so cleanly), watch again from the last version
  seen; when it can no longer serve from there (410 Gone, as an answer or as an ERROR event: always after
  the API server restarted), list again;
- on any other failure (API server away, 403, CRD not installed yet) wait (1, 1, 2, 3, then 5 s between
  tries: a watch resumes within 5 s of the API server's return) and list again.

Why not kopf, which did this until issue 16: kopf hands each event through its per-object worker machinery
(queues, a settings-driven batch window, logger adapters, handler selection, kwargs for every handler) to
handlers that only pass the raw object on. Profiled during 1000 new SecretMappings that machinery was 30 %
of the operator's CPU: two events per synced object (its creation and its status write), on a 2-core
machine where the operator's CPU is taken from the API server. Here an event costs a `json.loads` and a
call.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from lightkube.core.exceptions import ApiError

from strongroom.net.kubejson import KubeJson

logger = logging.getLogger("strongroom.operator.listwatch")

T = TypeVar("T")

# Seconds the API server keeps a watch open before ending it cleanly (it then resumes from the last version):
# short enough to recover from connections silently dropped by load balancers (python-stack.md 10.2).
WATCH_SERVER_TIMEOUT = 600
# A little above the server's, so the server ends the watch, not the client.
WATCH_READ_TIMEOUT = WATCH_SERVER_TIMEOUT + 30
# Objects per list page: lists of thousands arrive in requests the API server answers quickly.
PAGE_SIZE = 500
# Seconds between tries after a failure; the last repeats.
BACKOFF = (1.0, 1.0, 2.0, 3.0, 5.0)

# Listed objects handed over between two turns of the event loop (`each_in_turns`).
LIST_TURN = 250

OnList = Callable[[Sequence[dict[str, Any]]], Awaitable[None]]
OnEvent = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Collection:
    """What to watch: a kind (`api_version`, `plural`, `kind`) in `namespace` ("" for every namespace),
    optionally only the objects a label selector picks."""

    api_version: str
    plural: str
    kind: str
    namespace: str = ""
    label_selector: str | None = None

    @property
    def path(self) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if not self.namespace:
            return f"{prefix}/{self.plural}"
        return f"{prefix}/namespaces/{urllib.parse.quote(self.namespace, safe='')}/{self.plural}"

    def describe(self) -> str:
        return f"{self.kind} objects in {self.namespace or 'all namespaces'}"


class Gone(Exception):
    """The API server can no longer serve the watch from the version asked for: list again."""


class ListWatch:
    """Keeps `on_list` and `on_event` current with `collection`: `await on_list(objects)` after every complete
    list (at start and after a 410), `on_event(type, object)` for every ADDED, MODIFIED and DELETED event
    since. Both are called on the event loop, in order, one at a time, and must not block: `on_list` goes
    through a long list with `each_in_turns`, so other tasks run meanwhile; this watch's events wait."""

    def __init__(
        self,
        client: KubeJson,
        collection: Collection,
        on_list: OnList,
        on_event: OnEvent,
        *,
        backoff: Sequence[float] = BACKOFF,
    ) -> None:
        self.client = client
        self.collection = collection
        self.on_list = on_list
        self.on_event = on_event
        self.backoff = tuple(backoff)
        self.listed = asyncio.Event()  # set once the first list has been handed over
        self.tried = asyncio.Event()  # set once the first list has been handed over or has failed
        self.lists = 0  # complete lists handed over (tests read it)

    async def run(self) -> None:
        """List and watch until cancelled."""
        failures = 0
        while True:
            try:
                version = await self._list()
                failures = 0
                await self._watch(version)
            except asyncio.CancelledError:
                raise
            except Gone:
                logger.debug("watch of %s: version too old, listing again", self.collection.describe())
            except Exception as exc:
                self.tried.set()
                delay = self.backoff[min(failures, len(self.backoff) - 1)]
                failures += 1
                # Said at once, then about once a minute while it lasts (a CRD not installed yet, no RBAC).
                log = logger.warning if failures == 1 or failures % 12 == 0 else logger.debug
                log(
                    "watch of %s failed (%s: %s); listing again in %.0fs (try %d)",
                    self.collection.describe(),
                    type(exc).__name__,
                    _one_line(exc),
                    delay,
                    failures,
                )
                await asyncio.sleep(delay)

    async def _list(self) -> str:
        objects: list[dict[str, Any]] = []
        params: dict[str, str] = {"limit": str(PAGE_SIZE)}
        if self.collection.label_selector:
            params["labelSelector"] = self.collection.label_selector
        while True:
            page = await self.client.request("GET", self.collection.path, params=params)
            for item in page.get("items") or ():
                # A list's items carry no apiVersion/kind; a watch event's object does.
                item.setdefault("apiVersion", self.collection.api_version)
                item.setdefault("kind", self.collection.kind)
                objects.append(item)
            meta = page.get("metadata") or {}
            if not meta.get("continue"):
                break
            params["continue"] = meta["continue"]
        await self.on_list(objects)
        self.lists += 1
        self.listed.set()
        self.tried.set()
        return str(meta.get("resourceVersion") or "")

    async def _watch(self, version: str) -> None:
        """Watch from `version`, again and again as the API server ends each watch; raises Gone on a 410."""
        while True:
            params = {
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(WATCH_SERVER_TIMEOUT),
                **({"resourceVersion": version} if version else {}),
                **(
                    {"labelSelector": self.collection.label_selector}
                    if self.collection.label_selector
                    else {}
                ),
            }
            try:
                async for event in self.client.watch(self.collection.path, params, WATCH_READ_TIMEOUT):
                    kind = event.get("type")
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            raise Gone()
                        raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('reason') or ''}")
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        self.on_event(kind, obj)
            except ApiError as exc:
                if exc.status.code == 410:
                    raise Gone() from exc
                raise


async def each_in_turns(objects: Iterable[T], action: Callable[[T], None], turn: int = LIST_TURN) -> None:
    """`action(obj)` for each object, letting the event loop run other tasks after every `turn` of them.

    One tenant's namespace of 10,000 objects took ~0.2 s to hand over in one go: every other namespace's
    reconciles, watch events and health answers waited that long at each re-list."""
    for index, obj in enumerate(objects, 1):
        action(obj)
        if index % turn == 0:
            await asyncio.sleep(0)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
