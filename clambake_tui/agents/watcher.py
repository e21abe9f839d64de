"""The per-agent watcher: the small process that is an agent's parent (like runit's `supervise`).

Started as `python -m clambake_tui.agents.launcher ...` (see launcher.py: the agent is started
before this module is even imported).

It runs in a session of its own, so it outlives the dashboard or command that started it. It
starts the agent (stdin /dev/null, own session, stdout/stderr appended to files), reaps it and
every orphan of its tree (it is a child subreaper: zero zombies), parses the stdout log as it
grows, enforces the wall-time timeout, the inactivity warning and the result-then-linger grace,
restarts failed runs with exponential backoff (`--resume` of the same session, same worktree),
writes every status change to the registry, records metrics, and finally calls the
`on_agent_finished` hook. `--adopt` takes over a live agent whose watcher died: it cannot reap
that agent (it is not its parent) but watches it through a pidfd and judges it by its log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clambake_tui.agents import claude
from clambake_tui.agents.launcher import (
    LAUNCH_KEY,
    TOKEN_ENV,
    EarlyStart,
    report,
    stop_was_requested,
)
from clambake_tui.agents.limits import Limits
from clambake_tui.agents.process_tree import (
    ResourceSampler,
    TreeTracker,
    become_subreaper,
    create_time,
    end_tree,
    is_alive,
)
from clambake_tui.agents.registry import AgentRecord, Registry, RegistryStamp, agent_dir
from clambake_tui.config import SECTIONS, Config
from clambake_tui.errors import AgentError, ClambakeError
from clambake_tui.logs import agent_event, configure_logging, get_logger
from clambake_tui.metrics import record as record_metric
from clambake_tui.model import AgentResult, AgentState, ProcessStatus, utcnow
from clambake_tui.redact import register_secret
from clambake_tui.state import Paths

__all__ = [
    "WatcherSpec",
    "write_spec",
    "read_spec",
    "classify_failure",
    "TOKEN_ENV",
    "main",
]

log = get_logger(__name__)

SPEC_NAME = "spec.json"
# Failures a restart cannot fix.
_NO_RESTART = frozenset({"auth_error", "timeout", "killed"})
_AUTH_WORDS = ("not logged in", "authentication", "/login", "invalid api key", "oauth")
_RATE_WORDS = ("rate limit", "rate_limit", "429", "overloaded")


@dataclass(frozen=True, slots=True)
class WatcherSpec:
    """What a watcher needs beyond the registry record: the run's inputs, fixed at spawn."""

    prompt: str
    limits: Limits
    config: Config
    # What the launcher starts right away: argv, cwd, stdout, stderr (see launcher.py).
    launch: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "prompt": self.prompt,
            "limits": self.limits.to_json(),
            "config": self.config.as_dict(),
            "config_path": str(self.config.path) if self.config.path else None,
            LAUNCH_KEY: self.launch,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WatcherSpec:
        sections = {
            name: SECTIONS[name](**values)
            for name, values in data["config"].items()
            if name in SECTIONS
        }
        path = data.get("config_path")
        config = Config(**sections, path=Path(path) if path else None)
        return cls(
            prompt=str(data["prompt"]), limits=Limits.from_json(data["limits"]), config=config
        )


def write_spec(paths: Paths, process_id: str, spec: WatcherSpec) -> Path:
    from clambake_tui.atomic import atomic_write_text

    target = agent_dir(paths, process_id) / SPEC_NAME
    atomic_write_text(target, json.dumps(spec.to_json(), indent=1) + "\n")
    return target


def read_spec(paths: Paths, process_id: str) -> WatcherSpec:
    data = json.loads((agent_dir(paths, process_id) / SPEC_NAME).read_text(encoding="utf-8"))
    return WatcherSpec.from_json(data)


def classify_failure(
    status: ProcessStatus,
    result: AgentResult | None,
    *,
    last_error: str | None,
    timed_out: bool,
    killed: bool,
) -> str | None:
    """timeout | crash | auth_error | rate_limited | killed | error, or None for a success."""
    if status.state is AgentState.COMPLETED:
        return None
    if timed_out:
        return "timeout"
    if status.state is AgentState.TERMINATED or (killed and result is None):
        return "killed"
    if result is None:
        return "crash"
    words = " ".join((*result.errors, result.text or "", last_error or "")).lower()
    if any(w in words for w in _AUTH_WORDS):
        return "auth_error"
    if any(w in words for w in _RATE_WORDS):
        return "rate_limited"
    return "error"


@dataclass
class _Run:
    """One start of the agent process and what happened to it."""

    pid: int
    started: float
    pgid: int
    exit_code: int | None = None
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    killed: bool = False
    timed_out: bool = False
    lingered: bool = False
    result_at: float | None = None
    exited_at: datetime | None = None


@dataclass
class _Peaks:
    cpu: float = 0.0
    rss: int = 0
    files: int = 0


class Watcher:
    """Supervises one agent process (and its restarts) from start to final status."""

    def __init__(self, paths: Paths, record: AgentRecord, spec: WatcherSpec) -> None:
        self.paths = paths
        self.registry = Registry(paths)
        self.record = record
        self.spec = spec
        self.limits = spec.limits
        self.folder = agent_dir(paths, record.process_id)
        self.stop_requested = asyncio.Event()
        # Set on the agent's exit and on a stop request: the supervising loop wakes at once.
        self._wake = asyncio.Event()
        self._last_output = time.monotonic()
        self.tracker = TreeTracker()
        self.sampler = ResourceSampler()
        self.peaks = _Peaks()
        self.activity = claude.AgentActivity()
        self.parser = claude.StreamParser()
        self.offset = record.log_offset
        self.run: _Run | None = None
        self._working_written = False
        self._activity_written = 0.0
        self._warned_inactive = False
        self._reaping = False
        self._exit_status: dict[int, int] = {}
        self._pidfd: int | None = None
        self.first_started: datetime = record.process.started_at
        self._my_create_time = create_time(os.getpid())
        self._dirty = False
        self._write_failing = False
        self._registry_seen: RegistryStamp | None = None

    # -- registry

    def _update(self, **changes: Any) -> None:
        """Change our record (process fields and record fields) and write it to the registry.

        The watcher is the only writer of its record while it lives, so its copy is the truth:
        a write that fails (disk full, read-only) is kept and retried, never lost.
        """
        process_fields = {k: v for k, v in changes.items() if hasattr(self.record.process, k)}
        record_fields = {k: v for k, v in changes.items() if k not in process_fields}
        self.record = replace(
            self.record,
            process=replace(self.record.process, **process_fields),
            watcher_pid=os.getpid(),
            watcher_create_time=self._my_create_time,
            **record_fields,
        )
        self._dirty = True
        self._flush()

    def _flush(self) -> bool:
        """Write our record if it has unwritten changes; False when the registry refused."""
        if not self._dirty:
            return True
        mine = self.record
        try:
            with self.registry.transaction() as records:
                current = records.get(mine.process_id)
                # The one field others write while we live: a terminate request.
                asked = mine.stop_requested or bool(current and current.stop_requested)
                records[mine.process_id] = replace(mine, stop_requested=asked)
        except ClambakeError as exc:
            if not self._write_failing:
                self._write_failing = True
                self._event("agent.registry_write_failed", level=40, error=str(exc))
            return False
        if self._write_failing:
            self._write_failing = False
            self._event("agent.registry_write_recovered")
        self._dirty = False
        return True

    async def _flush_until_written(self) -> None:
        """The final status must reach the registry: retry (gently) until the disk takes it."""
        delay = 0.05
        while not self._flush():
            await asyncio.sleep(delay)
            delay = min(2.0, delay * 2)

    def _event(self, event: str, level: int = 20, **fields: Any) -> None:
        agent_event(
            log,
            event,
            agent_id=self.record.process.agent_id,
            issue_number=self.record.process.issue_number,
            process_id=self.record.process_id,
            level=level,
            **fields,
        )

    # -- reaping

    def _reap(self) -> None:
        """Collect every exited child (the agent and orphans handed to us as subreaper)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            run = self.run
            if run is not None and pid == run.pid and run.exit_code is None:
                run.exit_code = code
                run.exited_at = utcnow()
                run.exited.set()
                self._wake.set()

    def _quiet_for(self) -> float:
        return time.monotonic() - self._last_output

    def _stop(self) -> None:
        self.stop_requested.set()
        self._wake.set()

    def _check_stop_request(self) -> None:
        """A terminate is written in the registry before its signal is sent: honour the record
        too, so that a signal that never arrives cannot leave the run going until its timeout."""
        stamp = self.registry.stamp()
        if stamp == self._registry_seen:
            return
        self._registry_seen = stamp
        try:
            current = self.registry.get(self.record.process_id)
        except ClambakeError:
            return  # unreadable now; the next sample reads it again
        if current is not None and current.stop_requested and not self.stop_requested.is_set():
            # Usually the signal is only a loop turn behind; when it never comes, this is the stop.
            log.debug(
                "terminate request read from the registry",
                extra={"process_id": self.record.process_id},
            )
            self._stop()

    def _adopted_exit(self) -> None:
        if self.run is not None and not self.run.exited.is_set():
            self.run.exited_at = utcnow()
            self.run.exited.set()
        self._wake.set()

    # -- one run

    def _command(self, resume: bool) -> list[str]:
        session = self.record.process.session_id or str(uuid.uuid4())
        return claude.build_command(
            self.spec.config.agents, prompt=self.spec.prompt, session_id=session, resume=resume
        )

    def _environment(self) -> dict[str, str]:
        base = dict(os.environ)
        token = base.pop(TOKEN_ENV, None)
        register_secret(token)
        return claude.agent_environment(
            base,
            agent_id=self.record.process.agent_id,
            issue_number=self.record.process.issue_number,
            token=token,
        )

    def _start(self, resume: bool) -> _Run:
        """Start the agent: own session, stdin /dev/null, output appended to its log files."""
        process = self.record.process
        if not process.worktree.is_dir():
            raise AgentError(f"its worktree {process.worktree} is missing")
        stdout_path = process.log_path
        stderr_path = self.record.stderr_path or self.folder / "stderr.log"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        out_fd = os.open(stdout_path, flags, 0o644)
        err_fd = os.open(stderr_path, flags, 0o644)
        try:
            offset = os.fstat(out_fd).st_size
            child = subprocess.Popen(
                self._command(resume),
                cwd=process.worktree,
                stdin=subprocess.DEVNULL,
                stdout=out_fd,
                stderr=err_fd,
                env=self._environment(),
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(out_fd)
            os.close(err_fd)
        # We reap it ourselves (waitpid(-1) as subreaper); Popen must not try to.
        child.returncode = 0
        return self._begin(child.pid, offset, time.monotonic())

    def _begin(self, pid: int, offset: int, started: float) -> _Run:
        """Take charge of a run just started (by us, or by the launcher before our imports)."""
        self.offset = offset
        run = _Run(pid=pid, started=started, pgid=pid)
        self.run = run
        # As subreaper we inherit the tree's orphans: our own children are part of the tree.
        self.tracker = TreeTracker([os.getpid(), pid])
        self.parser = claude.StreamParser()
        self.activity.result = None
        self.activity.current_tool = None
        self._working_written = False
        self._warned_inactive = False
        self._update(
            status=ProcessStatus.starting(),
            pid=pid,
            pid_create_time=create_time(pid),
            log_offset=offset,
            warning=None,
        )
        # It may have ended before our SIGCHLD handler existed.
        self._reap()
        return run

    def _adopt(self) -> _Run | None:
        """Take over the live agent of a dead watcher, or None when it is gone too."""
        process = self.record.process
        pid = process.pid
        if pid is None or not is_alive(pid, process.pid_create_time):
            return None
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return None
        if not is_alive(pid, process.pid_create_time):
            os.close(pidfd)
            return None
        run = _Run(pid=pid, started=time.monotonic(), pgid=pid)
        started_at = process.started_at
        # The wall-time budget counts from the run's real start, not from the adoption.
        run.started -= max(0.0, (utcnow() - started_at).total_seconds())
        self._pidfd = pidfd
        asyncio.get_running_loop().add_reader(pidfd, self._adopted_exit)
        self.run = run
        self.tracker = TreeTracker([pid])
        self.offset = self.record.log_offset
        self._working_written = process.status.state is AgentState.WORKING
        self._event("agent.adopted", pid=pid)
        return run

    async def _supervise(self, run: _Run) -> None:
        """Follow the run until it has exited: read its log, enforce the limits."""
        limits = self.limits
        next_sample = 0.0
        while not run.exited.is_set():
            # Poll the log briskly while output flows, gently while the agent is quiet.
            quiet = self._quiet_for() > 2.0
            self._wake.clear()
            if not (run.exited.is_set() or self.stop_requested.is_set()):
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), limits.poll_s * (5 if quiet else 1))
            now = time.monotonic()
            if self._dirty:
                self._flush()
            self._read_log()
            if now >= next_sample:
                next_sample = now + limits.sample_s
                self._sample()
                self._check_stop_request()
            if run.exited.is_set():
                break
            if self.stop_requested.is_set():
                run.killed = True
                await self._end(run, "terminate requested")
                break
            if self.activity.result is not None:
                if run.result_at is None:
                    run.result_at = now
                elif now - run.result_at >= limits.linger_grace_s:
                    run.lingered = True
                    await self._end(run, "result sent but the process did not exit")
                    break
            if now - run.started >= limits.timeout_s:
                run.timed_out = True
                await self._end(run, f"timed out after {limits.timeout_text()}")
                break
            self._check_inactivity(now, run)
        # Leftovers: a grandchild that outlived the agent is ended like any other tree member.
        self._reap()
        await self._end(run, None)
        self._read_log()
        self._apply(self.parser.finish())

    async def _end(self, run: _Run, reason: str | None) -> None:
        if reason:
            self._event("agent.ending", reason=reason, pid=run.pid)
        left = await end_tree(
            self.tracker,
            pgid=run.pgid,
            grace_s=self.limits.terminate_grace_s,
            reap=self._reap,
            exclude=(os.getpid(),),
        )
        if left:
            self._event("agent.tree_survived", level=40, pids=left)
        if self._pidfd is None:
            # Our own child: it has exited by now; wait for the reap (SIGCHLD may lag a tick).
            deadline = time.monotonic() + 5.0
            while not run.exited.is_set() and time.monotonic() < deadline:
                self._reap()
                if not run.exited.is_set():
                    await asyncio.sleep(0.005)
        else:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(run.exited.wait(), 5.0)

    def _check_inactivity(self, now: float, run: _Run) -> None:
        if self._warned_inactive:
            return
        last = self.activity.last_activity
        silent = (utcnow() - last).total_seconds() if last else now - run.started
        if silent >= self.limits.inactivity_warning_s:
            self._warned_inactive = True
            warning = f"no output for {int(silent)} s"
            self._event("agent.inactive", level=30, silent_s=round(silent, 1))
            self._update(warning=warning)

    # -- the log

    def _apply(self, events: list[claude.StreamEvent]) -> None:
        if not events:
            return
        self._last_output = time.monotonic()
        at = utcnow()
        for event in events:
            self.activity.apply(event, at)
        if self.activity.session_id and self.activity.session_id != self.record.process.session_id:
            self._update(session_id=self.activity.session_id)
        if not self._working_written:
            self._working_written = True
            self._activity_written = time.monotonic()
            self._update(status=ProcessStatus.working(at), warning=None)
        elif time.monotonic() - self._activity_written >= 15.0:
            # Other readers of the registry see a fresh "last activity" now and then.
            self._activity_written = time.monotonic()
            self._update(status=ProcessStatus.working(at))
        self._warned_inactive = False

    def _read_log(self) -> None:
        path = self.record.process.log_path
        try:
            size = path.stat().st_size
        except OSError:
            return
        if size < self.offset:
            # Rotated (copied and truncated): the rest is in the new, shorter file.
            self.offset = 0
        budget = 8 * 1024 * 1024
        with contextlib.suppress(OSError), path.open("rb") as handle:
            handle.seek(self.offset)
            while budget > 0:
                chunk = handle.read(min(1024 * 1024, budget))
                if not chunk:
                    break
                budget -= len(chunk)
                self.offset += len(chunk)
                # A flood of words is skimmed: the activity comes out the same, at a fraction
                # of the cost (a watcher must not take a core from the agents it watches).
                self._apply(self.parser.skim(chunk))
        if self.offset > self.limits.log_max_bytes:
            self._rotate(path)
            self.offset = 0
            self._update(log_offset=0)

    def _rotate(self, path: Path) -> None:
        """Keep the last full file as `<name>.1` and start the live one again (copytruncate)."""
        try:
            shutil.copyfile(path, path.with_name(path.name + ".1"))
            with path.open("r+b") as handle:
                handle.truncate(0)
        except OSError as exc:
            log.warning("cannot rotate %s: %s", path, exc)

    def _sample(self) -> None:
        run = self.run
        if run is None:
            return
        self.tracker.update()
        usage = self.sampler.sample(self.tracker.alive(exclude=(os.getpid(),)))
        self.peaks.cpu = max(self.peaks.cpu, usage.cpu_percent)
        self.peaks.rss = max(self.peaks.rss, usage.rss_bytes)
        self.peaks.files = max(self.peaks.files, usage.open_files)
        stderr_path = self.record.stderr_path
        with contextlib.suppress(OSError):
            if stderr_path and stderr_path.stat().st_size > self.limits.log_max_bytes:
                self._rotate(stderr_path)

    # -- the whole life

    def _judge(self, run: _Run) -> tuple[ProcessStatus, str | None]:
        result = self.activity.result
        status = claude.interpret_exit(
            result,
            run.exit_code if self._pidfd is None else None,
            killed=run.killed or run.lingered or run.timed_out,
            timed_out_after=self.limits.timeout_s if run.timed_out else None,
        )
        if run.killed and result is None:
            status = ProcessStatus.terminated(status.exit_code)
        mode = classify_failure(
            status,
            result,
            last_error=self.activity.last_error,
            timed_out=run.timed_out and result is None,
            killed=run.killed,
        )
        return status, mode

    async def run_all(
        self, *, adopt: bool, ready_fd: int | None, early: EarlyStart | None = None
    ) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._stop)
        loop.add_signal_handler(signal.SIGCHLD, self._reap)
        become_subreaper()
        if stop_was_requested() or self.record.stop_requested:
            self._stop()
        status: ProcessStatus | None = None
        mode: str | None = None
        if adopt:
            run = self._adopt()
            if run is None:
                return await self._finish_orphan()
        elif early is not None:
            if early.error or early.pid is None:
                status, mode = ProcessStatus.failed(early.error or "cannot start"), "error"
                return await self._finalize(status, mode, exit_code=None)
            run = self._begin(early.pid, early.log_offset, early.started)
        else:
            try:
                run = self._start(resume=False)
            except (OSError, ValueError, ClambakeError) as exc:
                message = f"cannot start {self.spec.config.agents.claude_code_path}: " + (
                    getattr(exc, "strerror", None) or str(exc)
                )
                if isinstance(exc, AgentError):
                    message = f"cannot start the agent: {exc}"
                report(ready_fd, f"error {message}")
                status, mode = ProcessStatus.failed(message), "error"
                return await self._finalize(status, mode, exit_code=None)
            report(ready_fd, f"ok {run.pid}")
        # Failures in a row, each soon after its start: the restart budget. A run that stayed up
        # `healthy_s` starts the count over (the registry's `restarts` keeps the total).
        quick_failures = 0
        while True:
            started = time.monotonic()
            await self._supervise(run)
            status, mode = self._judge(run)
            if time.monotonic() - started >= self.limits.healthy_s:
                quick_failures = 0
            if (
                status.state is AgentState.FAILED
                and mode not in _NO_RESTART
                and quick_failures < self.limits.max_restarts
                and not self.stop_requested.is_set()
                and self._pidfd is None
            ):
                quick_failures += 1
                delay = self.limits.backoff(quick_failures)
                self._event(
                    "agent.restarting", level=30, error=status.error, delay_s=delay, mode=mode
                )
                self._update(
                    status=ProcessStatus.starting(),
                    restarts=self.record.process.restarts + 1,
                    warning=f"restarting after: {status.error}",
                )
                record_metric(
                    self.paths.metrics,
                    "agent.restarted",
                    agent_id=self.record.process.agent_id,
                    issue_number=self.record.process.issue_number,
                    process_id=self.record.process_id,
                    restarts=self.record.process.restarts,
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stop_requested.wait(), delay)
                if self.stop_requested.is_set():
                    status, mode = ProcessStatus.terminated(), "killed"
                    break
                try:
                    # Resume only a conversation that really began (its init line named it);
                    # one that never started gets a fresh session id.
                    resume = self.activity.session_id is not None
                    if not resume:
                        self._update(session_id=str(uuid.uuid4()))
                    run = self._start(resume=resume)
                except (OSError, ValueError, ClambakeError) as exc:
                    status, mode = ProcessStatus.failed(f"cannot restart: {exc}"), "error"
                    break
                continue
            break
        return await self._finalize(status, mode, exit_code=run.exit_code)

    async def _finish_orphan(self) -> int:
        """The agent ended while no watcher was there: judge it by its log alone."""
        result = _result_since(self.record.process.log_path, self.record.log_offset)
        status = claude.interpret_exit(result, None)
        if result is None:
            status = ProcessStatus.failed("ended without a result while unsupervised")
        mode = classify_failure(status, result, last_error=None, timed_out=False, killed=False)
        self.activity.result = result
        return await self._finalize(status, mode, exit_code=None)

    async def _finalize(
        self, status: ProcessStatus, mode: str | None, exit_code: int | None
    ) -> int:
        loop = asyncio.get_running_loop()
        # From here on the hook may run subprocesses of its own: stop reaping every child.
        loop.remove_signal_handler(signal.SIGCHLD)
        if self._pidfd is not None:
            loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        ended = utcnow()
        process = self.record.process
        duration = (ended - process.started_at).total_seconds()
        exited = self.run.exited_at if self.run and self.run.exited_at else ended
        # The metric goes first: whoever sees the final status in the registry finds it there.
        record_metric(
            self.paths.metrics,
            "agent.finished",
            agent_id=process.agent_id,
            issue_number=process.issue_number,
            process_id=process.process_id,
            state=status.state.value,
            failure_mode=mode,
            duration_s=round(duration, 3),
            exit_code=exit_code,
            restarts=process.restarts,
            cpu_peak=self.peaks.cpu,
            rss_peak=self.peaks.rss,
            open_files_peak=self.peaks.files,
            exited_at=exited.isoformat(),
        )
        self._update(
            status=status,
            ended_at=ended,
            result=self.activity.result,
            failure_mode=mode,
        )
        await self._flush_until_written()
        self._event(
            "agent.finished",
            level=20 if status.state is AgentState.COMPLETED else 30,
            state=status.state.value,
            error=status.error,
            failure_mode=mode,
        )
        if status.state is AgentState.FAILED and self.spec.config.agents.cleanup_on_failure:
            await asyncio.to_thread(self._cleanup)
        try:
            from clambake_tui.agents import hooks

            await hooks.on_agent_finished(self.record.process, self.paths, self.spec.config)
        except Exception as exc:  # the hook must never leave the agent's status unrecorded
            log.error("on_agent_finished failed", exc_info=True)
            self._event("agent.hook_failed", level=40, error=str(exc))
        return 0

    def _cleanup(self) -> None:
        from clambake_tui.agents.worktree import remove_worktree

        process = self.record.process

        def in_use() -> bool:
            # A later run on the same issue may be working in this worktree by now.
            return any(
                other.is_active
                and other.process_id != process.process_id
                and other.process.worktree == process.worktree
                for other in self.registry.load().values()
            )

        removed = remove_worktree(
            self.paths,
            process.worktree,
            process.branch_name,
            base=self.record.base_branch or "main",
            unless=in_use,
        )
        if removed:
            self._event("agent.worktree_removed", worktree=str(process.worktree))


def _result_since(path: Path, offset: int) -> AgentResult | None:
    """The last `result` event in the log after `offset` (the current run's output)."""
    parser = claude.StreamParser()
    result: AgentResult | None = None
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(offset if offset <= size else 0)
            while chunk := handle.read(1024 * 1024):
                for event in parser.feed(chunk):
                    if event.result is not None:
                        result = event.result
            for event in parser.finish():
                if event.result is not None:
                    result = event.result
    except OSError:
        return None
    return result


async def _main(args: argparse.Namespace, early: EarlyStart | None) -> int:
    paths = Paths(Path(args.root))
    record = Registry(paths).get(args.process_id)
    if record is None:
        report(args.ready_fd, f"error no registry record for {args.process_id}")
        return 2
    try:
        spec = read_spec(paths, args.process_id)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report(args.ready_fd, f"error cannot read the agent's spec: {exc}")
        return 2
    watcher = Watcher(paths, record, spec)
    return await watcher.run_all(adopt=args.adopt, ready_fd=args.ready_fd, early=early)


def main_after_launch(args: argparse.Namespace, early: EarlyStart | None) -> int:
    """Supervise the run the launcher started (or start it, or adopt it)."""
    configure_logging(Paths(Path(args.root)).logs)
    try:
        return asyncio.run(_main(args, early))
    except Exception:
        log.error("watcher failed", exc_info=True, extra={"process_id": args.process_id})
        print(f"watcher failed at {datetime.now(UTC).isoformat()}", file=sys.stderr)
        raise


def main(argv: list[str] | None = None) -> int:
    from clambake_tui.agents.launcher import main as launcher_main

    return launcher_main(argv)


if __name__ == "__main__":
    sys.exit(main())
