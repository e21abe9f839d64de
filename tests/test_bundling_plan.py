"""The bundle planner on a real bare repository: merges in turn, conflicts left out, reuse."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from clambake_tui.bundling import git as bgit
from clambake_tui.bundling.bundler import PRKind, plan_merges
from clambake_tui.bundling.queue import BranchInfo, select_queue
from clambake_tui.model import Issue
from tests.fixtures.common import git

TRAIN = datetime(2026, 4, 7, 14, 20, tzinfo=UTC)
# Both ways of merging: in the object store (git >= 2.38) and in a scratch worktree.
both_ways = pytest.mark.parametrize("in_memory", [True, False], ids=["merge-tree", "worktree"])


def issue(number: int, title: str) -> Issue:
    return Issue(number=number, title=title, labels=("route:review",))


async def _queue(clone: Path, issues: list[Issue]):
    heads = await bgit.remote_heads(clone)
    await bgit.fetch_branches(clone, list(heads))
    infos = {}
    for name, sha in heads.items():
        if name.startswith("agent"):
            ref = f"refs/remotes/origin/{name}"
            ahead = await bgit.commits_ahead(clone, "refs/remotes/origin/main", ref)
            infos[name] = BranchInfo(sha, ahead)
    return select_queue("main", issues, infos, []), heads


def _clone(origin: Path, tmp_path: Path) -> Path:
    clone = tmp_path / "bundler-clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    return clone


@both_ways
async def test_two_clean_branches_bundle_and_the_conflicting_third_gets_its_own_pr(
    origin_repo: Path, agent_branch_pusher, tmp_path: Path, in_memory: bool
) -> None:
    agent_branch_pusher("agent001/12-login", {"shared.txt": "from agent one\n"})
    agent_branch_pusher("agent002/15-docs", {"docs.txt": "docs\n"})
    agent_branch_pusher("agent003/31-clash", {"shared.txt": "from agent three\n"})
    clone = _clone(origin_repo, tmp_path)
    queue, heads = await _queue(clone, [issue(31, "Clash"), issue(15, "Docs"), issue(12, "Login")])

    plan = await plan_merges(clone, queue, TRAIN, heads, in_memory=in_memory)

    assert [e.number for e in plan.merged] == [12, 15]
    assert [e.number for e in plan.conflicts] == [31]
    bundle, conflict = plan.prs
    assert bundle.kind is PRKind.BUNDLE
    assert bundle.head == "bundle/20260407_1420__issues_12_15"
    assert bundle.title == "[BUNDLE] 2 issues - 14:20 train"
    assert "Fixes #12" in bundle.body and "Fixes #15" in bundle.body
    assert "agent001" in bundle.body and "agent002" in bundle.body
    assert "Fixes #31" not in bundle.body
    assert bundle.push_sha is not None
    assert conflict.kind is PRKind.CONFLICT
    assert (conflict.head, conflict.title, conflict.labels) == (
        "agent003/31-clash",
        "[AUTO] Clash",
        ("merge-conflict",),
    )
    assert "Fixes #31" in conflict.body
    # The bundle commit holds both branches; nothing was pushed and no worktree is left behind.
    assert await bgit.is_ancestor(clone, heads["agent001/12-login"], bundle.push_sha)
    assert await bgit.is_ancestor(clone, heads["agent002/15-docs"], bundle.push_sha)
    assert set(await bgit.remote_heads(clone)) == set(heads)
    assert git(clone, "worktree", "list").count("\n") == 0


@both_ways
async def test_a_bundle_of_one_is_the_branch_own_pull_request(
    origin_repo: Path, agent_branch_pusher, tmp_path: Path, in_memory: bool
) -> None:
    agent_branch_pusher("agent001/12-login", {"a.txt": "a\n"})
    clone = _clone(origin_repo, tmp_path)
    queue, heads = await _queue(clone, [issue(12, "Login")])
    plan = await plan_merges(clone, queue, TRAIN, heads, in_memory=in_memory)
    (single,) = plan.prs
    assert (single.kind, single.head, single.title) == (
        PRKind.SINGLE,
        "agent001/12-login",
        "[AUTO] Login",
    )
    assert single.push_sha is None and single.labels == ()
    assert "Fixes #12" in single.body


async def test_a_bundle_branch_left_by_an_interrupted_run_is_reused(
    origin_repo: Path, agent_branch_pusher, tmp_path: Path
) -> None:
    agent_branch_pusher("agent001/12-login", {"a.txt": "a\n"})
    agent_branch_pusher("agent002/15-docs", {"b.txt": "b\n"})
    clone = _clone(origin_repo, tmp_path)
    queue, heads = await _queue(clone, [issue(12, "Login"), issue(15, "Docs")])
    first = await plan_merges(clone, queue, TRAIN, heads)
    await bgit.push(clone, first.prs[0].push_sha, first.prs[0].head)

    later = datetime(2026, 4, 7, 14, 30, tzinfo=UTC)
    heads = await bgit.remote_heads(clone)
    again = await plan_merges(clone, queue, later, heads)

    assert again.prs[0].head == "bundle/20260407_1420__issues_12_15"
    assert again.prs[0].push_sha is None


@both_ways
async def test_the_bundle_commit_merges_both_branches_with_both_parents(
    origin_repo: Path, agent_branch_pusher, tmp_path: Path, in_memory: bool
) -> None:
    agent_branch_pusher("agent001/12-login", {"login.txt": "login\n"})
    agent_branch_pusher("agent002/15-docs", {"docs.txt": "docs\n"})
    clone = _clone(origin_repo, tmp_path)
    queue, heads = await _queue(clone, [issue(12, "Login"), issue(15, "Docs")])
    plan = await plan_merges(clone, queue, TRAIN, heads, in_memory=in_memory)
    sha = plan.prs[0].push_sha
    assert git(clone, "ls-tree", "--name-only", sha).split() == [
        "README.md",
        "docs.txt",
        "login.txt",
    ]
    parents = git(clone, "rev-list", "--parents", "-n", "1", sha).split()[1:]
    assert parents[1] == heads["agent002/15-docs"]
    assert git(clone, "log", "-1", "--format=%s", sha) == (
        "Merge agent002/15-docs (#15) into the 14:20 train"
    )
