"""Screenshots of the dashboard on fixed data: any pixel that moves is a change to look at."""

from __future__ import annotations

import asyncio

from textual.pilot import Pilot

from clambake_tui.engine import GitHubHealth
from clambake_tui.tui.app import ClambakeApp, make_app
from clambake_tui.tui.widgets import AgentPane, StepBar
from tests.fixtures.tui import FixedEngine

SIZE = (140, 40)


async def settled(pilot: Pilot[object]) -> None:
    """Wait until the first snapshot is on screen and every pane shows its whole log file."""
    app = pilot.app
    assert isinstance(app, ClambakeApp)
    for _ in range(200):
        await pilot.pause(0.02)
        if app.snapshot is None:
            continue
        panes = list(app.query(AgentPane))
        if len(panes) == len(app.snapshot.agents) and all(
            pane.log_widget.line_count > 0 and not app.feed.pending(pane.process_id)
            for pane in panes
        ):
            break
    await app.workers.wait_for_complete()
    await pilot.pause()


def test_empty_dashboard(snap_compare, empty_engine: FixedEngine) -> None:
    app = make_app(empty_engine, blink=False, live=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=settled)


def test_three_agents_working_completed_and_failed(snap_compare, fixed_engine: FixedEngine) -> None:
    app = make_app(fixed_engine, blink=False, live=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=settled)


def test_github_rate_limit_shows_as_a_status_line(snap_compare, fixed_engine: FixedEngine) -> None:
    fixed_engine.github = GitHubHealth.RATE_LIMITED
    fixed_engine.github_status = "GitHub: rate limited, retrying in 20 s"
    app = make_app(fixed_engine, blink=False, live=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=settled)


def test_spawn_form(snap_compare, fixed_engine: FixedEngine) -> None:
    async def open_form(pilot: Pilot[object]) -> None:
        await settled(pilot)
        await pilot.press("s")
        await settled(pilot)

    app = make_app(fixed_engine, blink=False, live=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=open_form)


def test_run_log_screen(snap_compare, fixed_engine: FixedEngine) -> None:
    async def open_logs(pilot: Pilot[object]) -> None:
        await settled(pilot)
        await pilot.press("l")
        await settled(pilot)
        await pilot.press("down", "down")
        await pilot.pause()

    app = make_app(fixed_engine, blink=False, live=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=open_logs)


def test_long_steps_in_progress_show_beside_the_status_line(
    snap_compare, fixed_engine: FixedEngine
) -> None:
    """A bundling part way through its merges (a filling bar) and a terminate (indeterminate:
    it stands still with blink=False); the agent grid stays where it was."""
    fixed_engine.holds = {"bundle": asyncio.Event(), "terminate": asyncio.Event()}

    async def two_steps(pilot: Pilot[object]) -> None:
        await settled(pilot)
        app = pilot.app
        assert isinstance(app, ClambakeApp)
        await pilot.press("b")
        await pilot.press("t")
        await pilot.press("y")
        for _ in range(200):
            labels = [step.label for step in app.query(StepBar)]
            if labels == [
                "merging 2 of 3: agent002/15-add-csv-export",
                "stopping agent001: SIGTERM, then SIGKILL after 10 s",
            ]:
                break
            await pilot.pause(0.02)
        await pilot.pause()

    app = make_app(fixed_engine, blink=False, live=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=two_steps)
