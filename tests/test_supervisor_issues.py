"""Issues from GitHub (the emulator over real HTTP): claimed before the agent starts, given back
when the spawn fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from clambake_tui.agents.issue_source import GitHubIssueSource
from clambake_tui.config import AgentsConfig, Config, GitHubConfig
from clambake_tui.errors import AgentError
from clambake_tui.model import AgentState
from clambake_tui.sandbox.emulator import Emulator
from clambake_tui.state import Paths
from tests.fixtures.agents import make_manager
from tests.fixtures.emulator import EMULATOR_OWNER, EMULATOR_REPO


def _config(emulator: Emulator, agent: Path | str) -> Config:
    return Config(
        agents=AgentsConfig(claude_code_path=str(agent), max_restarts=0),
        github=GitHubConfig(owner=EMULATOR_OWNER, repo=EMULATOR_REPO, api_url=emulator.url),
    )


@pytest.fixture
def github_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setenv("GH_TOKEN", emulator.token)
    return emulator


async def test_spawning_by_number_reads_the_issue_and_claims_it_first(
    github_env: Emulator, agent_paths: Paths, tiny_agent: Path
) -> None:
    number = github_env.add_issue("Fix the login page", "It breaks.", ["route:ready"])
    config = _config(github_env, tiny_agent)
    manager = make_manager(agent_paths, config, issues=GitHubIssueSource(config, agent_paths.root))
    async with manager:
        process = await manager.spawn_agent("agent004", number)
        assert process.branch_name == f"agent004/{number}-fix-the-login-page"
        assert process.issue_title == "Fix the login page"
        issue = github_env.issue(number)
        assert "agent004" in [label["name"] for label in issue["labels"]]
        assert [a["login"] for a in issue["assignees"]] == [github_env.store.login]
        final = await manager.terminate_agent(process.process_id)
    assert final.status.state is AgentState.TERMINATED


async def test_a_failed_spawn_gives_the_claim_back(
    github_env: Emulator, agent_paths: Paths
) -> None:
    number = github_env.add_issue("Something", "", ["route:ready"])
    config = _config(github_env, "/nonexistent/claude")
    manager = make_manager(agent_paths, config, issues=GitHubIssueSource(config, agent_paths.root))
    with pytest.raises(AgentError, match="cannot start /nonexistent/claude"):
        await manager.spawn_agent("agent005", number)
    await manager.close()
    issue = github_env.issue(number)
    assert [label["name"] for label in issue["labels"]] == ["route:ready"]
    assert issue["assignees"] == []


async def test_human_only_issues_are_refused(github_env: Emulator, agent_paths: Paths) -> None:
    number = github_env.add_issue("Sensitive", "", ["route:human-only"])
    config = _config(github_env, "/bin/true")
    manager = make_manager(agent_paths, config, issues=GitHubIssueSource(config, agent_paths.root))
    with pytest.raises(AgentError, match="route:human-only"):
        await manager.spawn_agent("agent001", number)
    await manager.close()
    assert github_env.issue_labels(number) == ["route:human-only"]
