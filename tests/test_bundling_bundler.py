"""The bundler against the emulator: the window, dry runs, reruns after a crash, the lock."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from clambake_tui.bundling import git as bgit
from clambake_tui.bundling.bundler import BundleOutcome, Bundler, gather_queue, plan_merges
from clambake_tui.github.client import GitHubClient
from tests.fixtures.bundling import TrainRepo

IN_WINDOW = datetime(2026, 4, 7, 14, 21, tzinfo=UTC)
OUT_OF_WINDOW = datetime(2026, 4, 7, 14, 27, tzinfo=UTC)


def queue_three(repo: TrainRepo, push) -> tuple[int, int, int]:
    """Three route:review issues with pushed agent branches; the third conflicts with the first."""
    a = repo.emulator.add_issue("Fix login", labels=["route:review"])
    b = repo.emulator.add_issue("Add docs", labels=["route:review"])
    c = repo.emulator.add_issue("Rewrite login", labels=["route:review"])
    push(f"agent001/{a}-fix-login", {"shared.txt": "one\n"})
    push(f"agent002/{b}", {"docs.txt": "docs\n"})
    push(f"agent003/{c}-rewrite-login", {"shared.txt": "three\n"})
    return a, b, c


def bundler(repo: TrainRepo, gh: GitHubClient, now: datetime = IN_WINDOW) -> Bundler:
    return Bundler(
        gh,
        repo.root,
        repo.config,
        lock_dir=repo.paths.locks,
        metrics_file=repo.paths.metrics,
        clock=lambda: now,
    )


def remote_branches(repo: TrainRepo) -> set[str]:
    out = subprocess.run(
        ["git", "ls-remote", "--heads", "origin"],
        cwd=repo.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split("refs/heads/")[1] for line in out.splitlines()}


async def test_outside_the_window_nothing_leaves_and_the_next_train_is_named(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    queue_three(train_repo, agent_branch_pusher)
    async with GitHubClient.from_config(train_repo.config, train_repo.root) as gh:
        report = await bundler(train_repo, gh, OUT_OF_WINDOW).run()
        should, why = await bundler(train_repo, gh, OUT_OF_WINDOW).check()
    assert report.outcome is BundleOutcome.OUTSIDE_WINDOW
    assert report.lines() == [
        "not bundling: no train now; the next train leaves at 14:30 UTC (use --force to bundle now)"
    ]
    assert (should, why) == (False, "no train now; the next train leaves at 14:30 UTC")
    assert train_repo.pulls() == []


async def test_inside_the_window_the_scheduled_train_leaves_under_its_departure_time(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    a, b, c = queue_three(train_repo, agent_branch_pusher)
    async with GitHubClient.from_config(train_repo.config, train_repo.root) as gh:
        assert (await bundler(train_repo, gh).check())[0] is True
        report = await bundler(train_repo, gh).run()
    assert report.outcome is BundleOutcome.DEPARTED
    titles = sorted(p["title"] for p in train_repo.pulls())
    assert titles == ["[AUTO] Rewrite login", "[BUNDLE] 2 issues - 14:20 train"]
    assert f"bundle/20260407_1420__issues_{a}_{b}" in remote_branches(train_repo)
    summary = report.markdown()
    assert f"| #{c} | `agent003/{c}-rewrite-login` | 1 | conflict: own PR |" in summary
    assert "### Pull requests" in summary and "/pull/" in summary


async def test_a_dry_run_prints_the_plan_and_changes_nothing(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    a, b, c = queue_three(train_repo, agent_branch_pusher)
    before = remote_branches(train_repo)
    async with GitHubClient.from_config(train_repo.config, train_repo.root) as gh:
        report = await bundler(train_repo, gh).run(dry_run=True)
    assert report.outcome is BundleOutcome.DRY_RUN
    text = "\n".join(report.lines())
    assert f"#{c} agent003/{c}-rewrite-login (1 commits): conflicts, own PR" in text
    assert (
        f"would open PR '[BUNDLE] 2 issues - 14:20 train' from bundle/20260407_1420__issues_{a}_{b}"
        in text
    )
    assert train_repo.pulls() == []
    assert remote_branches(train_repo) == before


async def test_a_rerun_after_success_creates_nothing(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    queue_three(train_repo, agent_branch_pusher)
    async with GitHubClient.from_config(train_repo.config, train_repo.root) as gh:
        await bundler(train_repo, gh).run()
        branches, pulls = remote_branches(train_repo), train_repo.pulls()
        again = await bundler(train_repo, gh).run(force=True)
    assert again.outcome is BundleOutcome.NOTHING_QUEUED
    assert remote_branches(train_repo) == branches
    assert train_repo.pulls() == pulls


async def test_a_rerun_after_a_crash_before_the_bundle_pr_reuses_the_pushed_branch(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    a, b, c = queue_three(train_repo, agent_branch_pusher)
    async with GitHubClient.from_config(train_repo.config, train_repo.root) as gh:
        # The crashed run got as far as pushing its bundle branch.
        queue, _, heads = await gather_queue(gh, train_repo.root, "main")
        train = datetime(2026, 4, 7, 14, 20, tzinfo=UTC)
        plan = await plan_merges(train_repo.root, queue, train, heads)
        await bgit.push(train_repo.root, plan.prs[0].push_sha, plan.prs[0].head)
        # Ten minutes later the next train picks up where it stopped.
        report = await bundler(train_repo, gh, datetime(2026, 4, 7, 14, 31, tzinfo=UTC)).run()
    assert report.outcome is BundleOutcome.DEPARTED
    bundles = {n for n in remote_branches(train_repo) if n.startswith("bundle/")}
    assert bundles == {f"bundle/20260407_1420__issues_{a}_{b}"}
    heads_of_prs = sorted(p["pull"]["head_ref"] for p in train_repo.pulls())
    assert heads_of_prs == sorted(
        [f"bundle/20260407_1420__issues_{a}_{b}", f"agent003/{c}-rewrite-login"]
    )


async def test_a_rerun_after_a_crash_between_pull_requests_opens_only_the_missing_one(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    _, _, c = queue_three(train_repo, agent_branch_pusher)
    async with GitHubClient.from_config(train_repo.config, train_repo.root) as gh:
        # The crashed run opened the conflict PR first, then died.
        await gh.create_pull(
            title="[AUTO] Rewrite login",
            head=f"agent003/{c}-rewrite-login",
            base="main",
            body=f"Fixes #{c}",
            labels=("merge-conflict",),
        )
        report = await bundler(train_repo, gh).run()
    assert [p.title for p in report.created] == ["[BUNDLE] 2 issues - 14:20 train"]
    assert len(train_repo.pulls()) == 2


async def test_two_bundlers_at_once_make_one_set_of_pull_requests(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    queue_three(train_repo, agent_branch_pusher)
    async with GitHubClient.from_config(train_repo.config, train_repo.root) as gh:
        first, second = await asyncio.gather(
            bundler(train_repo, gh).run(), bundler(train_repo, gh).run()
        )
    outcomes = sorted([first.outcome, second.outcome])
    assert outcomes == sorted([BundleOutcome.DEPARTED, BundleOutcome.NOTHING_QUEUED])
    assert len(train_repo.pulls()) == 2


def test_the_command_writes_a_job_summary_with_the_pr_links(
    train_repo: TrainRepo, agent_branch_pusher, tmp_path: Path
) -> None:
    queue_three(train_repo, agent_branch_pusher)
    summary = tmp_path / "summary.md"
    done = subprocess.run(
        [sys.executable, "-m", "clambake_tui.cli", "bundle", "--local", "--force"],
        cwd=train_repo.root,
        env={**os.environ, "GITHUB_STEP_SUMMARY": str(summary)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "created #" in done.stdout
    text = summary.read_text()
    assert text.startswith("## Clambake bundling")
    assert text.count("- created [#") == 2
