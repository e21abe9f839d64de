"""The trigger: Actions first; the local fallback only when allowed, and saying why."""

from __future__ import annotations

from dataclasses import replace

import pytest

from clambake_tui.bundling.trigger import ActionsUnavailableError, BundlePath, trigger_bundle
from clambake_tui.github.client import GitHubClient
from clambake_tui.github.transport import ClientSettings
from clambake_tui.sandbox.emulator.faults import Fault
from tests.fixtures.bundling import TrainRepo

FAST = ClientSettings(
    backoff_base=0.01, backoff_max=0.05, dispatch_confirm_seconds=0.2, dispatch_poll_interval=0.05
)


async def test_with_actions_down_and_no_fallback_it_says_so_and_changes_nothing(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    number = train_repo.emulator.add_issue("Fix login", labels=["route:review"])
    agent_branch_pusher(f"agent001/{number}-fix-login", {"a.txt": "a\n"})
    train_repo.emulator.add_fault(Fault.actions_down())
    config = replace(
        train_repo.config, bundling=replace(train_repo.config.bundling, fallback_local=False)
    )
    async with GitHubClient.from_config(config, train_repo.root, settings=FAST) as gh:
        with pytest.raises(ActionsUnavailableError) as caught:
            await trigger_bundle(gh, train_repo.root, config, force=True)
    message = str(caught.value)
    assert message.startswith("not bundling: Actions dispatch failed")
    assert "bundling.fallback_local is false" in message and "\n" not in message
    assert train_repo.pulls() == []


async def test_with_actions_up_the_bundle_runs_there_not_here(train_repo: TrainRepo) -> None:
    async with GitHubClient.from_config(train_repo.config, train_repo.root, settings=FAST) as gh:
        outcome = await trigger_bundle(gh, train_repo.root, train_repo.config, force=True)
    assert outcome.path is BundlePath.ACTIONS
    assert outcome.dispatch is not None and outcome.dispatch.run is not None
    assert outcome.report is None
    assert outcome.lines()[0].startswith("bundling on GitHub Actions (workflow dispatched): run ")
    run = train_repo.emulator.wait_for_run(outcome.dispatch.run.id)
    assert run["event"] == "workflow_dispatch" and run["conclusion"] == "success"


async def test_a_manual_trigger_with_manual_dispatch_switched_off_bundles_locally(
    train_repo: TrainRepo, agent_branch_pusher
) -> None:
    number = train_repo.emulator.add_issue("Fix login", labels=["route:review"])
    agent_branch_pusher(f"agent001/{number}-fix-login", {"a.txt": "a\n"})
    actions = replace(train_repo.config.github_actions, manual_trigger_enabled=False)
    config = replace(train_repo.config, github_actions=actions)
    async with GitHubClient.from_config(config, train_repo.root, settings=FAST) as gh:
        outcome = await trigger_bundle(gh, train_repo.root, config, force=True, manual=True)
    assert outcome.path is BundlePath.LOCAL
    assert outcome.reason == (
        "dispatching the bundling workflow by hand is switched off "
        "(github_actions.manual_trigger_enabled = false)"
    )
    assert train_repo.emulator.runs() == []
    (pull,) = train_repo.pulls()
    assert pull["title"] == "[AUTO] Fix login"
