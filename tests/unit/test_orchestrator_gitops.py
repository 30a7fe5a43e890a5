"""GitOps delivery against local bare repositories (real git, dulwich): layout, no-op, retries, safety."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from strongroom.cli import main
from strongroom.orchestrator import gitops
from strongroom.orchestrator.emit import CRSet, files
from strongroom.orchestrator.gitops import GitError, GitTarget, publish, read_directory
from strongroom.orchestrator.render import render

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "app"


def example(env: str = "dev", score: Path | None = None) -> CRSet:
    return render(
        [score or EXAMPLE / "score" / "web.yaml"],
        [EXAMPLE / "definitions"],
        EXAMPLE / "values.yaml",
        app="shop",
        env=env,
    ).crset


def bare(tmp_path: Path, branch: str = "main") -> Path:
    path = tmp_path / "repo.git"
    subprocess.run(["git", "init", "-q", "--bare", f"--initial-branch={branch}", str(path)], check=True)
    return path


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def test_commits_the_set_under_app_env_and_nothing_else(tmp_path: Path) -> None:
    repo = bare(tmp_path)
    # Someone else's content in the repository stays as it is.
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(repo), str(work)], check=True, capture_output=True)
    (work / "README.md").write_text("platform gitops\n")
    (work / "shop").mkdir()
    (work / "shop" / "notes.txt").write_text("keep me\n")
    git(work, "add", ".")
    git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "seed")
    git(work, "push", "-q", "origin", "HEAD:main")

    target = GitTarget(url=str(repo))
    crset = example()
    first = publish(target, crset)
    assert first.commit is not None
    assert (first.branch, first.path, first.attempts) == ("main", "shop/dev", 1)
    listing = git(repo, "ls-tree", "-r", "--name-only", "main").split()
    expected = sorted(f"shop/dev/{name}" for name in files(crset.objects))
    assert sorted(listing) == sorted(["README.md", "shop/notes.txt", *expected])
    stored = read_directory(target, "shop", "dev")
    assert stored == {name: text.encode() for name, text in files(crset.objects).items()}
    assert git(repo, "log", "-1", "--format=%an <%ae>|%s", "main").strip() == (
        "strongroom <strongroom@localhost>|strongroom: deploy shop/dev"
    )

    # Same set again: nothing to commit.
    again = publish(target, crset)
    assert again.commit is None
    assert git(repo, "rev-parse", "main").strip() == first.commit

    # A resource removed from the Score file: its file is removed, the rest stays.
    score = tmp_path / "web.yaml"
    text = (EXAMPLE / "score" / "web.yaml").read_text()
    score.write_text(
        text.replace("      DB_HOST: ${resources.db.host}\n", "")
        .replace("      DB_PORT: ${resources.db.port}\n", "")
        .replace("      DB_NAME: ${resources.db.name}\n", "")
        .replace("      DB_USER: ${resources.db.username}\n", "")
        .replace("      DB_PASSWORD: ${resources.db.password}\n", "")
        .replace("          database: ${resources.db.name}\n", "")
        .replace("  db:\n    type: postgres\n", "")
    )
    smaller = example(score=score)
    publish(target, smaller)
    listing = git(repo, "ls-tree", "-r", "--name-only", "main").split()
    assert "shop/dev/resource-postgres-web-db.yaml" not in listing
    assert "shop/dev/workload-web.yaml" in listing
    assert "shop/notes.txt" in listing


def test_branch_is_created_in_an_empty_repository_and_can_be_chosen(tmp_path: Path) -> None:
    repo = bare(tmp_path, branch="trunk")
    outcome = publish(GitTarget(url=str(repo), branch="deploy"), example())
    assert outcome.branch == "deploy"
    assert git(repo, "rev-parse", "deploy").strip() == outcome.commit


def test_non_fast_forward_is_fetched_reapplied_and_pushed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = bare(tmp_path)
    target = GitTarget(url=str(repo))
    publish(target, example("dev"))
    original_fetch = gitops._fetch
    calls: list[int] = []

    def racing_fetch(*args: Any, **kwargs: Any) -> Any:
        result = original_fetch(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            # Another pipeline pushes between our fetch and our push.
            monkeypatch.setattr(gitops, "_fetch", original_fetch)
            publish(target, example("prod"))
            monkeypatch.setattr(gitops, "_fetch", racing_fetch)
        return result

    monkeypatch.setattr(gitops, "_fetch", racing_fetch)
    retries: list[int] = []
    outcome = publish(target, example("stage"), on_retry=retries.append, pause=0.01)
    assert outcome.attempts == 2
    assert retries == [1]
    listing = git(repo, "ls-tree", "-d", "--name-only", "main:shop").split()
    assert listing == ["dev", "prod", "stage"]
    # Linear history: our commit sits on top of the other pipeline's.
    log = git(repo, "log", "--format=%s", "main").splitlines()
    assert log[:3] == [
        "strongroom: deploy shop/stage",
        "strongroom: deploy shop/prod",
        "strongroom: deploy shop/dev",
    ]


def test_gives_up_after_the_attempts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = bare(tmp_path)
    target = GitTarget(url=str(repo))

    def always_moved(*args: Any, **kwargs: Any) -> None:
        raise gitops.PushRejected

    monkeypatch.setattr(gitops, "_push", always_moved)
    with pytest.raises(GitError, match="gave up after 3 attempts"):
        publish(target, example(), attempts=3, pause=0.001)


def test_url_credentials_are_never_shown() -> None:
    target = GitTarget(url="https://user:s3cret-token@git.example.com/org/repo.git", token="tok-123")
    assert target.display_url == "https://git.example.com/org/repo.git"
    assert "tok-123" not in gitops._redact("failed for tok-123 and tok-123", target)


def test_cli_gitops(tmp_path: Path) -> None:
    repo = bare(tmp_path)
    args = [
        "deploy",
        "--mode",
        "gitops",
        "--git-url",
        str(repo),
        "-f",
        str(EXAMPLE / "score" / "web.yaml"),
        "-d",
        str(EXAMPLE / "definitions"),
        "--values",
        str(EXAMPLE / "values.yaml"),
        "--app",
        "shop",
        "--env",
        "dev",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    sha = result.stdout.strip()
    assert git(repo, "rev-parse", "main").strip() == sha
    assert f"committed {sha[:12]} to {repo} main:shop/dev/" in result.stderr
    # Git holds no Driver (the platform's, in the operator namespace); the deploy says which are needed.
    files = git(repo, "ls-tree", "-r", "--name-only", "main").split()
    assert "shop/dev/resource-postgres-web-db.yaml" in files
    assert not [name for name in files if "driver" in name]
    assert (
        "note: the Resources use Driver(s) postgres: they must be installed in namespace strongroom-system "
        "allowing shop-dev (strongroom render --drivers prints them)"
    ) in result.stderr
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0
    assert "nothing to commit" in again.stderr
    missing = CliRunner().invoke(main, [a for a in args if a not in ("--git-url", str(repo))])
    assert missing.exit_code == 2
    assert "--mode gitops needs --git-url" in missing.output


def test_argocd_config_embeds_the_health_check_for_every_kind() -> None:
    import yaml

    from strongroom.api.kinds import ALL_KINDS

    gitops_dir = REPO / "examples" / "gitops" / "argocd"
    config = yaml.safe_load((gitops_dir / "argocd-cm.yaml").read_text())
    lua = (gitops_dir / "health.lua").read_text()
    expected = {f"resource.customizations.health.strongroom.dev_{kind.KIND}" for kind in ALL_KINDS}
    assert set(config["data"]) == expected
    assert all(script == lua for script in config["data"].values())
