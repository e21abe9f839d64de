"""End to end on the emulator and a real bare repository: agents land, the train bundles.

Three stand-in agents run under the real supervisor (watcher processes, worktrees); their
watcher lands each success through the `on_agent_finished` hook; the bundling workflow runs its
own `run:` scripts (the real `clambake bundle`) on the emulator's Actions.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from clambake_tui.agents.supervisor import AgentProcessManager
from clambake_tui.bundling.trigger import BundlePath, trigger_bundle
from clambake_tui.commands.actions_cmd import dispatch_bundle
from clambake_tui.github.client import GitHubClient
from clambake_tui.github.transport import ClientSettings
from clambake_tui.metrics import read_events
from clambake_tui.sandbox.emulator.faults import Fault
from tests.fixtures.bundling import TrainRepo

FAST = ClientSettings(
    backoff_base=0.01,
    backoff_max=0.05,
    dispatch_confirm_seconds=0.3,
    dispatch_poll_interval=0.05,
    dispatch_visible_timeout=10.0,
)


def clambake(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clambake_tui.cli", *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def wait_until(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def runs_settled(repo: TrainRepo) -> bool:
    return all(r["status"] == "completed" for r in repo.emulator.runs())


async def finish_three_agents(repo: TrainRepo) -> dict[str, int]:
    """#login and #docs (high priority: first on the train) merge cleanly; #clash, the last in
    line, edits the same file as #login and conflicts."""
    numbers = {
        "login": repo.add_issue("Fix the login form", file="shared.txt", content="login fixed"),
        "docs": repo.add_issue(
            "Document the API",
            file="docs/api.md",
            content="the api",
            labels=("route:ready", "route:priority-high"),
        ),
        "clash": repo.add_issue("Rewrite the login form", file="shared.txt", content="rewritten"),
    }
    async with AgentProcessManager(repo.paths, repo.config, token=repo.emulator.token) as mgr:
        spawned = [
            await mgr.spawn_agent(f"agent00{i}", number)
            for i, number in enumerate(numbers.values(), start=1)
        ]
        for process in spawned:
            done = await mgr.wait_finished(process.process_id, timeout=60)
            assert done.status.state.value == "completed", done.status
    # The watchers land after recording the final status: wait for the labels to move.
    await asyncio.to_thread(
        wait_until,
        "landing",
        lambda: all("route:review" in repo.emulator.issue_labels(n) for n in numbers.values()),
    )
    # Each landing dispatched one run (labels move before the dispatch: wait for all three).
    await asyncio.to_thread(
        wait_until,
        "landing dispatches",
        lambda: len(repo.emulator.runs()) == len(numbers) and runs_settled(repo),
    )
    return numbers


def open_pr_summary(repo: TrainRepo) -> list[tuple[str, str, tuple[str, ...]]]:
    return sorted(
        (p["title"], p["pull"]["head_ref"], tuple(sorted(p["labels"]))) for p in repo.pulls()
    )


async def test_three_agents_land_and_the_train_bundles_two_and_gives_the_conflict_its_own_pr(
    train_repo: TrainRepo,
) -> None:
    repo = train_repo
    numbers = await finish_three_agents(repo)
    login, docs, clash = numbers["login"], numbers["docs"], numbers["clash"]

    # Landing moved the labels and said what happened; outside the window no PR was made yet.
    async with GitHubClient.from_config(repo.config, repo.root) as gh:
        for agent, number in zip(
            ("agent001", "agent002", "agent003"), numbers.values(), strict=True
        ):
            labels = repo.emulator.issue_labels(number)
            assert "route:review" in labels
            assert "route:ready" not in labels and agent not in labels
            bodies = [c["body"] for c in await gh.list_comments(number)]
            assert sum(f"**{agent}** finished and pushed" in b for b in bodies) == 1
            assert "turns" in bodies[-1] and "duration" in bodies[-1]
    assert repo.pulls() == []
    landing_runs = repo.emulator.runs()
    # Three landings dispatched three runs. The workflow's concurrency group lets a newer
    # dispatch cancel one still waiting, as on GitHub; none fails and the newest always runs.
    assert len(landing_runs) == 3
    assert {r["conclusion"] for r in landing_runs} <= {"success", "cancelled"}
    assert max(landing_runs, key=lambda r: r["id"])["conclusion"] == "success"

    # The train leaves when forced: dispatched to Actions, where `clambake bundle` runs.
    triggered = clambake("actions", "--trigger-bundle", "--force", cwd=repo.root)
    assert triggered.returncode == 0, triggered.stderr
    assert "bundling on GitHub Actions" in triggered.stdout
    assert "showed up after" in triggered.stdout  # how long the dispatched run took to appear
    # Every client made in this repository counted its requests in the state folder.
    recorded = read_events(repo.paths.metrics)
    assert any(e["event"] == "github.request" for e in recorded)
    assert any(e["event"] == "actions.dispatch" and e["ok"] for e in recorded)
    run_id = max(r["id"] for r in repo.emulator.runs())
    run = await asyncio.to_thread(repo.emulator.wait_for_run, run_id, timeout=60)
    logs = clambake("actions", "--logs", "--run-id", str(run_id), cwd=repo.root)
    assert logs.returncode == 0, logs.stderr
    assert run["conclusion"] == "success", logs.stdout

    pulls = {p["title"]: p for p in repo.pulls()}
    assert set(pulls) == {"[BUNDLE] 2 issues - 14:27 train", "[AUTO] Rewrite the login form"}, (
        logs.stdout
    )
    bundle = pulls["[BUNDLE] 2 issues - 14:27 train"]
    assert bundle["pull"]["head_ref"] == f"bundle/20260407_1427__issues_{docs}_{login}"
    assert f"Fixes #{login}" in bundle["body"] and f"Fixes #{docs}" in bundle["body"]
    assert "agent001" in bundle["body"] and "agent002" in bundle["body"]
    conflict = pulls["[AUTO] Rewrite the login form"]
    assert conflict["pull"]["head_ref"].startswith(f"agent003/{clash}-")
    assert "merge-conflict" in conflict["labels"]
    assert f"Fixes #{clash}" in conflict["body"]

    # The run's logs hold the real `clambake bundle` output, fetched as GitHub serves them.
    assert "should_bundle=true" in logs.stdout
    assert "created #" in logs.stdout and "[BUNDLE] 2 issues" in logs.stdout

    # Bundling again creates nothing.
    before = open_pr_summary(repo)
    again = clambake("actions", "--trigger-bundle", "--force", cwd=repo.root)
    assert again.returncode == 0, again.stderr
    rerun_id = max(r["id"] for r in repo.emulator.runs())
    assert (await asyncio.to_thread(repo.emulator.wait_for_run, rerun_id))[
        "conclusion"
    ] == "success"
    assert open_pr_summary(repo) == before
    local = clambake("bundle", "--local", "--force", cwd=repo.root)
    assert local.returncode == 0, local.stderr
    assert "nothing to bundle" in local.stdout
    assert open_pr_summary(repo) == before


async def test_with_actions_down_the_trigger_bundles_locally_into_the_same_pull_requests(
    train_repo: TrainRepo,
) -> None:
    repo = train_repo
    numbers = await finish_three_agents(repo)
    repo.emulator.add_fault(Fault.actions_down())

    async with GitHubClient.from_config(repo.config, repo.root, settings=FAST) as client:
        outcome = await trigger_bundle(
            client,
            repo.root,
            repo.config,
            force=True,
            dispatch=dispatch_bundle,
            lock_dir=repo.paths.locks,
            metrics_file=repo.paths.metrics,
        )

    assert outcome.path is BundlePath.LOCAL
    assert outcome.reason.startswith("Actions dispatch failed")
    text = "\n".join(outcome.lines())
    assert text.startswith("bundled locally (Actions dispatch failed")
    login, docs, clash = numbers["login"], numbers["docs"], numbers["clash"]
    assert open_pr_summary(repo) == sorted(
        [
            (
                "[AUTO] Rewrite the login form",
                next(
                    p["pull"]["head_ref"] for p in repo.pulls() if p["title"].startswith("[AUTO]")
                ),
                ("merge-conflict",),
            ),
            ("[BUNDLE] 2 issues - 14:27 train", f"bundle/20260407_1427__issues_{docs}_{login}", ()),
        ]
    )
    assert f"agent003/{clash}-" in text
    events = [json.loads(line) for line in repo.paths.metrics.read_text().splitlines()]
    runs = [e for e in events if e["event"] == "bundle.run" and e["reason"] == "departed"]
    assert runs and runs[-1]["path"] == "local"
    assert sum(e["event"] == "bundle.pr_created" for e in events) == 2
    assert sum(e["event"] == "landing.pushed" for e in events) == 3


@pytest.mark.slow
def test_the_trigger_command_with_actions_down_says_it_bundled_locally_and_why(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    """The real command with the client's real retry budget (slow: it waits out the retries)."""
    number = train_repo.emulator.add_issue("Fix login", labels=["route:review"])
    agent_branch_pusher(f"agent001/{number}-fix-login", {"a.txt": "a\n"})
    train_repo.emulator.add_fault(Fault.actions_down())
    started = time.monotonic()
    done = clambake("actions", "--trigger-bundle", "--force", cwd=train_repo.root)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("bundled locally (Actions dispatch failed: ")
    assert "created #" in done.stdout
    (pull,) = train_repo.pulls()
    assert pull["title"] == "[AUTO] Fix login"
    print(f"fell back after {time.monotonic() - started:.1f} s")
