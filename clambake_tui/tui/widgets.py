"""The dashboard's widgets: header bar, agent panes and their grid, the runs table, status line."""

from __future__ import annotations

import math
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.events import Resize
from textual.geometry import Size
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Log, ProgressBar, Static

from clambake_tui.engine import (
    AgentView,
    GitHubHealth,
    Snapshot,
    TokenStatus,
    format_age,
    format_bytes,
    format_duration,
)
from clambake_tui.model import AgentState, WorkflowRun

__all__ = [
    "HeaderBar",
    "AgentPane",
    "AgentGrid",
    "RunsPane",
    "StatusLine",
    "StepBar",
    "StepsBar",
    "QuietFooter",
    "STATE_STYLE",
]

STATE_STYLE: dict[AgentState, str] = {
    AgentState.STARTING: "bold yellow",
    AgentState.WORKING: "bold green",
    AgentState.COMPLETED: "bold cyan",
    AgentState.FAILED: "bold red",
    AgentState.TERMINATED: "bold bright_black",
}
RUN_STYLE = {
    "success": "green",
    "failure": "red",
    "cancelled": "bright_black",
    "in_progress": "yellow",
    "queued": "yellow",
}
# A pane needs this many rows to show a useful log tail; below that the grid turns into a list.
PANE_MIN_HEIGHT = 11
PANE_MIN_WIDTH = 48


class HeaderBar(Static):
    """Repository, token status (never the token), agents vs max_concurrent, GitHub budget."""

    _last = ""

    def show(self, snapshot: Snapshot) -> None:
        text = Text()
        text.append(" clambake ", style="bold reverse")
        text.append(f"  {snapshot.repo}", style="bold")
        token_style = "green" if snapshot.token is TokenStatus.PRESENT else "yellow"
        text.append("  ·  ")
        text.append(snapshot.token.value, style=token_style)
        text.append("  ·  ")
        full = snapshot.active_count >= snapshot.max_concurrent
        text.append(
            f"agents {snapshot.active_count}/{snapshot.max_concurrent}",
            style="bold yellow" if full else "",
        )
        text.append("  ·  ")
        limit = snapshot.rate_limit
        low = limit is not None and limit.remaining < max(50, limit.limit // 10)
        text.append(f"GitHub {snapshot.budget_line()}", style="bold red" if low else "")
        if text.markup != self._last:
            self._last = text.markup
            self.update(text, layout=False)


class PaneLog(Log):
    """An agent pane's log tail: it follows the newest line until the operator scrolls up.

    Following is the operator's choice (scrolling up stops it; End, or scrolling back to the
    bottom, resumes it), not a guess from the scroll position: a pane that changes size moves
    its bottom, and must not stop following because of that.
    """

    # The pane's size never depends on how many lines its log holds: a new line needs a
    # repaint and a scrollbar update, not a relayout of the whole screen (Textual's default,
    # which under a flood of new agents turned every write into a full-screen frame).
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    following = True
    _moving = False

    def __init__(self, *, max_lines: int, classes: str) -> None:
        super().__init__(max_lines=max_lines, auto_scroll=False, classes=classes)
        # Rendered lines kept for repaints: a pane shows a few dozen rows, while the default
        # keeps 1,024 per log, all of them re-indexed each time a full log drops old lines.
        self._render_line_cache.maxsize = 128

    def watch_virtual_size(self, size: Size) -> None:
        self._scroll_update(size)

    def follow_end(self) -> None:
        self._moving = True
        try:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        finally:
            self._moving = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if not self._moving:
            self.following = self.is_vertical_scroll_end

    def on_resize(self) -> None:
        if self.following:
            self.follow_end()

    def _update_size(self, updates: int, lines: list[str]) -> None:  # type: ignore[override]
        """Lines never scroll sideways here (overflow-x is hidden), so unlike Textual's Log this
        measures nothing: no background job per write."""


class AgentPane(Vertical, can_focus=True):
    """One agent: who, what, how it is doing, and a live tail of its readable log."""

    BINDINGS = [
        Binding("pageup", "log_page(-1)", "Scroll up", show=False),
        Binding("pagedown", "log_page(1)", "Scroll down", show=False),
        Binding("end", "follow", "Follow", show=False, tooltip="Jump to the newest line"),
    ]

    def __init__(self, view: AgentView, *, max_lines: int) -> None:
        super().__init__(classes="agent-pane")
        self.view = view
        self.process_id = view.process_id
        self._max_lines = max_lines
        self._unseen = 0
        self._info_markup = ""

    def compose(self) -> ComposeResult:
        yield Static(id="info", classes="pane-info")
        log = PaneLog(max_lines=self._max_lines, classes="pane-log")
        log.can_focus = False
        yield log
        yield Static(id="badge", classes="pane-badge")

    @property
    def log_widget(self) -> PaneLog:
        return self.query_one(PaneLog)

    def on_mount(self) -> None:
        self.query_one("#badge").display = False

    def show(self, view: AgentView, now: datetime, *, compact: bool) -> None:
        """Show the agent's latest status. Only what changed is repainted, and never with a
        relayout: each second every pane's clock moves, and a full layout per pane per second
        is what makes a busy dashboard sluggish."""
        self.view = view
        process = view.process
        state_style = STATE_STYLE[view.state]
        elapsed = format_duration(view.elapsed_seconds(now))
        status = Text.assemble((str(view.status.status), state_style), f" · {elapsed}")
        res = view.status.resources
        usage = f"CPU {res.cpu_percent:.0f}%  mem {format_bytes(res.rss_bytes)}"
        if compact:
            self._set_titles(None)
            line = Text.assemble(
                (f"{view.agent_id} ", "bold"),
                (f"#{process.issue_number} ", "bold"),
                status,
                "  ",
                (view.activity_line(now), "italic"),
                f"  {usage}",
            )
            self._set_info(line)
            return
        self._set_titles(f"{view.agent_id} · #{process.issue_number} {process.issue_title}")
        if view.is_active:
            usage_line = f"{usage}  procs {res.num_processes}"
        elif process.ended_at is not None:
            usage_line = f"ended {format_age((now - process.ended_at).total_seconds())} ago"
        else:
            usage_line = "ended"
        lines = [
            Text.assemble(status, (f"  {usage_line}  restarts {process.restarts}", "dim")),
            Text(process.branch_name or "(no branch)", style="magenta"),
            Text(view.activity_line(now), style="italic"),
        ]
        self._set_info(Text("\n").join(lines))

    def _set_titles(self, title: str | None) -> None:
        title = title.rstrip() if title else None
        if self.border_title != title:
            self.border_title = title

    def _set_info(self, text: Text) -> None:
        markup = text.markup
        if markup == self._info_markup:
            return
        self._info_markup = markup
        self.query_one("#info", Static).update(text, layout=False)

    @property
    def following(self) -> bool:
        return self.log_widget.following

    def write(self, lines: list[str]) -> None:
        """Append lines; when the operator has scrolled up, keep the view and count new lines."""
        log = self.log_widget
        log.write_lines(lines, scroll_end=False)
        if log.following:
            log.follow_end()
            if self._unseen:
                self._show_unseen(0)
            return
        self._show_unseen(self._unseen + len(lines))

    def _show_unseen(self, count: int) -> None:
        # The badge's row is always there (height 1): its text changes without a relayout.
        self._unseen = count
        badge = self.query_one("#badge", Static)
        if count:
            badge.update(f"↓ {count} new lines — End to follow", layout=False)
        badge.display = count > 0

    def action_log_page(self, direction: int) -> None:
        log = self.log_widget
        log.scroll_to(
            y=log.scroll_y + direction * max(1, log.size.height - 1), animate=False, immediate=True
        )
        if log.following:
            self._show_unseen(0)

    def action_follow(self) -> None:
        self.log_widget.follow_end()
        self.log_widget.following = True
        self._show_unseen(0)


class AgentGrid(VerticalScroll):
    """Agent panes in a grid that reflows with the terminal; a compact list when they don't fit."""

    BINDINGS = [
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
    ]

    def __init__(self, *, max_lines: int, id: str | None = None) -> None:
        super().__init__(id=id)
        self._max_lines = max_lines
        self.compact = False
        self.columns = 1
        self._shape: tuple[bool, int, str] | None = None
        self._snapshot: Snapshot | None = None
        self.can_focus = False

    def compose(self) -> ComposeResult:
        yield Static(
            "No agents yet — press [b]s[/b] to spawn one on a route:ready issue.",
            id="empty",
        )

    def panes(self) -> list[AgentPane]:
        return list(self.query(AgentPane))

    def pane(self, process_id: str) -> AgentPane | None:
        for pane in self.query(AgentPane):
            if pane.process_id == process_id:
                return pane
        return None

    async def show(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        wanted = [view.process_id for view in snapshot.agents]
        have = {pane.process_id: pane for pane in self.panes()}
        stale = [pane for pid, pane in have.items() if pid not in wanted]
        if stale:
            await self.remove_children(stale)
        new = [
            AgentPane(view, max_lines=self._max_lines)
            for view in snapshot.agents
            if view.process_id not in have
        ]
        if new:
            await self.mount_all(new)
        # Keep the snapshot's order (running first) whatever order panes were mounted in.
        order = {pid: index for index, pid in enumerate(wanted)}
        current = self.panes()
        if [p.process_id for p in current] != wanted:
            self.sort_children(
                key=lambda w: order.get(w.process_id, -1) if isinstance(w, AgentPane) else -1
            )
        self.query_one("#empty").display = not wanted
        self._reflow()
        views = {view.process_id: view for view in snapshot.agents}
        for pane in self.panes():
            pane.show(views[pane.process_id], snapshot.taken_at, compact=self.compact)

    def on_resize(self, event: Resize) -> None:
        self._reflow()
        if self._snapshot is not None:
            views = {view.process_id: view for view in self._snapshot.agents}
            for pane in self.panes():
                if pane.process_id in views:
                    pane.show(views[pane.process_id], self._snapshot.taken_at, compact=self.compact)

    def _reflow(self) -> None:
        count = len(self.panes())
        width, height = self.size.width, self.size.height
        if not count or not width or not height:
            return
        columns = max(1, min(count, width // PANE_MIN_WIDTH))
        rows = math.ceil(count / columns)
        compact = rows * PANE_MIN_HEIGHT > height
        if compact:
            columns = 1
        rows_css = "3" if compact else f"{max(PANE_MIN_HEIGHT, height // rows)}"
        if (compact, columns, rows_css) == self._shape:
            return  # every snapshot reflows; only a change may cost a relayout
        self._shape = (compact, columns, rows_css)
        self.compact = compact
        self.columns = columns
        self.set_class(compact, "compact")
        self.styles.grid_size_columns = columns
        self.styles.grid_rows = rows_css

    def action_move(self, dx: int, dy: int) -> None:
        panes = self.panes()
        if not panes:
            return
        focused = self.screen.focused
        index = panes.index(focused) if isinstance(focused, AgentPane) and focused in panes else -1
        if index < 0:
            panes[0].focus()
            return
        target = index + dx + dy * self.columns
        if 0 <= target < len(panes):
            panes[target].focus()
            panes[target].scroll_visible(animate=False)


class RunsPane(Vertical):
    """The bundling workflow's recent runs and the next train's departure."""

    def compose(self) -> ComposeResult:
        table: DataTable[str | Text] = DataTable(
            id="runs", cursor_type="row", zebra_stripes=False, show_cursor=True
        )
        yield table
        yield Static(id="train")

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        for label in ("run", "status", "event", "branch", "age", "took"):
            table.add_column(label, key=label)
        self.border_title = "Bundling runs"
        self.runs: tuple[WorkflowRun, ...] = ()
        self._train = ""

    @property
    def table(self) -> DataTable[str | Text]:
        return self.query_one("#runs", DataTable)

    def selected_run(self) -> WorkflowRun | None:
        if not self.runs:
            return None
        row = self.table.cursor_row
        return self.runs[row] if 0 <= row < len(self.runs) else self.runs[0]

    def show(self, snapshot: Snapshot) -> None:
        now = snapshot.taken_at
        table = self.table
        if snapshot.runs != self.runs:
            # The newest run stays selected unless the operator moved to an older one.
            selected = self.selected_run() if table.cursor_row > 0 else None
            self.runs = snapshot.runs
            table.clear()
            for run in snapshot.runs:
                outcome = run.conclusion or run.status
                table.add_row(
                    f"#{run.run_number}",
                    Text(outcome, style=RUN_STYLE.get(outcome, "")),
                    run.event,
                    run.head_branch,
                    format_age((now - run.created_at).total_seconds()),
                    format_duration(run.duration_seconds(now)),
                    key=str(run.id),
                )
            ids = [run.id for run in snapshot.runs]
            if selected is not None and selected.id in ids:
                table.move_cursor(row=ids.index(selected.id))
        train = self.query_one("#train", Static)
        line = Text()
        if snapshot.next_train is not None:
            wait = format_age((snapshot.next_train - now).total_seconds())
            where = "Actions" if snapshot.actions_enabled else "locally"
            line = Text.assemble(
                ("Next train ", "bold"),
                f"{snapshot.next_train:%H:%M} UTC (in {wait}, {where})",
            )
        if line.markup != self._train:
            self._train = line.markup
            train.update(line, layout=False)
        if not snapshot.runs:
            subtitle: str | None = "no runs yet"
        else:
            live = sum(1 for run in snapshot.runs if not run.is_completed)
            subtitle = f"{live} running" if live else None
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle


class StatusLine(Static):
    """GitHub trouble or the last action's outcome (an error in one line, never a traceback)."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.github = ""
        self.message = ""
        self.message_ok = True

    def set_github(self, snapshot: Snapshot) -> None:
        self.github = snapshot.github_status
        trouble = snapshot.github is not GitHubHealth.OK
        self.set_class(trouble, "trouble")
        if self.parent is not None:
            # The whole row, progress bars included, turns the trouble colour.
            self.parent.set_class(trouble, "trouble")
        self._render_line()

    def say(self, text: str, *, ok: bool = True) -> None:
        self.message = text
        self.message_ok = ok
        self._render_line()

    def _render_line(self) -> None:
        parts = Text()
        if self.github:
            parts.append(f"⚠ {self.github}", style="bold yellow")
        if self.message:
            if parts:
                parts.append("  ·  ")
            parts.append(self.message, style="" if self.message_ok else "bold red")
        self.update(parts, layout=False)


class StepBar(Horizontal):
    """One long step: what it is doing now, and how far it is (a bar that fills when its parts
    are known, an indeterminate one when not)."""

    def __init__(self, label: str) -> None:
        super().__init__(classes="step indeterminate")
        self.label = label
        self.done: int | None = None
        self.total: int | None = None
        self._label_width = 56

    @property
    def label_width(self) -> int:
        return self._label_width

    @label_width.setter
    def label_width(self, width: int) -> None:
        """The most cells the label may take (the steps bar shares its room out)."""
        if width != self._label_width:
            self._label_width = width
            if self.is_mounted:
                self._apply()

    def compose(self) -> ComposeResult:
        yield Label(f"⏳ {self.label}", classes="step-label")
        yield ProgressBar(total=None, show_eta=False, classes="step-bar")

    def on_mount(self) -> None:
        self._apply()

    def show(self, label: str, done: int | None, total: int | None) -> None:
        known = total is not None and total > 0 and done is not None
        self.label = label
        self.done, self.total = (
            (min(max(done or 0, 0), total or 0), total) if known else (None, None)
        )
        self.set_class(not known, "indeterminate")
        if self.is_mounted:
            self._apply()

    def _apply(self) -> None:
        try:
            label = self.query_one(".step-label", Label)
            bar = self.query_one(ProgressBar)
        except NoMatches:
            return  # a step that ended before it was mounted: it is on its way out
        label.styles.max_width = self._label_width
        label.update(f"⏳ {self.label}")
        if self.total is None:
            bar.update(total=None, progress=0)
        else:
            bar.update(total=self.total, progress=self.done or 0)


# Cells of a step besides its label: padding, the bar, its margin and the percentage.
STEP_CHROME = 2 + 1 + 12 + 5
STEP_LABEL_MIN = 16


class StepsBar(Horizontal):
    """The long steps running now, beside the status line; each goes away when it ends.

    Its row has a fixed height, so steps coming and going never move the agent grid. The
    steps share the room (four fifths of the row); a long label ends in an ellipsis."""

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.steps: dict[object, StepBar] = {}

    def on_mount(self) -> None:
        self.display = False

    def begin(self, key: object, label: str) -> StepBar:
        step = StepBar(label)
        self.steps[key] = step
        self.mount(step)
        self.display = True
        self._fit()
        return step

    def on_resize(self) -> None:
        self._fit()

    def _fit(self) -> None:
        if not self.steps:
            return
        room = self.app.size.width * 4 // 5 // len(self.steps)
        width = max(STEP_LABEL_MIN, room - STEP_CHROME)
        for step in self.steps.values():
            step.label_width = width

    def update(self, key: object, label: str, done: int | None, total: int | None) -> None:
        """Show a step's progress; a late word from a step that has ended is dropped."""
        step = self.steps.get(key)
        if step is not None:
            step.show(label, done, total)

    def end(self, key: object) -> None:
        step = self.steps.pop(key, None)
        if step is not None:
            step.remove()
        self.display = bool(self.steps)
        self._fit()


class QuietFooter(Footer):
    """The key bar, rebuilt only when the keys it shows change.

    Textual's footer remounts all its keys whenever the focus moves; moving between agent
    panes changes no visible key, and that remount (a relayout of the whole screen) was most
    of what a focus change cost under a busy dashboard."""

    _shown: tuple[object, ...] | None = None

    def _visible_keys(self, screen: Screen[object]) -> tuple[object, ...]:
        return tuple(
            (binding.key, binding.action, binding.description, binding.group, enabled, tooltip)
            for (_, binding, enabled, tooltip) in screen.active_bindings.values()
            if binding.show or binding.key == self.app.COMMAND_PALETTE_BINDING
        )

    def bindings_changed(self, screen: Screen[object]) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = self._visible_keys(screen)
            if shown == self._shown:
                self._bindings_ready = True
                return
            self._shown = shown
        super().bindings_changed(screen)
