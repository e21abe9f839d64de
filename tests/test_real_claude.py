"""The real Claude Code CLI (npm) run the way agents are run: without credentials it must fail
fast, with its own words, and leave nothing behind; and it must accept our command line."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import psutil
import pytest

from clambake_tui.agents.claude import (
    EventKind,
    StreamParser,
    agent_environment,
    build_command,
    build_prompt,
    interpret_exit,
    last_stderr_line,
    read_log,
)
from clambake_tui.config import AgentsConfig
from clambake_tui.model import AgentState, Issue, ProcessStatus
from tests.fixtures.claude import ApiFailure, ScriptedAnthropicAPI, real_claude_path
from tests.fixtures.common import git

CLAUDE, WHY_MISSING = real_claude_path()

pytestmark = [
    pytest.mark.needs_claude,
    pytest.mark.skipif(CLAUDE is None, reason=WHY_MISSING or "no claude"),
]

# Generous: the real CLI answers in about a second; this only stops a hang from eating the run.
DEADLINE_SECONDS = 90


def agents_config(**overrides: object) -> AgentsConfig:
    return AgentsConfig(claude_code_path=str(CLAUDE), **overrides)  # type: ignore[arg-type]


def bare_environment(home: Path, **extra: str) -> dict[str, str]:
    """No login anywhere: an empty HOME and nothing of the developer's Claude setup."""
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "CLAUDECODE": "1",  # as if started from a Claude Code session: must be dropped
        "CLAUDE_CODE_ENTRYPOINT": "cli",
        **extra,
    }
    return agent_environment(base, agent_id="agent001", issue_number=3, token=None)


def run_agent(
    tmp_path: Path,
    cwd: Path,
    env: dict[str, str],
    *,
    session_id: str,
    resume: bool = False,
    agents: AgentsConfig | None = None,
) -> tuple[ProcessStatus, Path, Path]:
    """Spawn the real CLI as the supervisor does and judge how it ended."""
    issue = Issue(number=3, title="Add a hello file", body="Create hello.txt containing hello.")
    prompt = build_prompt(issue, "agent001/3-add-a-hello-file", "main")
    command = build_command(
        agents or agents_config(), prompt=prompt, session_id=session_id, resume=resume
    )
    stdout_log = tmp_path / f"{session_id}-{resume}.stdout.log"
    stderr_log = tmp_path / f"{session_id}-{resume}.stderr.log"
    with stdout_log.open("wb") as out, stderr_log.open("wb") as err:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    try:
        exit_code = process.wait(timeout=DEADLINE_SECONDS)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait()
    left = [p.pid for p in psutil.process_iter() if _session_of(p.pid) == process.pid]
    assert left == [], f"processes left in the agent's session: {left}"
    activity = read_log(stdout_log)
    status = interpret_exit(activity.result, exit_code, stderr=last_stderr_line(stderr_log))
    return status, stdout_log, stderr_log


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def test_help_lists_every_flag_we_pass(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CLAUDE), "--help"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)},
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    agents = agents_config(model="sonnet", max_budget_usd=1.0)
    session = str(uuid.uuid4())
    flags = {
        arg
        for resume in (False, True)
        for arg in build_command(agents, prompt="p", session_id=session, resume=resume)
        if arg.startswith("-")
    }
    assert "-p" in flags and "--session-id" in flags and "--resume" in flags
    missing = [flag for flag in sorted(flags) if f"{flag} " not in done.stdout + " "]
    missing = [flag for flag in missing if f"{flag}," not in done.stdout]
    assert missing == [], f"claude --help does not list {missing}"
    assert "stream-json" in done.stdout
    assert AgentsConfig().permission_mode in done.stdout


EVERY_OPTION = {
    "model": "sonnet",
    "max_budget_usd": 0.5,
    "permission_mode": "default",
    "allowed_tools": ["Read", "Bash(git commit:*)"],
    "extra_args": ["--effort", "low"],
}


@pytest.mark.parametrize("options", [{}, EVERY_OPTION], ids=["defaults", "every-option"])
def test_without_credentials_the_agent_fails_fast_with_claude_codes_message(
    tmp_path: Path, git_repo: Path, options: dict[str, object]
) -> None:
    # Reaching "Not logged in" also proves the CLI took every option of our command line.
    session = str(uuid.uuid4())
    status, stdout_log, _ = run_agent(
        tmp_path,
        git_repo,
        bare_environment(tmp_path / "home"),
        session_id=session,
        agents=agents_config(**options),
    )
    assert status.state is AgentState.FAILED
    assert status.error == "Not logged in · Please run /login"
    assert status.exit_code == 1
    parser = StreamParser()
    events = parser.feed(stdout_log.read_bytes()) + parser.finish()
    assert events[0].kind is EventKind.INIT
    assert events[0].session_id == session
    assert events[-1].kind is EventKind.RESULT


def test_an_unreachable_api_fails_with_the_connection_error_after_its_retries(
    tmp_path: Path, git_repo: Path
) -> None:
    env = bare_environment(
        tmp_path / "home",
        ANTHROPIC_API_KEY="dummy-key-for-an-unreachable-api",
        # Nothing listens on the discard port: every request is refused at once.
        ANTHROPIC_BASE_URL="http://127.0.0.1:9",
        CLAUDE_CODE_MAX_RETRIES="1",
    )
    status, stdout_log, _ = run_agent(tmp_path, git_repo, env, session_id=str(uuid.uuid4()))
    assert status.state is AgentState.FAILED
    assert status.error is not None and "Connection refused" in status.error
    assert read_log(stdout_log).api_retries >= 1


def test_resuming_a_session_that_never_existed_fails_with_its_reason(
    tmp_path: Path, git_repo: Path
) -> None:
    session = str(uuid.uuid4())
    status, _, _ = run_agent(
        tmp_path, git_repo, bare_environment(tmp_path / "home"), session_id=session, resume=True
    )
    assert status.state is AgentState.FAILED
    assert status.error == f"No conversation found with session ID: {session}"


def test_reusing_a_session_id_fails_with_the_clis_stderr_message(
    tmp_path: Path, git_repo: Path
) -> None:
    session = str(uuid.uuid4())
    env = bare_environment(tmp_path / "home")
    run_agent(tmp_path, git_repo, env, session_id=session)
    status, stdout_log, _ = run_agent(tmp_path, git_repo, env, session_id=session, resume=False)
    if status.error == "Not logged in · Please run /login":
        pytest.skip("this CLI version did not keep the session of a run that was not logged in")
    assert status.state is AgentState.FAILED
    assert status.error == (
        f"exited with code 1 without a result: Error: Session ID {session} is already in use."
    )
    assert stdout_log.read_bytes() == b""


def test_a_whole_run_against_a_scripted_api_completes_with_a_commit_on_the_agents_branch(
    tmp_path: Path, git_repo: Path, origin_repo: Path, anthropic_api: ScriptedAnthropicAPI
) -> None:
    worktree = tmp_path / "worktrees" / "agent001-3"
    branch = "agent001/3-add-a-hello-file"
    git(git_repo, "worktree", "add", "-q", "-b", branch, str(worktree), "main")
    anthropic_api.workdir = worktree
    env = bare_environment(tmp_path / "home", **anthropic_api.environment())
    for name in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ):
        env[name] = os.environ[name]
    status, stdout_log, _ = run_agent(tmp_path, worktree, env, session_id=str(uuid.uuid4()))
    assert status.state is AgentState.COMPLETED, status
    assert status.exit_code == 0
    assert (worktree / "hello.txt").read_text() == "hello\n"
    assert git(worktree, "log", "-1", "--format=%s", branch) == "Add hello.txt"
    assert git(git_repo, "log", "-1", "--format=%s", "main") == "initial commit"
    assert git(origin_repo, "branch", "--list", branch) == "", "nothing was pushed"
    activity = read_log(stdout_log)
    assert activity.result is not None and activity.result.num_turns == 3
    # The model was asked three times (write, commit, done), with our prompt.
    agent_turns = [r for r in anthropic_api.requests if r.get("tools")]
    assert len(agent_turns) == 3
    assert "issue #3: Add a hello file" in json.dumps(agent_turns[0]["messages"])


def test_an_overloaded_api_fails_with_claude_codes_message(
    tmp_path: Path, git_repo: Path, anthropic_api: ScriptedAnthropicAPI
) -> None:
    anthropic_api.failure = ApiFailure(529, "overloaded_error", "Overloaded")
    env = bare_environment(
        tmp_path / "home", **anthropic_api.environment(CLAUDE_CODE_MAX_RETRIES="1")
    )
    status, stdout_log, _ = run_agent(tmp_path, git_repo, env, session_id=str(uuid.uuid4()))
    assert status.state is AgentState.FAILED
    assert status.error is not None
    assert status.error.startswith("API Error: ")
    assert "529" in status.error
    assert read_log(stdout_log).api_retries == 1
