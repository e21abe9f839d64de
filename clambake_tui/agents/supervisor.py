"""AgentProcessManager: spawn, monitor, terminate and list agents; follow them for a dashboard.

The manager never holds state only in memory: the registry (`.clambake/registry.json`) is the
truth, each agent's watcher process writes it, and any number of managers (the dashboard, the
`clambake` commands) read it. A manager that is killed loses nothing; a new one re-adopts the
running agents and reconciles the rest (see `reconcile`).

Change notification without inotify: the manager keeps a pidfd on every live agent and watcher.
A pidfd turns readable the moment the process exits, so the manager switches to a 2 ms stat of
the registry until the watcher has written the final status; otherwise it stats the registry
every `poll_s` (a single fstat, nothing is read unless the file changed).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import signal
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import psutil

from clambake_tui.agents import claude
from clambake_tui.agents.issue_source import GitHubIssueSource, IssueSource
from clambake_tui.agents.limits import Limits
from clambake_tui.agents.process_tree import (
    ResourceSampler,
    TreeTracker,
    create_time,
    descendants,
    end_tree,
    is_alive,
)
from clambake_tui.agents.registry import AgentRecord, Registry, RegistryStamp, agent_dir
from clambake_tui.agents.watcher import WatcherSpec, write_spec
from clambake_tui.agents.worktree import prepare_worktree
from clambake_tui.config import Config
from clambake_tui.errors import AgentError, ClambakeError
from clambake_tui.logs import agent_event, get_logger
from clambake_tui.metrics import record as record_metric
from clambake_tui.model import (
    AGENT_ID_PATTERN,
    AgentProcess,
    AgentStatus,
    Issue,
    ProcessStatus,
    ResourceUsage,
    utcnow,
)
from clambake_tui.progress import Progress, report
from clambake_tui.redact import redact, register_secret
from clambake_tui.state import Paths

__all__ = [
    "AgentProcessManager",
    "AgentEvent",
    "AgentEventKind",
    "AGENT_ID_PATTERN",
    "validate_agent_id",
]

log = get_logger(__name__)

READY_TIMEOUT_S = 60.0
# What a spawn reports to a progress display: issue, claim, worktree, watcher.
SPAWN_STAGES = 4
HUMAN_ONLY = "route:human-only"
# How much of an agent's log a manager parses when it first looks at it.
TAIL_WINDOW_BYTES = 256 * 1024


def validate_agent_id(agent_id: str) -> str:
    if not AGENT_ID_PATTERN.match(agent_id or ""):
        raise AgentError(f"agent id {agent_id!r} is not valid: use agent001 ... agent999")
    return agent_id


class AgentEventKind(enum.StrEnum):
    STATUS = "status"  # the registry record changed (state, pid, restarts, warning, ...)
    ACTIVITY = "activity"  # the agent said something: new log lines, tool, text


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """What subscribers receive: one agent's new status or new activity."""

    kind: AgentEventKind
    process: AgentProcess
    lines: tuple[str, ...] = ()
    last_activity: datetime | None = None
    current_tool: str | None = None
    last_text: str | None = None
    warning: str | None = None


# Further behind than this in an agent's log, the follower jumps to its last _TAIL_WINDOW bytes.
# (The dashboard shares its process, and its key presses, with this follower: it parses no
# more than a tail shows.)
_SKIP_BEHIND = 256 << 10
_TAIL_WINDOW = 64 << 10
# Of one read that holds a flood, the last this many lines are rendered.
_RENDER_LAST = 40


@dataclass
class _Follow:
    """The manager's reading position in one agent's log."""

    log_path: Path
    offset: int
    parser: claude.StreamParser = field(default_factory=claude.StreamParser)
    activity: claude.AgentActivity = field(default_factory=claude.AgentActivity)
    lines: deque[str] = field(default_factory=lambda: deque(maxlen=500))


class AgentProcessManager:
    """Spawns agents under per-agent watchers and follows them through the shared registry.

    Use inside a running event loop; `close()` (or `async with`) stops following (the agents and
    their watchers keep running).
    """

    def __init__(
        self,
        paths: Paths,
        config: Config,
        *,
        issues: IssueSource | None = None,
        limits: Limits | None = None,
        token: str | None = None,
        python: str | None = None,
        poll_s: float = 0.25,
        tail_s: float = 0.25,
    ) -> None:
        self.paths = paths
        self.config = config
        self.limits = limits or Limits.from_config(config.agents)
        self.issues: IssueSource = issues or GitHubIssueSource(config, paths.root)
        self.token = token
        register_secret(token)
        self.python = python or sys.executable
        self.poll_s = poll_s
        self.tail_s = tail_s
        paths.ensure_state()
        self.registry = Registry(paths)
        self._records: dict[str, AgentRecord] = {}
        self._stamp: RegistryStamp | None = None
        self._follows: dict[str, _Follow] = {}
        self._samplers: dict[str, ResourceSampler] = {}
        self._subscribers: list[asyncio.Queue[AgentEvent]] = []
        self._waiters: dict[str, list[asyncio.Future[AgentProcess]]] = {}
        self._pidfds: dict[tuple[int, float], int] = {}  # (pid, create_time) -> pidfd
        self._wake: asyncio.Event | None = None
        self._fast_until = 0.0
        self._task: asyncio.Task[None] | None = None
        self._next_tail = 0.0
        self._closed = False
        self._reconciling: set[str] = set()

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> AgentProcessManager:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def warnings(self) -> list[str]:
        """Things the user should read once (e.g. a registry that had to be rebuilt)."""
        return self.registry.warnings

    async def start(self) -> None:
        """Re-adopt and reconcile what the registry lists, then follow changes."""
        await self.reconcile()
        self._ensure_follower()

    async def close(self) -> None:
        self._closed = True
        if self._task is not None:
            if self._wake is not None:
                self._wake.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        loop = asyncio.get_running_loop()
        for key, fd in list(self._pidfds.items()):
            loop.remove_reader(fd)
            os.close(fd)
            del self._pidfds[key]
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.cancel()
        self._waiters.clear()

    # ---------------------------------------------------------------- queries

    def list_agents(self) -> list[AgentProcess]:
        """Every run in the registry, finished ones included, oldest first."""
        records = self.registry.load()
        return sorted((r.process for r in records.values()), key=lambda p: p.started_at)

    def list_active_agents(self) -> list[AgentProcess]:
        return [p for p in self.list_agents() if p.is_active]

    def records(self) -> list[AgentRecord]:
        """Registry records (AgentProcess plus watcher, warning and failure mode), oldest first."""
        return sorted(self.registry.load().values(), key=lambda r: r.process.started_at)

    def get(self, process_id: str) -> AgentProcess:
        return self.record(process_id).process

    def record(self, process_id: str) -> AgentRecord:
        found = self.registry.get(process_id)
        if found is None:
            raise AgentError(f"no agent run {process_id!r}; `clambake status` lists them")
        return found

    def find_by_agent(self, agent_id: str) -> AgentProcess | None:
        """The agent's active run, else its most recent one, else None."""
        runs = [p for p in self.list_agents() if p.agent_id == agent_id]
        active = [p for p in runs if p.is_active]
        if active:
            return active[-1]
        return runs[-1] if runs else None

    # ---------------------------------------------------------------- spawning

    async def spawn_agent(
        self, agent_id: str, issue: int | Issue, *, progress: Progress | None = None
    ) -> AgentProcess:
        """Claim the issue, give the agent a worktree and start it under a watcher.

        Refuses (AgentError, nothing started) when agents are disabled, the agent or the issue is
        already busy, or every `max_concurrent` slot is taken. Over the limit is refused, not
        queued: the caller decides when to try again. `progress` hears the four stages:
        checking the issue, claiming it, creating the worktree, starting the watcher.
        """
        started = time.monotonic()
        validate_agent_id(agent_id)
        if not self.config.agents.enabled:
            raise AgentError(
                "agents are disabled (agents.enabled = false); "
                "`clambake config set agents.enabled true` allows spawning again"
            )
        number = issue.number if isinstance(issue, Issue) else issue
        report(progress, f"checking issue #{number}", 0, SPAWN_STAGES)
        details = issue if isinstance(issue, Issue) else await self.issues.get_issue(issue)
        if details.is_pull_request:
            raise AgentError(f"#{details.number} is a pull request, not an issue")
        if HUMAN_ONLY in details.labels:
            raise AgentError(f"issue #{details.number} is labelled {HUMAN_ONLY}: not for agents")
        await self.reconcile()
        process_id = f"{agent_id}-{details.number}-{uuid.uuid4().hex[:8]}"
        folder = agent_dir(self.paths, process_id)
        record = AgentRecord(
            process=AgentProcess(
                process_id=process_id,
                agent_id=agent_id,
                issue_number=details.number,
                issue_title=details.title,
                branch_name="",
                status=ProcessStatus.starting(),
                started_at=utcnow(),
                pid=None,
                worktree=self.paths.worktrees / f"{agent_id}-{details.number}",
                log_path=folder / "stdout.log",
                session_id=str(uuid.uuid4()),
            ),
            spawner_pid=os.getpid(),
            spawner_create_time=create_time(os.getpid()),
            stderr_path=folder / "stderr.log",
        )
        self._reserve(record)
        claimed = False
        try:
            folder.mkdir(parents=True, exist_ok=True)
            report(progress, f"claiming #{details.number} for {agent_id}", 1, SPAWN_STAGES)
            await self.issues.claim(details, agent_id)
            claimed = True
            report(progress, f"creating the worktree for {agent_id}", 2, SPAWN_STAGES)
            tree = await asyncio.to_thread(
                prepare_worktree,
                self.paths,
                agent_id=agent_id,
                issue_number=details.number,
                title=details.title,
                default_branch=self.config.github.default_branch,
            )
            self.registry.update(
                process_id,
                lambda r: replace(
                    r,
                    process=replace(r.process, branch_name=tree.branch, worktree=tree.path),
                    base_branch=tree.base,
                ),
            )
            prompt = claude.build_prompt(details, tree.branch, tree.base)
            session = record.process.session_id or str(uuid.uuid4())
            launch = {
                "argv": claude.build_command(self.config.agents, prompt=prompt, session_id=session),
                "cwd": str(tree.path),
                "stdout": str(record.process.log_path),
                "stderr": str(record.stderr_path),
            }
            write_spec(
                self.paths,
                process_id,
                WatcherSpec(prompt=prompt, limits=self.limits, config=self.config, launch=launch),
            )
            report(progress, f"starting {agent_id} under its watcher", 3, SPAWN_STAGES)
            await self._start_watcher(process_id, adopt=False)
        except (ClambakeError, OSError, asyncio.CancelledError) as exc:
            reason = exc.message if isinstance(exc, ClambakeError) else str(exc) or "cancelled"
            self._fail_spawn(process_id, reason)
            if claimed:
                await self.issues.release(details, agent_id)
            record_metric(
                self.paths.metrics,
                "agent.spawn_failed",
                agent_id=agent_id,
                issue_number=details.number,
                reason=reason,
            )
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise AgentError(f"cannot spawn {agent_id} on #{details.number}: {reason}") from exc
        spawn_ms = round((time.monotonic() - started) * 1000, 1)
        process = self.get(process_id)
        record_metric(
            self.paths.metrics,
            "agent.spawned",
            agent_id=agent_id,
            issue_number=details.number,
            process_id=process_id,
            spawn_ms=spawn_ms,
        )
        agent_event(
            log,
            "agent.spawned",
            agent_id=agent_id,
            issue_number=details.number,
            process_id=process_id,
            pid=process.pid,
            branch=process.branch_name,
        )
        self._wake_follower()
        return process

    def _reserve(self, record: AgentRecord) -> None:
        """Take a slot: count and insert under the registry lock, so two spawns at once (in two
        processes) cannot both take the last one."""
        process = record.process
        with self.registry.transaction() as records:
            active = [r for r in records.values() if r.is_active]
            for other in active:
                if other.process.agent_id == process.agent_id:
                    raise AgentError(
                        f"{process.agent_id} is already running on #{other.process.issue_number} "
                        f"({other.process.status}); `clambake terminate --agent "
                        f"{process.agent_id}` first"
                    )
                if other.process.issue_number == process.issue_number:
                    raise AgentError(
                        f"issue #{process.issue_number} is already being worked by "
                        f"{other.process.agent_id}"
                    )
            limit = self.limits.max_concurrent
            if len(active) >= limit:
                busy = ", ".join(f"{r.process.agent_id} #{r.process.issue_number}" for r in active)
                raise AgentError(
                    f"all {limit} agent slots are taken ({busy}); refused, not queued: wait for "
                    "one to finish or raise agents.max_concurrent"
                )
            records[process.process_id] = record

    def _fail_spawn(self, process_id: str, reason: str) -> None:
        def fail(record: AgentRecord) -> AgentRecord:
            if not record.is_active:
                return record  # the watcher already recorded how it ended
            failed = record.with_status(
                ProcessStatus.failed(f"spawn failed: {reason}"), ended_at=utcnow()
            )
            return replace(failed, failure_mode="spawn_failed")

        with contextlib.suppress(ClambakeError):
            self.registry.update(process_id, fail)

    async def _start_watcher(self, process_id: str, *, adopt: bool) -> int:
        """Start an agent's watcher (`python -m clambake_tui.agents.launcher`) in a session of
        its own.

        A new agent: wait until the watcher says the agent process started (or why not).
        """
        folder = agent_dir(self.paths, process_id)
        folder.mkdir(parents=True, exist_ok=True)
        read_fd, write_fd = os.pipe()
        os.set_inheritable(write_fd, True)
        argv = [
            self.python,
            "-m",
            "clambake_tui.agents.launcher",
            "--root",
            str(self.paths.root),
            "--process-id",
            process_id,
            "--ready-fd",
            str(write_fd),
        ]
        if adopt:
            argv.append("--adopt")
        current = self.registry.get(process_id)
        if current is None:
            raise AgentError(f"no registry record for {process_id}")
        # The watcher runs in the agent's environment (it hands it on as is): ours, less what
        # must not reach an agent, plus the agent's identity and the GitHub token.
        env = claude.agent_environment(
            os.environ,
            agent_id=current.process.agent_id,
            issue_number=current.process.issue_number,
            token=self.token,
        )
        output = str(folder / "watcher.log")
        try:
            pid = os.posix_spawn(  # noqa: ASYNC221 - spawning is immediate, no wait
                self.python,
                argv,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                ],
                setsid=True,
                setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM),
            )
        except OSError:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        started = create_time(pid)
        self.registry.update(
            process_id, lambda r: replace(r, watcher_pid=pid, watcher_create_time=started)
        )
        self._adopt_child(pid)
        if adopt:
            os.close(read_fd)
            return pid
        line = await _read_line(read_fd, READY_TIMEOUT_S)
        if line.startswith("ok"):
            self._note_agent_pid(process_id, line)
            return pid
        if line.startswith("error "):
            raise AgentError(line.removeprefix("error ").strip())
        tail = _last_line(folder / "watcher.log")
        raise AgentError(
            "the agent's watcher ended before starting it" + (f": {tail}" if tail else "")
        )

    def _note_agent_pid(self, process_id: str, line: str) -> None:
        """Record the agent's pid from the watcher's "ok <pid>" at once: the watcher writes it
        too, but only once its own imports are done."""
        try:
            agent_pid = int(line.split()[1])
        except (IndexError, ValueError):
            return
        started = create_time(agent_pid)

        def note(record: AgentRecord) -> AgentRecord:
            if record.process.pid is not None or not record.is_active:
                return record
            return replace(
                record, process=replace(record.process, pid=agent_pid, pid_create_time=started)
            )

        self.registry.update(process_id, note)

    def _adopt_child(self, pid: int) -> None:
        """Reap a watcher we started the moment it exits (zero zombies), whether or not an event
        loop is still running: a thread blocked in waitpid on that one pid."""
        thread = threading.Thread(
            target=_reap_blocking, args=(pid,), name=f"reap-watcher-{pid}", daemon=True
        )
        thread.start()

    # ---------------------------------------------------------------- recovery

    async def reconcile(self) -> None:
        """Match the registry with reality: keep live watchers, give a live agent whose watcher
        died a new (adopting) watcher, and settle runs that ended unsupervised."""
        for record in list(self.registry.load().values()):
            if record.is_active:
                await self._reconcile_one(record.process_id)

    async def _reconcile_one(self, process_id: str) -> None:
        if process_id in self._reconciling:
            return
        self._reconciling.add(process_id)
        try:
            with self.registry.locked():
                record = self.registry.get(process_id)
                if record is None or not record.is_active:
                    return
                if is_alive(record.watcher_pid, record.watcher_create_time):
                    return
                if record.watcher_pid is None:
                    if is_alive(record.spawner_pid, record.spawner_create_time):
                        return  # still being spawned
                    self._fail_spawn(
                        process_id, "interrupted (the clambake process spawning it ended)"
                    )
                    return
                # A dead watcher: a new one takes over the agent, or settles it from its log.
                agent_event(
                    log,
                    "agent.watcher_lost",
                    level=30,
                    agent_id=record.process.agent_id,
                    issue_number=record.process.issue_number,
                    process_id=process_id,
                )
                await self._start_watcher(process_id, adopt=True)
        finally:
            self._reconciling.discard(process_id)

    # ---------------------------------------------------------------- following

    def _ensure_follower(self) -> None:
        if self._task is None or self._task.done():
            self._closed = False
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._follow())

    def _wake_follower(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _poke(self) -> None:
        """A watched process exited: look at the registry every 2 ms for a while."""
        self._fast_until = time.monotonic() + 2.0
        self._wake_follower()

    async def _follow(self) -> None:
        assert self._wake is not None
        while not self._closed:
            fast = time.monotonic() < self._fast_until
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.002 if fast else self.poll_s)
            try:
                self._refresh()
                now = time.monotonic()
                # Logs are followed for subscribers; `tail` and `monitor_agent` read on demand.
                if self._subscribers and now >= self._next_tail:
                    self._next_tail = now + self.tail_s
                    self._tail_logs()
            except ClambakeError as exc:
                log.warning("cannot follow the agent registry: %s", exc)
                await asyncio.sleep(self.poll_s)
            except Exception:
                # Following must outlive any one bad moment: waiters and subscribers rely on it.
                log.exception("following the agents failed; going on")
                self._stamp = None
                await asyncio.sleep(self.poll_s)

    def _refresh(self) -> None:
        stamp = self.registry.stamp()
        if stamp == self._stamp:
            return
        self._stamp = stamp
        records = self.registry.load()
        for process_id, record in records.items():
            old = self._records.get(process_id)
            if old is not None and old.process == record.process and old.warning == record.warning:
                continue
            if not record.is_active and process_id in self._follows:
                # The log's last lines come before the final status, as they happened.
                self._tail_one(record)
            self._emit(AgentEvent(AgentEventKind.STATUS, record.process, warning=record.warning))
            if not record.is_active:
                for fut in self._waiters.pop(process_id, []):
                    if not fut.done():
                        fut.set_result(record.process)
        for process_id in list(self._waiters):
            final = records.get(process_id)
            if final is not None and not final.is_active:
                for fut in self._waiters.pop(process_id):
                    if not fut.done():
                        fut.set_result(final.process)
        self._records = records
        self._watch_pids(records)

    def _watch_pids(self, records: dict[str, AgentRecord]) -> None:
        """A pidfd on every live agent and watcher: their exit wakes us at once."""
        wanted: dict[tuple[int, float], str] = {}
        for record in records.values():
            if not record.is_active:
                continue
            process = record.process
            if process.pid and process.pid_create_time:
                wanted[(process.pid, process.pid_create_time)] = record.process_id
            if record.watcher_pid and record.watcher_create_time:
                wanted[(record.watcher_pid, record.watcher_create_time)] = record.process_id
        loop = asyncio.get_running_loop()
        for key, fd in list(self._pidfds.items()):
            if key not in wanted:
                loop.remove_reader(fd)
                os.close(fd)
                del self._pidfds[key]
        for key, process_id in wanted.items():
            if key in self._pidfds:
                continue
            try:
                fd = os.pidfd_open(key[0])
            except OSError:
                self._on_exit(key, process_id)
                continue
            if not is_alive(*key):
                # Gone already, and the pid may belong to someone else by now.
                os.close(fd)
                self._on_exit(key, process_id)
                continue
            self._pidfds[key] = fd
            loop.add_reader(fd, self._on_exit, key, process_id)

    def _on_exit(self, key: tuple[int, float], process_id: str) -> None:
        fd = self._pidfds.pop(key, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        self._poke()
        record = self._records.get(process_id)
        if record is not None and key[0] == record.watcher_pid:
            # A watcher that ends leaves a final status first; if it did not, it died.
            asyncio.get_running_loop().call_later(0.5, self._check_watcher, process_id)

    def _check_watcher(self, process_id: str) -> None:
        if self._closed:
            return
        record = self.registry.get(process_id)
        if record is not None and record.is_active:
            task = asyncio.get_running_loop().create_task(self._reconcile_one(process_id))
            task.add_done_callback(_log_failure)

    def _tail_logs(self) -> None:
        for record in self._records.values():
            if record.is_active:
                self._tail_one(record)

    def _follow_state(self, record: AgentRecord) -> _Follow:
        follow = self._follows.get(record.process_id)
        if follow is None:
            path = record.process.log_path
            try:
                size = path.stat().st_size
            except OSError:
                size = 0
            start = max(0, size - TAIL_WINDOW_BYTES)
            follow = _Follow(path, start)
            follow.lines = deque(maxlen=max(10, self.config.dashboard.log_tail_lines))
            if start > 0:
                # Skip the line cut by the window.
                follow.parser.feed(_read_range(path, start, 0))
            self._follows[record.process_id] = follow
        return follow

    def _tail_one(self, record: AgentRecord) -> None:
        follow = self._follow_state(record)
        try:
            size = follow.log_path.stat().st_size
        except OSError:
            return
        if size < follow.offset:
            follow.offset = 0  # rotated
        if size == follow.offset:
            return
        new_lines: list[str] = []
        skip_note: str | None = None
        if size - follow.offset > _SKIP_BEHIND:
            # A flood outran us: what a person reads (and the current activity) lives in the
            # latest lines, so jump to the tail instead of parsing megabytes nobody will see.
            start = size - _TAIL_WINDOW
            data = _read_range(follow.log_path, start, _TAIL_WINDOW)
            first_line = data.find(b"\n") + 1  # the window starts mid-line; drop that part
            skipped = start + first_line - follow.offset
            data = data[first_line:]
            follow.offset = start + first_line
            follow.parser = claude.StreamParser()
            skip_note = f"… {skipped / 1e6:.1f} MB of output skipped to keep up (all of it: {follow.log_path})"
        else:
            data = _read_range(follow.log_path, follow.offset, size - follow.offset)
        follow.offset += len(data)
        # In a flood only the latest lines are rendered; the words before them are skimmed
        # (their activity still counts).
        skimmed = follow.parser.skimmed
        events = follow.parser.skim(data, keep_last=_RENDER_LAST)
        skimmed = follow.parser.skimmed - skimmed
        if skimmed and skip_note is None:
            skip_note = f"… {skimmed:,} lines not shown to keep up (all of them: {follow.log_path})"
        if not record.is_active:
            events += follow.parser.finish()
        if not events and skip_note is None:
            return
        now = utcnow()
        for event in events:
            follow.activity.apply(event, now)
            # render() redacts: what an agent prints may hold a token it read from its environment.
            line = claude.render(event)
            if line is not None:
                new_lines.append(line)
        # A flood sends only what a pane can show (the rest is in the log file), and says so.
        shown = new_lines[-(follow.lines.maxlen or len(new_lines)) :]
        if skip_note is not None:
            shown = (
                [skip_note, *shown[1:]]
                if len(shown) == follow.lines.maxlen
                else [skip_note, *shown]
            )
        follow.lines.extend(shown)
        activity = follow.activity
        self._emit(
            AgentEvent(
                AgentEventKind.ACTIVITY,
                record.process,
                lines=tuple(shown),
                last_activity=activity.last_activity,
                current_tool=_redacted(activity.current_tool),
                last_text=_redacted(activity.last_text),
                warning=record.warning,
            )
        )

    def _emit(self, event: AgentEvent) -> None:
        for queue in self._subscribers:
            if queue.full():
                # A slow subscriber loses the oldest news, never blocks the follower.
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(event)

    def subscribe(self, maxsize: int = 1000) -> asyncio.Queue[AgentEvent]:
        """A queue of AgentEvents (status changes and new activity) for every agent."""
        queue: asyncio.Queue[AgentEvent] = asyncio.Queue(maxsize=maxsize)
        self._subscribers.append(queue)
        self._ensure_follower()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[AgentEvent]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(queue)

    async def wait_finished(
        self,
        process_id: str,
        timeout: float | None = None,  # noqa: ASYNC109 - a deadline is part of this API
    ) -> AgentProcess:
        """Wait until the run has a final status (completed, failed, terminated)."""
        record = self.record(process_id)
        if not record.is_active:
            return record.process
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            self._ensure_follower()
            fut: asyncio.Future[AgentProcess] = loop.create_future()
            self._waiters.setdefault(process_id, []).append(fut)
            # It may have finished between the read above and registering the waiter.
            self._stamp = None
            self._wake_follower()
            left = None if deadline is None else deadline - loop.time()
            # The follower resolves the waiter at once; the registry is also read once a second
            # so that no missed wake-up can leave a caller waiting.
            step = 1.0 if left is None else max(0.0, min(1.0, left))
            try:
                return await asyncio.wait_for(fut, step)
            except TimeoutError:
                with contextlib.suppress(ValueError):
                    self._waiters.get(process_id, []).remove(fut)
            current = self.record(process_id)
            if not current.is_active:
                return current.process
            if deadline is not None and loop.time() >= deadline:
                raise AgentError(
                    f"{record.process.agent_id} did not finish within {timeout:g} s"
                ) from None

    # ---------------------------------------------------------------- monitoring

    def tail(self, process_id: str, n: int = 50) -> list[str]:
        """The last `n` readable log lines of a run (rendered stream-json events)."""
        record = self.record(process_id)
        follow = self._follow_state(record)
        self._tail_one(record)
        lines = list(follow.lines)
        return lines[-n:] if n > 0 else []

    async def monitor_agent(self, process_id: str) -> AgentStatus:
        """Status, last activity, current tool / last text and the tree's resources."""
        record = self.record(process_id)
        follow = self._follow_state(record)
        self._tail_one(record)
        activity = follow.activity
        resources = await asyncio.to_thread(self._resources, record)
        process = record.process
        return AgentStatus(
            process=process,
            status=process.status,
            last_activity=activity.last_activity or process.status.last_activity,
            current_tool=_redacted(activity.current_tool),
            last_text=_redacted(activity.last_text),
            resources=resources,
            result=process.result or activity.result,
        )

    def _resources(self, record: AgentRecord) -> ResourceUsage:
        if not record.is_active:
            return ResourceUsage()
        procs = _tree_of(record)
        sampler = self._samplers.get(record.process_id)
        if sampler is None:
            # CPU % needs two samples: take the first now and measure over a short interval.
            sampler = self._samplers[record.process_id] = ResourceSampler()
            sampler.sample(procs)
            time.sleep(0.1)
            procs = _tree_of(record)
        return sampler.sample(procs)

    # ---------------------------------------------------------------- termination

    async def terminate_agent(
        self, process_id: str, *, progress: Progress | None = None
    ) -> AgentProcess:
        """SIGTERM the agent's group, wait `terminate_grace_s`, SIGKILL what is left of the tree
        (setsid grandchildren too), wait until none is left. Returns the final record.
        `progress` hears the signal, then the wait for the tree to end."""
        record = self.record(process_id)
        if not record.is_active:
            return record.process
        grace = self.limits.terminate_grace_s
        who = record.process.agent_id
        report(progress, f"sending SIGTERM to {who}", 0, 2)
        if is_alive(record.watcher_pid, record.watcher_create_time):
            assert record.watcher_pid is not None
            # Written down first: should this watcher die, the one adopting the run ends it.
            # A disk that refuses the note must not delay the stop itself.
            try:
                self.registry.update(process_id, lambda r: replace(r, stop_requested=True))
            except ClambakeError as exc:
                log.warning("cannot note the terminate request: %s", exc)
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.watcher_pid, signal.SIGTERM)
            report(progress, f"waiting for {who} to end (SIGKILL after {grace:g} s)", 1, 2)
            return await self.wait_finished(process_id, timeout=grace + 60.0)
        if record.watcher_pid is None and is_alive(record.spawner_pid, record.spawner_create_time):
            raise AgentError(f"{record.process.agent_id} is still starting; retry in a moment")
        report(progress, f"waiting for {who} to end (SIGKILL after {grace:g} s)", 1, 2)
        await self._terminate_unwatched(record)
        return self.get(process_id)

    async def _terminate_unwatched(self, record: AgentRecord) -> None:
        """No watcher: end the tree ourselves (we cannot reap it; its parent is gone)."""
        process = record.process
        pgid: int | None = None
        tracker = TreeTracker()
        if is_alive(process.pid, process.pid_create_time):
            assert process.pid is not None
            tracker.add_root(process.pid)
            pgid = process.pid
        await end_tree(tracker, pgid=pgid, grace_s=self.limits.terminate_grace_s)
        self.registry.update(
            record.process_id,
            lambda r: replace(
                r.with_status(ProcessStatus.terminated(), ended_at=utcnow()),
                failure_mode="killed",
            ),
        )

    async def terminate_all(self) -> list[AgentProcess]:
        active = self.list_active_agents()
        results = await asyncio.gather(
            *(self.terminate_agent(p.process_id) for p in active), return_exceptions=True
        )
        done: list[AgentProcess] = []
        for outcome in results:
            if isinstance(outcome, BaseException):
                if isinstance(outcome, ClambakeError):
                    raise outcome
                raise AgentError(f"terminate failed: {outcome}")
            done.append(outcome)
        return done


# ---------------------------------------------------------------- helpers


def _tree_of(record: AgentRecord) -> list[psutil.Process]:
    """The agent's whole tree: the watcher's descendants (it reaps orphans), else the agent's."""
    process = record.process
    if is_alive(record.watcher_pid, record.watcher_create_time):
        assert record.watcher_pid is not None
        pids = descendants([record.watcher_pid])[1:]
    elif process.pid and is_alive(process.pid, process.pid_create_time):
        pids = descendants([process.pid])
    else:
        return []
    procs: list[psutil.Process] = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    return procs


def _redacted(text: str | None) -> str | None:
    return redact(text) if text else text


def _reap_blocking(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, 0)


def _read_range(path: Path, offset: int, size: int) -> bytes:
    """`size` bytes from `offset` (0: the rest of the line at `offset`)."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return handle.readline() if size == 0 else handle.read(size)
    except OSError:
        return b""


async def _read_line(fd: int, limit_s: float) -> str:
    """One line from a pipe without blocking the loop ('' on EOF or timeout)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(fd, "rb", 0)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        data = await asyncio.wait_for(reader.readline(), limit_s)
    except TimeoutError:
        data = b""
    finally:
        transport.close()
    return data.decode("utf-8", "replace").strip()


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("reconciling an agent failed: %s", task.exception())
