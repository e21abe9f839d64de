"""Names: agent branches the queue accepts, bundle branches, titles and closing keywords."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clambake_tui.bundling.naming import (
    bundle_branch_name,
    bundle_title,
    closed_issue_numbers,
    parse_agent_branch,
    parse_bundle_branch,
    single_title,
)


@pytest.mark.parametrize(
    ("name", "agent", "issue"),
    [
        ("agent001/12", "agent001", 12),
        ("agent001/12-fix-login", "agent001", 12),
        ("agent999/4711-a-b-c", "agent999", 4711),
        ("refs/heads/agent002/3-x", "agent002", 3),
        ("agent004/8-Fix_The-Login.v2", "agent004", 8),
    ],
)
def test_agent_branches_with_and_without_a_descriptive_slug_are_recognised(
    name: str, agent: str, issue: int
) -> None:
    parsed = parse_agent_branch(name)
    assert parsed is not None
    assert (parsed.agent_id, parsed.issue_number) == (agent, issue)


@pytest.mark.parametrize(
    "name",
    [
        "main",
        "agent1/12",
        "agent001/",
        "agent001/fix-12",
        "agent001/012",
        "agent001/12_x",
        "bundle/x",
    ],
)
def test_other_branches_are_not_agent_branches(name: str) -> None:
    assert parse_agent_branch(name) is None


def test_bundle_branch_name_carries_the_train_and_the_issues_in_bundle_order() -> None:
    train = datetime(2026, 4, 7, 14, 20, tzinfo=UTC)
    name = bundle_branch_name(train, [15, 12, 31])
    assert name == "bundle/20260407_1420__issues_15_12_31"
    assert parse_bundle_branch(name) == ("20260407_1420", (15, 12, 31))
    assert parse_bundle_branch("bundle/nope") is None


def test_titles_follow_the_vocabulary() -> None:
    train = datetime(2026, 4, 7, 14, 20, tzinfo=UTC)
    assert bundle_title(3, train) == "[BUNDLE] 3 issues - 14:20 train"
    assert single_title("Fix the login form") == "[AUTO] Fix the login form"


def test_closing_keywords_are_read_as_github_reads_them() -> None:
    body = "- Fixes #12 — a\n- closes #15\nResolved: #31\nsee #40\nfixes#41"
    assert closed_issue_numbers(body) == {12, 15, 31}
