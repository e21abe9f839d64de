"""Claude Code itself: its command line, its environment, and reading its stream-json output."""

from __future__ import annotations

import enum
import json
import re
import signal
import uuid
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate
from pathlib import Path
from typing import Any

from clambake_tui.config import AgentsConfig
from clambake_tui.errors import AgentError
from clambake_tui.model import AgentResult, Issue, ProcessStatus
from clambake_tui.redact import redact

__all__ = [
    "MAX_LINE_BYTES",
    "build_command",
    "build_prompt",
    "agent_environment",
    "EventKind",
    "StreamEvent",
    "StreamParser",
    "AgentActivity",
    "read_log",
    "last_stderr_line",
    "render",
    "describe_failure",
    "interpret_exit",
    "is_unknown_session",
]

# A stream-json line is parsed whole up to this size; a longer one is skipped (memory stays
# bounded whatever an agent prints) and reported as noise.
MAX_LINE_BYTES = 16 * 1024 * 1024
# The prompt travels as one argument, and Linux refuses a single argument over 128 KiB
# (MAX_ARG_STRLEN); a GitHub issue body may hold 65,536 characters of up to 4 bytes each.
MAX_BODY_BYTES = 96 * 1024
# How much of a line that is not an event is kept for display.
NOISE_CHARS = 500
# How long one readable summary line may get.
SUMMARY_CHARS = 200

# Variables of a parent Claude Code session that make a child behave as a nested session.
_NESTED_SESSION_VARS = ("CLAUDECODE",)
_NESTED_SESSION_PREFIX = "CLAUDE_CODE_"
# CLAUDE_CODE_* variables that are the user's own configuration (credentials, provider choice),
# not traces of a parent session: without them an agent could not log in.
_USER_CLAUDE_CODE_VARS = frozenset(
    {
        "CLAUDE_CODE_OAUTH_TOKEN",
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_USE_VERTEX",
        "CLAUDE_CODE_USE_FOUNDRY",
        "CLAUDE_CODE_SKIP_BEDROCK_AUTH",
        "CLAUDE_CODE_SKIP_VERTEX_AUTH",
        "CLAUDE_CODE_SKIP_FOUNDRY_AUTH",
        "CLAUDE_CODE_CLIENT_CERT",
        "CLAUDE_CODE_CLIENT_KEY",
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE",
        "CLAUDE_CODE_API_KEY_HELPER_TTL_MS",
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        "CLAUDE_CODE_MAX_RETRIES",
        "CLAUDE_CODE_RETRY_WATCHDOG",
        "CLAUDE_CODE_RETRY_WATCHDOG_MAX_WAIT_MS",
    }
)
_OWN_PREFIX = "CLAMBAKE_"
# The stand-in agent's switches are meant to reach it.
_PASSED_OWN_PREFIX = "CLAMBAKE_STANDIN_"


# ---------------------------------------------------------------- the command line


def _format_usd(amount: float) -> str:
    text = f"{amount:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def build_command(
    agents: AgentsConfig, *, prompt: str, session_id: str, resume: bool = False
) -> list[str]:
    """The argv that runs Claude Code headless on `prompt`.

    A new run names its session with `--session-id`; a restart continues it with `--resume`
    (the CLI refuses the two together).
    """
    try:
        session = str(uuid.UUID(session_id))
    except ValueError:
        raise AgentError(f"session id {session_id!r} is not a UUID") from None
    if prompt.startswith("-"):
        # The prompt is a positional argument: one starting with '-' would read as an option.
        prompt = " " + prompt
    command = [
        agents.claude_code_path,
        "-p",
        # No argument may hold a NUL byte (exec refuses it).
        prompt.replace("\x00", ""),
        "--output-format",
        "stream-json",
        # stream-json with -p is refused without --verbose.
        "--verbose",
        "--permission-mode",
        agents.permission_mode,
    ]
    if agents.allowed_tools:
        # One argument per tool: a rule such as "Bash(git commit:*)" holds a space.
        command += ["--allowedTools", *agents.allowed_tools]
    if agents.model:
        command += ["--model", agents.model]
    if agents.max_budget_usd is not None:
        command += ["--max-budget-usd", _format_usd(agents.max_budget_usd)]
    command += ["--resume", session] if resume else ["--session-id", session]
    # User-level MCP servers stay out of agents (they are orphaned when an agent is killed);
    # servers meant for agents can still be given with --mcp-config in extra_args.
    command.append("--strict-mcp-config")
    command += agents.extra_args
    return command


def _bounded_body(issue: Issue) -> str:
    body = issue.body.replace("\x00", "").strip()
    if not body:
        return "(The issue has no description.)"
    encoded = body.encode("utf-8")
    if len(encoded) <= MAX_BODY_BYTES:
        return body
    kept = encoded[:MAX_BODY_BYTES].decode("utf-8", "ignore")
    return (
        f"{kept}\n\n(The issue body is longer than this and was cut here; read all of it "
        f"with `gh issue view {issue.number}`.)"
    )


def build_prompt(issue: Issue, branch: str, base: str) -> str:
    """The task given to an agent: the issue, the branch to work on, and the house rules."""
    body = _bounded_body(issue)
    return (
        f"You are working on GitHub issue #{issue.number}: {issue.title}\n"
        "\n"
        f"{body}\n"
        "\n"
        f"Your working directory is a git worktree on branch `{branch}`, cut from `{base}`.\n"
        f"Make the change the issue asks for, with tests where they fit. Commit your work on "
        f"this branch (`{branch}`) with a clear message; do not push, do not open a pull "
        "request, and do not switch to another branch.\n"
        "When you are done, finish with a short summary of what you changed.\n"
    )


def _dropped_from_agent(name: str) -> bool:
    if name in _NESTED_SESSION_VARS:
        return True
    if name.startswith(_NESTED_SESSION_PREFIX):
        return name not in _USER_CLAUDE_CODE_VARS
    if name.startswith(_OWN_PREFIX):
        return not name.startswith(_PASSED_OWN_PREFIX)
    return False


def agent_environment(
    base: Mapping[str, str], *, agent_id: str, issue_number: int, token: str | None
) -> dict[str, str]:
    """The environment of an agent: the parent's, less what must not leak, plus who it is."""
    env = {name: value for name, value in base.items() if not _dropped_from_agent(name)}
    if token:
        env["GH_TOKEN"] = token
        env["GITHUB_TOKEN"] = token
    env["CLAMBAKE_AGENT_ID"] = agent_id
    env["CLAMBAKE_ISSUE"] = str(issue_number)
    return env


# ---------------------------------------------------------------- events


class EventKind(enum.StrEnum):
    INIT = "init"
    TEXT = "text"
    THINKING = "thinking"
    TOOL_USE = "tool_use"
    TOOL_RESULT = "tool_result"
    API_RETRY = "api_retry"
    RATE_LIMIT = "rate_limit"
    STATUS = "status"
    RESULT = "result"
    SYSTEM = "system"
    USER = "user"
    UNKNOWN = "unknown"
    NOISE = "noise"


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One thing an agent said: a stream-json line, or one content block of an assistant line."""

    kind: EventKind
    # One readable line: "Edit src/app.py", "Bash: git commit -m ...", "error: Not logged in".
    summary: str
    tool: str | None = None
    text: str | None = None
    is_error: bool = False
    session_id: str | None = None
    message_id: str | None = None
    result: AgentResult | None = None
    tool_use_id: str | None = None
    # A sub-agent's message (`parent_tool_use_id` set) rather than the agent's own.
    subagent: bool = False
    # init: the model and Claude Code version; assistant lines: the model that answered.
    model: str | None = None
    version: str | None = None
    # assistant lines: this API message's token usage (repeated on every line of the message).
    input_tokens: int | None = None
    output_tokens: int | None = None
    # api_retry: attempt and max_retries.
    attempt: int | None = None
    max_attempts: int | None = None
    # The line's own "type" (and "subtype"), for events of unknown kinds.
    raw_type: str | None = None


_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _clean(text: str) -> str:
    """Text safe for one terminal line: no escape sequences, no control characters, no breaks."""
    text = _ANSI.sub("", text)
    return _CONTROL.sub(" ", text.replace("\t", " ").replace("\n", " "))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _first_line(text: str, limit: int = SUMMARY_CHARS) -> str:
    """The first non-blank line of `text`, cleaned and cut to `limit` characters.

    Reads no further than that line: `text` may be megabytes long.
    """
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start)
        if end < 0:
            end = size
        if not text[start:end].isspace() and end > start:
            # Cleaning removes escape sequences, so take some spare before cutting.
            return _cut(_clean(text[start : min(end, start + 4 * limit)]).strip(), limit)
        start = end + 1
    return ""


# Below this many lines in one read, `skim` parses every line.
SKIM_MIN_LINES = 256
_ASSISTANT_PREFIXES = (b'{"type":"assistant","message":{', b'{"type": "assistant", "message": {')
_MAIN_AGENT = (b'"parent_tool_use_id":null', b'"parent_tool_use_id": null')
_TEXT_BLOCK = (b'{"type":"text","text":', b'{"type": "text", "text": ')
# Quoted like this these are JSON keys or values, never text inside a string (where a quote is
# escaped): a line holding any of them is parsed in full.
_NOT_PLAIN = (
    b'"tool_use"',
    b'"server_tool_use"',
    b'"mcp_tool_use"',
    b'"tool_result"',
    b'"thinking"',
    b'"redacted_thinking"',
    b'"error"',
)
_MESSAGE_ID = re.compile(rb'"id": ?"([^"\\]{1,200})"')


def _find_all(data: bytes, marker: bytes) -> Iterator[int]:
    at = data.find(marker)
    while at >= 0:
        yield at
        at = data.find(marker, at + 1)


def _plain_text_message(line: bytes) -> bytes | None:
    """The API message id of a line of the main agent's plain text, else None.

    Judged from the bytes alone (no JSON parsing): only lines known to add nothing but words
    and repeated usage qualify; anything else, or any doubt, is None. (The caller has already
    ruled out lines holding one of `_NOT_PLAIN`.)
    """
    if not line.startswith(_ASSISTANT_PREFIXES):
        return None
    if not (_MAIN_AGENT[0] in line or _MAIN_AGENT[1] in line):
        return None
    if not (_TEXT_BLOCK[0] in line or _TEXT_BLOCK[1] in line):
        return None
    found = _MESSAGE_ID.search(line)
    return found.group(1) if found else None


def _str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _dict(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


_SUBTYPE_MESSAGES = {
    "error_max_turns": "stopped at the turn limit (error_max_turns)",
    "error_max_budget_usd": "stopped at the budget limit (error_max_budget_usd)",
    "error_during_execution": "error during execution",
    "error_max_structured_output_retries": "could not produce the structured output",
}


def describe_failure(result: AgentResult) -> str:
    """Claude Code's own words for why a run failed, as one line."""
    for candidate in (*result.errors, result.text or ""):
        line = _first_line(candidate, 300)
        if line:
            return line
    if result.subtype in _SUBTYPE_MESSAGES:
        return _SUBTYPE_MESSAGES[result.subtype]
    if result.subtype == "success":
        return "Claude Code reported an error without saying which"
    return _cut(_clean(result.subtype), 100) or "failed"


def _result_summary(result: AgentResult) -> str:
    if not result.succeeded:
        return f"failed: {describe_failure(result)}"
    parts = [f"done: {result.subtype}"]
    if result.num_turns is not None:
        parts.append(f"{result.num_turns} turn" + ("" if result.num_turns == 1 else "s"))
    if result.duration_ms is not None:
        parts.append(_format_duration(result.duration_ms / 1000))
    if result.total_cost_usd is not None:
        parts.append(f"${result.total_cost_usd:.2f}")
    return ", ".join(parts)


def _error_strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    found: list[str] = []
    for item in value:
        if isinstance(item, str):
            text = item
        elif isinstance(item, dict) and isinstance(item.get("message"), str):
            text = item["message"]
        else:
            text = json.dumps(item, ensure_ascii=False)
        if text.strip():
            found.append(text)
    return tuple(found)


# Tools whose input names a file, and the key that holds it.
_PATH_KEYS = ("file_path", "notebook_path", "path")


class StreamParser:
    """Turns the bytes an agent writes to stdout into events.

    Lines may arrive split across chunks; bytes that are not UTF-8 are replaced; lines that are
    not JSON objects become `noise` events; unknown event types become `unknown` events. A line
    longer than `max_line_bytes` is not kept in memory: it is skipped and reported as noise.
    """

    def __init__(self, *, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._buffer = bytearray()
        # Inside a line longer than the limit: its bytes are counted, not kept.
        self._skipping = False
        self._skipped = 0
        self._skipped_head = ""
        self._cwd: str | None = None
        # The text of an assistant line flagged as an API error ("Not logged in · ..."), given
        # to a failed result that carries no message of its own.
        self._api_error_text: str | None = None
        self.lines = 0
        # Lines `skim` counted without parsing.
        self.skimmed = 0

    @property
    def buffered(self) -> int:
        """Bytes held for a line not yet ended (never more than `max_line_bytes`)."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        data = bytes(chunk)
        start = 0
        while start < len(data):
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline
            if self._skipping:
                self._skipped += end - start
            elif len(self._buffer) + end - start > self._max:
                self._skipping = True
                head = bytes(self._buffer[:120]) + data[start : start + 120]
                self._skipped_head = head[:120].decode("utf-8", "replace")
                self._skipped = len(self._buffer) + end - start
                self._buffer = bytearray()
            elif newline >= 0 and not self._buffer:
                events.extend(self._line(data[start:end]))
            else:
                self._buffer += data[start:end]
                if newline >= 0:
                    line = bytes(self._buffer)
                    self._buffer = bytearray()
                    events.extend(self._line(line))
            if newline < 0:
                break
            if self._skipping:
                events.append(self._too_long())
            start = newline + 1
        return events

    def skim(self, chunk: bytes, *, keep_last: int = 0) -> list[StreamEvent]:
        """Like `feed`, for a flood: many lines of plain assistant text are not all parsed.

        A line of plain assistant text (the agent's own words, one API message streamed as
        many lines) is parsed only when it is the last line of its message in `chunk` or among
        its last `keep_last` lines; every other line (tools, results, errors, system events,
        anything unusual) is parsed in full. What the events add up to in `AgentActivity`
        (last words, running tool, token usage per message, the result) is the same as with
        `feed`; the skipped lines are counted in `skimmed` and only their own text is not
        rendered. Small chunks are simply fed.
        """
        data = bytes(chunk)
        events: list[StreamEvent] = []
        if self._buffer or self._skipping:
            newline = data.find(b"\n")
            if newline < 0:
                return self.feed(data)
            events += self.feed(data[: newline + 1])
            data = data[newline + 1 :]
        end = data.rfind(b"\n")
        if end < 0 or data.count(b"\n", 0, end) < SKIM_MIN_LINES:
            return events + self.feed(data)
        lines = data[:end].split(b"\n")
        cutoff = len(lines) - keep_last
        message_of: dict[int, bytes] = {}
        last_line: dict[bytes, int] = {}
        # Lines holding a marker of anything but words, found in one pass over the chunk.
        starts = [0, *accumulate(len(line) + 1 for line in lines)]
        unusual = {
            bisect_right(starts, at) - 1 for marker in _NOT_PLAIN for at in _find_all(data, marker)
        }
        for index, line in enumerate(lines):
            message_id = None if index in unusual else _plain_text_message(line)
            if message_id is not None:
                message_of[index] = message_id
                last_line[message_id] = index
        for index, line in enumerate(lines):
            message_id = message_of.get(index)
            if message_id is not None and index < cutoff and last_line[message_id] != index:
                self.lines += 1
                self.skimmed += 1
            elif len(line) > self._max:
                events += self.feed(line + b"\n")
            else:
                events += self._line(line)
        return events + self.feed(data[end + 1 :])

    def finish(self) -> list[StreamEvent]:
        """Events of a last line that ended without a newline (the stream is over)."""
        if self._skipping:
            return [self._too_long()]
        line = bytes(self._buffer)
        self._buffer = bytearray()
        return self._line(line)

    def _too_long(self) -> StreamEvent:
        size, head = self._skipped, self._skipped_head
        self._skipping, self._skipped, self._skipped_head = False, 0, ""
        self.lines += 1
        note = f"[skipped a line of {size:,} bytes, over the {self._max:,}-byte limit]"
        text = f"{note} {_clean(head)}"
        return StreamEvent(EventKind.NOISE, _cut(text, SUMMARY_CHARS), text=_cut(text, NOISE_CHARS))

    def _line(self, raw: bytes) -> list[StreamEvent]:
        raw = raw.strip()
        if not raw:
            return []
        self.lines += 1
        obj: Any = None
        if raw.startswith(b"{"):
            try:
                obj = json.loads(raw.decode("utf-8", "replace"))
            except (ValueError, RecursionError):
                obj = None
        if not isinstance(obj, dict):
            # Only the start of a line that is not an event is kept (it may be megabytes).
            head = raw[: 4 * NOISE_CHARS].decode("utf-8", "replace")
            noise = _cut(_clean(head).strip(), NOISE_CHARS)
            return [StreamEvent(EventKind.NOISE, _cut(noise, SUMMARY_CHARS), text=noise)]
        try:
            return self._event(obj)
        except RecursionError:  # pragma: no cover - json.loads gives up first
            return [StreamEvent(EventKind.UNKNOWN, "unreadable event")]

    def _event(self, obj: dict[str, Any]) -> list[StreamEvent]:
        kind = _str(obj, "type")
        session = _str(obj, "session_id")
        if kind == "system":
            return [self._system(obj, session)]
        if kind == "assistant":
            return self._assistant(obj, session)
        if kind == "user":
            return self._user(obj, session)
        if kind == "result":
            return [self._result(obj, session)]
        if kind == "rate_limit_event":
            info = _dict(obj, "rate_limit_info")
            status = _str(info, "status") or "unknown"
            window = _str(info, "rateLimitType")
            summary = f"rate limit: {status}" + (f" ({window})" if window else "")
            return [
                StreamEvent(
                    EventKind.RATE_LIMIT,
                    _clean(summary),
                    text=status,
                    is_error=status not in ("allowed", "allowed_warning"),
                    session_id=session,
                    raw_type=kind,
                )
            ]
        name = _cut(_clean(kind or "?"), 60)
        return [StreamEvent(EventKind.UNKNOWN, f"event: {name}", session_id=session, raw_type=kind)]

    def _system(self, obj: dict[str, Any], session: str | None) -> StreamEvent:
        subtype = _str(obj, "subtype") or ""
        raw_type = f"system/{subtype}"
        if subtype == "init":
            self._cwd = _str(obj, "cwd")
            model = _str(obj, "model")
            version = _str(obj, "claude_code_version")
            summary = f"started: {model or 'default model'}"
            if version:
                summary += f" (Claude Code {version})"
            return StreamEvent(
                EventKind.INIT,
                _cut(_clean(summary), SUMMARY_CHARS),
                text=self._cwd,
                session_id=session,
                model=model,
                version=version,
                raw_type=raw_type,
            )
        if subtype == "api_retry":
            attempt, most = _int(obj, "attempt"), _int(obj, "max_retries")
            error = _str(obj, "error") or "error"
            status = obj.get("error_status")
            if isinstance(status, int):
                detail = f"{_clean(error)} (HTTP {status})"
            else:
                # No HTTP status: the request got no answer (connection refused, DNS, TLS...).
                detail = f"{_clean(error)}, no response from the API"
            counted = f"attempt {attempt}/{most}" if most else f"attempt {attempt}"
            return StreamEvent(
                EventKind.API_RETRY,
                _cut(f"retrying API ({counted}): {detail}", SUMMARY_CHARS),
                text=_clean(error),
                is_error=True,
                session_id=session,
                attempt=attempt,
                max_attempts=most,
                raw_type=raw_type,
            )
        if subtype == "status":
            status = _str(obj, "status")
            summary = f"status: {status}" if status else "status"
            return StreamEvent(
                EventKind.STATUS,
                _cut(_clean(summary), SUMMARY_CHARS),
                text=status,
                session_id=session,
                raw_type=raw_type,
            )
        if subtype == "permission_denied":
            tool = _str(obj, "tool_name") or "a tool"
            reason = _str(obj, "message") or _str(obj, "decision_reason") or ""
            summary = f"permission denied: {tool}" + (f": {_first_line(reason)}" if reason else "")
            return StreamEvent(
                EventKind.SYSTEM,
                _cut(_clean(summary), SUMMARY_CHARS),
                tool=tool,
                text=reason or None,
                is_error=True,
                session_id=session,
                tool_use_id=_str(obj, "tool_use_id"),
                raw_type=raw_type,
            )
        if subtype == "vcs_state_changed":
            # Claude Code (2.1.3xx) reports git changes its tools made, e.g. a commit.
            change, branch = _str(obj, "kind") or "change", _str(obj, "branch")
            summary = f"git {change}" + (f" on {branch}" if branch else "")
            return StreamEvent(
                EventKind.SYSTEM,
                _cut(_clean(summary), SUMMARY_CHARS),
                text=change,
                session_id=session,
                raw_type=raw_type,
            )
        name = _cut(_clean(subtype or "event"), 60)
        return StreamEvent(
            EventKind.SYSTEM, f"system: {name}", session_id=session, raw_type=raw_type
        )

    def _relative(self, path: str) -> str:
        if self._cwd and path.startswith(self._cwd.rstrip("/") + "/"):
            return path[len(self._cwd.rstrip("/")) + 1 :]
        return path

    def _tool_summary(self, name: str, tool_input: dict[str, Any]) -> str:
        for key in _PATH_KEYS:
            path = _str(tool_input, key)
            if path:
                return f"{name} {_clean(self._relative(path))}"
        command = _str(tool_input, "command")
        if command:
            return f"{name}: {_first_line(command)}"
        for key in ("description", "pattern", "url", "query", "prompt", "skill"):
            value = _str(tool_input, key)
            if value:
                return f"{name}: {_first_line(value)}"
        return name

    def _assistant(self, obj: dict[str, Any], session: str | None) -> list[StreamEvent]:
        message = _dict(obj, "message")
        message_id = _str(message, "id")
        model = _str(message, "model")
        usage = _dict(message, "usage")
        tokens_in, tokens_out = _int(usage, "input_tokens"), _int(usage, "output_tokens")
        subagent = obj.get("parent_tool_use_id") is not None
        api_error = _str(obj, "error")
        content = message.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        common: dict[str, Any] = {
            "session_id": session,
            "message_id": message_id,
            "subagent": subagent,
            "model": model,
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "raw_type": "assistant",
        }
        events: list[StreamEvent] = []
        for block in blocks:
            block_type = _str(block, "type")
            if block_type == "text":
                text = _str(block, "text") or ""
                line = _first_line(text)
                if api_error:
                    self._api_error_text = line or api_error
                    summary = f"error: {line or api_error}"
                else:
                    summary = line
                events.append(
                    StreamEvent(
                        EventKind.TEXT,
                        _cut(summary, SUMMARY_CHARS),
                        text=text,
                        is_error=api_error is not None,
                        **common,
                    )
                )
            elif block_type in ("thinking", "redacted_thinking"):
                thought = _str(block, "thinking") or ""
                line = _first_line(thought)
                events.append(
                    StreamEvent(
                        EventKind.THINKING,
                        f"thinking: {line}" if line else "thinking",
                        text=thought,
                        **common,
                    )
                )
            elif block_type in ("tool_use", "server_tool_use", "mcp_tool_use"):
                name = _cut(_clean(_str(block, "name") or "tool"), 80)
                tool_input = _dict(block, "input")
                events.append(
                    StreamEvent(
                        EventKind.TOOL_USE,
                        _cut(self._tool_summary(name, tool_input), SUMMARY_CHARS),
                        tool=name,
                        tool_use_id=_str(block, "id"),
                        **common,
                    )
                )
            else:
                name = _cut(_clean(block_type or "?"), 60)
                events.append(StreamEvent(EventKind.UNKNOWN, f"assistant block: {name}", **common))
        if not events:
            # An assistant line with no usable block still shows the agent is alive.
            summary = f"error: {api_error}" if api_error else "assistant message"
            if api_error:
                self._api_error_text = api_error
            events.append(
                StreamEvent(
                    EventKind.TEXT if api_error else EventKind.UNKNOWN,
                    _cut(_clean(summary), SUMMARY_CHARS),
                    is_error=api_error is not None,
                    **common,
                )
            )
        return events

    def _user(self, obj: dict[str, Any], session: str | None) -> list[StreamEvent]:
        message = _dict(obj, "message")
        content = message.get("content")
        subagent = obj.get("parent_tool_use_id") is not None
        events: list[StreamEvent] = []
        if isinstance(content, list):
            for block in content:
                if not isinstance(block, dict) or block.get("type") != "tool_result":
                    continue
                output = _tool_output(block.get("content"))
                is_error = block.get("is_error") is True
                line = _first_line(output)
                summary = ("tool error: " if is_error else "tool result: ") + (line or "(empty)")
                events.append(
                    StreamEvent(
                        EventKind.TOOL_RESULT,
                        _cut(summary, SUMMARY_CHARS),
                        text=output,
                        is_error=is_error,
                        session_id=session,
                        tool_use_id=_str(block, "tool_use_id"),
                        subagent=subagent,
                        raw_type="user",
                    )
                )
        if events:
            return events
        text = content if isinstance(content, str) else ""
        line = _first_line(text)
        return [
            StreamEvent(
                EventKind.USER,
                f"user: {line}" if line else "user message",
                text=text or None,
                session_id=session,
                subagent=subagent,
                raw_type="user",
            )
        ]

    def _result(self, obj: dict[str, Any], session: str | None) -> StreamEvent:
        is_error = obj.get("is_error") is True
        errors = _error_strings(obj.get("errors"))
        text = _str(obj, "result")
        if is_error and not errors and not (text and text.strip()) and self._api_error_text:
            errors = (self._api_error_text,)
        result = AgentResult(
            is_error=is_error,
            subtype=_str(obj, "subtype") or "unknown",
            num_turns=_int(obj, "num_turns"),
            duration_ms=_int(obj, "duration_ms"),
            total_cost_usd=_float(obj, "total_cost_usd"),
            session_id=session,
            text=text,
            errors=errors,
        )
        return StreamEvent(
            EventKind.RESULT,
            _cut(_result_summary(result), SUMMARY_CHARS),
            text=text,
            is_error=not result.succeeded,
            session_id=session,
            result=result,
            raw_type="result",
        )


def _tool_output(content: Any) -> str:
    """A tool_result's content as text: a string, or a list of text blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            item["text"]
            for item in content
            if isinstance(item, dict) and isinstance(item.get("text"), str)
        ]
        return "\n".join(parts)
    return ""


# ---------------------------------------------------------------- what an agent is doing


@dataclass
class AgentActivity:
    """What the events of one agent add up to: its last activity, tool, words and result."""

    last_activity: datetime | None = None
    current_tool: str | None = None
    last_text: str | None = None
    result: AgentResult | None = None
    session_id: str | None = None
    api_retries: int = 0
    last_error: str | None = None
    model: str | None = None
    version: str | None = None
    cwd: str | None = None
    events: int = 0
    noise_lines: int = 0
    permission_denials: int = 0
    # Token usage per API message: a message arrives as several lines that each repeat its
    # usage, so the latest figures replace the earlier ones instead of adding up.
    _usage: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    _tools_running: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def input_tokens(self) -> int:
        return sum(used[0] for used in self._usage.values())

    @property
    def output_tokens(self) -> int:
        return sum(used[1] for used in self._usage.values())

    @property
    def api_messages(self) -> int:
        return len(self._usage)

    def apply(self, event: StreamEvent, at: datetime) -> None:
        self.events += 1
        self.last_activity = at
        if event.session_id:
            self.session_id = event.session_id
        kind = event.kind
        if kind is EventKind.NOISE:
            self.noise_lines += 1
        elif kind is EventKind.INIT:
            self.model, self.version, self.cwd = event.model, event.version, event.text
        elif kind is EventKind.TEXT:
            self._count_usage(event)
            if event.is_error:
                self.last_error = event.summary.removeprefix("error: ")
            if not event.subagent and event.text and event.text.strip():
                self.last_text = _first_line(event.text)
        elif kind in (EventKind.THINKING, EventKind.UNKNOWN):
            self._count_usage(event)
        elif kind is EventKind.TOOL_USE:
            self._count_usage(event)
            if event.tool_use_id:
                self._tools_running[event.tool_use_id] = event.summary
            if not event.subagent:
                self.current_tool = event.summary
        elif kind is EventKind.TOOL_RESULT:
            if event.tool_use_id:
                self._tools_running.pop(event.tool_use_id, None)
            # A sub-agent's tool may still be running inside the agent's own Task call.
            self.current_tool = next(reversed(self._tools_running.values()), None)
        elif kind is EventKind.SYSTEM and event.raw_type == "system/permission_denied":
            self.permission_denials += 1
        elif kind is EventKind.API_RETRY:
            self.api_retries += 1
            self.last_error = event.summary
        elif kind is EventKind.RESULT and event.result is not None:
            self.result = event.result
            self.current_tool = None
            self._tools_running.clear()
            if not event.result.succeeded:
                self.last_error = describe_failure(event.result)

    def _count_usage(self, event: StreamEvent) -> None:
        if event.message_id and (event.input_tokens is not None or event.output_tokens is not None):
            self._usage[event.message_id] = (event.input_tokens or 0, event.output_tokens or 0)


def read_log(path: Path, *, max_bytes: int | None = None) -> AgentActivity:
    """What an agent's stdout log says, read from disk (e.g. to find its `result` after a restart).

    With `max_bytes`, only the end of the file is read (the result is the last line); the cut
    line at the start of that window is skipped. Events are dated by the file's modification
    time. A missing file reads as no activity.
    """
    activity = AgentActivity()
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return activity
    with handle:
        stat = path.stat()
        at = datetime.fromtimestamp(stat.st_mtime, UTC)
        parser = StreamParser()
        if max_bytes is not None and stat.st_size > max_bytes:
            handle.seek(stat.st_size - max_bytes - 1)
            if handle.read(1) != b"\n":
                handle.readline()  # the rest of a line cut by the window
        while chunk := handle.read(1024 * 1024):
            _apply_all(activity, parser.feed(chunk), at)
        _apply_all(activity, parser.finish(), at)
    return activity


def last_stderr_line(path: Path, *, max_bytes: int = 8192) -> str | None:
    """The last non-blank line of an agent's stderr log (its own words when it died early).

    Claude Code writes some refusals only there, e.g. "Error: Session ID ... is already in use.".
    """
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - max_bytes))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        cleaned = _cut(_clean(line).strip(), 300)
        if cleaned:
            return cleaned
    return None


def _apply_all(activity: AgentActivity, events: Iterable[StreamEvent], at: datetime) -> None:
    for event in events:
        activity.apply(event, at)


# ---------------------------------------------------------------- showing and judging


_ALWAYS_SHOWN = frozenset(
    {
        EventKind.INIT,
        EventKind.TEXT,
        EventKind.TOOL_USE,
        EventKind.RESULT,
        EventKind.API_RETRY,
        EventKind.NOISE,
    }
)


def _worth_a_line(event: StreamEvent) -> bool:
    kind = event.kind
    if kind in _ALWAYS_SHOWN:
        return True
    if kind in (EventKind.TOOL_RESULT, EventKind.RATE_LIMIT):
        return event.is_error
    if kind is EventKind.STATUS:
        return bool(event.text) and event.text != "requesting"
    if kind is EventKind.SYSTEM:
        # Permission denials, and commits made by the agent's tools.
        return event.is_error or (
            event.raw_type == "system/vcs_state_changed" and event.text == "commit"
        )
    return False


def render(event: StreamEvent) -> str | None:
    """The log-tail line a person reads for this event, or None when it is not worth a line."""
    if not event.summary or not _worth_a_line(event):
        return None
    # An agent can print a token it found (`env`, a config file): never show it to anyone.
    line = redact(event.summary)
    return f"  [sub-agent] {line}" if event.subagent else line


def is_unknown_session(result: AgentResult | None) -> bool:
    """A `--resume` of a conversation Claude Code does not have (it was never saved, e.g. the
    first run died before its first message): a restart must start a new `--session-id`."""
    if result is None or result.succeeded:
        return False
    return any("No conversation found" in text for text in (*result.errors, result.text or ""))


def _format_timeout(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:g} s"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def interpret_exit(
    result: AgentResult | None,
    exit_code: int | None,
    *,
    killed: bool = False,
    timed_out_after: float | None = None,
    stderr: str | None = None,
) -> ProcessStatus:
    """The final status of a run, from its `result` line (if any) and how the process ended.

    `exit_code` is as subprocess reports it (negative: killed by that signal; None: unknown,
    e.g. an agent that ended while no supervisor was there to reap it). `killed`: we ended it.
    A run that sent its result counts by that result even when it lingered and we ended it.
    `stderr`: the last line the agent wrote there (see last_stderr_line), added to the message
    of a run that ended without a result.
    """
    if result is not None:
        if not result.succeeded:
            return ProcessStatus.failed(describe_failure(result), exit_code)
        if killed or exit_code is None or exit_code == 0:
            return ProcessStatus.completed(0 if killed or exit_code is None else exit_code)
        if exit_code < 0:
            return ProcessStatus.failed(
                f"killed by {_signal_name(-exit_code)} after a successful result", exit_code
            )
        return ProcessStatus.failed(
            f"exited with code {exit_code} after a successful result", exit_code
        )
    if timed_out_after is not None:
        return ProcessStatus.failed(
            f"timed out after {_format_timeout(timed_out_after)}", exit_code
        )
    if killed:
        return ProcessStatus.terminated(exit_code)
    if exit_code is None:
        message = "ended without a result"
    elif exit_code < 0:
        message = f"killed by {_signal_name(-exit_code)} without a result"
    else:
        message = f"exited with code {exit_code} without a result"
    if stderr and stderr.strip():
        message += f": {_first_line(stderr, 300)}"
    return ProcessStatus.failed(message, exit_code)
