"""The stand-in for Claude Code: same flags, same stream-json, a real edit and commit, bad days.

Run as `clambake-standin-agent -p PROMPT --output-format stream-json --verbose ...`. It writes
the events the real CLI writes (system init, assistant text and tool calls, tool results, a final
result), really edits a file in its working directory (the agent's worktree) and commits it with
git. It never pushes.

The behaviour is chosen by the first of: `--standin-mode M`, the environment variable
`CLAMBAKE_STANDIN_MODE`, a line `standin-mode: M` in the prompt (the prompt carries the issue's
body, so an issue can pick its agent's behaviour); the default is `succeed`.

Modes:
  succeed          edit, commit, result success, exit 0
  fail             result `is_error: true` (error_during_execution), exit 1; changes nothing
  auth-error       what the real CLI prints when not logged in: an assistant line with
                   "error": "authentication_failed", a result `success` + `is_error: true`, exit 1
  crash            exit 1 in the middle of the stream (last line cut), no result
  hang             the init line, then silence forever
  ignore-sigterm   ignores SIGTERM and works slowly (an event a second) for a long time
  fork-grandchild  starts a grandchild that moves to a new session (its pid is in a tool
                   result) and sleeps long, then hangs
  flood            CLAMBAKE_STANDIN_FLOOD_RATE lines/s (1000) for CLAMBAKE_STANDIN_FLOOD_SECONDS
                   (5), then succeeds
  garbage          non-UTF-8 bytes, escape sequences and non-JSON lines among the events, then
                   succeeds
  linger           succeeds, emits its result, then does not exit

Other switches (flag, environment, prompt line - first found):
  --standin-delay / CLAMBAKE_STANDIN_DELAY / `standin-delay: X`   seconds between events (0.05)
  `standin-file: path`, `standin-content: text` (prompt lines)    the file to write and its text
                                                                  (default notes/issue-<N>.md)
  CLAMBAKE_STANDIN_SLOW_SECONDS      how long ignore-sigterm works (3600)
  CLAMBAKE_STANDIN_SLEEP_SECONDS     how long the fork-grandchild grandchild sleeps (3600)

This module imports little on purpose: the soak tests start it hundreds of times.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

# `typing` costs milliseconds at every start; the annotations are only read by the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["main", "MODES", "STANDIN_VERSION"]

MODES = (
    "succeed",
    "fail",
    "auth-error",
    "crash",
    "hang",
    "ignore-sigterm",
    "fork-grandchild",
    "flood",
    "garbage",
    "linger",
)
# The version the init line reports: the real CLI's it was modelled on, marked as a stand-in.
STANDIN_VERSION = "2.1.332-standin"
DEFAULT_MODEL = "claude-standin-1"
TOOLS = ["Task", "Bash", "Glob", "Grep", "Read", "Edit", "Write", "NotebookEdit", "TodoWrite"]

# Options of the real CLI that take a value, and those that take a list of values; any other
# option is taken as a switch (unknown options are ignored, as a lenient stand-in should).
_VALUE_OPTIONS = frozenset(
    {
        "--output-format",
        "--input-format",
        "--permission-mode",
        "--model",
        "--fallback-model",
        "--max-budget-usd",
        "--session-id",
        "--resume",
        "-r",
        "--append-system-prompt",
        "--system-prompt",
        "--settings",
        "--setting-sources",
        "--agent",
        "--agents",
        "--json-schema",
        "--debug-file",
        "--effort",
        "--name",
        "-n",
        "--permission-prompts",
        "--autocompact",
        "--standin-mode",
        "--standin-delay",
    }
)
_LIST_OPTIONS = frozenset(
    {
        "--allowedTools",
        "--allowed-tools",
        "--disallowedTools",
        "--disallowed-tools",
        "--mcp-config",
        "--add-dir",
        "--betas",
        "--tools",
        "--file",
        "--plugin-dir",
    }
)


def _parse_args(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Options (value options as str, list options as list, switches as True) and positionals."""
    options: dict[str, Any] = {}
    positionals: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            positionals.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positionals.append(arg)
            continue
        name, has_value, inline = arg.partition("=")
        if name in _LIST_OPTIONS:
            values = [inline] if has_value else []
            while i < len(argv) and not argv[i].startswith("-"):
                values.append(argv[i])
                i += 1
            options.setdefault(name, []).extend(values)
        elif name in _VALUE_OPTIONS:
            if has_value:
                options[name] = inline
            elif i < len(argv) and not argv[i].startswith("-"):
                options[name] = argv[i]
                i += 1
            else:
                options[name] = True
        else:
            options[name] = inline if has_value else True
    return options, positionals


def _prompt_setting(prompt: str, key: str) -> str | None:
    """The value of a `key: value` line in the prompt (the issue body), if any."""
    prefix = key + ":"
    for line in prompt.splitlines():
        stripped = line.strip().lstrip("-*> ").strip("`")
        if stripped.lower().startswith(prefix):
            return stripped[len(prefix) :].strip().strip("`")
    return None


def _setting(options: dict[str, Any], prompt: str, flag: str, env: str, key: str) -> str | None:
    value = options.get(flag)
    if isinstance(value, str) and value:
        return value
    if os.environ.get(env):
        return os.environ[env]
    return _prompt_setting(prompt, key)


def _number(text: str | None, default: float) -> float:
    try:
        value = float(text) if text else default
    except ValueError:
        return default
    # nan and infinities would make time.sleep raise.
    return value if value - value == 0 else default


def _new_uuid() -> str:
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _is_uuid(text: str) -> bool:
    parts = text.split("-")
    if [len(p) for p in parts] != [8, 4, 4, 4, 12]:
        return False
    try:
        int("".join(parts), 16)
    except ValueError:
        return False
    return True


def _issue_number(prompt: str) -> int | None:
    env = os.environ.get("CLAMBAKE_ISSUE", "")
    if env.isdigit():
        return int(env)
    at = prompt.find("#")
    while at >= 0:
        digits = ""
        for ch in prompt[at + 1 :]:
            if not ch.isdigit():
                break
            digits += ch
        if digits:
            return int(digits)
        at = prompt.find("#", at + 1)
    return None


class _Out:
    """Writes the chosen output format; only stream-json writes every event."""

    def __init__(self, output_format: str) -> None:
        self.format = output_format
        self._stream = sys.stdout.buffer

    def raw(self, data: bytes) -> None:
        self._stream.write(data)
        self._stream.flush()

    def event(self, event: dict[str, Any]) -> None:
        if self.format == "stream-json":
            self.raw(json.dumps(event, ensure_ascii=False).encode() + b"\n")

    def final(self, result: dict[str, Any]) -> None:
        if self.format == "stream-json":
            self.event(result)
        elif self.format == "json":
            self.raw(json.dumps(result, ensure_ascii=False).encode() + b"\n")
        else:
            text = result.get("result") or ""
            self.raw(text.encode() + b"\n")


class _Agent:
    """One run of the stand-in: the session, its pacing and the events it writes."""

    def __init__(
        self,
        out: _Out,
        *,
        session_id: str,
        model: str,
        permission_mode: str,
        delay: float,
        budget: float | None,
    ) -> None:
        self.out = out
        self.session_id = session_id
        self.model = model
        self.permission_mode = permission_mode
        self.delay = delay
        self.budget = budget
        self.cwd = os.getcwd()
        self.started = time.monotonic()
        self.turns = 0
        self.cost = 0.0
        self.message_id = ""
        self._tool_count = 0

    # -- pacing and plumbing

    def pause(self, factor: float = 1.0) -> None:
        if self.delay > 0:
            time.sleep(self.delay * factor)

    def emit(self, event: dict[str, Any]) -> None:
        event.setdefault("session_id", self.session_id)
        event.setdefault("uuid", _new_uuid())
        self.out.event(event)

    def init(self) -> None:
        self.emit(
            {
                "type": "system",
                "subtype": "init",
                "cwd": self.cwd,
                "session_id": self.session_id,
                "tools": TOOLS,
                "mcp_servers": [],
                "model": self.model,
                "permissionMode": self.permission_mode,
                "slash_commands": [],
                "apiKeySource": "none",
                "claude_code_version": STANDIN_VERSION,
                "output_style": "default",
                "agents": ["general-purpose"],
            }
        )

    def rate_limit(self) -> None:
        self.emit(
            {
                "type": "rate_limit_event",
                "rate_limit_info": {
                    "status": "allowed",
                    "resetsAt": int(time.time()) + 5 * 3600,
                    "rateLimitType": "five_hour",
                    "isUsingOverage": False,
                },
            }
        )

    def new_message(self) -> None:
        """Start one API message: its blocks arrive as lines sharing one message id."""
        self.turns += 1
        self.cost += 0.0123
        self.message_id = "msg_standin_" + os.urandom(10).hex()

    def _assistant(self, block: dict[str, Any], **extra: Any) -> None:
        self.emit(
            {
                "type": "assistant",
                "message": {
                    "model": self.model,
                    "id": self.message_id,
                    "type": "message",
                    "role": "assistant",
                    "content": [block],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 1200 + 40 * self.turns,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 9000,
                        "output_tokens": 60,
                        "service_tier": "standard",
                    },
                    "context_management": None,
                },
                "parent_tool_use_id": None,
                **extra,
            }
        )

    def say(self, text: str) -> None:
        self._assistant({"type": "text", "text": text})
        self.pause()

    def tool(self, name: str, tool_input: dict[str, Any]) -> str:
        self._tool_count += 1
        tool_id = f"toolu_standin_{self._tool_count:02d}_{os.urandom(6).hex()}"
        self._assistant({"type": "tool_use", "id": tool_id, "name": name, "input": tool_input})
        self.pause()
        return tool_id

    def tool_result(
        self, tool_id: str, content: str, *, is_error: bool = False, detail: Any = None
    ) -> None:
        block: dict[str, Any] = {"tool_use_id": tool_id, "type": "tool_result", "content": content}
        if is_error:
            block["is_error"] = True
        event: dict[str, Any] = {
            "type": "user",
            "message": {"role": "user", "content": [block]},
            "parent_tool_use_id": None,
        }
        if detail is not None:
            event["tool_use_result"] = detail
        self.emit(event)
        self.pause()

    def result(
        self,
        *,
        subtype: str = "success",
        is_error: bool = False,
        text: str | None = None,
        errors: list[str] | None = None,
        terminal_reason: str = "completed",
    ) -> None:
        elapsed_ms = int((time.monotonic() - self.started) * 1000)
        event: dict[str, Any] = {
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "duration_ms": elapsed_ms,
            "duration_api_ms": max(0, elapsed_ms - 5),
            "num_turns": self.turns,
            "session_id": self.session_id,
            "total_cost_usd": round(self.cost, 6),
            "usage": {
                "input_tokens": 1200 * max(1, self.turns),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 9000 * max(1, self.turns),
                "output_tokens": 60 * max(1, self.turns),
                "service_tier": "standard",
            },
            "modelUsage": {
                self.model: {
                    "inputTokens": 1200 * max(1, self.turns),
                    "outputTokens": 60 * max(1, self.turns),
                    "costUSD": round(self.cost, 6),
                }
            },
            "permission_denials": [],
            "terminal_reason": terminal_reason,
        }
        if text is not None:
            event["result"] = text
        if errors is not None:
            event["errors"] = errors
        self.out.final({**event, "uuid": _new_uuid()})

    def over_budget(self) -> bool:
        if self.budget is None or self.cost <= self.budget:
            return False
        self.result(
            subtype="error_max_budget_usd",
            is_error=True,
            errors=[f"Reached maximum budget (${self.budget:g})"],
            terminal_reason="max_budget",
        )
        return True


def _git(*args: str) -> tuple[int, str]:
    import subprocess  # only the modes that commit pay for it

    done = subprocess.run(
        ["git", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False
    )
    return done.returncode, (done.stdout + done.stderr).strip()


def _do_the_work(agent: _Agent, prompt: str, issue: int | None) -> int:
    """Write the file, commit it, and end with a result. Returns the exit code."""
    name = _prompt_setting(prompt, "standin-file") or (
        f"notes/issue-{issue}.md" if issue is not None else "notes/standin.md"
    )
    content = _prompt_setting(prompt, "standin-content")
    if content is None:
        agent_id = os.environ.get("CLAMBAKE_AGENT_ID", "an agent")
        what = f"issue #{issue}" if issue is not None else "this task"
        content = f"Notes on {what}, written by {agent_id}."
    content = content.replace("\\n", "\n").rstrip("\n") + "\n"
    path = os.path.realpath(os.path.join(agent.cwd, name))
    inside = os.path.realpath(agent.cwd) + os.sep

    agent.new_message()
    agent.say(f"I'll make the change for {_what(issue)} in `{name}` and commit it.")
    if agent.over_budget():
        return 1
    if not path.startswith(inside):
        # An issue body picks the file: it must not reach outside the agent's worktree.
        message = f"refusing to write {name}: it is outside the working directory"
        agent.say(message)
        agent.result(subtype="error_during_execution", is_error=True, errors=[message])
        return 1
    existed = os.path.exists(path)
    tool_id = agent.tool("Write", {"file_path": path, "content": content})
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)
    except OSError as exc:
        agent.tool_result(tool_id, f"<tool_use_error>{exc}</tool_use_error>", is_error=True)
        agent.new_message()
        agent.say(f"I could not write `{name}`: {exc}")
        agent.result(subtype="error_during_execution", is_error=True, errors=[str(exc)])
        return 1
    verb = "updated" if existed else "created"
    message = (
        f"The file {path} has been updated successfully."
        if existed
        else f"File created successfully at: {path}"
    )
    agent.tool_result(tool_id, message, detail={"type": verb, "filePath": path})

    agent.new_message()
    title = f"Update {name} for {_what(issue)}"
    command = f"git add {name} && git commit -m '{title}'"
    tool_id = agent.tool("Bash", {"command": command, "description": "Commit the change"})
    code, output = _git("add", "--", name)
    if code == 0:
        code, output = _git("commit", "-m", title, "--", name)
        if code != 0 and _git("diff", "--cached", "--quiet", "--", name)[0] == 0:
            # Nothing changed (a resumed run finding its work already committed): not a failure.
            code, output = 0, "nothing to commit, working tree clean"
    if code != 0:
        agent.tool_result(tool_id, f"Exit code {code}\n{output}", is_error=True)
        agent.new_message()
        agent.say(f"The commit failed: {output.splitlines()[0] if output else code}")
        agent.result(
            subtype="error_during_execution",
            is_error=True,
            errors=[f"git commit failed: {output.splitlines()[0] if output else code}"],
        )
        return 1
    # git's first line names the branch: "[agent001/7-notes 1a2b3c4] Update ...".
    first = output.splitlines()[0] if output else ""
    branch = ""
    if first.startswith("[") and "] " in first:
        branch = first[1:].split("] ", 1)[0].rsplit(" ", 1)[0].replace(" (root-commit)", "")
    if branch:
        agent.emit(
            {
                "type": "system",
                "subtype": "vcs_state_changed",
                "kind": "commit",
                "branch": branch,
                "cwd": agent.cwd,
            }
        )
    agent.tool_result(
        tool_id,
        output,
        detail={"stdout": output, "stderr": "", "interrupted": False, "isImage": False},
    )
    agent.new_message()
    where = f"branch `{branch}`" if branch else "the current branch"
    summary = f"Done: {verb} `{name}` and committed it on {where} (not pushed)."
    agent.say(summary)
    if agent.over_budget():
        return 1
    agent.result(text=summary)
    return 0


def _what(issue: int | None) -> str:
    return f"issue #{issue}" if issue is not None else "this task"


def _sleep_forever() -> None:
    while True:
        time.sleep(3600)


def _auth_error(agent: _Agent) -> int:
    """The real CLI's output when it is not logged in (recorded from 2.1.332)."""
    text = "Not logged in · Please run /login"
    agent.turns = 1
    agent.emit(
        {
            "type": "assistant",
            "message": {
                "id": _new_uuid(),
                "model": "<synthetic>",
                "role": "assistant",
                "stop_reason": "stop_sequence",
                "stop_sequence": "",
                "type": "message",
                "usage": {"input_tokens": 0, "output_tokens": 0},
                "content": [{"type": "text", "text": text}],
                "context_management": None,
            },
            "parent_tool_use_id": None,
            "error": "authentication_failed",
            "is_api_error_message": True,
        }
    )
    agent.result(text=text, is_error=True, terminal_reason="api_error")
    return 1


def _fail(agent: _Agent, issue: int | None) -> int:
    agent.new_message()
    agent.say(f"Let me look at {_what(issue)}.")
    tool_id = agent.tool("Bash", {"command": "make test", "description": "Run the tests"})
    agent.tool_result(
        tool_id, "Exit code 2\nmake: *** No rule to make target 'test'.", is_error=True
    )
    agent.new_message()
    agent.say("I could not complete this task: the project's tests cannot be run.")
    agent.result(
        subtype="error_during_execution",
        is_error=True,
        errors=["stand-in failure: the task could not be completed"],
    )
    return 1


def _crash(agent: _Agent, out: _Out) -> int:
    agent.new_message()
    agent.say("Starting on the task.")
    agent.tool("Read", {"file_path": os.path.join(agent.cwd, "README.md")})
    # Die in the middle of writing a line, as a process killed by the OOM killer would.
    out.raw(b'{"type":"assistant","message":{"id":"' + agent.message_id.encode())
    sys.stderr.write("Error: stand-in crash (mode crash)\n    at standin (standin.js:1:1)\n")
    sys.stderr.flush()
    return 1


def _ignore_sigterm(agent: _Agent) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    agent.new_message()
    agent.say("This will take a while; I am not stopping for SIGTERM.")
    seconds = _number(os.environ.get("CLAMBAKE_STANDIN_SLOW_SECONDS"), 3600.0)
    deadline = time.monotonic() + seconds
    step = 0
    while time.monotonic() < deadline:
        step += 1
        agent.new_message()
        agent.tool("Bash", {"command": f"sleep 1  # step {step}", "description": "Work slowly"})
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    agent.new_message()
    agent.say(f"Finished slowly after {step} steps.")
    agent.result(text="Finished slowly.")
    return 0


def _fork_grandchild(agent: _Agent) -> int:
    seconds = _number(os.environ.get("CLAMBAKE_STANDIN_SLEEP_SECONDS"), 3600.0)
    agent.new_message()
    agent.say("Starting a background helper.")
    tool_id = agent.tool(
        "Bash",
        {"command": f"setsid sleep {seconds:g} &", "description": "Start a background helper"},
    )
    # Reap the grandchild if it ends before us, so we never leave a zombie of our own.
    signal.signal(signal.SIGCHLD, lambda *_: _reap())
    # The write end closes when the grandchild execs: reading to EOF waits until it has left
    # the session, so the pid reported below is already out of the agent's group.
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the grandchild: a new session, away from the agent's process group
        try:
            os.close(ready_r)
            os.setsid()
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.execvp("sleep", ["sleep", f"{seconds:g}"])  # noqa: S606 - no shell wanted
        finally:
            os._exit(127)
    os.close(ready_w)
    while os.read(ready_r, 1):
        pass
    os.close(ready_r)
    agent.tool_result(
        tool_id,
        f"Started background process with pid {pid}",
        detail={"backgroundTaskId": str(pid), "pid": pid},
    )
    _sleep_forever()
    return 0  # pragma: no cover


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


def _flood(agent: _Agent, issue: int | None, prompt: str) -> int:
    """Assistant text lines (one API message, as a long streamed answer) at a steady rate."""
    rate = max(1.0, _number(os.environ.get("CLAMBAKE_STANDIN_FLOOD_RATE"), 1000.0))
    seconds = max(0.0, _number(os.environ.get("CLAMBAKE_STANDIN_FLOOD_SECONDS"), 5.0))
    total = int(rate * seconds)
    agent.new_message()
    agent.say(f"Printing {total} lines at {rate:g} lines/s.")
    marker = "@@FLOOD@@"
    template = json.dumps(
        {
            "type": "assistant",
            "message": {
                "model": agent.model,
                "id": agent.message_id,
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": marker}],
                "usage": {"input_tokens": 1200, "output_tokens": 60},
            },
            "parent_tool_use_id": None,
            "session_id": agent.session_id,
        }
    ).encode()
    head, tail = template.split(marker.encode())
    # Written in blocks, 50 a second: a wake-up per line would cost the stand-in more CPU than
    # the flood it makes costs its readers.
    block_seconds = 0.02
    start = time.monotonic()
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        if due > sent:
            agent.out.raw(
                b"".join(
                    [
                        head + b"flood line %d of %d" % (n, total) + tail + b"\n"
                        for n in range(sent + 1, due + 1)
                    ]
                )
            )
            sent = due
        if sent < total:
            time.sleep(max(block_seconds, start + sent / rate - time.monotonic()))
    return _do_the_work(agent, prompt, issue)


def _garbage(agent: _Agent, issue: int | None, prompt: str) -> int:
    out = agent.out
    out.raw(b"Warning: this line is not JSON\n")
    agent.new_message()
    agent.say("Some of what follows is not JSON.")
    out.raw(b"\xff\xfe\x80 binary \xc3\x28 bytes \xed\xa0\x80 not UTF-8\n")
    out.raw(b"\x1b[31mred text with an escape sequence\x1b[0m\r\n")
    out.raw(b'{"type": "assistant", "message": {"id": "cut in the middle\n')
    out.raw(b"[1, 2, 3]\n")
    out.raw(b"\n   \n")
    agent.emit({"type": "standin_mystery_event", "payload": {"n": 1}})
    agent.emit({"type": "system", "subtype": "standin_unknown_subtype"})
    out.raw(b'{"type":"assistant","message":{"content":"\xff not utf-8 inside JSON"}}\n')
    out.raw(b"x" * 100_000 + b"\n")
    return _do_the_work(agent, prompt, issue)


def _run(argv: list[str]) -> int:
    options, positionals = _parse_args(argv)
    if options.get("-h") or options.get("--help"):
        sys.stdout.write(__doc__ or "")
        return 0
    if options.get("-v") or options.get("--version"):
        sys.stdout.write(f"{STANDIN_VERSION} (Claude Code stand-in)\n")
        return 0
    output_format = options.get("--output-format")
    if not isinstance(output_format, str):
        output_format = "text"
    if output_format not in ("text", "json", "stream-json"):
        sys.stderr.write(
            f"error: option '--output-format <format>' argument '{output_format}' is invalid. "
            "Allowed choices are text, json, stream-json.\n"
        )
        return 1
    if not (options.get("-p") or options.get("--print")):
        sys.stderr.write("clambake-standin-agent: only headless runs (-p) are supported\n")
        return 2
    if output_format == "stream-json" and not options.get("--verbose"):
        sys.stderr.write(
            "Error: When using --print, --output-format=stream-json requires --verbose\n"
        )
        return 1
    session = options.get("--session-id")
    resume = options.get("--resume") or options.get("-r")
    if isinstance(session, str) and resume and not options.get("--fork-session"):
        sys.stderr.write(
            "Error: --session-id with --continue or --resume also needs --fork-session.\n"
        )
        return 1
    if isinstance(session, str) and not _is_uuid(session):
        sys.stderr.write("Error: Invalid session ID. Must be a valid UUID.\n")
        return 1
    prompt = " ".join(positionals).strip()
    if not prompt and not sys.stdin.isatty():
        prompt = sys.stdin.read().strip()
    if not prompt:
        sys.stderr.write(
            "Error: Input must be provided either through stdin or as a prompt argument "
            "when using --print\n"
        )
        return 1

    mode = (
        _setting(options, prompt, "--standin-mode", "CLAMBAKE_STANDIN_MODE", "standin-mode")
        or "succeed"
    ).lower()
    if mode not in MODES:
        sys.stderr.write(
            f"clambake-standin-agent: unknown mode {mode!r}; choose one of {', '.join(MODES)}\n"
        )
        return 2
    delay = _number(
        _setting(options, prompt, "--standin-delay", "CLAMBAKE_STANDIN_DELAY", "standin-delay"),
        0.05,
    )
    budget_text = options.get("--max-budget-usd")
    budget = _number(budget_text, 0.0) if isinstance(budget_text, str) else None
    model = options.get("--model")
    permission_mode = options.get("--permission-mode")
    if isinstance(session, str):
        session_id = session
    elif isinstance(resume, str) and _is_uuid(resume):
        session_id = resume
    else:
        session_id = _new_uuid()

    out = _Out(output_format)
    agent = _Agent(
        out,
        session_id=session_id,
        model=model if isinstance(model, str) else DEFAULT_MODEL,
        permission_mode=permission_mode if isinstance(permission_mode, str) else "default",
        delay=max(0.0, delay),
        budget=budget,
    )
    issue = _issue_number(prompt)

    agent.init()
    if mode == "hang":
        _sleep_forever()
    if mode == "auth-error":
        return _auth_error(agent)
    agent.rate_limit()
    agent.pause()
    if mode == "fail":
        return _fail(agent, issue)
    if mode == "crash":
        return _crash(agent, out)
    if mode == "ignore-sigterm":
        return _ignore_sigterm(agent)
    if mode == "fork-grandchild":
        return _fork_grandchild(agent)
    if mode == "flood":
        return _flood(agent, issue, prompt)
    if mode == "garbage":
        return _garbage(agent, issue, prompt)
    code = _do_the_work(agent, prompt, issue)
    if mode == "linger":
        _sleep_forever()
    return code


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # Whoever read our output went away: point stdout at /dev/null so that the flush at
        # exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
