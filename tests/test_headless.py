"""`clambake-tui --once`: one snapshot without Textual, and the exit code CI and cron read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from clambake_tui.engine import GitHubHealth, Snapshot, TokenStatus
from clambake_tui.model import ProcessStatus
from clambake_tui.sandbox.setup import SandboxLayout
from tests.fixtures.tui import FIXED_NOW, make_run, three_agents

# Runs `clambake-tui` in-process, then fails (exit 99) if anything imported Textual.
NO_TEXTUAL = """
import sys
from clambake_tui.cli import tui_main
code = tui_main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
if loaded:
    print("textual was imported:", loaded[:5], file=sys.stderr)
    sys.exit(99)
sys.exit(code)
"""


def once(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", NO_TEXTUAL, "--once", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )


def snapshot(**changes: object) -> Snapshot:
    base = Snapshot(
        taken_at=FIXED_NOW, repo="clambake/sandbox", token=TokenStatus.PRESENT, max_concurrent=3
    )
    return replace(base, **changes)


def test_once_prints_json_of_the_sandbox_and_never_imports_textual(sandbox: SandboxLayout) -> None:
    done = once(sandbox.work, "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["repo"] == "clambake/sandbox"
    assert data["token"] == "token set"
    assert data["agents"] == [] and data["runs"] == []
    assert data["exit_code"] == 0
    assert sandbox.token not in done.stdout + done.stderr


def test_once_prints_a_table_for_people(sandbox: SandboxLayout) -> None:
    done = once(sandbox.work)
    assert done.returncode == 0, done.stderr
    assert "clambake/sandbox" in done.stdout
    assert "Bundling runs" in done.stdout
    assert "status: healthy (exit 0)" in done.stdout


def test_once_exits_2_with_one_line_on_a_broken_config(git_repo: Path) -> None:
    (git_repo / "clambake.toml").write_text("[agents]\nmax_concurrent = 0\n")
    done = once(git_repo)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "max_concurrent" in done.stderr
    assert "Traceback" not in done.stderr


def test_once_says_when_github_cannot_be_reached_without_a_traceback(git_repo: Path) -> None:
    (git_repo / "clambake.toml").write_text(
        '[github]\nowner = "o"\nrepo = "r"\napi_url = "http://127.0.0.1:9"\n'
    )
    done = once(git_repo, "--json")
    assert "Traceback" not in done.stderr
    data = json.loads(done.stdout)
    assert data["github"] == "unreachable"
    assert data["github_status"].startswith("Actions unreachable")


def test_exit_code_is_0_when_healthy() -> None:
    assert snapshot().exit_code == 0


def test_exit_code_is_1_when_an_agent_failed(tmp_path: Path) -> None:
    from clambake_tui.engine import AgentView

    agents = tuple(AgentView(status=s) for s in three_agents(tmp_path))
    assert snapshot(agents=agents).exit_code == 1
    healthy = tuple(a for a in agents if a.status.status.state.value != "failed")
    assert snapshot(agents=healthy).exit_code == 0


def test_exit_code_is_1_when_the_last_finished_bundling_run_failed() -> None:
    failed_last = (make_run(2, 2, conclusion="failure", minutes_ago=1), make_run(1, 1))
    assert snapshot(runs=failed_last).exit_code == 1
    recovered = (make_run(3, 3, minutes_ago=0.5), *failed_last)
    assert snapshot(runs=recovered).exit_code == 0
    # A run still going does not count either way.
    running = (make_run(4, 4, status="in_progress", conclusion=None, minutes_ago=0), *failed_last)
    assert snapshot(runs=running).exit_code == 1


def test_exit_code_is_2_on_configuration_or_auth_trouble() -> None:
    assert snapshot(fatal=True, github=GitHubHealth.AUTH).exit_code == 2


def test_activity_line_reads_like_a_person_would_say_it(tmp_path: Path) -> None:
    from clambake_tui.engine import AgentView

    working = AgentView(status=three_agents(tmp_path)[0])
    assert working.activity_line(FIXED_NOW) == "12 s ago: Edit src/app.py"
    assert working.elapsed_seconds(FIXED_NOW + timedelta(seconds=30)) == 420.0
    assert working.status.status == ProcessStatus.working(FIXED_NOW - timedelta(seconds=12))
