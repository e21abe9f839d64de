"""The stand-in agent: Claude Code's flags and stream-json, a real commit, and each bad day."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from clambake_tui.agents.claude import (
    EventKind,
    StreamEvent,
    agent_environment,
    build_command,
    build_prompt,
    interpret_exit,
)
from clambake_tui.config import AgentsConfig
from clambake_tui.model import AgentState, Issue
from tests.fixtures.claude import AgentRun, standin_path
from tests.fixtures.common import git

SESSION = "9b2f0c1e-3d4a-4b5c-8d6e-7f8091a2b3c4"


def kinds(run: AgentRun) -> list[EventKind]:
    return [e.kind for e in run.events]


def result_of(run: AgentRun) -> StreamEvent:
    results = [e for e in run.events if e.kind is EventKind.RESULT]
    assert len(results) == 1, [e.summary for e in run.events]
    return results[0]


def commits(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s").splitlines()


def is_result(event: StreamEvent) -> bool:
    return event.kind is EventKind.RESULT


def test_succeed_edits_a_file_and_commits_it_without_pushing(
    spawn_standin, git_repo: Path, origin_repo: Path
) -> None:
    before = git(origin_repo, "rev-parse", "main")
    run = spawn_standin("Issue #7: Add notes", "--session-id", SESSION)
    assert run.finish() == 0
    assert kinds(run)[:2] == [EventKind.INIT, EventKind.RATE_LIMIT]
    init = run.events[0]
    assert init.session_id == SESSION
    assert init.text == str(git_repo)
    tools = [e.summary for e in run.events if e.kind is EventKind.TOOL_USE]
    assert tools[0] == "Write notes/issue-7.md"
    assert tools[1].startswith("Bash: git add notes/issue-7.md && git commit")
    assert all(e.is_error is False for e in run.events if e.kind is EventKind.TOOL_RESULT)
    result = result_of(run).result
    assert result is not None and result.succeeded
    assert result.session_id == SESSION
    assert result.num_turns == 3
    assert interpret_exit(result, 0).state is AgentState.COMPLETED
    assert (git_repo / "notes" / "issue-7.md").read_text().startswith("Notes on issue #7")
    assert commits(git_repo)[0] == "Update notes/issue-7.md for issue #7"
    assert git(git_repo, "status", "--porcelain") == ""
    assert git(origin_repo, "rev-parse", "main") == before, "the stand-in never pushes"


def test_assistant_lines_of_one_message_share_its_id(spawn_standin) -> None:
    run = spawn_standin()
    assert run.finish() == 0
    text, write = [e for e in run.events if e.kind in (EventKind.TEXT, EventKind.TOOL_USE)][:2]
    assert text.message_id == write.message_id
    assert text.message_id is not None


def test_the_prompt_picks_the_file_and_its_content(spawn_standin, git_repo: Path) -> None:
    prompt = (
        "Issue #3: conflict\n\nstandin-file: src/shared.txt\nstandin-content: line one\\nline two"
    )
    run = spawn_standin(prompt)
    assert run.finish() == 0
    assert (git_repo / "src" / "shared.txt").read_text() == "line one\nline two\n"
    assert commits(git_repo)[0] == "Update src/shared.txt for issue #3"


def test_the_issue_number_comes_from_the_environment_first(spawn_standin, git_repo: Path) -> None:
    run = spawn_standin(
        "Issue #3: x", env={"CLAMBAKE_ISSUE": "11", "CLAMBAKE_AGENT_ID": "agent004"}
    )
    assert run.finish() == 0
    assert (
        git_repo / "notes" / "issue-11.md"
    ).read_text() == "Notes on issue #11, written by agent004.\n"


def test_a_resumed_run_with_its_work_already_committed_succeeds(
    spawn_standin, git_repo: Path
) -> None:
    assert spawn_standin("Issue #5: x", "--session-id", SESSION).finish() == 0
    again = spawn_standin("Issue #5: x", "--resume", SESSION)
    assert again.finish() == 0
    assert again.events[0].session_id == SESSION
    result = result_of(again).result
    assert result is not None and result.succeeded
    assert commits(git_repo).count("Update notes/issue-5.md for issue #5") == 1


def test_fail_reports_an_error_result_and_changes_nothing(spawn_standin, git_repo: Path) -> None:
    run = spawn_standin("Issue #7: x\nstandin-mode: fail")
    assert run.finish() == 1
    result = result_of(run).result
    assert result is not None and result.is_error
    status = interpret_exit(result, 1)
    assert status.state is AgentState.FAILED
    assert status.error == "stand-in failure: the task could not be completed"
    assert any(e.kind is EventKind.TOOL_RESULT and e.is_error for e in run.events)
    assert commits(git_repo) == ["initial commit"]
    assert git(git_repo, "status", "--porcelain") == ""


def test_auth_error_looks_like_the_real_not_logged_in_run(spawn_standin) -> None:
    run = spawn_standin("x", env={"CLAMBAKE_STANDIN_MODE": "auth-error"})
    assert run.finish() == 1
    assert kinds(run) == [EventKind.INIT, EventKind.TEXT, EventKind.RESULT]
    assert run.events[1].summary == "error: Not logged in · Please run /login"
    result = run.events[2].result
    assert result is not None
    assert (result.subtype, result.is_error) == ("success", True)
    assert interpret_exit(result, 1).error == "Not logged in · Please run /login"
    lines = [json.loads(raw) for raw in bytes(run.raw).splitlines()]
    assert lines[1]["error"] == "authentication_failed"


def test_crash_exits_mid_stream_without_a_result(spawn_standin, git_repo: Path) -> None:
    run = spawn_standin("x", "--standin-mode", "crash")
    assert run.finish() == 1
    assert EventKind.RESULT not in kinds(run)
    assert run.events[-1].kind is EventKind.NOISE  # the line it was writing when it died
    assert "stand-in crash" in run.stderr
    assert interpret_exit(None, 1).error == "exited with code 1 without a result"
    assert commits(git_repo) == ["initial commit"]


def test_hang_goes_silent_after_init(spawn_standin) -> None:
    run = spawn_standin("x\nstandin-mode: hang")
    run.read_until(lambda e: e.kind is EventKind.INIT)
    assert kinds(run) == [EventKind.INIT]
    assert run.process.poll() is None
    run.process.terminate()
    assert run.process.wait(timeout=30) == -signal.SIGTERM


def test_ignore_sigterm_keeps_working_after_sigterm(spawn_standin) -> None:
    run = spawn_standin("x", env={"CLAMBAKE_STANDIN_MODE": "ignore-sigterm"})
    run.read_until(lambda e: e.kind is EventKind.TOOL_USE)
    os.killpg(run.pid, signal.SIGTERM)
    seen = len(run.events)
    # Still alive and still working after the SIGTERM.
    run.read_until(lambda e: e.kind is EventKind.TOOL_USE, start=seen)
    assert run.process.poll() is None
    os.killpg(run.pid, signal.SIGKILL)
    assert run.process.wait(timeout=30) == -signal.SIGKILL


def test_ignore_sigterm_finishes_when_its_slow_work_is_done(spawn_standin) -> None:
    run = spawn_standin(
        "x\nstandin-mode: ignore-sigterm", env={"CLAMBAKE_STANDIN_SLOW_SECONDS": "0"}
    )
    assert run.finish() == 0
    assert result_of(run).result is not None


def test_fork_grandchild_leaves_a_process_in_a_new_session(spawn_standin) -> None:
    run = spawn_standin("x\nstandin-mode: fork-grandchild")
    started = run.read_until(lambda e: e.kind is EventKind.TOOL_RESULT)
    assert started.text is not None
    grandchild_pid = int(started.text.rsplit(" ", 1)[1])
    run.extra_pids.append(grandchild_pid)
    grandchild = psutil.Process(grandchild_pid)
    assert grandchild.ppid() == run.pid
    # The stand-in reports the pid once the grandchild has left for its own session and exec'd.
    assert grandchild.name() == "sleep"
    assert os.getsid(grandchild_pid) == grandchild_pid != os.getsid(run.pid)
    assert os.getpgid(grandchild_pid) != os.getpgid(run.pid)
    assert run.process.poll() is None, "the stand-in itself hangs on"
    assert EventKind.RESULT not in kinds(run)


def test_flood_writes_the_lines_it_was_asked_for_then_succeeds(
    spawn_standin, git_repo: Path
) -> None:
    run = spawn_standin(
        "Issue #2: x",
        "--standin-mode",
        "flood",
        env={"CLAMBAKE_STANDIN_FLOOD_RATE": "4000", "CLAMBAKE_STANDIN_FLOOD_SECONDS": "0.5"},
    )
    assert run.finish() == 0
    flood = [e for e in run.events if e.summary.startswith("flood line ")]
    assert len(flood) == 2000
    assert flood[-1].summary == "flood line 2000 of 2000"
    assert len({e.message_id for e in flood}) == 1
    assert result_of(run).result is not None
    assert commits(git_repo)[0] == "Update notes/issue-2.md for issue #2"


def test_garbage_mixes_bytes_and_noise_with_events_then_succeeds(
    spawn_standin, git_repo: Path
) -> None:
    run = spawn_standin("Issue #8: x\nstandin-mode: garbage")
    assert run.finish() == 0
    assert b"\xff\xfe" in run.raw
    noise = [e for e in run.events if e.kind is EventKind.NOISE]
    assert len(noise) >= 5
    assert EventKind.UNKNOWN in kinds(run)
    result = result_of(run).result
    assert result is not None and result.succeeded
    assert commits(git_repo)[0] == "Update notes/issue-8.md for issue #8"


def test_linger_sends_its_result_and_does_not_exit(spawn_standin, git_repo: Path) -> None:
    run = spawn_standin("Issue #9: x\nstandin-mode: linger")
    result = run.read_until(is_result).result
    assert result is not None and result.succeeded
    assert run.process.poll() is None
    os.killpg(run.pid, signal.SIGTERM)
    exit_code = run.process.wait(timeout=30)
    status = interpret_exit(result, exit_code, killed=True)
    assert status.state is AgentState.COMPLETED
    assert commits(git_repo)[0] == "Update notes/issue-9.md for issue #9"


def test_mode_flag_beats_environment_beats_prompt(spawn_standin) -> None:
    env = {"CLAMBAKE_STANDIN_MODE": "fail"}
    assert spawn_standin("standin-mode: crash", "--standin-mode", "succeed", env=env).finish() == 0
    run = spawn_standin("standin-mode: crash", env=env)
    assert run.finish() == 1
    assert result_of(run).result is not None  # fail, not crash
    assert spawn_standin("- standin-mode: `auth-error`").finish() == 1


def test_unknown_mode_is_refused(spawn_standin) -> None:
    run = spawn_standin("x", "--standin-mode", "explode")
    assert run.finish() == 2
    assert "unknown mode 'explode'" in run.stderr


def test_budget_below_the_cost_stops_with_the_budget_error(spawn_standin, git_repo: Path) -> None:
    run = spawn_standin("x", "--max-budget-usd", "0.01")
    assert run.finish() == 1
    result = result_of(run).result
    assert result is not None
    assert result.subtype == "error_max_budget_usd"
    assert commits(git_repo) == ["initial commit"]


def test_outside_a_git_repository_the_commit_fails_clearly(spawn_standin, tmp_path: Path) -> None:
    plain = tmp_path / "not-a-repo"
    plain.mkdir()
    env = {"GIT_CEILING_DIRECTORIES": str(tmp_path)}
    run = spawn_standin("Issue #1: x", cwd=plain, env=env)
    assert run.finish() == 1
    status = interpret_exit(result_of(run).result, 1)
    assert status.error is not None and "not a git repository" in status.error


def run_plain(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(standin_path()), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "CLAMBAKE_STANDIN_DELAY": "0"},
        timeout=60,
        check=False,
    )


def test_flags_are_checked_like_the_real_cli(git_repo: Path) -> None:
    no_verbose = run_plain("-p", "x", "--output-format", "stream-json", cwd=git_repo)
    assert no_verbose.returncode == 1
    assert no_verbose.stderr.strip() == (
        "Error: When using --print, --output-format=stream-json requires --verbose"
    )
    both = run_plain(
        "-p", "x", "--output-format", "stream-json", "--verbose",
        "--session-id", SESSION, "--resume", SESSION, cwd=git_repo,
    )  # fmt: skip
    assert both.returncode == 1
    assert "--fork-session" in both.stderr
    bad_id = run_plain("-p", "x", "--session-id", "nope", cwd=git_repo)
    assert bad_id.returncode == 1
    no_prompt = run_plain("-p", cwd=git_repo)
    assert no_prompt.returncode == 1
    assert "Input must be provided" in no_prompt.stderr


def test_unknown_flags_and_lists_are_ignored(git_repo: Path) -> None:
    done = run_plain(
        "--some-future-flag", "-p", "Issue #4: x", "--allowedTools", "Read", "Bash(git commit:*)",
        "--output-format=json", "--add-dir", "/tmp", "--effort", "high", "--verbose", cwd=git_repo,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["type"], result["is_error"]) == ("result", False)


def test_text_output_prints_only_the_final_answer(git_repo: Path) -> None:
    done = run_plain("-p", "Issue #4: x", cwd=git_repo)
    assert done.returncode == 0
    assert done.stdout.startswith("Done: created `notes/issue-4.md`")


def test_runs_the_exact_command_line_and_environment_we_give_claude(git_repo: Path) -> None:
    agents = AgentsConfig(
        claude_code_path=str(standin_path()), model="sonnet", max_budget_usd=5.0,
        extra_args=["--append-system-prompt", "Be brief."],
    )  # fmt: skip
    prompt = build_prompt(
        Issue(number=21, title="Add notes", body="Please."), "agent003/21-add-notes", "main"
    )
    command = build_command(agents, prompt=prompt, session_id=SESSION)
    env = agent_environment(
        {**os.environ, "CLAMBAKE_STANDIN_DELAY": "0", "CLAMBAKE_AGENTS__MODEL": "x"},
        agent_id="agent003",
        issue_number=21,
        token="ghp_" + "t" * 36,
    )
    run = AgentRun(command, git_repo, env)
    try:
        assert run.finish() == 0
    finally:
        run.kill()
    assert run.events[0].model == "sonnet"
    assert run.events[0].session_id == SESSION
    assert (
        git_repo / "notes" / "issue-21.md"
    ).read_text() == "Notes on issue #21, written by agent003.\n"


def test_runs_as_a_module_too(git_repo: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clambake_tui.sandbox.standin_agent", "-p", "x", "--standin-mode", "auth-error"],
        cwd=git_repo, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Not logged in" in done.stdout


def test_a_reader_that_goes_away_does_not_make_it_hang_or_trace(git_repo: Path) -> None:
    process = subprocess.Popen(
        [str(standin_path()), "-p", "x", "--output-format", "stream-json", "--verbose", "--standin-mode", "flood"],
        cwd=git_repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "CLAMBAKE_STANDIN_DELAY": "0", "CLAMBAKE_STANDIN_FLOOD_SECONDS": "30"},
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    assert process.wait(timeout=30) == 1
    assert b"Traceback" not in process.stderr.read()
    process.stderr.close()


@pytest.mark.parametrize("mode", ["succeed", "fail", "auth-error", "crash", "garbage"])
def test_every_finishing_mode_leaves_no_process_behind(spawn_standin, mode: str) -> None:
    run = spawn_standin("Issue #1: x", "--standin-mode", mode)
    run.finish()
    alive = [p for p in psutil.process_iter(["pid"]) if _in_session(p.pid, run.pid)]
    assert alive == []


def _in_session(pid: int, sid: int) -> bool:
    try:
        return os.getsid(pid) == sid
    except OSError:
        return False


def test_help_and_version_answer_like_the_real_cli(git_repo: Path) -> None:
    helped = run_plain("--help", cwd=git_repo)
    assert helped.returncode == 0
    assert "standin-mode" in helped.stdout
    version = run_plain("--version", cwd=git_repo)
    assert version.returncode == 0
    assert version.stdout == "2.1.332-standin (Claude Code stand-in)\n"


def test_works_in_a_git_worktree_on_the_agents_branch(spawn_standin, git_repo: Path) -> None:
    worktree = git_repo.parent / "wt-agent001-6"
    git(git_repo, "worktree", "add", "-q", "-b", "agent001/6-notes", str(worktree), "main")
    run = spawn_standin("Issue #6: notes", cwd=worktree)
    assert run.finish() == 0
    assert git(worktree, "log", "-1", "--format=%s", "agent001/6-notes") == (
        "Update notes/issue-6.md for issue #6"
    )
    vcs = [e for e in run.events if e.raw_type == "system/vcs_state_changed"]
    assert len(vcs) == 1
    assert "on branch `agent001/6-notes`" in (run.events[-2].text or "")
    assert git(git_repo, "log", "-1", "--format=%s", "main") == "initial commit"
    assert not (git_repo / "notes").exists()


def test_the_delay_flag_paces_the_events(spawn_standin) -> None:
    run = spawn_standin("Issue #1: x", "--standin-delay", "0.1")
    assert run.finish() == 0
    result = result_of(run).result
    assert result is not None and result.duration_ms is not None
    # Seven pauses between the events of a successful run, each at least the delay.
    assert result.duration_ms >= 700


def test_a_file_outside_the_worktree_is_refused(spawn_standin, git_repo: Path) -> None:
    run = spawn_standin("Issue #2: x\nstandin-file: ../escaped.txt")
    assert run.finish() == 1
    status = interpret_exit(result_of(run).result, 1)
    assert status.error == "refusing to write ../escaped.txt: it is outside the working directory"
    assert not (git_repo.parent / "escaped.txt").exists()


def test_a_nonsense_delay_falls_back_to_the_default(spawn_standin) -> None:
    assert spawn_standin("Issue #2: x", "--standin-delay", "nan").finish() == 0


def test_the_stand_in_imports_almost_nothing_at_start() -> None:
    # It is started hundreds of times by the soak tests: every import costs each start.
    probe = (
        "import sys; before = set(sys.modules); import clambake_tui.sandbox.standin_agent; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(done.stdout.split())
    assert loaded <= {
        "clambake_tui",
        "clambake_tui.sandbox",
        "clambake_tui.sandbox.standin_agent",
        "json",
        "json.decoder",
        "json.encoder",
        "json.scanner",
        "_json",
        "signal",
    }, loaded
