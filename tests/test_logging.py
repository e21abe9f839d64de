"""Structured logs: JSON lines with agent fields, rotation, and no secret ever written."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clambake_tui.logs import LOG_FILE_NAME, agent_event, configure_logging, get_logger
from clambake_tui.redact import REDACTED, redact, register_env_secrets

# Shaped like the real things, invented for the test.
CLASSIC = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
FINE_GRAINED = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"
ANTHROPIC = "sk-ant-" + "api03-Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0"
BEARER = "opaque.bearer.value-42"
# A token that matches no pattern: only knowing it from the environment can hide it.
PLAIN_ENV_TOKEN = "plain-env-secret-7f3a9c"
SECRETS = (CLASSIC, FINE_GRAINED, ANTHROPIC, BEARER, PLAIN_ENV_TOKEN)


@pytest.fixture
def log_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "logs"
    yield folder
    configure_logging(None)  # close the file handler before tmp_path goes


def log_lines(folder: Path) -> list[dict[str, object]]:
    for handler in logging.getLogger("clambake").handlers:
        handler.flush()
    return [json.loads(line) for line in (folder / LOG_FILE_NAME).read_text().splitlines()]


def test_agent_event_writes_one_json_line_with_the_agent_fields(log_dir: Path) -> None:
    configure_logging(log_dir)
    agent_event(
        get_logger("clambake_tui.agents.supervisor"),
        "agent spawned",
        agent_id="agent001",
        issue_number=12,
        process_id="p-123",
        pid=4242,
    )
    (entry,) = log_lines(log_dir)
    assert entry["event"] == "agent spawned"
    assert entry["level"] == "info"
    assert entry["logger"] == "clambake.agents.supervisor"
    assert (entry["agent_id"], entry["issue_number"], entry["process_id"]) == (
        "agent001",
        12,
        "p-123",
    )
    assert entry["pid"] == 4242
    assert str(entry["ts"]).endswith("+00:00")


def test_the_log_file_rotates_at_10_mb_keeping_5(log_dir: Path) -> None:
    configure_logging(log_dir)
    (handler,) = [
        h
        for h in logging.getLogger("clambake").handlers
        if isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    assert Path(handler.baseFilename) == log_dir / LOG_FILE_NAME
    assert (handler.maxBytes, handler.backupCount) == (10 * 1024 * 1024, 5)


def test_reconfiguring_does_not_duplicate_lines(log_dir: Path) -> None:
    configure_logging(log_dir)
    configure_logging(log_dir)
    get_logger(__name__).info("once")
    assert [e["event"] for e in log_lines(log_dir)] == ["once"]


def test_an_unwritable_log_folder_is_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    configure_logging(blocker / "logs")
    get_logger(__name__).info("still fine")
    configure_logging(None)


@pytest.mark.parametrize(
    "text",
    [
        f"token {CLASSIC} used",
        f"url https://x-access-token:{FINE_GRAINED}@github.com/o/r.git",
        f"ANTHROPIC_API_KEY={ANTHROPIC}",
        f"Authorization: Bearer {BEARER}",
        f"authorization: token {BEARER}",
        f'{{"Authorization": "Bearer {BEARER}"}}',
    ],
)
def test_redact_hides_every_token_shape(text: str) -> None:
    out = redact(text)
    assert REDACTED in out
    assert not any(secret in out for secret in SECRETS)


def test_tokens_never_reach_the_log_file_or_verbose_stderr(
    log_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    register_env_secrets({"GH_TOKEN": PLAIN_ENV_TOKEN})
    configure_logging(log_dir, verbose=True)
    log = get_logger("clambake_tui.github.client")
    log.info("request with %s and %s", CLASSIC, PLAIN_ENV_TOKEN)
    log.warning(
        "headers",
        extra={"headers": {"Authorization": f"Bearer {BEARER}"}, "key": ANTHROPIC},
    )
    agent_event(
        log, "agent said", agent_id="agent001", issue_number=1, process_id="p", text=FINE_GRAINED
    )
    try:
        raise RuntimeError(f"push failed for https://{CLASSIC}@github.com")
    except RuntimeError:
        log.error("push failed", exc_info=True)
    file_text = (log_dir / LOG_FILE_NAME).read_text()
    err = capfd.readouterr().err
    assert len(file_text.splitlines()) == 4 and err.count("\n") == 4
    for secret in SECRETS:
        assert secret not in file_text
        assert secret not in err
    assert REDACTED in file_text and REDACTED in err


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "clambake_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("secret", [PLAIN_ENV_TOKEN, CLASSIC, "Authorization: Bearer " + BEARER])
def test_a_command_error_carrying_a_token_is_redacted_everywhere(
    tmp_path: Path, secret: str
) -> None:
    # A path holding the secret makes a real error message (and its log line) carry it.
    root = tmp_path / secret
    (root / ".clambake" / "logs").mkdir(parents=True)
    (root / "clambake.toml").mkdir()  # a folder where the file should be: cannot read
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAMBAKE_")}
    env |= {"CLAMBAKE_ROOT": str(root), "GH_TOKEN": PLAIN_ENV_TOKEN}
    done = run_cli("-v", "config", "show", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "clambake: error:" in done.stderr and "cannot read" in done.stderr
    log_text = (root / ".clambake" / "logs" / LOG_FILE_NAME).read_text()
    assert "command failed" in log_text
    hidden = BEARER if secret.startswith("Authorization") else secret
    for where in (done.stderr, done.stdout, log_text):
        assert hidden not in where
    assert REDACTED in done.stderr and REDACTED in log_text


def test_agent_log_lines_shown_to_people_are_redacted() -> None:
    from clambake_tui.agents.claude import StreamParser, render
    from clambake_tui.tui.logfeed import readable_lines

    stream = [
        {
            "type": "assistant",
            "message": {
                "id": "m1",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "env"}},
                    {"type": "text", "text": f"I found GH_TOKEN={CLASSIC} in the environment"},
                ],
            },
        },
    ]
    data = "".join(json.dumps(line) + "\n" for line in stream).encode()
    shown = [text for event in StreamParser().feed(data) if (text := render(event))]
    shown += readable_lines(data)  # what an agent pane of the dashboard shows
    assert shown, "the events render"
    assert not any(CLASSIC in line for line in shown), shown
