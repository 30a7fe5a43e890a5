"""GitOps mode: commit the CR set under `<app>/<env>/` of a Git repository and push it.

Git work uses dulwich (no `git` binary needed) against an https URL (username + token), an ssh URL
(key file) or a local path. The commit is built directly as Git objects on top of the branch's current
head: the tree is the head's tree with the directory `<app>/<env>/` replaced by one file per object, so
the orchestrator owns that directory and nothing else in the repository changes.

Concurrent writers (two pipelines deploying two environments into one repository) are handled like
`git pull --rebase && git push`, minus the conflicts: when the push is refused because the branch moved
(non-fast-forward), the orchestrator fetches the new head, re-applies its directory on top of it and
pushes again, a bounded number of times with a growing pause.

Nothing written to Git holds a secret value: the CR set carries only references, by construction (the
orchestrator never reads a secret in this mode). The token is never printed: errors name the URL
without credentials.
"""

from __future__ import annotations

import random
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dulwich.client import GitClient, HTTPUnauthorized, get_transport_and_path
from dulwich.errors import GitProtocolError, HangupException
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from strongroom.orchestrator.emit import CRSet, files

DEFAULT_AUTHOR = "strongroom <strongroom@localhost>"
DEFAULT_BRANCH = "main"
FILE_MODE = 0o100644
DIR_MODE = 0o040000


class GitError(ValueError):
    """The repository cannot be read or written; the message never holds the token."""


#: What receive-pack answers when the branch moved between the ref advertisement and the update (another
#: push won the compare-and-swap): worth fetching and trying again.
_RACE_MESSAGES = (
    "non-fast-forward",
    "fetch first",
    "failed to lock",
    "cannot lock ref",
    "failed to update ref",
    "incorrect old value",
    "stale info",
    "already exists",
)


class PushRejected(Exception):
    """The branch moved since it was read (non-fast-forward): fetch, re-apply and push again."""


@dataclass(frozen=True)
class GitTarget:
    url: str
    branch: str | None = None
    username: str | None = None
    token: str | None = None
    ssh_key: str | None = None
    author: str = DEFAULT_AUTHOR

    @property
    def display_url(self) -> str:
        """The URL without any userinfo (a token may hide there)."""
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme and "@" in parts.netloc:
            netloc = parts.netloc.rsplit("@", 1)[1]
            return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return self.url


@dataclass(frozen=True)
class GitOutcome:
    commit: str | None
    """The new commit, or None when the directory already held exactly this CR set."""
    branch: str
    path: str
    attempts: int


def _redact(text: str, target: GitTarget) -> str:
    for secret in (target.token,):
        if secret:
            text = text.replace(secret, "<redacted>")
            text = text.replace(urllib.parse.quote(secret, safe=""), "<redacted>")
    return text


def _client(target: GitTarget) -> tuple[GitClient, str]:
    kwargs: dict[str, Any] = {}
    if target.url.startswith(("http://", "https://")):
        # The token is the password of HTTP Basic auth; hosts ignore the user name or want a fixed one.
        kwargs = {"username": target.username or "git", "password": target.token}
    elif target.ssh_key:
        kwargs = {"key_filename": target.ssh_key}
    return get_transport_and_path(target.url, **kwargs)


def _branch_ref(branch: str) -> Ref:
    return Ref(f"refs/heads/{branch}".encode())


def _default_branch(symrefs: Mapping[Ref, Ref]) -> str:
    head = symrefs.get(Ref(b"HEAD"))
    if head and head.startswith(b"refs/heads/"):
        return head[len(b"refs/heads/") :].decode()
    return DEFAULT_BRANCH


def _fetch(client: GitClient, path: str, repo: Repo, branch: str | None) -> tuple[str, ObjectID | None]:
    """Fetch the branch into `repo`; (branch name, its head or None when the branch does not exist)."""
    result = client.fetch(path, repo)
    refs = {ref: sha for ref, sha in (result.refs or {}).items() if sha is not None}
    name = branch or _default_branch(result.symrefs or {})
    return name, refs.get(_branch_ref(name))


def _put(repo: Repo, tree_id: ObjectID | None, parts: list[str], subtree: ObjectID | None) -> ObjectID | None:
    """`tree_id` with the entry at `parts` replaced by `subtree` (None removes it); empty trees vanish."""
    store = repo.object_store
    tree = Tree()
    if tree_id is not None:
        existing = store[tree_id]
        assert isinstance(existing, Tree)
        for entry in existing.items():
            tree.add(entry.path, entry.mode, entry.sha)
    name = parts[0].encode()
    if len(parts) == 1:
        new = subtree
    else:
        child: ObjectID | None = None
        if name in tree:
            mode, sha = tree[name]
            child = sha if mode == DIR_MODE else None
        new = _put(repo, child, parts[1:], subtree)
    if name in tree:
        del tree[name]
    if new is not None:
        tree.add(name, DIR_MODE, new)
    if not tree.items():
        return None
    store.add_object(tree)
    return tree.id


def _directory(repo: Repo, contents: Mapping[str, str]) -> ObjectID:
    tree = Tree()
    for name, text in sorted(contents.items()):
        blob = Blob.from_string(text.encode())
        repo.object_store.add_object(blob)
        tree.add(name.encode(), FILE_MODE, blob.id)
    repo.object_store.add_object(tree)
    return tree.id


def _commit(repo: Repo, tree: ObjectID, parent: ObjectID | None, author: str, message: str) -> ObjectID:
    commit = Commit()
    commit.tree = tree
    commit.parents = [parent] if parent else []
    commit.author = commit.committer = author.encode()
    now = int(time.time())
    commit.author_time = commit.commit_time = now
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = message.encode()
    repo.object_store.add_object(commit)
    return commit.id


def _push(client: GitClient, path: str, repo: Repo, ref: Ref, old: ObjectID | None, new: ObjectID) -> None:
    def update_refs(refs: dict[Ref, ObjectID]) -> dict[Ref, ObjectID]:
        current = refs.get(ref)
        # The server applies an update only if the ref still has the old value it advertised; checking it
        # against what was fetched makes this a fast-forward of exactly the commit the set was built on.
        if current != old and not (old is None and current in (None, b"0" * 40)):
            raise PushRejected
        return {**refs, ref: new}

    try:
        # dulwich's own annotations of send_pack disagree with its implementations (str paths, the
        # signature of generate_pack_data); both are what its porcelain passes.
        result = client.send_pack(
            path,  # type: ignore[arg-type]
            update_refs,
            generate_pack_data=repo.generate_pack_data,  # type: ignore[arg-type]
        )
    except PushRejected:
        raise
    status = getattr(result, "ref_status", None) or {}
    error = status.get(ref)
    if error:
        text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        if any(word in text for word in _RACE_MESSAGES):
            raise PushRejected
        raise GitError(f"the server refused the update of {ref.decode()}: {text}")


def publish(
    target: GitTarget,
    crset: CRSet,
    *,
    attempts: int = 5,
    on_retry: Callable[[int], None] | None = None,
    pause: float = 0.5,
) -> GitOutcome:
    """Commit the CR set under `<app>/<env>/` and push it; retries when the branch moved meanwhile."""
    directory = [crset.app, crset.env]
    contents = files(crset.objects)
    message = (
        f"strongroom: deploy {crset.app}/{crset.env}\n\n"
        f"{len(crset.objects)} objects for namespace {crset.namespace}.\n"
    )
    try:
        client, path = _client(target)
    except (ValueError, KeyError) as exc:
        raise GitError(f"{target.display_url}: {_redact(str(exc), target)}") from None
    with tempfile.TemporaryDirectory(prefix="strongroom-git-") as tmp:
        repo = Repo.init_bare(tmp, mkdir=False)
        try:
            for attempt in range(1, attempts + 1):
                branch, head = _fetch(client, path, repo, target.branch)
                base_tree: ObjectID | None = None
                if head is not None:
                    head_commit = repo.object_store[head]
                    assert isinstance(head_commit, Commit)
                    base_tree = head_commit.tree
                subtree = _directory(repo, contents)
                new_tree = _put(repo, base_tree, directory, subtree) or _directory(repo, {})
                if new_tree == base_tree:
                    return GitOutcome(None, branch, "/".join(directory), attempt)
                commit = _commit(repo, new_tree, head, target.author, message)
                try:
                    _push(client, path, repo, _branch_ref(branch), head, commit)
                except PushRejected:
                    if attempt == attempts:
                        break
                    if on_retry is not None:
                        on_retry(attempt)
                    time.sleep(pause * attempt * random.uniform(0.5, 1.5))
                    continue
                return GitOutcome(commit.decode(), branch, "/".join(directory), attempt)
        except HTTPUnauthorized:
            raise GitError(f"{target.display_url}: authentication failed (check the token)") from None
        except (GitProtocolError, HangupException, OSError) as exc:
            raise GitError(f"{target.display_url}: {_redact(str(exc), target)}") from None
    raise GitError(
        f"{target.display_url}: the branch kept moving; gave up after {attempts} attempts to push on top"
    )


def read_directory(target: GitTarget, app: str, env: str) -> dict[str, bytes]:
    """The files under `<app>/<env>/` on the branch (tests and `--dry-run` style checks)."""
    client, path = _client(target)
    with tempfile.TemporaryDirectory(prefix="strongroom-git-") as tmp:
        repo = Repo.init_bare(tmp, mkdir=False)
        _, head = _fetch(client, path, repo, target.branch)
        if head is None:
            return {}
        commit = repo.object_store[head]
        assert isinstance(commit, Commit)
        tree = repo.object_store[commit.tree]
        for part in (app, env):
            assert isinstance(tree, Tree)
            if part.encode() not in tree:
                return {}
            tree = repo.object_store[tree[part.encode()][1]]
        assert isinstance(tree, Tree)
        found: dict[str, bytes] = {}
        for entry in tree.items():
            blob = repo.object_store[entry.sha]
            if isinstance(blob, Blob):
                found[entry.path.decode()] = blob.data
        return found


__all__ = ["GitError", "GitOutcome", "GitTarget", "publish", "read_directory"]
