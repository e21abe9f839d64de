"""Landing one finished run against the emulator: push, labels, comment, bundle; idempotent."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from clambake_tui.agents.worktree import prepare_worktree
from clambake_tui.bundling.landing import LandingStatus, land_agent
from clambake_tui.bundling.trigger import BundlePath
from clambake_tui.github.client import GitHubClient
from clambake_tui.model import AgentProcess, AgentResult, ProcessStatus
from tests.fixtures.bundling import TrainRepo
from tests.fixtures.common import git

RESULT = AgentResult(
    is_error=False, subtype="success", num_turns=7, duration_ms=83_000, total_cost_usd=0.4213
)


def finished_run(
    repo: TrainRepo,
    agent_id: str,
    number: int,
    files: dict[str, str],
    *,
    status: ProcessStatus | None = None,
    result: AgentResult | None = RESULT,
) -> AgentProcess:
    """A run as the registry records it, its worktree holding what the agent committed."""
    issue = repo.emulator.issue(number)
    tree = prepare_worktree(
        repo.paths,
        agent_id=agent_id,
        issue_number=number,
        title=issue["title"],
        default_branch="main",
    )
    for rel, content in files.items():
        (tree.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree.path / rel).write_text(content)
        git(tree.path, "add", rel)
    if files:
        git(tree.path, "commit", "-q", "-m", f"Work on #{number}")
    now = datetime.now(UTC)
    return AgentProcess(
        process_id=f"{agent_id}-{number}-test",
        agent_id=agent_id,
        issue_number=number,
        branch_name=tree.branch,
        status=status or ProcessStatus.completed(0),
        started_at=now,
        pid=None,
        worktree=tree.path,
        log_path=repo.paths.agents / "none.log",
        issue_title=issue["title"],
        ended_at=now,
        result=result,
    )


def comments(repo: TrainRepo, number: int) -> list[str]:
    return [
        c["body"]
        for c in repo.emulator.store.issue(repo.emulator.store.default_repo(), number)["comments"]
    ]


async def test_landing_pushes_moves_labels_comments_and_is_idempotent(
    train_repo: TrainRepo,
) -> None:
    repo = train_repo
    number = repo.add_issue(
        "Fix login", file="a.txt", content="x", labels=("route:ready", "agent001")
    )
    run = finished_run(repo, "agent001", number, {"a.txt": "fixed\n"})
    repo.paths.ensure_state()

    async with GitHubClient.from_config(repo.config, repo.root) as gh:
        first = await land_agent(run, repo.paths, repo.config, gh, bundle=False)
        second = await land_agent(run, repo.paths, repo.config, gh, bundle=False)
        # The same work landed by a later run of the agent (a restart) is the same landing.
        restarted = replace(run, process_id="agent001-restarted")
        third = await land_agent(restarted, repo.paths, repo.config, gh, bundle=False)

    assert first.status is LandingStatus.LANDED and first.commits_ahead == 1
    assert git(repo.root, "ls-remote", "origin", f"refs/heads/{run.branch_name}").startswith(
        first.sha
    )
    assert repo.emulator.issue_labels(number) == ["route:review"]
    (comment,) = comments(repo, number)
    assert f"`{run.branch_name}`" in comment
    assert "7 turns, duration 1m 23s, cost $0.42" in comment
    assert second.status is third.status is LandingStatus.ALREADY_LANDED
    assert len(comments(repo, number)) == 1
    events = [json.loads(line) for line in repo.paths.metrics.read_text().splitlines()]
    (pushed,) = [e for e in events if e["event"] == "landing.pushed"]
    assert pushed["issue_number"] == number and pushed["exited_at"] and pushed["pushed_at"]


async def test_a_success_without_commits_is_reported_once_and_not_landed(
    train_repo: TrainRepo,
) -> None:
    repo = train_repo
    number = repo.add_issue(
        "Nothing to do", file="a.txt", content="x", labels=("route:ready", "agent002")
    )
    run = finished_run(repo, "agent002", number, {})

    async with GitHubClient.from_config(repo.config, repo.root) as gh:
        first = await land_agent(run, repo.paths, repo.config, gh)
        second = await land_agent(run, repo.paths, repo.config, gh)

    assert first.status is second.status is LandingStatus.NO_COMMITS
    assert "no commits" in first.message and first.trigger is None
    assert git(repo.root, "ls-remote", "origin", f"refs/heads/{run.branch_name}") == ""
    assert "route:review" not in repo.emulator.issue_labels(number)
    (comment,) = comments(repo, number)
    assert "made no commits" in comment


async def test_failed_or_errored_runs_are_not_landed(train_repo: TrainRepo) -> None:
    repo = train_repo
    number = repo.add_issue("Broken", file="a.txt", content="x", labels=("route:ready", "agent003"))
    run = finished_run(repo, "agent003", number, {"a.txt": "half\n"})
    errored = replace(run, result=AgentResult(is_error=True, subtype="success"))
    failed = replace(run, status=ProcessStatus.failed("crashed", exit_code=1))

    async with GitHubClient.from_config(repo.config, repo.root) as gh:
        for process in (errored, failed):
            outcome = await land_agent(process, repo.paths, repo.config, gh)
            assert outcome.status is LandingStatus.NOT_SUCCESSFUL

    assert sorted(repo.emulator.issue_labels(number)) == ["agent003", "route:ready"]
    assert comments(repo, number) == []


async def test_with_actions_disabled_landing_bundles_locally(train_repo: TrainRepo) -> None:
    repo = train_repo
    config = replace(repo.config, github_actions=replace(repo.config.github_actions, enabled=False))
    number = repo.add_issue(
        "Fix login", file="a.txt", content="x", labels=("route:ready", "agent001")
    )
    run = finished_run(repo, "agent001", number, {"a.txt": "fixed\n"})

    async with GitHubClient.from_config(config, repo.root) as gh:
        outcome = await land_agent(run, repo.paths, config, gh, force_bundle=True)

    assert outcome.trigger is not None
    assert outcome.trigger.path is BundlePath.LOCAL
    assert outcome.trigger.reason == "github_actions.enabled is false"
    assert repo.emulator.runs() == []
    (pr,) = repo.pulls()
    assert pr["title"] == "[AUTO] Fix login"
    assert pr["pull"]["head_ref"] == run.branch_name


async def test_landed_work_stays_landed_when_no_bundle_can_start(train_repo: TrainRepo) -> None:
    from clambake_tui.github.transport import ClientSettings
    from clambake_tui.sandbox.emulator.faults import Fault

    repo = train_repo
    config = replace(repo.config, bundling=replace(repo.config.bundling, fallback_local=False))
    number = repo.add_issue(
        "Fix login", file="a.txt", content="x", labels=("route:ready", "agent001")
    )
    run = finished_run(repo, "agent001", number, {"a.txt": "fixed\n"})
    repo.emulator.add_fault(Fault.actions_down())
    fast = ClientSettings(backoff_base=0.01, backoff_max=0.05, dispatch_confirm_seconds=0.2)

    async with GitHubClient.from_config(config, repo.root, settings=fast) as gh:
        outcome = await land_agent(run, repo.paths, config, gh)

    assert outcome.status is LandingStatus.LANDED
    assert outcome.bundle_error is not None
    assert "fallback_local is false" in outcome.lines()[-1]
    assert outcome.lines()[-1].startswith("bundling not started: ")
    assert "route:review" in repo.emulator.issue_labels(number)
