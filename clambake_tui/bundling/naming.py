"""Names the bundler reads and writes: agent branches, bundle branches, PR titles and bodies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from clambake_tui.model import AGENT_BRANCH_PATTERN

__all__ = [
    "AgentBranch",
    "parse_agent_branch",
    "bundle_branch_name",
    "parse_bundle_branch",
    "bundle_title",
    "single_title",
    "train_label",
    "CONFLICT_LABEL",
    "REVIEW_LABEL",
    "READY_LABEL",
    "closed_issue_numbers",
    "OPENED_BY",
]

REVIEW_LABEL = "route:review"
READY_LABEL = "route:ready"
CONFLICT_LABEL = "merge-conflict"
# The last line of every pull request body the bundler writes: how its PRs are recognised on
# GitHub (a train on Actions opens them on a runner, out of this machine's sight).
OPENED_BY = "Opened by `clambake bundle`."

_BUNDLE_BRANCH = re.compile(r"^bundle/(?P<stamp>\d{8}_\d{4})__issues_(?P<issues>\d+(?:_\d+)*)$")
# GitHub's closing keywords; a PR body holding one of these for #N will close N when merged.
_CLOSING = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+#(?P<number>\d+)\b", re.IGNORECASE
)


@dataclass(frozen=True, slots=True, order=True)
class AgentBranch:
    """A branch an agent worked on: who, for which issue, and the whole name."""

    issue_number: int
    agent_id: str
    name: str


def parse_agent_branch(name: str) -> AgentBranch | None:
    """The agent and issue of `agentNNN/<issue>[-<slug>]`, or None for any other branch."""
    match = AGENT_BRANCH_PATTERN.match(name.removeprefix("refs/heads/"))
    if match is None:
        return None
    return AgentBranch(int(match["issue"]), match["agent"], match.string)


def bundle_branch_name(train: datetime, issues: list[int] | tuple[int, ...]) -> str:
    """`bundle/20260407_1420__issues_12_15`: the train's departure and the issues, in bundle order."""
    return f"bundle/{train:%Y%m%d_%H%M}__issues_{'_'.join(str(n) for n in issues)}"


def parse_bundle_branch(name: str) -> tuple[str, tuple[int, ...]] | None:
    """(stamp, issues) of a bundle branch name, or None."""
    match = _BUNDLE_BRANCH.match(name.removeprefix("refs/heads/"))
    if match is None:
        return None
    return match["stamp"], tuple(int(n) for n in match["issues"].split("_"))


def train_label(train: datetime) -> str:
    return f"{train:%H:%M} train"


def bundle_title(count: int, train: datetime) -> str:
    """`[BUNDLE] 3 issues - 14:20 train`."""
    return f"[BUNDLE] {count} issues - {train_label(train)}"


def single_title(issue_title: str) -> str:
    """`[AUTO] <title>`: one agent branch as its own PR."""
    return f"[AUTO] {issue_title}".strip()


def closed_issue_numbers(body: str) -> set[int]:
    """Issues a PR body closes when merged (`Fixes #12`, `closes #3`, ...)."""
    return {int(m["number"]) for m in _CLOSING.finditer(body or "")}
