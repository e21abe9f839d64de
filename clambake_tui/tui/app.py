"""The Textual dashboard: agent panes beside the bundling runs; `make_app()` builds it."""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import App, ComposeResult, ScreenStackError
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable
from textual.worker import Worker, WorkerState, get_current_worker

from clambake_tui.engine import Clock, Engine, EngineLike, Progress, Snapshot
from clambake_tui.errors import ClambakeError
from clambake_tui.logs import get_logger
from clambake_tui.model import utcnow
from clambake_tui.redact import redact
from clambake_tui.tui.commands import DashboardCommands
from clambake_tui.tui.logfeed import LogFeed
from clambake_tui.tui.messages import ActionDone, RunLogsReady, SnapshotReady, StepProgress
from clambake_tui.tui.metrics_screen import MetricsScreen
from clambake_tui.tui.screens import (
    AgentLogScreen,
    ConfirmScreen,
    RunLogScreen,
    SpawnRequest,
    SpawnScreen,
)
from clambake_tui.tui.widgets import (
    AgentGrid,
    AgentPane,
    HeaderBar,
    QuietFooter,
    RunsPane,
    StatusLine,
    StepsBar,
)

if TYPE_CHECKING:
    from clambake_tui.config import Config
    from clambake_tui.state import Paths

__all__ = ["ClambakeApp", "QuitReport", "make_app"]

log = get_logger(__name__)

# Actions that only make sense on the dashboard itself (not over a log screen).
DASHBOARD_ACTIONS = {"spawn", "terminate", "bundle", "run_logs", "agent_log", "refresh"}


class DashboardScreen(Screen[None]):
    """The dashboard's screen. A focus change repaints the widgets whose look changes (their
    :focus styles), not the whole screen as Textual's default screen does: a full frame per
    arrow key was the slowest thing a key press could wait for under a busy dashboard."""

    focused: Reactive[Widget | None] = Reactive(None, repaint=False)


@dataclass(frozen=True, slots=True)
class QuitReport:
    """What the dashboard leaves behind: the agents still running (they outlive it)."""

    running: tuple[str, ...] = ()


class ClambakeApp(App[QuitReport]):
    """clambake's cockpit. Everything slow runs in workers that end by posting a message."""

    TITLE = "clambake"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {DashboardCommands}
    BINDINGS = [
        Binding("s", "spawn", "Spawn", id="spawn", tooltip="Start an agent on a route:ready issue"),
        Binding("t", "terminate", "Terminate", id="terminate", tooltip="Stop the focused agent"),
        Binding("b", "bundle", "Bundle", id="bundle", tooltip="Trigger the bundling workflow"),
        Binding("l", "run_logs", "Run logs", id="run_logs", tooltip="Logs of the selected run"),
        Binding(
            "enter", "agent_log", "Agent log", id="agent_log", tooltip="Focused agent's full log"
        ),
        Binding("r", "refresh", "Refresh", id="refresh", tooltip="Refresh now"),
        # Not in the footer (it keeps to the operator's everyday keys); in the command palette.
        Binding("m", "metrics", "Metrics", id="metrics", tooltip="Metrics", show=False),
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave; agents keep running"),
    ]

    def __init__(
        self,
        engine: EngineLike,
        *,
        feed: LogFeed | None = None,
        tick_seconds: float = 0.05,
        pane_seconds: float = 0.25,
        panes_per_tick: int = 2,
        refresh_seconds: float = 1.0,
        blink: bool = True,
        live: bool = True,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.feed = feed or LogFeed(buffer_lines=engine.config.dashboard.log_tail_lines * 5)
        self.tick_seconds = tick_seconds
        self.pane_seconds = pane_seconds
        self.panes_per_tick = panes_per_tick
        self._last_write: dict[str, float] = {}
        self.refresh_seconds = refresh_seconds
        self.blink = blink
        if not blink:
            # Screenshots and tests: nothing moves (an indeterminate progress bar stands still).
            self.animation_level = "none"
        self.live = live
        self.snapshot: Snapshot | None = None
        self._refreshing = False
        self.max_lines = max(1000, engine.config.dashboard.log_tail_lines * 5)

    # ------------------------------------------------------------ layout

    def get_default_screen(self) -> Screen[Any]:
        return DashboardScreen(id="_default")

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with Horizontal(id="body"):
            yield AgentGrid(max_lines=self.max_lines, id="agents")
            yield RunsPane(id="side")
        with Horizontal(id="status-bar"):
            yield StatusLine(id="status")
            yield StepsBar(id="steps-bar")
        yield QuietFooter()

    @property
    def grid(self) -> AgentGrid:
        return self.screen_stack[0].query_one(AgentGrid)

    @property
    def status_line(self) -> StatusLine:
        return self.screen_stack[0].query_one(StatusLine)

    @property
    def runs_pane(self) -> RunsPane:
        return self.screen_stack[0].query_one(RunsPane)

    @property
    def steps_bar(self) -> StepsBar:
        return self.screen_stack[0].query_one(StepsBar)

    def on_mount(self) -> None:
        # One long-lived reader thread: a worker per read would cost the main thread a few
        # messages each time, ten times a second.
        self._feed_thread = threading.Thread(
            target=self.feed.run, name="clambake-log-feed", daemon=True
        )
        self._feed_thread.start()
        self.set_interval(self.tick_seconds, self.drain_logs, name="drain")
        if self.live:
            self.set_interval(self.refresh_seconds, self.refresh_now, name="refresh")
        self.refresh_now(force=True)

    async def on_unmount(self) -> None:
        gc.unfreeze()
        self.feed.stop()
        await self.engine.aclose()

    def on_resize(self) -> None:
        self.screen_stack[0].set_class(self.size.width < 110, "narrow")

    # ------------------------------------------------------------ refresh and logs

    def refresh_now(self, force: bool = False) -> None:
        if self._refreshing:
            return
        self._refreshing = True
        self._refresh(force)

    @work(group="refresh", exit_on_error=False)
    async def _refresh(self, force: bool) -> None:
        try:
            snapshot = await self.engine.refresh(force=force)
        finally:
            self._refreshing = False
        self.post_message(SnapshotReady(snapshot))

    async def on_snapshot_ready(self, message: SnapshotReady) -> None:
        snapshot = message.snapshot
        first = self.snapshot is None
        self.snapshot = snapshot
        self.query_one(HeaderBar).show(snapshot)
        shown = {view.process_id for view in snapshot.agents}
        for process_id in self.feed.tracked():
            if process_id not in shown:
                self.feed.untrack(process_id)
        for view in snapshot.agents:
            self.feed.track(view.process_id, view.process.log_path)
        await self.grid.show(snapshot)
        self.runs_pane.show(snapshot)
        self.status_line.set_github(snapshot)
        if first:
            panes = self.grid.panes()
            if panes:
                panes[0].focus()
            else:
                self.runs_pane.table.focus()
            # Everything built so far (Textual, the stylesheet, the widgets) lives as long as the
            # app: out of the collector's sight, a full collection pauses the app about half as
            # long (30-40 ms instead of 50-70 ms under ten flooding agents) for a key press to
            # land in. Garbage goes first, so that none is kept; the app gives it all back when
            # it closes.
            gc.collect()
            gc.freeze()

    def drain_logs(self) -> None:
        """The one timer: move the lines the feed thread buffered to visible panes.

        Each pane is written at most every `pane_seconds` (one `write_lines` with everything it
        gained), and at most `panes_per_tick` panes per tick: a repaint of many busy panes is
        spread over several short ticks, so a key press never waits behind all of them."""
        try:
            self._write_visible()
        except (NoMatches, ScreenStackError):
            return  # the app is closing: its widgets are going away

    def _write_visible(self) -> None:
        screen = self.screen
        if screen is not self.screen_stack[0] and not screen.is_modal:
            return
        grid = self.grid
        if grid.compact:
            return
        now = time.monotonic()
        last = self._last_write
        due = [
            pane
            for pane in grid.panes()
            if self.feed.pending(pane.process_id)
            and now - last.get(pane.process_id, 0.0) >= self.pane_seconds
            # Hidden panes get nothing: their lines wait (bounded) in the feed.
            and pane.is_on_screen
        ]
        if not due:
            return
        due.sort(key=lambda pane: last.get(pane.process_id, 0.0))
        with self.batch_update():
            for pane in due[: self.panes_per_tick]:
                lines = self.feed.drain(pane.process_id)
                if lines:
                    pane.write(lines)
                last[pane.process_id] = now

    # ------------------------------------------------------------ failures and results

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker ends up: an error line, never a traceback."""
        try:
            self._report_worker(event)
        except (NoMatches, ScreenStackError):
            return  # the app is closing: nothing left to show it on

    def _report_worker(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state is WorkerState.ERROR:
            error = worker.error
            text = (
                error.message
                if isinstance(error, ClambakeError)
                else redact(f"{type(error).__name__}: {error}")
            )
            log.warning("%s failed: %s", worker.group, text, exc_info=error)
            self.steps_bar.end(worker)
            what = {
                "refresh": "refresh",
                "spawn": "spawn",
                "terminate": "terminate",
                "bundle": "bundling",
                "run-logs": "run logs",
            }.get(worker.group, worker.group)
            self.status_line.say(f"{what} failed: {text}", ok=False)
            self.notify(text, title=f"{what} failed", severity="error")
        elif event.state in (WorkerState.SUCCESS, WorkerState.CANCELLED) and (
            worker.group != "refresh"
        ):
            self.steps_bar.end(worker)

    def begin_step(self, label: str) -> Progress:
        """Show a progress bar for the worker running this; it goes when the worker ends.

        The reporter returned may be called from any thread: it only posts a message."""
        step = get_current_worker()
        self.steps_bar.begin(step, label)

        def progress(label: str, done: int | None, total: int | None) -> None:
            self.post_message(StepProgress(step, label, done, total))

        return progress

    def on_step_progress(self, message: StepProgress) -> None:
        try:
            self.steps_bar.update(message.step, message.label, message.done, message.total)
        except (NoMatches, ScreenStackError):
            return  # the app is closing

    def on_action_done(self, message: ActionDone) -> None:
        self.status_line.say(message.text, ok=message.ok)
        self.notify(message.text, severity="information" if message.ok else "warning")
        self.refresh_now(force=True)

    def on_run_logs_ready(self, message: RunLogsReady) -> None:
        self.push_screen(RunLogScreen(message.run, message.logs, blink=self.blink))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_run_logs()

    # ------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        on_dashboard = self.screen is self.screen_stack[0]
        return on_dashboard or action not in DASHBOARD_ACTIONS

    def focused_pane(self) -> AgentPane | None:
        focused = self.screen_stack[0].focused
        return focused if isinstance(focused, AgentPane) else None

    def action_spawn(self) -> None:
        def chosen(request: SpawnRequest | None) -> None:
            if request is not None:
                self.spawn(request)

        self.push_screen(SpawnScreen(self.engine, blink=self.blink), chosen)

    @work(group="spawn", exit_on_error=False)
    async def spawn(self, request: SpawnRequest) -> None:
        progress = self.begin_step(f"spawning {request.agent_id} on #{request.issue_number}")
        process = await self.engine.spawn(request.agent_id, request.issue_number, progress=progress)
        self.post_message(
            ActionDone(
                f"{process.agent_id} started on #{process.issue_number} ({process.branch_name})"
            )
        )

    def action_terminate(self) -> None:
        pane = self.focused_pane()
        if pane is None:
            self.notify("Focus an agent pane first (arrow keys or tab).", severity="warning")
            return
        view = pane.view
        if not view.is_active:
            self.notify(f"{view.agent_id} has already ended ({view.status.status}).")
            return
        grace = self.engine.config.agents.terminate_grace_seconds
        question = (
            f"Terminate {view.agent_id} on #{view.process.issue_number}?\n"
            f"Its whole process tree gets SIGTERM, then SIGKILL after {grace:g} s."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.terminate(view.process_id, view.agent_id)

        self.push_screen(ConfirmScreen(question), answered)

    @work(group="terminate", exit_on_error=False)
    async def terminate(self, process_id: str, agent_id: str) -> None:
        progress = self.begin_step(f"terminating {agent_id}")
        await self.engine.terminate(process_id, progress=progress)
        self.post_message(ActionDone(f"{agent_id} terminated"))

    def action_bundle(self) -> None:
        self.bundle()

    @work(group="bundle", exclusive=True, exit_on_error=False)
    async def bundle(self) -> None:
        progress = self.begin_step("triggering bundling")
        outcome = await self.engine.trigger_bundle(progress=progress)
        self.post_message(ActionDone(outcome.message, ok=outcome.ok))

    def action_run_logs(self) -> None:
        run = self.runs_pane.selected_run()
        if run is None:
            self.notify("No bundling runs yet — press b to trigger one.", severity="warning")
            return
        self.fetch_run_logs(run)

    @work(group="run-logs", exclusive=True, exit_on_error=False)
    async def fetch_run_logs(self, run: Any) -> None:
        progress = self.begin_step(f"fetching the logs of run #{run.run_number}")
        logs = await self.engine.run_logs(run.id, progress=progress)
        self.post_message(RunLogsReady(run, logs))

    def action_agent_log(self) -> None:
        pane = self.focused_pane()
        if pane is None:
            if isinstance(self.screen_stack[0].focused, DataTable):
                self.action_run_logs()
                return
            self.notify("Focus an agent pane first (arrow keys or tab).", severity="warning")
            return
        view = pane.view
        title = f"{view.agent_id} · #{view.process.issue_number} {view.process.issue_title}"
        self.push_screen(AgentLogScreen(title, view.process.log_path))

    def action_metrics(self) -> None:
        self.show_metrics()

    @work(group="metrics", exclusive=True, exit_on_error=False)
    async def show_metrics(self) -> None:
        view = await self.engine.metrics()
        await self.push_screen(MetricsScreen(view))

    def action_refresh(self) -> None:
        self.status_line.say("refreshing…")
        self._refreshing = False
        self.refresh_now(force=True)

    async def action_quit(self) -> None:
        snapshot = self.snapshot
        running: tuple[str, ...] = ()
        if snapshot is not None:
            running = tuple(
                f"{view.agent_id} (#{view.process.issue_number})"
                for view in snapshot.agents
                if view.is_active
            )
        if running:
            self.notify(f"{len(running)} agent(s) keep running after the dashboard closes.")
        self.exit(QuitReport(running=running))


def make_app(
    engine: EngineLike | None = None,
    *,
    paths: Paths | None = None,
    config: Config | None = None,
    clock: Clock = utcnow,
    **options: Any,
) -> ClambakeApp:
    """The dashboard over `engine`, or over a real Engine built from `paths` and `config`."""
    if engine is None:
        if paths is None or config is None:
            raise ValueError("make_app needs an engine, or paths and config to build one")
        engine = Engine(paths, config, clock=clock, tail_lines=0, supervisor_thread=True)
    return ClambakeApp(engine, **options)
