"""Git for bundling: pushing with the job's token on Actions, one-line errors, scratch cleanup."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from clambake_tui.bundling import git as bgit
from clambake_tui.redact import redact
from tests.fixtures.common import git

TOKEN = "ghs_" + "a" * 36


def test_on_actions_git_gets_the_token_through_its_environment_only() -> None:
    env = bgit.actions_auth_env(
        {"GITHUB_ACTIONS": "true", "GH_TOKEN": TOKEN, "GITHUB_SERVER_URL": "https://github.com"}
    )
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.com/.extraheader"
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert env["GIT_CONFIG_VALUE_0"] == f"AUTHORIZATION: basic {basic}"
    assert basic not in redact(f"value {basic}")


@pytest.mark.parametrize(
    "environ",
    [
        {"GH_TOKEN": TOKEN},
        {"GITHUB_ACTIONS": "true"},
        {"GITHUB_ACTIONS": "true", "GH_TOKEN": TOKEN, "GITHUB_SERVER_URL": "http://127.0.0.1:1"},
    ],
)
def test_elsewhere_git_keeps_its_own_credentials(environ: dict[str, str]) -> None:
    assert bgit.actions_auth_env(environ) == {}


async def test_a_failing_git_command_is_one_line_naming_the_command(git_repo: Path) -> None:
    with pytest.raises(bgit.GitError) as caught:
        await bgit.run_git(git_repo, "rev-parse", "--verify", "no-such-ref")
    assert str(caught.value).startswith("git rev-parse failed in ")
    assert "\n" not in str(caught.value)


async def test_the_scratch_worktree_is_removed_even_when_the_work_fails(git_repo: Path) -> None:
    with pytest.raises(RuntimeError):
        async with bgit.scratch_worktree(git_repo, "HEAD") as folder:
            assert (folder / "README.md").exists()
            raise RuntimeError("boom")
    assert not folder.exists()
    assert git(git_repo, "worktree", "list").count("\n") == 0


async def test_push_says_whether_anything_changed(git_repo: Path) -> None:
    (git_repo / "x.txt").write_text("x\n")
    git(git_repo, "add", "x.txt")
    git(git_repo, "commit", "-q", "-m", "x")
    sha = git(git_repo, "rev-parse", "HEAD")
    assert await bgit.push(git_repo, sha, "agent001/1-x") is True
    assert await bgit.push(git_repo, sha, "agent001/1-x") is False
