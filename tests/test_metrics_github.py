"""GitHub, Actions, bundling and end-to-end metrics read back from the real client, trigger,
bundler, landing and supervisor, against the GitHub emulator."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clambake_tui.bundling.trigger import BundlePath, dispatch_bundling, trigger_bundle
from clambake_tui.config import Config, load_config, set_value
from clambake_tui.github.client import GitHubClient
from clambake_tui.metrics import collect_metrics, read_events
from clambake_tui.model import AgentState, Issue
from clambake_tui.sandbox.emulator import Emulator
from clambake_tui.sandbox.emulator.faults import Fault
from clambake_tui.sandbox.setup import SandboxLayout
from clambake_tui.state import Paths
from tests.fixtures.agents import make_manager
from tests.fixtures.common import git
from tests.fixtures.emulator import EMULATOR_OWNER, EMULATOR_REPO
from tests.fixtures.github import FAST_GITHUB_SETTINGS, sandbox_client


async def recorded(paths: Paths, event: str, count: int, timeout: float = 60.0) -> None:
    """Wait until `count` `event`s are in the metrics file (work done by other processes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while sum(e["event"] == event for e in read_events(paths.metrics)) < count:
        assert loop.time() < deadline, f"fewer than {count} {event} events recorded"
        await asyncio.sleep(0.05)


async def finish_one_agent(paths: Paths, config: Config, number: int) -> None:
    """A stand-in agent spawned on the issue, run to completion (its watcher then lands it)."""
    issue = Issue(
        number=number, title="Count words case-insensitively", body="standin-mode: succeed"
    )
    manager = make_manager(paths, config)
    await manager.start()
    try:
        process = await manager.spawn_agent("agent001", issue)
        done = await manager.wait_finished(process.process_id, timeout=60)
    finally:
        await manager.close()
    assert done.status.state is AgentState.COMPLETED


def sandbox_config(layout: SandboxLayout, **overrides: str) -> Config:
    return load_config(layout.config_path, env=overrides)


async def test_api_requests_304s_and_rate_limit_match_what_github_saw(
    emulator: Emulator, tmp_path: Path
) -> None:
    number = emulator.add_issue("Count words", "body", ["route:ready"])
    paths = Paths(tmp_path / "state-root")
    async with GitHubClient(
        EMULATOR_OWNER,
        EMULATOR_REPO,
        api_url=emulator.url,
        token=emulator.token,
        settings=FAST_GITHUB_SETTINGS,
        metrics_path=paths.metrics,
    ) as client:
        emulator.clear_requests()
        for _ in range(3):
            await client.get_issue(number)  # the 2nd and 3rd are conditional: 304
        await client.list_issues()
    seen = emulator.requests
    g = collect_metrics(paths).github
    assert g.api_requests == len(seen) == 4
    assert g.api_not_modified == sum(r.status == 304 for r in seen) == 2
    assert g.rate_limit_remaining == emulator.rate_limit_remaining()


async def test_a_dispatch_records_success_and_trigger_to_run_visible_latency(
    sandbox: SandboxLayout,
) -> None:
    paths = Paths(sandbox.work)
    config = sandbox_config(sandbox)
    async with sandbox_client(sandbox, paths.metrics) as client:
        result = await dispatch_bundling(client, config, False, True)
    assert result.run is not None
    g = collect_metrics(paths).github
    assert (g.dispatches, g.dispatches_ok, g.trigger_success_rate) == (1, 1, 1.0)
    assert g.trigger_latency.count == 1
    assert g.trigger_latency.avg == round(result.seconds_to_visible or -1, 3)
    assert sandbox.emulator is not None
    sandbox.emulator.wait_for_run(result.run.id, timeout=60)


async def test_actions_down_counts_a_failed_trigger_and_a_local_fallback(
    sandbox: SandboxLayout,
) -> None:
    assert sandbox.emulator is not None
    sandbox.emulator.add_fault(Fault.burst(503, times=None, method="POST", path="/dispatches"))
    paths = Paths(sandbox.work)
    paths.ensure_state()
    config = sandbox_config(sandbox)
    async with sandbox_client(sandbox, paths.metrics) as client:
        outcome = await trigger_bundle(
            client,
            sandbox.work,
            config,
            force=True,
            lock_dir=paths.locks,
            metrics_file=paths.metrics,
        )
    assert outcome.path is BundlePath.LOCAL
    g = collect_metrics(paths).github
    assert (g.dispatches, g.dispatches_ok, g.trigger_success_rate) == (1, 0, 0.0)
    assert g.trigger_latency.count == 0
    assert (g.bundle_runs, g.local_fallbacks, g.actions_runs) == (1, 1, 0)
    assert g.bundle_runs_ok == 1 and g.bundle_success_rate == 1.0
    assert g.bundle_duration.count == 1 and (g.bundle_duration.avg or -1) >= 0


async def test_agent_exit_to_push_to_bundle_pr_is_measured_end_to_end(
    sandbox: SandboxLayout,
) -> None:
    """A stand-in agent finishes; its watcher lands it (push, labels, comment) and, Actions being
    off, the train leaves locally at once (one-minute schedule) with a bundle PR."""
    assert sandbox.emulator is not None
    paths = Paths(sandbox.work)
    config = sandbox_config(
        sandbox,
        CLAMBAKE_GITHUB_ACTIONS__ENABLED="false",
        CLAMBAKE_BUNDLING__SCHEDULE_MINUTES="1",
    )
    number = sandbox.issue_numbers[0]
    await finish_one_agent(paths, config, number)
    await recorded(paths, "bundle.pr_created", 1)
    await recorded(paths, "bundle.run", 1)

    m = collect_metrics(paths)
    e = m.end_to_end
    assert (e.pushed, e.in_pr) == (1, 1)
    assert e.exit_to_push.count == 1 and (e.exit_to_push.avg or -1) >= 0
    assert e.push_to_pr.count == 1 and (e.push_to_pr.avg or -1) >= 0
    assert (e.exit_to_pr.avg or -1) >= (e.push_to_pr.avg or 0)
    assert (m.github.local_fallbacks, m.github.bundle_runs_ok) == (1, 1)
    prs = [p for p in sandbox.emulator.pulls() if f"#{number}" in str(p.get("body"))]
    assert len(prs) == 1


def metrics_json(root: Path, *args: str) -> tuple[dict[str, object], str]:
    done = subprocess.run(
        [sys.executable, "-m", "clambake_tui", "metrics", "--json", *args],
        cwd=root,
        env={**os.environ, "CLAMBAKE_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


async def test_refresh_records_trains_that_left_on_actions_once(sandbox: SandboxLayout) -> None:
    """A train bundled on the runner leaves no record here; `--refresh` asks GitHub for the
    bundling workflow's completed runs and records each once."""
    emu = sandbox.emulator
    assert emu is not None
    run_id = emu.dispatch("clambake-bundling.yml", inputs={"dry_run": "true"})
    run = await asyncio.to_thread(emu.wait_for_run, run_id, timeout=120)
    assert run["status"] == "completed"

    before, _ = metrics_json(sandbox.work)
    assert before["github"]["actions_runs"] == 0  # type: ignore[index]
    for _ in range(2):  # a second refresh finds nothing new
        data, _ = metrics_json(sandbox.work, "--refresh")
        github = data["github"]
        assert github["actions_runs"] == 1  # type: ignore[index]
        assert github["bundle_runs"] == 1  # type: ignore[index]
        assert github["bundle_duration"]["count"] == 1  # type: ignore[index]
        assert github["bundle_runs_ok"] == (run["conclusion"] == "success")  # type: ignore[index]
    runs = [e for e in read_events(Paths(sandbox.work).metrics) if e["event"] == "bundle.run"]
    assert [e["run_id"] for e in runs] == [run_id]


async def test_refresh_records_the_bundle_pr_a_train_on_actions_opened(
    sandbox: SandboxLayout,
) -> None:
    """The bundle PR of a train on Actions is opened on the runner: only `--refresh` (asking
    GitHub for the bundler's pull requests) joins it to the agent's exit here."""
    emu = sandbox.emulator
    assert emu is not None
    # A train every minute, in the repository the runner checks out: the dispatch bundles now.
    set_value(sandbox.config_path, "bundling.schedule_minutes", "1")
    git(sandbox.work, "commit", "-qam", "Trains every minute")
    git(sandbox.work, "push", "-q", "origin", "main")
    paths = Paths(sandbox.work)
    number = sandbox.issue_numbers[0]
    await finish_one_agent(paths, load_config(sandbox.config_path), number)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while not [p for p in emu.pulls() if f"Fixes #{number}" in str(p.get("body"))]:
        assert loop.time() < deadline, "no bundle pull request from the train on Actions"
        await asyncio.sleep(0.1)

    before, _ = metrics_json(sandbox.work)
    assert before["end_to_end"]["in_pr"] == 0  # type: ignore[index]
    for _ in range(2):  # a second refresh records nothing twice
        data, _ = metrics_json(sandbox.work, "--refresh")
        end_to_end = data["end_to_end"]
        assert end_to_end["in_pr"] == 1  # type: ignore[index]
        assert end_to_end["exit_to_pr"]["count"] == 1  # type: ignore[index]
    created = [e for e in read_events(paths.metrics) if e["event"] == "bundle.pr_created"]
    assert [e["issues"] for e in created] == [[number]]


@pytest.mark.slow  # the client's retries of a refused connection take about 15 s
def test_refresh_without_github_warns_and_still_prints_local_numbers(tmp_path: Path) -> None:
    (tmp_path / "clambake.toml").write_text(
        '[github]\nowner = "o"\nrepo = "r"\napi_url = "http://127.0.0.1:9"\n'
    )
    data, err = metrics_json(tmp_path, "--refresh")
    assert data["schema_version"] == 1
    assert err.startswith("clambake: warning: Actions runs not refreshed: ")
    assert err.count("\n") == 1
