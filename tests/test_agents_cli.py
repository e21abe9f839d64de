"""`clambake spawn | monitor | terminate | status`, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.agents import STANDIN

CLAMBAKE = Path(sys.executable).parent / "clambake"


@pytest.fixture
def repo(git_repo: Path) -> Path:
    (git_repo / "clambake.toml").write_text(
        f'[agents]\nclaude_code_path = "{STANDIN}"\nterminate_grace_seconds = 1\nmax_restarts = 0\n'
    )
    return git_repo


def clambake(
    repo: Path, *args: str, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLAMBAKE), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )


def test_spawn_then_monitor_follows_the_log_until_the_agent_ends(repo: Path) -> None:
    spawned = clambake(
        repo,
        "spawn",
        "--agent",
        "agent001",
        "--issue",
        "12",
        "--title",
        "Fix the login page",
        "--body",
        "standin-mode: succeed\nstandin-delay: 0.2",
    )
    assert spawned.returncode == 0, spawned.stderr
    assert (
        "agent001 started on #12 'Fix the login page': branch agent001/12-fix-the-login-page"
        in spawned.stdout
    )
    followed = clambake(repo, "monitor", "--agent", "agent001")
    assert followed.returncode == 0, followed.stderr
    assert "status    " in followed.stdout
    assert "Write notes/issue-12.md" in followed.stdout
    last_two = followed.stdout.rstrip().splitlines()[-2:]
    assert last_two[0].startswith("done: success")
    assert last_two[1] == "agent001 completed (exit 0)"


def test_monitor_once_json_reports_a_finished_agent(repo: Path) -> None:
    clambake(
        repo,
        "spawn",
        "--agent",
        "agent002",
        "--issue",
        "3",
        "--title",
        "t",
        "--body",
        "standin-mode: fail",
    )
    followed = clambake(repo, "monitor", "--agent", "agent002", "--json")
    lines = [json.loads(line) for line in followed.stdout.splitlines()]
    assert lines[-1]["type"] == "final"
    assert lines[-1]["status"]["state"] == "failed"
    assert followed.returncode == 1
    once = clambake(repo, "monitor", "--agent", "agent002", "--once", "--json")
    [status] = [json.loads(line) for line in once.stdout.splitlines()]
    assert status["status"]["error"].startswith("stand-in failure")
    assert status["failure_mode"] == "error"


def test_terminate_stops_a_running_agent_and_status_shows_it(repo: Path) -> None:
    clambake(
        repo,
        "spawn",
        "--agent",
        "agent003",
        "--issue",
        "4",
        "--title",
        "t",
        "--body",
        "standin-mode: hang",
    )
    running = clambake(repo, "status", "--json")
    [entry] = json.loads(running.stdout)
    assert entry["status"]["state"] in ("starting", "working")
    stopped = clambake(repo, "terminate", "--agent", "agent003")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == "agent003 (#4): terminated"
    table = clambake(repo, "status")
    assert "agent003" in table.stdout and "terminated" in table.stdout
    again = clambake(repo, "terminate", "--agent", "agent003")
    assert "agent003 is not running" in again.stdout


def test_terminate_all_stops_every_running_agent(repo: Path) -> None:
    for n in (1, 2):
        clambake(
            repo,
            "spawn",
            "--agent",
            f"agent00{n}",
            "--issue",
            str(n),
            "--title",
            "t",
            "--body",
            "standin-mode: hang",
        )
    stopped = clambake(repo, "terminate", "--all")
    assert stopped.returncode == 0
    assert sorted(stopped.stdout.splitlines()) == [
        "agent001 (#1): terminated",
        "agent002 (#2): terminated",
    ]
    assert "no agent is running" in clambake(repo, "terminate", "--all").stdout


def test_an_unknown_agent_is_a_clear_one_line_error(repo: Path) -> None:
    for command in ("monitor", "terminate"):
        done = clambake(repo, command, "--agent", "agent042")
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [
            "clambake: error: unknown agent agent042: it has no run here; `clambake status` lists them"
        ]


def test_agent_ids_outside_the_range_are_refused(repo: Path) -> None:
    done = clambake(repo, "spawn", "--agent", "agent1000", "--issue", "1", "--title", "t")
    assert done.returncode == 1
    assert "agent id 'agent1000' is not valid: use agent001 ... agent999" in done.stderr


def test_disabled_agents_refuse_to_spawn_and_say_why(repo: Path) -> None:
    done = clambake(
        repo,
        "spawn",
        "--agent",
        "agent001",
        "--issue",
        "1",
        "--title",
        "t",
        CLAMBAKE_AGENTS__ENABLED="false",
    )
    assert done.returncode == 1
    assert "agents are disabled (agents.enabled = false)" in done.stderr
    assert "Traceback" not in done.stderr


def test_spawn_without_title_and_github_unreachable_is_one_clear_line(repo: Path) -> None:
    done = clambake(
        repo,
        "spawn",
        "--agent",
        "agent001",
        "--issue",
        "1",
        CLAMBAKE_GITHUB__API_URL="http://127.0.0.1:9",
        GH_TOKEN="ghp_" + "x" * 36,
        timeout=120,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("clambake: error: cannot read issue #1 from GitHub:")
    assert "--title" in lines[0]
    assert "ghp_" not in done.stderr


def test_spawn_help_says_over_the_limit_is_refused_not_queued(repo: Path) -> None:
    done = clambake(repo, "spawn", "--help")
    assert "refused, not queued" in " ".join(done.stdout.split())


def test_status_before_any_agent(repo: Path) -> None:
    done = clambake(repo, "status")
    assert done.returncode == 0
    assert "no agents yet" in done.stdout
