"""One worktree and branch per agent: naming, cutting from the fresh default branch, reuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from clambake_tui.agents.worktree import (
    branch_name,
    find_issue_branch,
    prepare_worktree,
    remove_worktree,
    slugify,
    worktree_is_disposable,
)
from clambake_tui.errors import AgentError
from clambake_tui.state import Paths
from tests.fixtures.common import git


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Fix the login page!", "fix-the-login-page"),
        ("Crème brûlée: ÜBER naïve café", "creme-brulee-uber-naive-cafe"),
        ("Make the dashboard refresh faster when many agents run", "make-the-dashboard-refresh"),
        ("a" * 45, "a" * 30),
        ("!!!", ""),
        ("日本語のタイトル", ""),
    ],
)
def test_slugs_are_lowercase_ascii_cut_at_a_word_boundary_near_30(title: str, slug: str) -> None:
    assert slugify(title) == slug
    assert len(slugify(title)) <= 30


def test_branch_names_follow_agent_issue_slug() -> None:
    assert branch_name("agent007", 12, "Fix login") == "agent007/12-fix-login"
    assert branch_name("agent007", 12, "???") == "agent007/12"


def test_a_new_worktree_is_cut_from_the_freshly_fetched_default_branch(
    agent_paths: Paths, origin_repo: Path, tmp_path: Path
) -> None:
    # Someone pushes to main after our clone was made: the agent must start from that commit.
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin_repo), str(other))
    (other / "new.txt").write_text("new\n")
    git(other, "add", "new.txt")
    git(other, "commit", "-q", "-m", "newer main")
    git(other, "push", "-q", "origin", "main")
    tree = prepare_worktree(
        agent_paths, agent_id="agent001", issue_number=5, title="Do it", default_branch=None
    )
    assert tree.path == agent_paths.worktrees / "agent001-5"
    assert tree.branch == "agent001/5-do-it"
    assert tree.base == "main"
    assert not tree.reused
    assert (tree.path / "new.txt").exists()
    assert git(tree.path, "rev-parse", "--abbrev-ref", "HEAD") == "agent001/5-do-it"


def test_an_existing_local_branch_for_the_issue_is_reused_with_its_commits(
    agent_paths: Paths,
) -> None:
    first = prepare_worktree(
        agent_paths, agent_id="agent001", issue_number=5, title="Do it", default_branch=None
    )
    (first.path / "work.txt").write_text("work\n")
    git(first.path, "add", "work.txt")
    git(first.path, "commit", "-q", "-m", "work in progress")
    head = git(first.path, "rev-parse", "HEAD")
    again = prepare_worktree(
        agent_paths, agent_id="agent002", issue_number=5, title="Other title", default_branch=None
    )
    assert again.reused
    assert again.branch == "agent001/5-do-it"
    assert again.path == first.path
    assert git(again.path, "rev-parse", "HEAD") == head


def test_a_branch_only_on_origin_is_checked_out_not_clobbered(
    agent_paths: Paths, origin_repo: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin_repo), str(other))
    git(other, "checkout", "-q", "-b", "agent003/9-from-elsewhere")
    (other / "done.txt").write_text("done\n")
    git(other, "add", "done.txt")
    git(other, "commit", "-q", "-m", "pushed work")
    git(other, "push", "-q", "origin", "agent003/9-from-elsewhere")
    tree = prepare_worktree(
        agent_paths, agent_id="agent001", issue_number=9, title="Nine", default_branch=None
    )
    assert tree.reused
    assert tree.branch == "agent003/9-from-elsewhere"
    assert (tree.path / "done.txt").exists()


def test_branches_of_other_issues_are_not_mistaken_for_this_one(agent_paths: Paths) -> None:
    root = agent_paths.root
    git(root, "branch", "agent001/12-twelve")
    git(root, "branch", "agent001/123-other")
    git(root, "branch", "feature/1-x")
    assert find_issue_branch(root, 1) is None
    assert find_issue_branch(root, 12) == ("agent001/12-twelve", True)


def test_an_unknown_base_branch_is_a_clear_error(agent_paths: Paths) -> None:
    with pytest.raises(
        AgentError, match="base branch 'trunk' exists neither locally nor on origin"
    ):
        prepare_worktree(
            agent_paths, agent_id="agent001", issue_number=1, title="x", default_branch="trunk"
        )


def test_only_a_worktree_without_commits_or_changes_is_disposable(agent_paths: Paths) -> None:
    tree = prepare_worktree(
        agent_paths, agent_id="agent001", issue_number=3, title="x", default_branch=None
    )
    assert worktree_is_disposable(tree.path, "main")
    (tree.path / "draft.txt").write_text("draft\n")
    assert not worktree_is_disposable(tree.path, "main")
    git(tree.path, "add", "draft.txt")
    git(tree.path, "commit", "-q", "-m", "draft")
    assert not worktree_is_disposable(tree.path, "main")
    fresh = prepare_worktree(
        agent_paths, agent_id="agent002", issue_number=4, title="y", default_branch=None
    )
    assert not remove_worktree(agent_paths, tree.path, tree.branch, base="main")
    assert remove_worktree(agent_paths, fresh.path, fresh.branch, base="main")
    assert not fresh.path.exists()
    assert find_issue_branch(agent_paths.root, 4) is None


def test_a_worktree_folder_deleted_by_hand_is_recreated_on_its_branch(agent_paths: Paths) -> None:
    import shutil

    first = prepare_worktree(
        agent_paths, agent_id="agent001", issue_number=6, title="Six", default_branch=None
    )
    (first.path / "kept.txt").write_text("kept\n")
    git(first.path, "add", "kept.txt")
    git(first.path, "commit", "-q", "-m", "kept work")
    shutil.rmtree(first.path)
    again = prepare_worktree(
        agent_paths, agent_id="agent001", issue_number=6, title="Six", default_branch=None
    )
    assert again.reused
    assert again.path.is_dir()
    assert (again.path / "kept.txt").read_text() == "kept\n"
