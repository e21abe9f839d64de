"""The dashboard's screens: the spawn form, the confirm dialog, run logs and an agent's full log."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Log, OptionList, Static
from textual.widgets.option_list import Option

from clambake_tui.engine import EngineLike
from clambake_tui.github.client import LogSection, RunLogs
from clambake_tui.model import AGENT_ID_PATTERN, Issue, WorkflowRun, priority_rank
from clambake_tui.redact import redact
from clambake_tui.tui.logfeed import LogFeed, cut

__all__ = [
    "SpawnRequest",
    "SpawnScreen",
    "ConfirmScreen",
    "RunLogScreen",
    "AgentLogScreen",
]

PRIORITY_NAMES = ("very high", "high", "medium", "low", "none")


@dataclass(frozen=True, slots=True)
class SpawnRequest:
    agent_id: str
    issue_number: int


class SpawnScreen(ModalScreen[SpawnRequest | None]):
    """Agent id (the next free one proposed) and an issue from the route:ready queue, or typed."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", tooltip="Close without spawning")]

    def __init__(self, engine: EngineLike, *, blink: bool = True) -> None:
        super().__init__(id="spawn-screen")
        self.engine = engine
        self.blink = blink
        self.issues: list[Issue] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="spawn-form", classes="dialog"):
            yield Label("Spawn an agent", classes="dialog-title")
            yield Label("Agent id")
            yield Input(placeholder="agent001", id="agent-id")
            yield Label("Issue from the route:ready queue (highest priority first)")
            yield OptionList(id="queue")
            yield Label("…or type an issue number")
            yield Input(placeholder="123", id="issue-number", type="integer")
            yield Static(id="form-error", classes="form-error")
            with Horizontal(classes="buttons"):
                yield Button("Spawn", variant="primary", id="spawn")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        for box in self.query(Input):
            box.cursor_blink = self.blink
        queue = self.query_one("#queue", OptionList)
        queue.add_option(Option("loading the queue…", disabled=True))
        self.load()

    @work(exclusive=True, group="spawn-form", exit_on_error=False)
    async def load(self) -> None:
        agent_id_box = self.query_one("#agent-id", Input)
        queue = self.query_one("#queue", OptionList)
        try:
            proposed = await self.engine.next_agent_id()
            if not agent_id_box.value:
                agent_id_box.value = proposed
            self.issues = await self.engine.ready_issues()
        except Exception as exc:
            queue.clear_options()
            queue.add_option(Option(f"queue unavailable: {exc}", disabled=True))
            return
        queue.clear_options()
        if not self.issues:
            queue.add_option(Option("no route:ready issues", disabled=True))
            return
        for issue in self.issues:
            rank = priority_rank(issue.labels)
            line = Text.assemble(
                (f"#{issue.number:<5}", "bold"),
                f"{issue.title}  ",
                (f"[{PRIORITY_NAMES[rank]}]", "dim"),
            )
            queue.add_option(Option(line, id=str(issue.number)))
        queue.highlighted = 0
        queue.focus()

    @on(OptionList.OptionSelected, "#queue")
    def picked(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.query_one("#issue-number", Input).value = ""
            self.submit()

    @on(Button.Pressed, "#spawn")
    @on(Input.Submitted)
    def submit(self) -> None:
        error = self.query_one("#form-error", Static)
        agent_id = self.query_one("#agent-id", Input).value.strip()
        if not AGENT_ID_PATTERN.match(agent_id):
            error.update("Agent id must look like agent001 (agent + three digits).")
            return
        typed = self.query_one("#issue-number", Input).value.strip()
        number: int | None = None
        if typed:
            if not typed.isdigit() or int(typed) <= 0:
                error.update("Issue number must be a positive whole number.")
                return
            number = int(typed)
        else:
            queue = self.query_one("#queue", OptionList)
            index = queue.highlighted
            if index is not None:
                option = queue.get_option_at_index(index)
                if option.id:
                    number = int(option.id)
        if number is None:
            error.update("Pick an issue from the queue or type its number.")
            return
        self.dismiss(SpawnRequest(agent_id=agent_id, issue_number=number))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; `y` confirms, `n`/escape cancels."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, *, yes: str = "Terminate") -> None:
        super().__init__(id="confirm-screen")
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-dialog"):
            yield Static(self.question, id="question")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class RunLogScreen(Screen[None]):
    """One run's logs, per job and step, searchable."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back", tooltip="Back to the dashboard"),
        Binding("slash", "search", "Search", tooltip="Show only lines containing a text"),
    ]

    def __init__(self, run: WorkflowRun, logs: RunLogs, *, blink: bool = True) -> None:
        super().__init__(id="run-log-screen")
        self.run = run
        self.logs = logs
        self.blink = blink
        self.section: LogSection | None = logs.sections[0] if logs.sections else None

    def compose(self) -> ComposeResult:
        outcome = self.run.conclusion or self.run.status
        yield Static(
            Text.assemble(
                (f" Run #{self.run.run_number} ", "bold reverse"),
                f"  {self.run.name}  ·  {outcome}  ·  {self.run.event}  ·  {self.run.head_branch}",
            ),
            id="run-title",
        )
        with Horizontal():
            options = [
                Option(_section_label(section), id=str(index))
                for index, section in enumerate(self.logs.sections)
            ]
            yield OptionList(*options, id="steps")
            with Vertical(id="log-side"):
                yield Input(placeholder="search (/) — lines containing…", id="search")
                yield Static(id="matches")
                yield Log(id="run-log", max_lines=20000, auto_scroll=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#search", Input).cursor_blink = self.blink
        steps = self.query_one("#steps", OptionList)
        if self.logs.sections:
            steps.highlighted = 0
        else:
            self.query_one("#matches", Static).update("This run has no logs (yet).")
        steps.focus()
        self.show_section()

    @on(OptionList.OptionHighlighted, "#steps")
    def step_changed(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None:
            self.section = self.logs.sections[int(event.option.id)]
            self.show_section()

    @on(Input.Changed, "#search")
    def search_changed(self) -> None:
        self.show_section()

    def show_section(self) -> None:
        log = self.query_one("#run-log", Log)
        log.clear()
        if self.section is None:
            return
        needle = self.query_one("#search", Input).value.strip().lower()
        # Actions masks the secrets it knows; ours (tokens we registered) are masked here too.
        lines = redact(self.section.text).splitlines()
        if needle:
            lines = [line for line in lines if needle in line.lower()]
            self.query_one("#matches", Static).update(f"{len(lines)} matching lines")
        else:
            self.query_one("#matches", Static).update(_section_label(self.section))
        log.write_lines([cut(line) for line in lines], scroll_end=False)
        log.scroll_home(animate=False)

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()


def _section_label(section: LogSection) -> str:
    if section.step is None:
        return section.job
    number = f"{section.step_number}. " if section.step_number is not None else ""
    return f"{section.job} / {number}{section.step}"


class AgentLogScreen(Screen[None]):
    """An agent's whole readable log, following new lines."""

    BINDINGS = [Binding("escape,q", "app.pop_screen", "Back", tooltip="Back to the dashboard")]

    def __init__(self, title: str, path: Path | None) -> None:
        super().__init__(id="agent-log-screen")
        self.title_text = title
        self.path = path
        self.feed = LogFeed(buffer_lines=10000)

    def compose(self) -> ComposeResult:
        yield Static(Text(f" {self.title_text} ", style="bold reverse"), id="agent-log-title")
        yield Log(id="agent-log", max_lines=10000)
        yield Footer()

    def on_mount(self) -> None:
        log = self.query_one(Log)
        if self.path is None:
            log.write_line("No log file for this agent.")
            return
        self.feed.track("log", self.path, backlog_bytes=8 * 1024 * 1024)
        self.set_interval(0.25, self.pump)
        self.pump()
        log.focus()

    @work(thread=True, exclusive=True, group="agent-log", exit_on_error=False)
    def pump(self) -> None:
        self.feed.poll()
        self.app.call_from_thread(self.drain)

    def drain(self) -> None:
        lines = self.feed.drain("log")
        if lines:
            self.query_one(Log).write_lines(lines)
