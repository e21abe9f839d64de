"""The dashboard over the real engine: emulator, sandbox repository, stand-in agents."""

from __future__ import annotations

import pytest
from filelock import FileLock
from textual.pilot import Pilot
from textual.widgets import Log

from clambake_tui.config import load_config
from clambake_tui.engine import Engine
from clambake_tui.model import AgentState
from clambake_tui.sandbox.setup import SandboxLayout
from clambake_tui.state import Paths
from clambake_tui.tui.app import ClambakeApp, QuitReport, make_app
from clambake_tui.tui.screens import ConfirmScreen, RunLogScreen, SpawnScreen
from clambake_tui.tui.widgets import StatusLine, StepBar
from tests.fixtures.bundling import TrainRepo
from tests.test_bundling_bundler import queue_three

SIZE = (160, 48)


async def until(pilot: Pilot[object], check, *, seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"condition never held within {seconds} s")


def states(app: ClambakeApp) -> list[AgentState]:
    return [view.state for view in app.snapshot.agents] if app.snapshot else []


def steps(app: ClambakeApp) -> list[tuple[str, int | None, int | None]]:
    return [(step.label, step.done, step.total) for step in app.query(StepBar)]


async def test_spawn_watch_bundle_read_logs_and_quit_on_the_sandbox(
    sandbox: SandboxLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAMBAKE_STANDIN_DELAY", "0.1")
    paths = Paths(sandbox.work)
    paths.ensure_state()
    engine = Engine(paths, load_config(sandbox.config_path), tail_lines=0, supervisor_thread=True)
    app = make_app(engine, blink=False, refresh_seconds=0.3, tick_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None)
        # Spawn two agents through the form: the top of the queue each time.
        for count in (1, 2):
            await pilot.press("s")
            await until(pilot, lambda: isinstance(app.screen, SpawnScreen) and app.screen.issues)
            await pilot.press("enter")
            await until(pilot, lambda count=count: len(states(app)) == count)
        await until(pilot, lambda: states(app) == [AgentState.COMPLETED] * 2)
        issues = sorted(view.process.issue_number for view in app.snapshot.agents)
        assert issues == [1, 2]  # very-high (#2) and high (#1) priority first
        pane = app.grid.panes()[0]
        await until(
            pilot, lambda: any(line.startswith("done: success") for line in pane.log_widget.lines)
        )

        before = {run.id for run in app.runs_pane.runs}
        await pilot.press("b")
        # The run `b` started is listed first and selected; wait for it to finish.
        await until(
            pilot,
            lambda: (
                bool(app.runs_pane.runs)
                and app.runs_pane.runs[0].id not in before
                and app.runs_pane.runs[0].is_completed
            ),
            seconds=90,
        )
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, RunLogScreen))
        log = app.screen.query_one("#run-log", Log)
        await until(pilot, lambda: log.line_count > 0)
        await pilot.press("escape")
        await pilot.press("q")
    assert isinstance(app.return_value, QuitReport)
    assert app.return_value.running == ()


async def test_terminate_from_the_dashboard_stops_a_running_agent(
    sandbox: SandboxLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Slow enough to still be running when `t` arrives.
    monkeypatch.setenv("CLAMBAKE_STANDIN_DELAY", "5")
    paths = Paths(sandbox.work)
    paths.ensure_state()
    engine = Engine(paths, load_config(sandbox.config_path), tail_lines=0, supervisor_thread=True)
    app = make_app(engine, blink=False, refresh_seconds=0.3, tick_seconds=0.1)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.snapshot is not None)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SpawnScreen) and app.screen.issues)
        await pilot.press("enter")
        await until(pilot, lambda: states(app) in ([AgentState.WORKING], [AgentState.STARTING]))
        app.grid.panes()[0].focus()
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: states(app) == [AgentState.TERMINATED], seconds=60)
        await pilot.press("q")
    assert app.return_value == QuitReport(running=())


async def test_a_local_bundle_shows_its_progress_while_it_waits_and_goes_when_it_ends(
    train_repo: TrainRepo, agent_branch_pusher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAMBAKE_GITHUB_ACTIONS__ENABLED", "false")
    queue_three(train_repo, agent_branch_pusher)
    paths = train_repo.paths
    paths.ensure_state()
    engine = Engine(
        paths, load_config(train_repo.root / "clambake.toml"), tail_lines=0, supervisor_thread=True
    )
    # Another bundler holds the repository's lock: `b` waits for it, and says so.
    other = FileLock(str(paths.locks / "bundle-clambake-sandbox.lock"))
    other.acquire()
    app = make_app(engine, blink=False, refresh_seconds=0.3, tick_seconds=0.1)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.snapshot is not None)
            await pilot.press("b")
            waiting = ("waiting for another bundler to finish", None, None)
            await until(pilot, lambda: steps(app) == [waiting])
            assert app.steps_bar.display
            other.release()
            status = app.query_one(StatusLine)
            await until(pilot, lambda: "bundled locally" in str(status.render()))
            await until(pilot, lambda: not steps(app) and not app.steps_bar.display)
            await pilot.press("q")
    finally:
        if other.is_locked:
            other.release()
