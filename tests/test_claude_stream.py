"""Claude Code's command line and environment, and reading its stream-json output."""

from __future__ import annotations

import json
import random
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clambake_tui.agents.claude import (
    AgentActivity,
    EventKind,
    StreamEvent,
    StreamParser,
    agent_environment,
    build_command,
    build_prompt,
    describe_failure,
    interpret_exit,
    is_unknown_session,
    last_stderr_line,
    read_log,
    render,
)
from clambake_tui.config import AgentsConfig
from clambake_tui.errors import AgentError
from clambake_tui.model import AgentResult, AgentState, Issue

DATA = Path(__file__).parent / "data" / "claude"
RECORDINGS = sorted(DATA.glob("*.jsonl"))
SESSION = "3f1c2a4e-8b7d-4e2a-9c1b-0d5e6f7a8b9c"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def parse(data: bytes) -> list[StreamEvent]:
    parser = StreamParser()
    return parser.feed(data) + parser.finish()


def parse_file(name: str) -> list[StreamEvent]:
    return parse((DATA / name).read_bytes())


def activity_of(events: list[StreamEvent]) -> AgentActivity:
    activity = AgentActivity()
    for n, event in enumerate(events):
        activity.apply(event, T0 + timedelta(seconds=n))
    return activity


def line(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


# ---------------------------------------------------------------- command line


def test_command_runs_headless_with_stream_json_and_a_new_session() -> None:
    command = build_command(AgentsConfig(), prompt="Fix it", session_id=SESSION)
    assert command == [
        "claude",
        "-p",
        "Fix it",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        "Read",
        "Edit",
        "Write",
        "Glob",
        "Grep",
        "Bash(git:*)",
        "--session-id",
        SESSION,
        "--strict-mcp-config",
    ]


def test_command_carries_model_budget_and_extra_args_and_resumes_without_session_id() -> None:
    agents = AgentsConfig(
        claude_code_path="/opt/claude",
        model="sonnet",
        max_budget_usd=2.5,
        permission_mode="bypassPermissions",
        allowed_tools=["Bash(git commit:*)"],
        extra_args=["--effort", "high"],
    )
    command = build_command(agents, prompt="p", session_id=SESSION, resume=True)
    assert command[0] == "/opt/claude"
    assert command[command.index("--model") + 1] == "sonnet"
    assert command[command.index("--max-budget-usd") + 1] == "2.5"
    assert command[command.index("--permission-mode") + 1] == "bypassPermissions"
    assert command[command.index("--allowedTools") + 1] == "Bash(git commit:*)"
    assert command[command.index("--resume") + 1] == SESSION
    assert "--session-id" not in command
    assert command[-2:] == ["--effort", "high"]


def test_command_without_allowed_tools_model_or_budget_leaves_them_out() -> None:
    command = build_command(AgentsConfig(allowed_tools=[]), prompt="p", session_id=SESSION)
    assert "--allowedTools" not in command
    assert "--model" not in command
    assert "--max-budget-usd" not in command


def test_command_refuses_a_session_id_that_is_not_a_uuid() -> None:
    with pytest.raises(AgentError, match="not a UUID"):
        build_command(AgentsConfig(), prompt="p", session_id="agent001-3")


def test_a_prompt_starting_with_a_dash_is_not_read_as_an_option() -> None:
    command = build_command(AgentsConfig(), prompt="--help me", session_id=SESSION)
    assert not command[2].startswith("-")
    assert command[2].strip() == "--help me"


def test_prompt_names_the_issue_the_branch_and_says_commit_but_do_not_push() -> None:
    issue = Issue(
        number=42, title="Fix the login", body="It fails on Tuesdays.\nstandin-mode: fail"
    )
    prompt = build_prompt(issue, "agent001/42-fix-the-login", "main")
    assert "#42" in prompt
    assert "Fix the login" in prompt
    assert "It fails on Tuesdays.\nstandin-mode: fail" in prompt
    assert "agent001/42-fix-the-login" in prompt
    assert "`main`" in prompt
    assert "Commit your work on this branch" in prompt
    assert "do not push" in prompt
    assert not prompt.startswith("-")


def test_a_huge_issue_body_is_cut_so_the_prompt_fits_in_one_argument(tmp_path: Path) -> None:
    body = "🦀" * 65_536  # GitHub's longest body, 4 bytes a character
    prompt = build_prompt(Issue(number=9, title="t", body=body), "agent001/9-t", "main")
    assert len(prompt.encode()) < 128 * 1024
    assert "was cut here" in prompt and "gh issue view 9" in prompt
    assert "\ufffd" not in prompt
    # The kernel takes it: the command runs.
    done = subprocess.run(["true", prompt], check=False)
    assert done.returncode == 0


def test_nul_bytes_never_reach_the_command_line() -> None:
    prompt = build_prompt(Issue(number=1, title="t", body="a\x00b"), "agent001/1-t", "main")
    assert "\x00" not in prompt
    command = build_command(AgentsConfig(), prompt="x\x00y", session_id=SESSION)
    assert command[2] == "xy"


def test_prompt_of_an_issue_without_body_says_so() -> None:
    prompt = build_prompt(Issue(number=1, title="t"), "agent002/1-t", "main")
    assert "no description" in prompt


# ---------------------------------------------------------------- environment


def test_agent_environment_drops_nested_session_and_own_config_vars() -> None:
    parent = {
        "PATH": "/usr/bin",
        "HOME": "/home/op",
        "CLAUDECODE": "1",
        "CLAUDE_CODE_ENTRYPOINT": "cli",
        "CLAUDE_CODE_SSE_PORT": "4242",
        "CLAUDE_CODE_OAUTH_TOKEN": "oauth-credential",
        "CLAUDE_CODE_MAX_RETRIES": "3",
        "CLAMBAKE_AGENTS__MODEL": "opus",
        "CLAMBAKE_CONFIG": "/x/clambake.toml",
        "CLAMBAKE_STANDIN_MODE": "fail",
        "CLAMBAKE_STANDIN_DELAY": "0",
        "ANTHROPIC_API_KEY": "key",
    }
    env = agent_environment(parent, agent_id="agent007", issue_number=12, token="ghp_secret")
    assert env["PATH"] == "/usr/bin"
    assert env["HOME"] == "/home/op"
    assert env["ANTHROPIC_API_KEY"] == "key"
    for gone in (
        "CLAUDECODE",
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_CODE_SSE_PORT",
        "CLAMBAKE_AGENTS__MODEL",
        "CLAMBAKE_CONFIG",
    ):
        assert gone not in env
    # The user's own Claude Code settings and the stand-in's switches pass.
    assert env["CLAUDE_CODE_OAUTH_TOKEN"] == "oauth-credential"
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "3"
    assert env["CLAMBAKE_STANDIN_MODE"] == "fail"
    assert env["CLAMBAKE_STANDIN_DELAY"] == "0"
    assert env["GH_TOKEN"] == env["GITHUB_TOKEN"] == "ghp_secret"
    assert env["CLAMBAKE_AGENT_ID"] == "agent007"
    assert env["CLAMBAKE_ISSUE"] == "12"
    assert parent["CLAUDECODE"] == "1", "the parent's mapping is left alone"


def test_agent_environment_without_token_adds_none() -> None:
    env = agent_environment({"PATH": "/bin"}, agent_id="agent001", issue_number=1, token=None)
    assert "GH_TOKEN" not in env
    assert "GITHUB_TOKEN" not in env
    assert env == {"PATH": "/bin", "CLAMBAKE_AGENT_ID": "agent001", "CLAMBAKE_ISSUE": "1"}


# ---------------------------------------------------------------- real transcripts


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_every_recording_parses_into_known_events_ending_with_a_result(path: Path) -> None:
    events = parse(path.read_bytes())
    assert events
    assert not [e for e in events if e.kind in (EventKind.NOISE, EventKind.UNKNOWN)]
    assert events[-1].kind is EventKind.RESULT
    assert events[-1].result is not None
    assert all(e.summary and "\n" not in e.summary for e in events)


def test_successful_run_2_1_200_reads_as_tools_text_and_success() -> None:
    events = parse_file("write-success-2.1.200.jsonl")
    assert [e.kind for e in events] == [
        EventKind.INIT,
        EventKind.RATE_LIMIT,
        EventKind.THINKING,
        EventKind.TOOL_USE,
        EventKind.TOOL_RESULT,
        EventKind.TEXT,
        EventKind.RESULT,
    ]
    init, _, _, write, _, text, result = events
    assert init.session_id == "ab4694a7-7cfd-41d4-9f9b-fac26ce2930d"
    assert init.model == "claude-fable-5"
    assert write.summary == "Write hello.txt"  # relative to the run's cwd
    assert write.tool == "Write"
    assert text.summary.startswith("Done — I created `hello.txt`")
    assert result.result == AgentResult(
        is_error=False,
        subtype="success",
        num_turns=2,
        duration_ms=8660,
        total_cost_usd=pytest.approx(0.426424),
        session_id="ab4694a7-7cfd-41d4-9f9b-fac26ce2930d",
        text='Done — I created `hello.txt` in the working directory containing the word "hello".',
        errors=(),
    )
    assert render(result) == "done: success, 2 turns, 8.7 s, $0.43"
    assert interpret_exit(result.result, 0).state is AgentState.COMPLETED


def test_one_api_message_split_over_lines_counts_its_usage_once() -> None:
    events = parse_file("write-success-2.1.200.jsonl")
    thinking, write = events[2], events[3]
    assert thinking.message_id == write.message_id == "msg_019kn4A3ErB4A1Vvy1esFSD5"
    activity = activity_of(events)
    # 9386 + 2 input tokens over two messages, not 9386 counted once per line.
    assert activity.input_tokens == 9388
    assert activity.output_tokens == 3 + 2
    assert activity.api_messages == 2


def test_successful_run_2_0_76_shows_write_and_bash_calls() -> None:
    events = parse_file("write-bash-success-2.0.76.jsonl")
    shown = [render(e) for e in events]
    assert shown[0] == "started: claude-opus-4-5-20251101 (Claude Code 2.0.76)"
    assert "Write 2026-01-07-claude-loop/claude_loop.py" in shown
    assert any(s and s.startswith("Bash: chmod +x ") for s in shown)
    assert shown[-1] == "done: success, 3 turns, 30.7 s, $0.26"
    activity = activity_of(events)
    assert activity.current_tool is None
    assert activity.last_text == "Created `claude_loop.py` with the following features:"
    assert activity.session_id == "707c48df-3786-4b9f-ac05-a93054f0a542"


def test_not_logged_in_is_a_failure_with_claude_codes_own_message() -> None:
    events = parse_file("not-logged-in-2.1.332.jsonl")
    assert [e.kind for e in events] == [EventKind.INIT, EventKind.TEXT, EventKind.RESULT]
    assert events[1].is_error
    assert events[1].summary == "error: Not logged in · Please run /login"
    result = events[2].result
    assert result is not None
    assert result.subtype == "success" and result.is_error
    for exit_code in (1, 0, None):
        status = interpret_exit(result, exit_code)
        assert status.state is AgentState.FAILED
        assert status.error == "Not logged in · Please run /login"
    assert render(events[2]) == "failed: Not logged in · Please run /login"
    activity = activity_of(events)
    assert activity.last_error == "Not logged in · Please run /login"
    assert activity.version == "2.1.332"


def test_unreachable_network_shows_retries_then_fails_with_the_connection_error() -> None:
    events = parse_file("network-refused-2.1.332.jsonl")
    retries = [e for e in events if e.kind is EventKind.API_RETRY]
    assert len(retries) == 10
    assert retries[2].summary == "retrying API (attempt 3/10): unknown, no response from the API"
    assert render(retries[2]) == retries[2].summary
    activity = activity_of(events)
    assert activity.api_retries == 10
    status = interpret_exit(activity.result, 1)
    assert status.state is AgentState.FAILED
    assert status.error is not None
    assert status.error.startswith("API Error: Connection refused")


def test_a_whole_real_run_2_1_332_against_the_scripted_api_reads_as_a_success() -> None:
    events = parse_file("scripted-success-2.1.332.jsonl")
    shown = [line for line in map(render, events) if line]
    assert shown == [
        "started: claude-opus-5-5 (Claude Code 2.1.332)",
        "I'll create hello.txt.",
        "Write hello.txt",
        "Bash: git add hello.txt && git commit -m 'Add hello.txt'",
        "git commit on main",
        "Done: created hello.txt and committed it.",
        shown[-1],
    ]
    assert shown[-1].startswith("done: success, 3 turns, ")
    # A commit made by a tool shows as a system event this version added.
    assert any(e.raw_type == "system/vcs_state_changed" for e in events)
    activity = activity_of(events)
    assert interpret_exit(activity.result, 0).state is AgentState.COMPLETED
    assert activity.current_tool is None


@pytest.mark.parametrize(
    ("name", "retry", "message"),
    [
        (
            "http-401-invalid-key",
            "retrying API (attempt 1/2): authentication_failed (HTTP 401)",
            "Invalid API key · Fix external API key",
        ),
        (
            "http-429-rate-limited",
            "retrying API (attempt 1/2): rate_limit (HTTP 429)",
            "API Error: Request rejected (429) · Number of request tokens has exceeded your "
            "per-minute rate limit",
        ),
        (
            "http-529-overloaded",
            "retrying API (attempt 1/2): overloaded (HTTP 529)",
            "API Error: Repeated 529 Overloaded errors.",
        ),
        (
            "http-400-invalid-request",
            None,
            "API Error: 400 model: claude-nonexistent is not a valid model",
        ),
    ],
)
def test_api_errors_read_as_failures_with_claude_codes_message(
    name: str, retry: str | None, message: str
) -> None:
    events = parse_file(f"{name}-2.1.332.jsonl")
    retries = [e.summary for e in events if e.kind is EventKind.API_RETRY]
    assert retries[:1] == ([retry] if retry else [])
    activity = activity_of(events)
    status = interpret_exit(activity.result, 1)
    assert status.state is AgentState.FAILED
    assert status.error is not None and status.error.startswith(message)


def test_a_refused_command_shows_as_permission_denied_and_the_run_goes_on() -> None:
    events = parse_file("permission-denied-2.1.332.jsonl")
    shown = [line for line in map(render, events) if line]
    assert "permission denied: Bash: This command requires approval" in shown
    assert "tool error: This command requires approval" in shown
    activity = activity_of(events)
    assert activity.permission_denials == 1
    assert interpret_exit(activity.result, 0).state is AgentState.COMPLETED


def test_resuming_an_unknown_session_fails_with_its_error() -> None:
    (event,) = parse_file("resume-unknown-session-2.1.332.jsonl")
    assert event.result is not None
    status = interpret_exit(event.result, 1)
    assert status.error == f"No conversation found with session ID: {event.session_id}"
    assert is_unknown_session(event.result)
    assert not is_unknown_session(parse_file("not-logged-in-2.1.332.jsonl")[-1].result)
    assert not is_unknown_session(None)


# ---------------------------------------------------------------- robustness


def test_a_line_split_at_every_byte_offset_parses_the_same() -> None:
    data = (DATA / "write-success-2.1.200.jsonl").read_bytes().splitlines(keepends=True)
    # The text line holds multi-byte characters ("—"), so some cuts fall inside one.
    raw = data[5] + data[6]
    whole = parse(raw)
    for cut in range(len(raw) + 1):
        parser = StreamParser()
        events = parser.feed(raw[:cut]) + parser.feed(raw[cut:]) + parser.finish()
        assert events == whole, f"cut at byte {cut}"


def test_a_stream_fed_one_byte_at_a_time_parses_the_same() -> None:
    raw = (DATA / "not-logged-in-2.1.332.jsonl").read_bytes()
    parser = StreamParser()
    events: list[StreamEvent] = []
    for n in range(len(raw)):
        events += parser.feed(raw[n : n + 1])
    events += parser.finish()
    assert events == parse(raw)


def test_lines_that_are_not_json_objects_become_noise() -> None:
    events = parse(
        b"Warning: something\n"
        b"[1, 2, 3]\n"
        b'"a string"\n'
        b"{not json\n"
        b"\n  \n"
        b"\x1b[31mred\x1b[0m text\r\n" + line({"type": "result", "subtype": "success"})
    )
    kinds = [e.kind for e in events]
    assert kinds == [EventKind.NOISE] * 5 + [EventKind.RESULT]
    assert events[0].text == "Warning: something"
    assert events[4].summary == "red text"
    assert all(render(e) for e in events[:5])


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    events = parse(
        b"\xff\xfe binary \xc3\x28\n"
        b'{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"caf\xe9"}]}}\n'
    )
    assert events[0].kind is EventKind.NOISE
    assert "binary" in events[0].summary
    assert events[1].kind is EventKind.TEXT
    assert events[1].text == "caf\ufffd"


def test_a_line_of_five_megabytes_is_parsed_and_its_summary_stays_short() -> None:
    big_text = "word " * 1_000_000
    raw = line(
        {
            "type": "assistant",
            "message": {"id": "m", "content": [{"type": "text", "text": big_text}]},
        }
    )
    assert len(raw) > 5_000_000
    parser = StreamParser()
    events = []
    for start in range(0, len(raw), 65536):
        events += parser.feed(raw[start : start + 65536])
    assert [e.kind for e in events] == [EventKind.TEXT]
    assert len(events[0].summary) <= 200
    noise = parse(b"x" * 5_000_000 + b"\n")
    assert noise[0].kind is EventKind.NOISE
    assert noise[0].text is not None and len(noise[0].text) <= 500


def test_a_line_over_the_limit_is_skipped_with_bounded_memory() -> None:
    parser = StreamParser(max_line_bytes=1000)
    events: list[StreamEvent] = []
    events += parser.feed(b'{"type":"assistant","message":{"content":"' + b"y" * 300)
    for _ in range(20):
        events += parser.feed(b"y" * 500)
        assert parser.buffered <= 1000
    events += parser.feed(b'"}}\n' + line({"type": "result", "subtype": "success"}))
    assert [e.kind for e in events] == [EventKind.NOISE, EventKind.RESULT]
    assert "skipped a line of 10,345 bytes" in events[0].summary
    # Ended by the end of the stream rather than a newline.
    tail = StreamParser(max_line_bytes=10)
    assert tail.feed(b"z" * 50) == []
    assert [e.kind for e in tail.finish()] == [EventKind.NOISE]


def test_unknown_types_never_crash() -> None:
    events = parse(
        line({"type": "brand_new_event", "x": 1})
        + line({"type": "system", "subtype": "compact_boundary"})
        + line({"type": "assistant", "message": {"content": [{"type": "hologram"}]}})
        + line({"type": "assistant", "message": "not an object"})
        + line({"type": "user", "message": {"content": "plain text"}})
        + line({"no_type": True})
        + line({"type": "result", "is_error": "yes", "num_turns": "3", "errors": [{"a": 1}]})
        + b"[" * 100_000
        + b"\n"
    )
    assert [e.kind for e in events] == [
        EventKind.UNKNOWN,
        EventKind.SYSTEM,
        EventKind.UNKNOWN,
        EventKind.UNKNOWN,
        EventKind.USER,
        EventKind.UNKNOWN,
        EventKind.RESULT,
        EventKind.NOISE,
    ]
    assert events[0].raw_type == "brand_new_event"
    result = events[6].result
    assert result is not None
    assert result.num_turns is None
    assert not result.is_error  # only a real `true` counts
    assert not result.succeeded  # no subtype: not a success either


def test_a_last_line_without_newline_is_read_at_finish() -> None:
    parser = StreamParser()
    assert parser.feed(line({"type": "result", "subtype": "success"}).rstrip(b"\n")) == []
    (event,) = parser.finish()
    assert event.kind is EventKind.RESULT
    assert parser.finish() == []


def test_a_stream_cut_in_the_middle_of_a_line_ends_with_noise() -> None:
    events = parse(line({"type": "system", "subtype": "init"}) + b'{"type":"assistant","mes')
    assert [e.kind for e in events] == [EventKind.INIT, EventKind.NOISE]


def test_success_subtype_with_is_error_is_a_failure_with_its_errors() -> None:
    result_line = {
        "type": "result",
        "subtype": "success",
        "is_error": True,
        "errors": ["model not found: claude-nonexistent"],
    }
    (event,) = parse(line(result_line))
    assert event.is_error
    assert event.result is not None and not event.result.succeeded
    assert interpret_exit(event.result, 0).error == "model not found: claude-nonexistent"


def test_an_error_result_without_words_borrows_the_assistant_error_text() -> None:
    events = parse(
        line(
            {
                "type": "assistant",
                "error": "rate_limit",
                "message": {"id": "x", "content": [{"type": "text", "text": "API Error: 429"}]},
            }
        )
        + line({"type": "result", "subtype": "success", "is_error": True, "errors": []})
    )
    assert events[0].summary == "error: API Error: 429"
    assert events[1].result is not None
    assert describe_failure(events[1].result) == "API Error: 429"


@pytest.mark.parametrize(
    ("subtype", "words"),
    [
        ("error_max_turns", "turn limit"),
        ("error_max_budget_usd", "budget limit"),
        ("error_during_execution", "error during execution"),
        ("error_something_new", "error_something_new"),
    ],
)
def test_error_subtypes_without_message_are_described(subtype: str, words: str) -> None:
    result = AgentResult(is_error=True, subtype=subtype)
    assert words in describe_failure(result)


def test_control_characters_never_reach_a_summary() -> None:
    (event,) = parse(
        line(
            {
                "type": "assistant",
                "message": {
                    "content": [{"type": "text", "text": "\x1b]0;title\x07hi\x1b[2J\x00!"}]
                },
            }
        )
    )
    assert event.summary == "hi !"


# ---------------------------------------------------------------- activity


def tool_use(
    tool_id: str, name: str, tool_input: dict[str, str], parent: str | None = None
) -> bytes:
    return line(
        {
            "type": "assistant",
            "parent_tool_use_id": parent,
            "message": {
                "id": f"msg_{tool_id}",
                "content": [{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}],
            },
        }
    )


def tool_result(tool_id: str, content: str, is_error: bool = False) -> bytes:
    block = {
        "type": "tool_result",
        "tool_use_id": tool_id,
        "content": content,
        "is_error": is_error,
    }
    return line({"type": "user", "message": {"content": [block]}})


def test_activity_follows_the_current_tool_and_moves_last_activity() -> None:
    events = parse(
        line({"type": "system", "subtype": "init", "cwd": "/w", "session_id": SESSION})
        + tool_use("t1", "Edit", {"file_path": "/w/src/app.py"})
        + tool_result("t1", "ok")
        + tool_use("t2", "Bash", {"command": "git commit -m 'fix'\necho done"})
    )
    activity = AgentActivity()
    activity.apply(events[0], T0)
    assert activity.session_id == SESSION and activity.cwd == "/w"
    activity.apply(events[1], T0 + timedelta(seconds=1))
    assert activity.current_tool == "Edit src/app.py"
    activity.apply(events[2], T0 + timedelta(seconds=2))
    assert activity.current_tool is None
    activity.apply(events[3], T0 + timedelta(seconds=3))
    assert activity.current_tool == "Bash: git commit -m 'fix'"
    assert activity.last_activity == T0 + timedelta(seconds=3)
    assert activity.result is None


def test_a_task_tool_stays_current_while_its_sub_agent_works() -> None:
    events = parse(
        tool_use("task", "Task", {"description": "Explore the code"})
        + tool_use("sub", "Grep", {"pattern": "login"}, parent="task")
        + tool_result("sub", "3 matches")
    )
    activity = activity_of(events)
    assert activity.current_tool == "Task: Explore the code"
    assert render(events[1]) == "  [sub-agent] Grep: login"


def test_render_shows_tool_errors_and_hides_routine_lines() -> None:
    events = parse(
        tool_result("t", "fine")
        + tool_result("t", "Exit code 1\nboom", is_error=True)
        + line(
            {"type": "assistant", "message": {"content": [{"type": "thinking", "thinking": ""}]}}
        )
        + line({"type": "rate_limit_event", "rate_limit_info": {"status": "allowed"}})
        + line({"type": "rate_limit_event", "rate_limit_info": {"status": "rejected"}})
        + line({"type": "system", "subtype": "status", "status": "compacting"})
    )
    assert [render(e) for e in events] == [
        None,
        "tool error: Exit code 1",
        None,
        None,
        "rate limit: rejected",
        "status: compacting",
    ]


def test_read_log_finds_the_result_of_a_finished_agent(tmp_path: Path) -> None:
    log = tmp_path / "agent.stdout.log"
    log.write_bytes((DATA / "write-bash-success-2.0.76.jsonl").read_bytes())
    activity = read_log(log)
    assert activity.result is not None and activity.result.succeeded
    assert activity.last_activity is not None
    tail = read_log(log, max_bytes=4000)
    assert tail.result == activity.result
    assert tail.events < activity.events
    assert read_log(tmp_path / "missing.log").result is None


def test_read_log_window_starting_on_a_line_boundary_keeps_that_line(tmp_path: Path) -> None:
    log = tmp_path / "agent.stdout.log"
    first = line({"type": "system", "subtype": "init", "session_id": SESSION})
    last = line({"type": "result", "subtype": "success", "is_error": False})
    log.write_bytes(first + last)
    assert read_log(log, max_bytes=len(last)).result is not None
    assert read_log(log, max_bytes=len(last) - 1).result is None  # cut: skipped, not misread
    assert read_log(log, max_bytes=len(last) + 1).events == 1


def test_last_stderr_line_gives_the_refusal(tmp_path: Path) -> None:
    err = tmp_path / "agent.stderr.log"
    err.write_text(f"noise\nError: Session ID {SESSION} is already in use.\n\n")
    message = last_stderr_line(err)
    assert message == f"Error: Session ID {SESSION} is already in use."
    status = interpret_exit(None, 1, stderr=message)
    assert status.error == f"exited with code 1 without a result: {message}"
    assert last_stderr_line(tmp_path / "none") is None


# ---------------------------------------------------------------- skimming a flood


def compact(obj: object) -> bytes:
    """A line the way Claude Code writes it: compact JSON."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def words(message_id: str, text: str, *, parent: str | None = None, spaced: bool = False) -> bytes:
    obj = {
        "type": "assistant",
        "message": {
            "model": "claude-opus-4-5",
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "usage": {"input_tokens": 10, "output_tokens": len(text)},
        },
        "parent_tool_use_id": parent,
        "session_id": SESSION,
    }
    return line(obj) if spaced else compact(obj)


def flood_around(recording: bytes) -> bytes:
    """A recording with thousands of lines of plain words before, inside and after it."""
    out: list[bytes] = []
    n = 0

    def burst(message: str, count: int, *, spaced: bool = False) -> None:
        nonlocal n
        for _ in range(count):
            n += 1
            out.append(words(message, f'line {n}: quoted "tool_use" and "error"', spaced=spaced))

    burst("msg_flood_a", 700)
    for index, raw in enumerate(recording.splitlines(keepends=True)):
        out.append(raw if raw.endswith(b"\n") else raw + b"\n")
        if index % 3 == 0:
            burst(f"msg_flood_{index}", 300, spaced=index % 2 == 0)
            out.append(words("msg_sub", "a sub-agent speaks", parent="toolu_x"))
    burst("msg_flood_z", 500)
    return b"".join(out)


def summary_of(activity: AgentActivity) -> dict[str, object]:
    return {
        "last_text": activity.last_text,
        "current_tool": activity.current_tool,
        "result": activity.result,
        "session_id": activity.session_id,
        "tokens": (activity.input_tokens, activity.output_tokens, activity.api_messages),
        "last_error": activity.last_error,
        "api_retries": activity.api_retries,
        "permission_denials": activity.permission_denials,
        "model": activity.model,
    }


@pytest.mark.parametrize("recording", RECORDINGS, ids=lambda p: p.stem)
def test_skimming_a_flood_adds_up_to_the_same_activity_as_parsing_it_all(
    recording: Path,
) -> None:
    data = flood_around(recording.read_bytes())
    full = StreamParser()
    everything = full.feed(data) + full.finish()
    skimmer = StreamParser()
    rng = random.Random(recording.name)
    skimmed: list[StreamEvent] = []
    at = 0
    while at < len(data):
        size = rng.choice((1, 37, 4096, 150_000, 400_000))
        skimmed += skimmer.skim(data[at : at + size], keep_last=20)
        at += size
    skimmed += skimmer.finish()
    assert summary_of(activity_of(skimmed)) == summary_of(activity_of(everything))
    assert skimmer.lines == full.lines
    # Most of the flood was counted, not parsed; everything that is not plain words was.
    assert skimmer.skimmed > len(everything) // 2
    assert [e for e in skimmed if e.kind is not EventKind.TEXT] == [
        e for e in everything if e.kind is not EventKind.TEXT
    ]


def test_skim_parses_the_last_lines_asked_for_and_every_line_of_a_small_chunk() -> None:
    data = b"".join(words("msg_1", f"line {n}") for n in range(1000))
    parser = StreamParser()
    events = parser.skim(data, keep_last=5)
    assert [e.summary for e in events] == [f"line {n}" for n in range(995, 1000)]
    assert parser.skimmed == 995
    small = b"".join(words("msg_1", f"line {n}") for n in range(100))
    assert len(StreamParser().skim(small)) == 100


def test_skim_never_skips_lines_that_only_look_like_words() -> None:
    unusual = [
        # Words of a sub-agent, an API error, a thinking block beside the text, no message id.
        words("msg_2", "sub-agent words", parent="toolu_1"),
        compact(
            {
                "type": "assistant",
                "message": {"id": "msg_3", "content": [{"type": "text", "text": "Not logged in"}]},
                "parent_tool_use_id": None,
                "error": "authentication_failed",
            }
        ),
        compact(
            {
                "type": "assistant",
                "message": {
                    "id": "msg_4",
                    "content": [
                        {"type": "text", "text": "let me think"},
                        {"type": "thinking", "thinking": "hmm"},
                    ],
                },
                "parent_tool_use_id": None,
            }
        ),
        compact(
            {
                "type": "assistant",
                "message": {"content": [{"type": "text", "text": "no id"}]},
                "parent_tool_use_id": None,
            }
        ),
    ]
    filler = b"".join(words("msg_1", f"line {n}") for n in range(400))
    data = filler + b"".join(unusual) + filler
    parser = StreamParser()
    summaries = [e.summary for e in parser.skim(data)]
    assert "sub-agent words" in summaries
    assert "error: Not logged in" in summaries
    assert "let me think" in summaries and "thinking: hmm" in summaries
    assert "no id" in summaries
    assert parser.skimmed == 799


# ---------------------------------------------------------------- the final status

OK = AgentResult(is_error=False, subtype="success", num_turns=2)
BAD = AgentResult(is_error=True, subtype="error_max_turns", errors=("Reached max turns (3)",))


@pytest.mark.parametrize(
    ("result", "exit_code", "kwargs", "state", "error"),
    [
        (OK, 0, {}, AgentState.COMPLETED, None),
        (OK, None, {}, AgentState.COMPLETED, None),
        (OK, -15, {"killed": True}, AgentState.COMPLETED, None),  # lingered after its result
        (OK, 1, {}, AgentState.FAILED, "exited with code 1 after a successful result"),
        (OK, -9, {}, AgentState.FAILED, "killed by SIGKILL after a successful result"),
        (BAD, 1, {}, AgentState.FAILED, "Reached max turns (3)"),
        (BAD, -15, {"killed": True}, AgentState.FAILED, "Reached max turns (3)"),
        (None, 1, {}, AgentState.FAILED, "exited with code 1 without a result"),
        (None, 0, {}, AgentState.FAILED, "exited with code 0 without a result"),
        (None, 143, {}, AgentState.FAILED, "exited with code 143 without a result"),
        (None, -9, {}, AgentState.FAILED, "killed by SIGKILL without a result"),
        (None, None, {}, AgentState.FAILED, "ended without a result"),
        (None, -15, {"killed": True}, AgentState.TERMINATED, None),
        (
            None,
            -9,
            {"killed": True, "timed_out_after": 1800},
            AgentState.FAILED,
            "timed out after 30 min",
        ),
        (
            None,
            -9,
            {"killed": True, "timed_out_after": 90},
            AgentState.FAILED,
            "timed out after 1.5 min",
        ),
        (OK, -9, {"killed": True, "timed_out_after": 1800}, AgentState.COMPLETED, None),
    ],
)
def test_interpret_exit(
    result: AgentResult | None,
    exit_code: int | None,
    kwargs: dict[str, object],
    state: AgentState,
    error: str | None,
) -> None:
    status = interpret_exit(result, exit_code, **kwargs)  # type: ignore[arg-type]
    assert status.state is state
    assert status.error == error


# ---------------------------------------------------------------- fuzz

ODD_VALUES = (
    None,
    True,
    0,
    -1,
    1.5,
    "",
    "x",
    "\n",
    "a\nb\x1b[31m\r",
    [],
    [None],
    {},
    {"type": None},
)


def _paths(value: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*path, index))
    return found


def _replaced(value: object, path: tuple[object, ...], new: object) -> object:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replaced(v, rest, new) if k == head else v) for k, v in value.items()}
    assert isinstance(value, list)
    return [(_replaced(v, rest, new) if i == head else v) for i, v in enumerate(value)]


def test_any_field_of_any_recorded_event_may_hold_any_type() -> None:
    rng = random.Random(20261126)
    objects = [json.loads(raw) for path in RECORDINGS for raw in path.read_bytes().splitlines()]
    lines = []
    for obj in objects:
        paths = _paths(obj)[1:]
        for path in rng.sample(paths, min(60, len(paths))):
            lines.append(line(_replaced(obj, path, rng.choice(ODD_VALUES))))
    events = parse(b"".join(lines))
    activity = activity_of(events)
    assert len(events) >= len(lines)
    for event in events:
        assert isinstance(event.summary, str) and "\n" not in event.summary
        render(event)
        if event.result is not None:
            interpret_exit(event.result, 1)
    assert activity.events == len(events)


def test_random_bytes_and_cut_lines_never_break_the_parser() -> None:
    rng = random.Random(7)
    raw = b"".join(path.read_bytes() for path in RECORDINGS)
    for _ in range(200):
        data = bytearray(raw[: rng.randrange(len(raw))])
        for _ in range(rng.randrange(1, 20)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        parser = StreamParser(max_line_bytes=rng.choice((64, 4096, 1 << 20)))
        position = 0
        while position < len(data):
            step = rng.randrange(1, 5000)
            parser.feed(bytes(data[position : position + step]))
            position += step
        parser.finish()
