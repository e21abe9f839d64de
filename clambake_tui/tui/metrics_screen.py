"""The metrics view: `clambake metrics` on a screen, with the run durations as a sparkline."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Sparkline, Static

from clambake_tui.commands.metrics_cmd import render
from clambake_tui.metrics import Metrics, MetricsView

__all__ = ["MetricsScreen"]


def _summary_text(metrics: Metrics, width: int) -> Text:
    console = Console(width=width, color_system="truecolor", force_terminal=True, record=False)
    with console.capture() as capture:
        render(metrics, console)
    return Text.from_ansi(capture.get())


class MetricsScreen(Screen[None]):
    """Numbers computed from the recorded events (the same as `clambake metrics`)."""

    BINDINGS = [Binding("escape,q,m", "app.pop_screen", "Back", tooltip="Back to the dashboard")]

    def __init__(self, view: MetricsView) -> None:
        super().__init__(id="metrics-screen")
        self.metrics = view.metrics
        self.durations = list(view.durations)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="metrics-body"):
            if self.durations:
                yield Static(
                    f"Agent run durations, oldest to newest ({len(self.durations)} runs, "
                    f"longest {max(self.durations):.0f} s)",
                    id="metrics-chart-title",
                )
                yield Sparkline(self.durations, id="metrics-chart")
            yield Static(_summary_text(self.metrics, 100), id="metrics-summary")
        yield Footer()
