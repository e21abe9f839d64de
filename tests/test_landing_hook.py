"""The supervisor's `on_agent_finished` hook: lands successes, never raises into the watcher."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from clambake_tui.agents.hooks import on_agent_finished
from clambake_tui.config import load_config
from clambake_tui.model import AgentProcess, AgentResult, ProcessStatus
from clambake_tui.state import Paths


def process(root: Path, status: ProcessStatus) -> AgentProcess:
    return AgentProcess(
        process_id="agent001-1-x",
        agent_id="agent001",
        issue_number=1,
        branch_name="agent001/1-x",
        status=status,
        started_at=datetime.now(UTC),
        pid=None,
        worktree=root / "missing-worktree",
        log_path=root / "none.log",
        result=AgentResult(is_error=False, subtype="success"),
    )


async def test_a_landing_that_cannot_reach_github_is_logged_not_raised(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no `gh` to find a token with
    paths = Paths(git_repo)
    paths.ensure_state()
    from clambake_tui.logs import configure_logging

    configure_logging(paths.logs)
    await on_agent_finished(process(git_repo, ProcessStatus.completed(0)), paths, load_config(None))
    log = (paths.logs / "clambake.jsonl").read_text()
    assert '"event": "landing failed"' in log


async def test_an_unsuccessful_run_is_left_alone(git_repo: Path) -> None:
    paths = Paths(git_repo)
    await on_agent_finished(
        process(git_repo, ProcessStatus.failed("crashed", 1)), paths, load_config(None)
    )
    assert not paths.metrics.exists()


def test_a_rollback_lever_set_after_the_spawn_reaches_the_landing(tmp_path: Path) -> None:
    from clambake_tui.agents.hooks import _with_current_levers
    from clambake_tui.config import set_value

    path = tmp_path / "clambake.toml"
    path.write_text("[agents]\nmax_concurrent = 3\n\n[github_actions]\nenabled = true\n")
    at_spawn = load_config(path)
    set_value(path, "github_actions.enabled", "false")
    set_value(path, "agents.max_concurrent", "9")
    now = _with_current_levers(at_spawn)
    assert now.github_actions.enabled is False  # the lever reaches a landing happening now
    assert now.agents.max_concurrent == 3  # the run itself keeps what it was started with
    path.write_text("[github_actions\nbroken")
    assert _with_current_levers(at_spawn) == at_spawn  # a broken file keeps the spawn's values


def test_a_lever_the_spawn_switched_off_stays_off(tmp_path: Path) -> None:
    from clambake_tui.agents.hooks import _with_current_levers

    path = tmp_path / "clambake.toml"
    path.write_text("[github_actions]\nenabled = true\n")
    at_spawn = load_config(path, env={"CLAMBAKE_GITHUB_ACTIONS__ENABLED": "false"})
    assert _with_current_levers(at_spawn).github_actions.enabled is False


def test_a_landing_by_hand_keeps_off_what_the_spawn_switched_off(tmp_path: Path) -> None:
    from clambake_tui.agents.hooks import landing_config

    path = tmp_path / "clambake.toml"
    path.write_text("[github_actions]\nenabled = true\n")
    now = load_config(path)
    spawned_off = load_config(path, env={"CLAMBAKE_GITHUB_ACTIONS__ENABLED": "false"})
    assert landing_config(now, spawned_off).github_actions.enabled is False
    assert landing_config(now, now).github_actions.enabled is True
    assert landing_config(now).github_actions.enabled is True
    from clambake_tui.config import set_value

    set_value(path, "github_actions.enabled", "false")  # the lever, read again at the landing
    assert landing_config(now, now).github_actions.enabled is False
