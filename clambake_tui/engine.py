"""The engine the dashboard, `--once` and the CLI share: one refresh gives a frozen Snapshot.

The engine never imports Textual. It owns no domain logic of its own: agents come from the
supervisor, runs and issues from the GitHub client, bundling from the bundling package. What it
adds is the operator's view: one consistent snapshot, GitHub trouble turned into a status line
(with the last known runs kept), and the exit code `--once` reports.
"""

from __future__ import annotations

import asyncio
import enum
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from clambake_tui.errors import AgentError, AuthError, ClambakeError, ConfigError, GitHubError
from clambake_tui.logs import get_logger
from clambake_tui.metrics import MetricsView, load_metrics_view
from clambake_tui.model import (
    AGENT_ID_PATTERN,
    AgentProcess,
    AgentState,
    AgentStatus,
    Issue,
    RateLimit,
    ResourceUsage,
    WorkflowRun,
    priority_rank,
    utcnow,
)
from clambake_tui.progress import Progress, format_bytes
from clambake_tui.redact import redact

if TYPE_CHECKING:
    from clambake_tui.agents.supervisor import AgentProcessManager
    from clambake_tui.config import Config
    from clambake_tui.github.client import GitHubClient, RunLogs
    from clambake_tui.github.transport import ClientSettings, Waiting
    from clambake_tui.state import Paths

__all__ = [
    "Clock",
    "TokenStatus",
    "GitHubHealth",
    "AgentView",
    "Snapshot",
    "BundleOutcome",
    "Progress",
    "EngineLike",
    "Engine",
    "ready_order",
    "next_free_agent_id",
    "format_age",
    "format_bytes",
]

Clock = Callable[[], datetime]
T = TypeVar("T")
log = get_logger(__name__)

READY_LABEL = "route:ready"
UNBLOCKER_LABEL = "route:unblocker"
HUMAN_ONLY_LABEL = "route:human-only"
# Finished agents stay on screen this long so the operator sees how they ended.
FINISHED_VISIBLE = timedelta(hours=2)
MAX_AGENTS_SHOWN = 64


class TokenStatus(enum.StrEnum):
    """Whether a GitHub token is configured; the token itself never leaves the client."""

    PRESENT = "token set"
    MISSING = "no token"
    REJECTED = "token rejected"
    UNKNOWN = "token unknown"


class GitHubHealth(enum.StrEnum):
    OK = "ok"
    RATE_LIMITED = "rate limited"
    UNREACHABLE = "unreachable"
    AUTH = "auth"
    NOT_CONFIGURED = "not configured"


@dataclass(frozen=True, slots=True)
class AgentView:
    """One agent as the dashboard shows it: the supervisor's status plus a readable log tail."""

    status: AgentStatus
    tail: tuple[str, ...] = ()

    @property
    def process(self) -> AgentProcess:
        return self.status.process

    @property
    def process_id(self) -> str:
        return self.status.process.process_id

    @property
    def agent_id(self) -> str:
        return self.status.process.agent_id

    @property
    def state(self) -> AgentState:
        return self.status.status.state

    @property
    def is_active(self) -> bool:
        return not self.state.is_final

    def elapsed_seconds(self, now: datetime) -> float:
        end = self.process.ended_at if self.state.is_final and self.process.ended_at else now
        return max(0.0, (end - self.process.started_at).total_seconds())

    def activity_line(self, now: datetime) -> str:
        """'12 s ago: Edit src/app.py' — what the agent did last, and when."""
        what = self.status.current_tool or self.status.last_text or ""
        what = " ".join(what.split())
        when = self.status.last_activity
        if when is None:
            return what or "no activity yet"
        age = f"{format_age((now - when).total_seconds())} ago"
        return f"{age}: {what}" if what else age


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one refresh saw. Frozen: the dashboard and `--once` render it as is."""

    taken_at: datetime
    repo: str
    token: TokenStatus
    max_concurrent: int
    agents: tuple[AgentView, ...] = ()
    runs: tuple[WorkflowRun, ...] = ()
    rate_limit: RateLimit | None = None
    next_train: datetime | None = None
    github: GitHubHealth = GitHubHealth.OK
    github_status: str = ""
    errors: tuple[str, ...] = ()
    # A configuration or auth problem: `--once` exits 2.
    fatal: bool = False
    actions_enabled: bool = True

    @property
    def active_count(self) -> int:
        return sum(1 for agent in self.agents if agent.is_active)

    @property
    def last_run(self) -> WorkflowRun | None:
        completed = [run for run in self.runs if run.is_completed]
        return max(completed, key=lambda run: run.created_at) if completed else None

    @property
    def failed_agents(self) -> tuple[AgentView, ...]:
        return tuple(agent for agent in self.agents if agent.state is AgentState.FAILED)

    @property
    def exit_code(self) -> int:
        """0 healthy, 1 an agent failed or the last bundling run failed, 2 config/auth trouble."""
        if self.fatal:
            return 2
        last = self.last_run
        if self.failed_agents or (last is not None and last.conclusion == "failure"):
            return 1
        return 0

    def budget_line(self) -> str:
        if self.rate_limit is None:
            return "budget ?"
        return f"budget {self.rate_limit.remaining}/{self.rate_limit.limit}"

    def to_json(self) -> dict[str, Any]:
        now = self.taken_at
        return {
            "taken_at": now.isoformat(),
            "repo": self.repo,
            "token": self.token.value,
            "agents_running": self.active_count,
            "max_concurrent": self.max_concurrent,
            "agents": [
                {
                    "agent_id": a.agent_id,
                    "process_id": a.process_id,
                    "issue_number": a.process.issue_number,
                    "issue_title": a.process.issue_title,
                    "branch": a.process.branch_name,
                    "state": a.state.value,
                    "status": str(a.status.status),
                    "elapsed_s": round(a.elapsed_seconds(now), 1),
                    "last_activity": a.status.last_activity.isoformat()
                    if a.status.last_activity
                    else None,
                    "current_tool": a.status.current_tool,
                    "cpu_percent": a.status.resources.cpu_percent,
                    "rss_bytes": a.status.resources.rss_bytes,
                    "restarts": a.process.restarts,
                    "tail": list(a.tail),
                }
                for a in self.agents
            ],
            "runs": [
                {
                    "id": r.id,
                    "run_number": r.run_number,
                    "status": r.status,
                    "conclusion": r.conclusion,
                    "event": r.event,
                    "branch": r.head_branch,
                    "created_at": r.created_at.isoformat(),
                    "duration_s": round(r.duration_seconds(now), 1),
                }
                for r in self.runs
            ],
            "rate_limit": None
            if self.rate_limit is None
            else {
                "limit": self.rate_limit.limit,
                "remaining": self.rate_limit.remaining,
                "reset": self.rate_limit.reset.isoformat(),
            },
            "next_train": self.next_train.isoformat() if self.next_train else None,
            "github": self.github.value,
            "github_status": self.github_status,
            "errors": list(self.errors),
            "exit_code": self.exit_code,
        }


@dataclass(frozen=True, slots=True)
class BundleOutcome:
    """What pressing `b` did: where the bundling ran and a line for the operator."""

    message: str
    ok: bool = True
    run: WorkflowRun | None = None


class EngineLike(Protocol):
    """What the dashboard needs from an engine (the real one, or fixed data in tests).

    The long steps take an optional `progress(label, done, total)` (see clambake_tui.progress).
    It may be called from another thread (the supervisor's, with `supervisor_thread`): a
    reporter that reaches widgets must hand each update over to the screen's own thread.
    """

    config: Config

    async def refresh(self, *, force: bool = False) -> Snapshot: ...

    async def ready_issues(self) -> list[Issue]: ...

    async def next_agent_id(self) -> str: ...

    async def spawn(
        self, agent_id: str, issue_number: int, *, progress: Progress | None = None
    ) -> AgentProcess: ...

    async def terminate(self, process_id: str, *, progress: Progress | None = None) -> None: ...

    async def trigger_bundle(
        self, *, force: bool = True, progress: Progress | None = None
    ) -> BundleOutcome: ...

    async def run_logs(self, run_id: int, *, progress: Progress | None = None) -> RunLogs: ...

    async def metrics(self) -> MetricsView: ...

    async def aclose(self) -> None: ...


# ---------------------------------------------------------------- small pure helpers


def format_age(seconds: float) -> str:
    """12 s, 4 min, 3 h, 2 d."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def format_duration(seconds: float) -> str:
    """1:05, 12:30, 1:02:03."""
    total = int(max(0.0, seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def ready_order(issues: Sequence[Issue]) -> list[Issue]:
    """The route:ready queue as an agent would take it: unblockers, then priority, then number.

    Issues held by an agent, human-only ones and pull requests are left out.
    """
    free = [
        issue
        for issue in issues
        if not issue.is_pull_request
        and HUMAN_ONLY_LABEL not in issue.labels
        and not any(AGENT_ID_PATTERN.match(label) for label in issue.labels)
        and issue.state == "open"
    ]
    return sorted(
        free,
        key=lambda i: (UNBLOCKER_LABEL not in i.labels, priority_rank(i.labels), i.number),
    )


def next_free_agent_id(active: Sequence[str], used: Sequence[str] = ()) -> str:
    """The lowest agentNNN no run has used yet (its label may still mark an issue it worked),
    else the lowest no running agent holds."""
    busy = {int(name[5:]) for name in active if AGENT_ID_PATTERN.match(name)}
    seen = busy | {int(name[5:]) for name in used if AGENT_ID_PATTERN.match(name)}
    for taken in (seen, busy):
        for number in range(1, 1000):
            if number not in taken:
                return f"agent{number:03}"
    raise AgentError("all 999 agent ids are in use; terminate an agent first")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(text[0] if text else type(exc).__name__)


# ---------------------------------------------------------------- the engine


class _LoopThread:
    """An event loop on a daemon thread; coroutines are handed to it and awaited from outside."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="clambake-supervisor", daemon=True
        )
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.loop.is_closed():
            coro.close()
            raise AgentError("the supervisor has stopped")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


@dataclass
class _GitHubState:
    """What the engine remembers between refreshes, so trouble never blanks the screen."""

    runs: tuple[WorkflowRun, ...] = ()
    rate_limit: RateLimit | None = None
    health: GitHubHealth = GitHubHealth.OK
    status: str = ""
    fetched_at: float = 0.0
    retry_at: float = 0.0
    errors: list[str] = field(default_factory=list)
    waiting: Waiting | None = None


class Engine:
    """The operator's engine over one repository. One per dashboard or `--once` run.

    `manager` (the agent supervisor) and `github` (a GitHubClient) are built from the config on
    first use unless given; `clock` is what "now" means (tests freeze it). `follow` starts the
    supervisor's change follower (the dashboard); without it a refresh only reconciles once.
    `supervisor_thread` runs the supervisor on its own event loop thread: it parses every
    agent's log as it grows, and under a flood that work must not stall the dashboard's loop.
    """

    def __init__(
        self,
        paths: Paths,
        config: Config,
        *,
        manager: AgentProcessManager | None = None,
        github: GitHubClient | None = None,
        clock: Clock = utcnow,
        tail_lines: int = 5,
        follow: bool = True,
        client_settings: ClientSettings | None = None,
        supervisor_thread: bool = False,
    ) -> None:
        self.paths = paths
        self.config = config
        self.clock = clock
        self.tail_lines = tail_lines
        self.follow = follow
        self._client_settings = client_settings
        self._manager = manager
        self._manager_ready = False
        self._loop_thread = _LoopThread() if supervisor_thread else None
        self._github = github
        self._owns_github = github is None
        self._setup_error: ClambakeError | None = None
        self._gh = _GitHubState()
        self._repo = ""

    # ------------------------------------------------------------ wiring

    async def _manager_ready_here(self) -> AgentProcessManager:
        """The supervisor, re-adopting and reconciling the registry's agents on first use.

        Runs on the supervisor's loop (see `_supervise`)."""
        if self._manager is None:
            from clambake_tui.agents.supervisor import AgentProcessManager

            # Only a dashboard spawns; a one-shot snapshot needs no token for the agents.
            token = self._token() if self.follow else None
            self._manager = AgentProcessManager(self.paths, self.config, token=token)
        if not self._manager_ready:
            self._manager_ready = True
            if self.follow:
                await self._manager.start()
            else:
                await self._manager.reconcile()
        return self._manager

    async def _supervise(self, work: Callable[[AgentProcessManager], Awaitable[T]]) -> T:
        """Run `work(manager)` where the supervisor lives: its own thread's loop, or this one."""

        async def call() -> T:
            return await work(await self._manager_ready_here())

        if self._loop_thread is None:
            return await call()
        return await self._loop_thread.run(call())

    def _token(self) -> str | None:
        from clambake_tui.github.auth import find_token, resolve_api_url

        found = find_token(resolve_api_url(self.config.github.api_url))
        return found.value if found else None

    def github(self) -> GitHubClient | None:
        """The client, built once; None (with the reason kept) when it cannot be built."""
        if self._github is not None:
            return self._github
        if self._setup_error is not None:
            return None
        from clambake_tui.github.client import GitHubClient

        try:
            self._github = GitHubClient.from_config(
                self.config,
                self.paths.root,
                metrics_path=self.paths.metrics,
                on_wait=self._on_wait,
                settings=self._client_settings,
            )
        except ClambakeError as exc:
            self._setup_error = exc
            return None
        return self._github

    def _on_wait(self, waiting: Waiting | None) -> None:
        # Called by the client while it holds back (rate limit, backoff): shown as it happens.
        self._gh.waiting = waiting

    @property
    def repo(self) -> str:
        if not self._repo:
            client = self.github()
            if client is not None:
                self._repo = f"{client.owner}/{client.repo}"
            elif self.config.github.owner and self.config.github.repo:
                self._repo = f"{self.config.github.owner}/{self.config.github.repo}"
            else:
                self._repo = self.paths.root.name
        return self._repo

    def token_status(self) -> TokenStatus:
        if self._gh.health is GitHubHealth.AUTH:
            return TokenStatus.REJECTED
        client = self.github()
        if client is None:
            return TokenStatus.UNKNOWN
        return TokenStatus.PRESENT if client.has_token else TokenStatus.MISSING

    async def aclose(self) -> None:
        if self._github is not None and self._owns_github:
            try:
                await self._github.aclose()
            except Exception:  # closing must never turn a clean exit into a traceback
                log.debug("closing the GitHub client failed", exc_info=True)
        if self._manager is not None:
            manager = self._manager

            async def close() -> None:
                await manager.close()

            if self._loop_thread is None:
                await close()
            else:
                await self._loop_thread.run(close())
        if self._loop_thread is not None:
            self._loop_thread.stop()

    # ------------------------------------------------------------ refresh

    async def refresh(self, *, force: bool = False) -> Snapshot:
        """One consistent view. GitHub is asked at most every `dashboard.refresh_seconds`."""
        agents, _ = await asyncio.gather(self._agents(), self._refresh_github(force=force))
        now = self.clock()
        errors = list(self._gh.errors)
        fatal = False
        if self._setup_error is not None:
            errors.insert(0, self._setup_error.message)
            fatal = isinstance(self._setup_error, ConfigError | AuthError)
        if self._gh.health is GitHubHealth.AUTH:
            fatal = True
        status = self._gh.status
        waiting = self._gh.waiting
        if waiting is not None and waiting.seconds_left(now) > 0:
            status = waiting.describe(now)
        return Snapshot(
            taken_at=now,
            repo=self.repo,
            token=self.token_status(),
            max_concurrent=self.config.agents.max_concurrent,
            agents=agents,
            runs=self._gh.runs,
            rate_limit=self._gh.rate_limit,
            next_train=self._next_train(now),
            github=self._gh.health,
            github_status=status,
            errors=tuple(errors),
            fatal=fatal,
            actions_enabled=self.config.github_actions.enabled,
        )

    def _next_train(self, now: datetime) -> datetime:
        from clambake_tui.bundling.schedule import TrainSchedule

        return TrainSchedule(self.config.bundling.schedule_minutes).next_departure_after(now)

    async def _agents(self) -> tuple[AgentView, ...]:
        try:
            return await self._supervise(self._collect_agents)
        except ClambakeError as exc:
            self._gh.errors = [*self._gh.errors, f"agents: {exc.message}"]
            return ()

    async def _collect_agents(self, manager: AgentProcessManager) -> tuple[AgentView, ...]:
        processes = manager.list_agents()
        now = self.clock()
        shown = [
            p
            for p in processes
            if p.is_active or p.ended_at is None or now - p.ended_at < FINISHED_VISIBLE
        ]
        # Running agents first, then the most recently started.
        shown.sort(key=lambda p: (not p.is_active, -p.started_at.timestamp()))
        shown = shown[:MAX_AGENTS_SHOWN]
        return tuple(await asyncio.gather(*(self._view(manager, p) for p in shown)))

    async def _view(self, manager: AgentProcessManager, process: AgentProcess) -> AgentView:
        try:
            status = await manager.monitor_agent(process.process_id)
        except ClambakeError:
            status = AgentStatus(
                process=process,
                status=process.status,
                last_activity=process.status.last_activity,
                current_tool=None,
                last_text=None,
                resources=ResourceUsage(),
                result=process.result,
            )
        tail: tuple[str, ...] = ()
        if self.tail_lines:
            try:
                tail = tuple(manager.tail(process.process_id, self.tail_lines))
            except ClambakeError:
                tail = ()
        return AgentView(status=status, tail=tail)

    async def _refresh_github(self, *, force: bool) -> None:
        client = self.github()
        if client is None:
            if self._setup_error is not None:
                self._gh.health = GitHubHealth.NOT_CONFIGURED
                self._gh.status = f"GitHub: {self._setup_error.message}"
            return
        mono = time.monotonic()
        due = mono - self._gh.fetched_at >= self.config.dashboard.refresh_seconds
        if not force and (not due or mono < self._gh.retry_at):
            return
        self._gh.fetched_at = mono
        try:
            runs = await client.list_runs(self.config.github_actions.bundling_workflow, per_page=10)
        except AuthError as exc:
            self._github_trouble(GitHubHealth.AUTH, f"GitHub: {exc.message}", exc)
        except GitHubError as exc:
            self._github_failed(exc, mono)
        except OSError as exc:  # a transport error that slipped past the client
            self._github_failed(GitHubError(str(exc)), mono)
        else:
            self._gh.runs = tuple(sorted(runs, key=lambda r: r.created_at, reverse=True))
            self._gh.health = GitHubHealth.OK
            self._gh.status = ""
            self._gh.errors = []
            self._gh.retry_at = 0.0
        self._gh.rate_limit = client.rate_limit or self._gh.rate_limit

    def _github_failed(self, exc: GitHubError, mono: float) -> None:
        wait = self._retry_after(exc)
        if wait is not None:
            self._gh.retry_at = mono + wait
            self._github_trouble(
                GitHubHealth.RATE_LIMITED,
                f"GitHub: rate limited, retrying in {int(wait)} s",
                exc,
            )
            return
        if self.config.bundling.fallback_local:
            line = "Actions unreachable — bundling will run locally"
        else:
            line = "Actions unreachable — bundling waits until GitHub answers"
        self._github_trouble(GitHubHealth.UNREACHABLE, line, exc)

    def _retry_after(self, exc: GitHubError) -> float | None:
        """Seconds until the budget comes back, when the failure was a rate limit."""
        from clambake_tui.github.errors import RateLimitError

        if not isinstance(exc, RateLimitError):
            return None
        if exc.retry_at is None:
            return 60.0
        return max(1.0, (exc.retry_at - self.clock()).total_seconds())

    def _github_trouble(self, health: GitHubHealth, line: str, exc: BaseException) -> None:
        log.info("github trouble: %s (%s)", line, _one_line(exc))
        self._gh.health = health
        self._gh.status = redact(line)
        self._gh.errors = [f"github: {_one_line(exc)}"]

    # ------------------------------------------------------------ actions

    async def ready_issues(self) -> list[Issue]:
        """The route:ready queue in the order an agent would take it, without the issues an
        agent here holds (one still starting has not labelled its issue on GitHub yet)."""
        client = self._require_github()
        issues = await client.list_issues(labels=(READY_LABEL,))

        async def held(manager: AgentProcessManager) -> set[int]:
            return {p.issue_number for p in manager.list_active_agents()}

        busy = await self._supervise(held)
        return [issue for issue in ready_order(issues) if issue.number not in busy]

    async def next_agent_id(self) -> str:
        async def pick(manager: AgentProcessManager) -> str:
            runs = manager.list_agents()
            return next_free_agent_id(
                [p.agent_id for p in runs if p.is_active], [p.agent_id for p in runs]
            )

        return await self._supervise(pick)

    async def spawn(
        self, agent_id: str, issue_number: int, *, progress: Progress | None = None
    ) -> AgentProcess:
        """Start `agent_id` on the issue. `progress` hears the spawn's four stages: checking
        the issue, claiming it, creating the worktree, starting the watcher."""

        async def spawn(manager: AgentProcessManager) -> AgentProcess:
            return await manager.spawn_agent(agent_id, issue_number, progress=progress)

        return await self._supervise(spawn)

    async def terminate(self, process_id: str, *, progress: Progress | None = None) -> None:
        """Stop an agent's process tree; `progress` hears the signal, then the wait."""

        async def terminate(manager: AgentProcessManager) -> None:
            await manager.terminate_agent(process_id, progress=progress)

        await self._supervise(terminate)

    async def terminate_all(self) -> list[AgentProcess]:
        async def terminate_all(manager: AgentProcessManager) -> list[AgentProcess]:
            return await manager.terminate_all()

        return await self._supervise(terminate_all)

    async def trigger_bundle(
        self, *, force: bool = True, progress: Progress | None = None
    ) -> BundleOutcome:
        """Bundle now, as the operator asked: on Actions when it can run there (and manual
        triggers are allowed), else locally; bundling decides. `force`: a train sent by hand
        leaves whatever the schedule says (`b` means now, not at the next departure).
        `progress` hears bundling's stages (dispatch and wait, or fetch, merge, push, PR)."""
        from clambake_tui.bundling.trigger import BundlePath, trigger_bundle

        outcome = await trigger_bundle(
            self._require_github(),
            self.paths.root,
            self.config,
            force=force,
            manual=True,
            lock_dir=self.paths.locks,
            metrics_file=self.paths.metrics,
            progress=progress,
        )
        # A fresh run should show up at once, not at the next scheduled refresh.
        self._gh.fetched_at = 0.0
        run = outcome.dispatch.run if outcome.dispatch else None
        if outcome.path is BundlePath.ACTIONS:
            message = (
                f"bundling dispatched on Actions (run #{run.run_number})"
                if run
                else "bundling dispatched on Actions; its run has not shown up yet"
            )
        else:
            message = "; ".join(outcome.lines())
        return BundleOutcome(message=message, ok=True, run=run)

    async def run_logs(self, run_id: int, *, progress: Progress | None = None) -> RunLogs:
        """One run's logs; `progress` hears its stages and the zip's bytes as they arrive."""
        return await self._require_github().run_logs(run_id, progress=progress)

    async def metrics(self) -> MetricsView:
        """The numbers of `clambake metrics` (last 24 h), read off the event loop."""
        return await asyncio.to_thread(load_metrics_view, self.paths)

    def _require_github(self) -> GitHubClient:
        client = self.github()
        if client is None:
            raise self._setup_error or GitHubError("GitHub is not configured for this repository")
        return client
