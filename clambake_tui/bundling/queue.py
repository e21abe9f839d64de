"""The bundle queue: which `route:review` issues have pushed work that no open PR covers yet."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from clambake_tui.bundling.naming import (
    REVIEW_LABEL,
    AgentBranch,
    closed_issue_numbers,
    parse_agent_branch,
    parse_bundle_branch,
)
from clambake_tui.model import Issue, PullRequest, priority_rank

__all__ = [
    "BranchInfo",
    "QueuedIssue",
    "SkipReason",
    "Skipped",
    "Queue",
    "select_queue",
    "covered_issues",
]


@dataclass(frozen=True, slots=True)
class BranchInfo:
    """What git says about one agent branch on the remote."""

    sha: str
    ahead: int
    committed_at: int = 0


@dataclass(frozen=True, slots=True)
class QueuedIssue:
    issue: Issue
    branch: AgentBranch
    sha: str
    ahead: int

    @property
    def number(self) -> int:
        return self.issue.number


class SkipReason(enum.StrEnum):
    NOT_IN_REVIEW = "not labelled route:review"
    CLOSED = "closed"
    NO_BRANCH = "no agent branch on the remote"
    NO_COMMITS = "agent branch has no commits ahead of the base"
    COVERED = "an open pull request already covers it"


@dataclass(frozen=True, slots=True)
class Skipped:
    issue_number: int
    reason: SkipReason
    branch: str | None = None


@dataclass(frozen=True, slots=True)
class Queue:
    base: str
    entries: tuple[QueuedIssue, ...]
    skipped: tuple[Skipped, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(e.number for e in self.entries)


def covered_issues(pulls: Iterable[PullRequest]) -> set[int]:
    """Issues an open PR already carries: by its closing keywords, its agent or bundle head."""
    covered: set[int] = set()
    for pr in pulls:
        if pr.state != "open":
            continue
        covered |= closed_issue_numbers(pr.body)
        agent = parse_agent_branch(pr.head)
        if agent is not None:
            covered.add(agent.issue_number)
        bundle = parse_bundle_branch(pr.head)
        if bundle is not None:
            covered.update(bundle[1])
    return covered


def agent_branches_by_issue(branch_names: Iterable[str]) -> dict[int, list[AgentBranch]]:
    found: dict[int, list[AgentBranch]] = {}
    for name in branch_names:
        parsed = parse_agent_branch(name)
        if parsed is not None:
            found.setdefault(parsed.issue_number, []).append(parsed)
    return found


def select_queue(
    base: str,
    issues: Iterable[Issue],
    branches: Mapping[str, BranchInfo],
    pulls: Iterable[PullRequest],
) -> Queue:
    """The queue, in train order (priority label, then issue number), and why the others wait.

    `branches` maps remote agent branch names to what git said about them. An issue with several
    agent branches goes with the newest one that has commits ahead of the base.
    """
    covered = covered_issues(pulls)
    by_issue = agent_branches_by_issue(branches)
    entries: list[QueuedIssue] = []
    skipped: list[Skipped] = []
    for issue in issues:
        if issue.is_pull_request:
            continue
        if issue.state != "open":
            skipped.append(Skipped(issue.number, SkipReason.CLOSED))
            continue
        if REVIEW_LABEL not in issue.labels:
            skipped.append(Skipped(issue.number, SkipReason.NOT_IN_REVIEW))
            continue
        if issue.number in covered:
            skipped.append(Skipped(issue.number, SkipReason.COVERED))
            continue
        candidates = by_issue.get(issue.number, [])
        if not candidates:
            skipped.append(Skipped(issue.number, SkipReason.NO_BRANCH))
            continue
        with_work = [b for b in candidates if branches[b.name].ahead > 0]
        if not with_work:
            skipped.append(Skipped(issue.number, SkipReason.NO_COMMITS, candidates[0].name))
            continue
        best = max(with_work, key=lambda b: (branches[b.name].committed_at, b.name))
        info = branches[best.name]
        entries.append(QueuedIssue(issue, best, info.sha, info.ahead))
    entries.sort(key=lambda e: (priority_rank(e.issue.labels), e.number))
    return Queue(base=base, entries=tuple(entries), skipped=tuple(skipped))
