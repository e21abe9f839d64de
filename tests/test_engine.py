"""The engine behind the dashboard and --once: one snapshot, GitHub trouble as a status line."""

from __future__ import annotations

from pathlib import Path

from clambake_tui.config import load_config
from clambake_tui.engine import (
    Engine,
    GitHubHealth,
    TokenStatus,
    next_free_agent_id,
    ready_order,
)
from clambake_tui.github.transport import ClientSettings
from clambake_tui.model import Issue
from clambake_tui.sandbox.emulator.faults import Fault
from clambake_tui.sandbox.setup import SandboxLayout
from clambake_tui.state import Paths

# Fail at once instead of waiting out a rate limit or backing off: the tests look at the outcome.
IMPATIENT = ClientSettings(timeout=5.0, max_attempts=1, max_wait=0.0, backoff_base=0.0)


def engine_for(sandbox: SandboxLayout) -> Engine:
    paths = Paths(sandbox.work)
    paths.ensure_state()
    return Engine(paths, load_config(sandbox.config_path), follow=False, client_settings=IMPATIENT)


async def test_refresh_shows_repository_token_budget_runs_and_next_train(
    sandbox: SandboxLayout,
) -> None:
    engine = engine_for(sandbox)
    try:
        outcome = await engine.trigger_bundle()
        assert outcome.ok and "Actions" in outcome.message
        snapshot = await engine.refresh(force=True)
    finally:
        await engine.aclose()
    assert snapshot.repo == "clambake/sandbox"
    assert snapshot.token is TokenStatus.PRESENT
    assert snapshot.github is GitHubHealth.OK and snapshot.github_status == ""
    assert snapshot.rate_limit is not None and snapshot.rate_limit.remaining < 5000
    assert [run.event for run in snapshot.runs] == ["workflow_dispatch"]
    assert snapshot.next_train is not None and snapshot.next_train > snapshot.taken_at
    assert snapshot.max_concurrent == 3 and snapshot.agents == ()
    assert snapshot.exit_code == 0


async def test_rate_limited_github_is_a_retrying_line_and_the_last_runs_stay(
    sandbox: SandboxLayout,
) -> None:
    assert sandbox.emulator is not None
    engine = engine_for(sandbox)
    try:
        await engine.trigger_bundle()
        healthy = await engine.refresh(force=True)
        sandbox.emulator.add_fault(
            Fault.too_many_requests(times=None, retry_after=20, path="/runs")
        )
        limited = await engine.refresh(force=True)
    finally:
        await engine.aclose()
    assert limited.github is GitHubHealth.RATE_LIMITED
    assert limited.github_status.startswith("GitHub: rate limited, retrying in ")
    assert limited.github_status.endswith(" s")
    assert limited.runs == healthy.runs


async def test_actions_down_says_bundling_will_run_locally(sandbox: SandboxLayout) -> None:
    assert sandbox.emulator is not None
    sandbox.emulator.add_fault(Fault.burst(503, times=None, path="/actions/"))
    engine = engine_for(sandbox)
    try:
        snapshot = await engine.refresh(force=True)
    finally:
        await engine.aclose()
    assert snapshot.github is GitHubHealth.UNREACHABLE
    assert snapshot.github_status == "Actions unreachable — bundling will run locally"
    assert snapshot.errors and snapshot.errors[0].startswith("github: ")
    assert snapshot.exit_code == 0  # GitHub trouble is not the repository's failure


async def test_a_repository_without_github_settings_is_a_config_error(git_repo: Path) -> None:
    (git_repo / "clambake.toml").write_text("")
    import subprocess

    subprocess.run(["git", "remote", "remove", "origin"], cwd=git_repo, check=True)
    engine = Engine(Paths(git_repo), load_config(git_repo / "clambake.toml"), follow=False)
    try:
        snapshot = await engine.refresh(force=True)
    finally:
        await engine.aclose()
    assert snapshot.github is GitHubHealth.NOT_CONFIGURED
    assert snapshot.fatal and snapshot.exit_code == 2
    assert "owner and repo" in snapshot.errors[0]


def test_ready_queue_puts_unblockers_first_then_priority_then_number() -> None:
    issues = [
        Issue(5, "low", labels=("route:ready", "route:priority-low")),
        Issue(4, "none", labels=("route:ready",)),
        Issue(9, "unblocker", labels=("route:ready", "route:unblocker")),
        Issue(3, "high", labels=("route:ready", "route:priority-high")),
        Issue(2, "held", labels=("route:ready", "route:priority-high", "agent002")),
        Issue(1, "humans", labels=("route:ready", "route:human-only")),
        Issue(7, "very high", labels=("route:ready", "route:priority-very-high")),
    ]
    assert [i.number for i in ready_order(issues)] == [9, 7, 3, 5, 4]


def test_next_agent_id_skips_ids_in_use_and_ids_already_used() -> None:
    assert next_free_agent_id([]) == "agent001"
    assert next_free_agent_id(["agent001", "agent003"]) == "agent002"
    assert next_free_agent_id(["agent001"], ["agent001", "agent002"]) == "agent003"
