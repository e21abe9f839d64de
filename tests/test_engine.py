"""The engine behind the dashboard and --once: one snapshot, GitHub trouble as a status line."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from clambake_tui.agents.registry import Registry
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
from tests.fixtures.bundling import TrainRepo
from tests.test_bundling_bundler import queue_three

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


async def test_the_ready_queue_leaves_out_an_issue_an_agent_is_still_claiming(
    sandbox: SandboxLayout,
) -> None:
    """A spawn reserves its issue before GitHub hears the claim: the queue the spawn form shows
    in between must not offer that issue to a second spawn."""
    assert sandbox.emulator is not None
    claimed = asyncio.Event()
    # The claim (the agent's label) answers slowly: the spawn is caught half-way.
    sandbox.emulator.add_fault(Fault.slow(2.0, method="POST", path=r"/issues/\d+/labels$", times=1))
    engine = engine_for(sandbox)
    try:
        first = (await engine.ready_issues())[0].number

        async def spawn() -> None:
            await engine.spawn("agent001", first)
            claimed.set()

        spawning = asyncio.create_task(spawn())
        paths = Paths(sandbox.work)
        while not any(r.process.issue_number == first for r in Registry(paths).load().values()):
            await asyncio.sleep(0.02)
        assert not claimed.is_set()
        offered = [issue.number for issue in await engine.ready_issues()]
        assert first not in offered and offered
        await spawning
    finally:
        await engine.terminate_all()
        await engine.aclose()


# ---------------------------------------------------------------- progress of long steps


class Heard:
    """A progress reporter that keeps what it was told, and on which thread."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, int | None, int | None]] = []
        self.threads: set[str] = set()

    def __call__(self, label: str, done: int | None, total: int | None) -> None:
        self.stages.append((label, done, total))
        self.threads.add(threading.current_thread().name)

    @property
    def labels(self) -> list[str]:
        return [label for label, _, _ in self.stages]


async def test_spawn_and_terminate_report_their_stages_from_the_supervisor_thread(
    sandbox: SandboxLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAMBAKE_STANDIN_DELAY", "30")  # still running when terminated
    paths = Paths(sandbox.work)
    paths.ensure_state()
    config = load_config(sandbox.config_path)
    engine = Engine(paths, config, tail_lines=0, supervisor_thread=True)
    spawned, stopped = Heard(), Heard()
    try:
        number = (await engine.ready_issues())[0].number
        process = await engine.spawn("agent001", number, progress=spawned)
        await engine.terminate(process.process_id, progress=stopped)
    finally:
        await engine.aclose()
    assert spawned.stages == [
        (f"checking issue #{number}", 0, 4),
        (f"claiming #{number} for agent001", 1, 4),
        ("creating the worktree for agent001", 2, 4),
        ("starting agent001 under its watcher", 3, 4),
    ]
    grace = config.agents.terminate_grace_seconds
    assert stopped.stages == [
        ("sending SIGTERM to agent001", 0, 2),
        (f"waiting for agent001 to end (SIGKILL after {grace:g} s)", 1, 2),
    ]
    # The supervisor runs on its own loop's thread: a reporter must expect any thread.
    assert spawned.threads == stopped.threads == {"clambake-supervisor"}


async def test_a_dispatched_bundle_reports_the_dispatch_then_the_wait_for_its_run(
    sandbox: SandboxLayout,
) -> None:
    engine = engine_for(sandbox)
    heard = Heard()
    try:
        outcome = await engine.trigger_bundle(progress=heard)
    finally:
        await engine.aclose()
    assert outcome.run is not None
    assert heard.stages == [
        ("dispatching clambake-bundling.yml on main", 0, 2),
        ("waiting for the run of clambake-bundling.yml to show up", 1, 2),
    ]


async def test_a_local_bundle_reports_the_fetch_each_merge_and_each_pr(
    train_repo: TrainRepo, agent_branch_pusher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAMBAKE_GITHUB_ACTIONS__ENABLED", "false")
    a, b, c = queue_three(train_repo, agent_branch_pusher)
    engine = Engine(train_repo.paths, load_config(train_repo.root / "clambake.toml"), follow=False)
    heard = Heard()
    try:
        outcome = await engine.trigger_bundle(progress=heard)
    finally:
        await engine.aclose()
    assert outcome.ok and "bundled locally" in outcome.message
    bundle = next(w for w in outcome.message.split() if w.startswith("bundle/")).rstrip(";,")
    assert heard.stages == [
        ("fetching the queue: route:review issues and agent branches", None, None),
        (f"merging 1 of 3: agent001/{a}-fix-login", 0, 4),
        (f"merging 2 of 3: agent002/{b}", 1, 4),
        (f"merging 3 of 3: agent003/{c}-rewrite-login", 2, 4),
        (f"opening PR 1 of 2: agent003/{c}-rewrite-login", 3, 4),
        (f"pushing {bundle}", 3, 4),
        (f"opening PR 2 of 2: {bundle}", 3, 4),
    ]


async def test_run_logs_report_the_bytes_of_the_zip_as_they_arrive(
    sandbox: SandboxLayout,
) -> None:
    assert sandbox.emulator is not None
    engine = engine_for(sandbox)
    heard = Heard()
    try:
        outcome = await engine.trigger_bundle()
        assert outcome.run is not None
        await asyncio.to_thread(sandbox.emulator.wait_for_run, outcome.run.id, timeout=60)
        logs = await engine.run_logs(outcome.run.id, progress=heard)
    finally:
        await engine.aclose()
    assert logs.sections
    number = outcome.run.run_number
    first, *download, last = heard.stages
    assert first == (f"checking that run {outcome.run.id} has finished", 0, 3)
    assert download[0] == (f"downloading the logs of run #{number}", 1, 3)
    sizes = download[1:]
    assert sizes, "the zip's bytes were never reported"
    size = sizes[-1][2]
    assert size is not None and size > 0
    assert all(total == size for _, _, total in sizes)
    received = [done for _, done, _ in sizes]
    assert received == sorted(received) and received[-1] == size
    assert sizes[-1][0].startswith(f"downloading the logs of run #{number}: ")
    assert last == (f"reading the jobs of run #{number}", 1, 1)
