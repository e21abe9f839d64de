"""Re-record what the real Claude Code CLI prints headless on good and bad days (see README.md).

Usage, from the repository root: .venv/bin/python tests/data/claude/record.py [path/to/claude]
(default node_modules/.bin/claude). Set RECORD_SLOW=1 to also record the three-minute run with
the default ten retries against an unreachable API.

Each run gets an empty HOME (no login), a fresh git repository as cwd, stdin /dev/null and its
own session, and the command line the supervisor builds (prompt aside). The API, where there is
one, is the scripted Messages API of tests/fixtures/claude.py on 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from clambake_tui.agents.claude import agent_environment, build_command  # noqa: E402
from clambake_tui.config import AgentsConfig  # noqa: E402
from tests.fixtures.claude import ApiFailure, ScriptedAnthropicAPI  # noqa: E402

PROMPT = "Create hello.txt containing hello and commit it"
UNREACHABLE = {"ANTHROPIC_API_KEY": "dummy-key", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
FAILURES = {
    "http-401-invalid-key": ApiFailure(401, "authentication_error", "invalid x-api-key"),
    "http-429-rate-limited": ApiFailure(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit",
    ),
    "http-529-overloaded": ApiFailure(529, "overloaded_error", "Overloaded"),
    "http-400-invalid-request": ApiFailure(
        400, "invalid_request_error", "model: claude-nonexistent is not a valid model"
    ),
}


def record(
    claude: Path,
    version: str,
    name: str,
    env: dict[str, str],
    *,
    api: ScriptedAnthropicAPI | None = None,
    resume: bool = False,
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch) / "work"
        work.mkdir()
        if api is not None:
            api.workdir = work
        identity = {
            "GIT_AUTHOR_NAME": "Recorder",
            "GIT_AUTHOR_EMAIL": "recorder@clambake.invalid",
            "GIT_COMMITTER_NAME": "Recorder",
            "GIT_COMMITTER_EMAIL": "recorder@clambake.invalid",
        }
        subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
        subprocess.run(
            ["git", "-C", str(work), "commit", "-q", "--allow-empty", "-m", "init"],
            check=True,
            env={**os.environ, **identity},
        )
        base = {"PATH": "/usr/bin:/bin", "HOME": f"{scratch}/home", **identity, **env}
        full_env = agent_environment(base, agent_id="agent001", issue_number=1, token=None)
        command = build_command(
            AgentsConfig(claude_code_path=str(claude)),
            prompt=PROMPT,
            session_id=str(uuid.uuid4()),
            resume=resume,
        )
        target = HERE / f"{name}-{version}.jsonl"
        started = time.monotonic()
        with target.open("wb") as out:
            done = subprocess.run(
                command,
                cwd=work,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE,
                start_new_session=True,
                check=False,
            )
        took = time.monotonic() - started
        stderr = done.stderr.decode("utf-8", "replace").strip()[:200]
        print(f"{target.name}: exit {done.returncode} after {took:.1f} s; stderr: {stderr!r}")


def main() -> int:
    default = HERE.parents[2] / "node_modules" / ".bin" / "claude"
    claude = Path(sys.argv[1] if len(sys.argv) > 1 else default).resolve()
    version = subprocess.run(
        [str(claude), "--version"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    record(claude, version, "not-logged-in", {})
    record(claude, version, "resume-unknown-session", {}, resume=True)
    record(
        claude,
        version,
        "network-refused-2-retries",
        {**UNREACHABLE, "CLAUDE_CODE_MAX_RETRIES": "2"},
    )
    if os.environ.get("RECORD_SLOW") == "1":
        record(claude, version, "network-refused", UNREACHABLE)
    for name, failure in FAILURES.items():
        api = ScriptedAnthropicAPI(failure=failure).start()
        try:
            record(claude, version, name, api.environment(CLAUDE_CODE_MAX_RETRIES="2"), api=api)
        finally:
            api.stop()
    api = ScriptedAnthropicAPI().start()
    try:
        record(claude, version, "scripted-success", api.environment(), api=api)
    finally:
        api.stop()
    # A command outside the allowed tools ("Bash(git:*)"): refused, and the run goes on.
    api = ScriptedAnthropicAPI(bash_command="curl -s http://127.0.0.1:9/").start()
    try:
        record(claude, version, "permission-denied", api.environment(), api=api)
    finally:
        api.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
