"""Queue selection: route:review issues with pushed work that no open PR covers, in train order."""

from __future__ import annotations

from pathlib import Path

from clambake_tui.bundling import git as bgit
from clambake_tui.bundling.queue import BranchInfo, SkipReason, covered_issues, select_queue
from clambake_tui.model import Issue, PullRequest

REVIEW = "route:review"


def issue(number: int, *labels: str, state: str = "open") -> Issue:
    return Issue(number=number, title=f"issue {number}", labels=(REVIEW, *labels), state=state)


def work(ahead: int = 1, at: int = 0) -> BranchInfo:
    return BranchInfo(sha=f"{ahead:040d}", ahead=ahead, committed_at=at)


def test_descriptive_and_bare_agent_branch_names_are_both_queued() -> None:
    queue = select_queue(
        "main",
        [issue(12), issue(15)],
        {"agent001/12-fix-login": work(), "agent002/15": work()},
        [],
    )
    assert [(e.number, e.branch.name) for e in queue.entries] == [
        (12, "agent001/12-fix-login"),
        (15, "agent002/15"),
    ]


def test_an_unfinished_branch_without_commits_is_not_queued() -> None:
    queue = select_queue("main", [issue(12)], {"agent001/12-wip": work(ahead=0)}, [])
    assert not queue
    assert queue.skipped[0].reason is SkipReason.NO_COMMITS


def test_issues_without_review_label_or_branch_are_skipped_with_a_reason() -> None:
    ready = Issue(number=3, title="t", labels=("route:ready",))
    queue = select_queue("main", [ready, issue(4), issue(5, state="closed")], {}, [])
    assert {(s.issue_number, s.reason) for s in queue.skipped} == {
        (3, SkipReason.NOT_IN_REVIEW),
        (4, SkipReason.NO_BRANCH),
        (5, SkipReason.CLOSED),
    }


def test_issues_an_open_pull_request_covers_are_not_queued_again() -> None:
    pulls = [
        PullRequest(
            1,
            "[BUNDLE] 2 issues",
            "bundle/20260407_1420__issues_12_15",
            "main",
            body="Fixes #12\nFixes #15",
        ),
        PullRequest(2, "[AUTO] x", "agent003/31-x", "main", body=""),
        PullRequest(3, "old", "agent004/40", "main", state="closed"),
    ]
    branches = {f"agent00{i}/{n}": work() for i, n in enumerate((12, 15, 31, 40), start=1)}
    queue = select_queue("main", [issue(12), issue(15), issue(31), issue(40)], branches, pulls)
    assert queue.numbers == (40,)
    assert {s.issue_number for s in queue.skipped if s.reason is SkipReason.COVERED} == {12, 15, 31}


def test_covered_issues_reads_bodies_and_heads_of_open_pulls_only() -> None:
    pulls = [
        PullRequest(1, "t", "feature", "main", body="closes #7"),
        PullRequest(2, "t", "bundle/20260407_1420__issues_8_9", "main"),
        PullRequest(3, "t", "agent001/10", "main", state="closed", body="Fixes #11"),
    ]
    assert covered_issues(pulls) == {7, 8, 9}


def test_the_queue_runs_by_priority_label_then_issue_number() -> None:
    issues = [
        issue(5),
        issue(9, "route:priority-high"),
        issue(2, "route:priority-low"),
        issue(7, "route:priority-very-high"),
        issue(3),
    ]
    branches = {f"agent001/{i.number}": work() for i in issues}
    assert select_queue("main", issues, branches, []).numbers == (7, 9, 2, 3, 5)


def test_an_issue_with_several_agent_branches_goes_with_the_newest_that_has_work() -> None:
    branches = {
        "agent001/12-first-try": work(ahead=2, at=100),
        "agent002/12-second-try": work(ahead=1, at=200),
        "agent003/12-empty": work(ahead=0, at=300),
    }
    queue = select_queue("main", [issue(12)], branches, [])
    assert queue.entries[0].branch.name == "agent002/12-second-try"


def test_pull_requests_in_the_issue_list_are_ignored() -> None:
    pr = Issue(number=8, title="pr", labels=(REVIEW,), is_pull_request=True)
    assert select_queue("main", [pr], {"agent001/8": work()}, []).entries == ()


async def test_commits_ahead_counts_only_the_agents_own_commits(
    origin_repo: Path, agent_branch_pusher, tmp_path: Path
) -> None:
    agent_branch_pusher("agent001/12-fix", {"a.txt": "a\n"})
    agent_branch_pusher("agent002/13-nothing", {})
    clone = tmp_path / "check"
    from tests.fixtures.common import git

    git(tmp_path, "clone", "-q", str(origin_repo), str(clone))
    heads = await bgit.remote_heads(clone)
    assert set(heads) == {"main", "agent001/12-fix", "agent002/13-nothing"}
    await bgit.fetch_branches(clone, list(heads))
    base = "refs/remotes/origin/main"
    assert await bgit.commits_ahead(clone, base, "refs/remotes/origin/agent001/12-fix") == 1
    assert await bgit.commits_ahead(clone, base, "refs/remotes/origin/agent002/13-nothing") == 0
