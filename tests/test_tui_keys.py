"""Every key of the dashboard, driven through the real app (fixed-data engine, headless)."""

from __future__ import annotations

import asyncio

from textual.pilot import Pilot
from textual.widgets import Input, Log, ProgressBar, Sparkline, Static

from clambake_tui.errors import GitHubError
from clambake_tui.tui.app import ClambakeApp, QuitReport, make_app
from clambake_tui.tui.metrics_screen import MetricsScreen
from clambake_tui.tui.screens import AgentLogScreen, ConfirmScreen, RunLogScreen, SpawnScreen
from clambake_tui.tui.widgets import AgentPane, StatusLine, StepBar
from tests.fixtures.tui import FixedEngine

SIZE = (140, 40)


async def until(pilot: Pilot[object], check, *, tries: int = 250) -> None:
    """Let the app run until `check()` holds (polled, with a deadline)."""
    for _ in range(tries):
        if check():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"condition never held: {check}")


def dashboard(engine: FixedEngine) -> ClambakeApp:
    return make_app(engine, blink=False, live=False, refresh_seconds=0.2, tick_seconds=0.05)


async def started(pilot: Pilot[object]) -> ClambakeApp:
    app = pilot.app
    assert isinstance(app, ClambakeApp)
    await until(
        pilot,
        lambda: app.snapshot is not None and len(app.grid.panes()) == len(app.snapshot.agents),
    )
    return app


async def test_spawn_key_opens_the_form_proposing_the_next_id_and_the_top_priority_issue(
    fixed_engine: FixedEngine,
) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SpawnScreen) and app.screen.issues)
        assert app.screen.query_one("#agent-id", Input).value == "agent004"
        await pilot.press("enter")
        await until(pilot, lambda: len(app.grid.panes()) == 4)
    assert ("spawn", ("agent004", 39)) in fixed_engine.calls


async def test_spawn_form_takes_a_typed_issue_number(fixed_engine: FixedEngine) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SpawnScreen) and app.screen.issues)
        app.screen.query_one("#issue-number", Input).value = "77"
        await pilot.click("#spawn")
        await until(pilot, lambda: ("spawn", ("agent004", 77)) in fixed_engine.calls)


async def test_spawn_form_refuses_a_malformed_agent_id_and_keeps_the_input(
    fixed_engine: FixedEngine,
) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SpawnScreen) and app.screen.issues)
        box = app.screen.query_one("#agent-id", Input)
        box.value = "bob"
        await pilot.click("#spawn")
        await pilot.pause()
        assert isinstance(app.screen, SpawnScreen)
        assert "agent001" in str(app.screen.query_one("#form-error", Static).render())
        assert box.value == "bob"
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SpawnScreen))
    assert not [call for call in fixed_engine.calls if call[0] == "spawn"]


async def test_terminate_asks_first_and_only_yes_stops_the_focused_agent(
    fixed_engine: FixedEngine,
) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        assert isinstance(app.focused, AgentPane) and app.focused.view.agent_id == "agent001"
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert not fixed_engine.calls
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: ("terminate", "agent001-12-p1") in fixed_engine.calls)
        pane = app.grid.pane("agent001-12-p1")
        await until(pilot, lambda: pane is not None and not pane.view.is_active)


async def test_terminate_of_an_agent_that_already_ended_asks_nothing(
    fixed_engine: FixedEngine,
) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.grid.panes()[1].focus()
        await pilot.press("t")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
    assert not fixed_engine.calls


async def test_arrow_keys_move_focus_across_the_grid(fixed_engine: FixedEngine) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        panes = app.grid.panes()
        assert app.focused is panes[0]
        await pilot.press("down")
        assert app.focused is panes[1] if app.grid.columns == 1 else panes[app.grid.columns]
        await pilot.press("up")
        assert app.focused is panes[0]


async def test_bundle_key_triggers_bundling_and_the_new_run_is_listed(
    fixed_engine: FixedEngine,
) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("b")
        await until(pilot, lambda: len(app.runs_pane.runs) == 4)
        assert app.runs_pane.runs[0].status == "queued"
        assert "run #4" in str(app.query_one(StatusLine).render())
    assert ("bundle", None) in fixed_engine.calls


async def test_run_logs_key_shows_the_selected_run_per_step_and_search_filters_lines(
    fixed_engine: FixedEngine,
) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, RunLogScreen))
        screen = app.screen
        assert ("run_logs", 9003) in fixed_engine.calls
        await pilot.press("down", "down")
        log = screen.query_one("#run-log", Log)
        assert log.line_count == 6
        await pilot.press("slash")
        await pilot.press(*"merging")
        await until(pilot, lambda: log.line_count == 2)
        assert all("merging" in line for line in log.lines)
        await pilot.press("escape")  # leave the search box
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, RunLogScreen))


async def test_enter_opens_the_focused_agents_whole_log(fixed_engine: FixedEngine) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, AgentLogScreen))
        log = app.screen.query_one(Log)
        await until(pilot, lambda: log.line_count >= 6)
        assert "Edit src/app.py" in log.lines
        assert not any(line.lstrip().startswith("{") for line in log.lines)


async def test_m_shows_the_metrics_computed_from_recorded_events(
    fixed_engine: FixedEngine,
) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("m")
        await until(pilot, lambda: isinstance(app.screen, MetricsScreen))
        summary = str(app.screen.query_one("#metrics-summary", Static).render())
        assert "completed / failed / terminated" in summary
        assert "2 / 1 / 0" in summary and "timeout 1" in summary
        assert app.screen.query_one(Sparkline).data == [61.0, 1800.0, 95.0]
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, MetricsScreen))
    assert ("metrics",) in fixed_engine.calls


async def test_quit_with_agents_running_leaves_them_running_and_says_which(
    fixed_engine: FixedEngine,
) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("q")
    assert app.return_value == QuitReport(running=("agent001 (#12)",))
    assert not [call for call in fixed_engine.calls if call[0] == "terminate"]


async def test_a_failing_action_shows_one_error_line_and_the_app_keeps_running(
    fixed_engine: FixedEngine,
) -> None:
    fixed_engine.fail_next = GitHubError("GitHub answered 502 Bad Gateway")
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("b")
        status = app.query_one(StatusLine)
        await until(pilot, lambda: "bundling failed" in str(status.render()))
        assert "502 Bad Gateway" in str(status.render())
        await pilot.press("b")
        await until(pilot, lambda: len(app.runs_pane.runs) == 4)
        assert app.is_running


async def test_log_tails_are_readable_lines_not_json(fixed_engine: FixedEngine) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        pane = app.grid.panes()[0]
        await until(pilot, lambda: pane.log_widget.line_count >= 6)
        assert pane.log_widget.lines[-1] == "Edit src/app.py"
        assert "Bash: pytest -q tests/test_login.py" in pane.log_widget.lines


async def test_many_agents_in_a_small_terminal_become_a_compact_list_without_log_writes(
    fixed_engine: FixedEngine, tmp_path
) -> None:
    from dataclasses import replace

    from tests.fixtures.tui import three_agents

    for batch in range(3):
        fixed_engine.agents += [
            replace(a, process=replace(a.process, process_id=f"{a.process.process_id}-{batch}"))
            for a in three_agents(tmp_path / f"more{batch}")
        ]
    app = dashboard(fixed_engine)
    async with app.run_test(size=(100, 24)) as pilot:
        await started(pilot)
        await until(pilot, lambda: app.grid.compact)
        for _ in range(10):
            await pilot.pause(0.05)
        assert all(pane.log_widget.line_count == 0 for pane in app.grid.panes())


async def test_scrolling_up_pauses_follow_and_counts_new_lines(fixed_engine: FixedEngine) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        pane = app.grid.panes()[0]
        pane.write([f"line {n}" for n in range(200)])
        await pilot.pause()
        assert pane.following
        pane.log_widget.scroll_to(y=0, animate=False)
        await pilot.pause()
        # The live feed may add its own lines meanwhile: count from what the badge says now.
        unseen = pane._unseen
        pane.write(["one more", "and another"])
        assert not pane.following
        assert f"{unseen + 2} new lines" in str(pane.query_one("#badge", Static).render())
        pane.focus()
        await pilot.press("end")
        await pilot.pause()
        assert pane.following
        assert not pane.query_one("#badge").display


async def test_a_following_pane_keeps_following_when_it_changes_size(
    fixed_engine: FixedEngine,
) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        pane = app.grid.panes()[0]
        pane.write([f"line {n}" for n in range(300)])
        await pilot.pause()
        # A shorter pane moves its bottom: that is not the operator scrolling up.
        await pilot.resize_terminal(SIZE[0], SIZE[1] - 9)
        await pilot.pause()
        pane.write(["after the resize"])
        await pilot.pause()
        log = pane.log_widget
        assert pane.following and log.is_vertical_scroll_end
        assert not pane.query_one("#badge").display
        # The scrollbar knows every line, though adding them never relaid the screen out.
        assert log.vertical_scrollbar.window_virtual_size == log.line_count


async def test_moving_the_focus_repaints_the_two_panes_not_the_whole_screen(
    fixed_engine: FixedEngine,
) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        first, second = app.grid.panes()[:2]
        first.focus()
        await pilot.pause()
        painted: list[set[int]] = []
        display = app._display

        def record(screen: object, update: object) -> None:
            spans = getattr(update, "spans", None)
            painted.append({y for y, _, _ in spans} if spans is not None else set(range(SIZE[1])))
            display(screen, update)  # type: ignore[arg-type]

        app._display = record  # type: ignore[method-assign]
        await pilot.press("right")
        await until(pilot, lambda: app.focused is second and bool(painted))
        await pilot.pause()
        rows = set().union(*painted)
        # Both borders changed colour, so both panes' edges were repainted...
        for pane in (first, second):
            assert pane.region.y in rows and pane.region.bottom - 1 in rows
        # ...and no frame was a whole-screen one.
        assert all(len(frame) < SIZE[1] for frame in painted)


async def test_command_palette_offers_the_dashboard_actions(fixed_engine: FixedEngine) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("ctrl+p")
        await pilot.press(*"trigger bund")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await until(pilot, lambda: ("bundle", None) in fixed_engine.calls)


async def test_run_logs_follow_the_run_picked_in_the_table(fixed_engine: FixedEngine) -> None:
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.runs_pane.table.focus()
        await pilot.press("down")
        await pilot.pause(0.5)  # a refresh or two: the pick must survive them
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, RunLogScreen))
    assert ("run_logs", 9002) in fixed_engine.calls


def steps(app: ClambakeApp) -> list[tuple[str, int | None, int | None]]:
    return [(step.label, step.done, step.total) for step in app.query(StepBar)]


async def test_a_long_step_shows_its_progress_while_it_runs_and_goes_when_it_ends(
    fixed_engine: FixedEngine,
) -> None:
    fixed_engine.holds["bundle"] = hold = asyncio.Event()
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        grid_region = app.grid.region
        assert not app.steps_bar.display
        await pilot.press("b")
        merging = ("merging 2 of 3: agent002/15-add-csv-export", 1, 4)
        await until(pilot, lambda: steps(app) == [merging])
        assert app.steps_bar.display
        bar = app.query_one(StepBar).query_one(ProgressBar)
        assert (bar.progress, bar.total, bar.percentage) == (1, 4, 0.25)
        assert app.grid.region == grid_region  # the grid does not move for it
        hold.set()
        await until(pilot, lambda: not steps(app) and not app.steps_bar.display)
        assert "run #4" in str(app.query_one(StatusLine).render())
        assert app.grid.region == grid_region


async def test_steps_of_unknown_length_are_indeterminate(fixed_engine: FixedEngine) -> None:
    fixed_engine.holds["terminate"] = hold = asyncio.Event()
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        stopping = ("stopping agent001: SIGTERM, then SIGKILL after 10 s", None, None)
        await until(pilot, lambda: steps(app) == [stopping])
        step = app.query_one(StepBar)
        assert step.has_class("indeterminate")
        assert step.query_one(ProgressBar).total is None
        hold.set()
        await until(pilot, lambda: not steps(app))


async def test_two_steps_at_once_each_show_and_each_go_when_it_ends(
    fixed_engine: FixedEngine,
) -> None:
    fixed_engine.holds = {"bundle": asyncio.Event(), "run_logs": asyncio.Event()}
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("b")
        app.runs_pane.table.focus()
        await pilot.press("l")
        merging = ("merging 2 of 3: agent002/15-add-csv-export", 1, 4)
        download = ("downloading the logs of run #3: 48 KB of 128 KB", 49152, 131072)
        await until(pilot, lambda: steps(app) == [merging, download])
        fixed_engine.holds["run_logs"].set()
        await until(pilot, lambda: isinstance(app.screen, RunLogScreen))
        await until(pilot, lambda: steps(app) == [merging])
        await pilot.press("escape")
        fixed_engine.holds["bundle"].set()
        await until(pilot, lambda: not steps(app))


async def test_a_step_that_fails_loses_its_progress_and_leaves_one_error_line(
    fixed_engine: FixedEngine,
) -> None:
    fixed_engine.holds["spawn"] = hold = asyncio.Event()
    fixed_engine.fail_next = GitHubError("GitHub answered 502 Bad Gateway")
    app = dashboard(fixed_engine)
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SpawnScreen) and app.screen.issues)
        await pilot.press("enter")
        claiming = ("claiming #39, creating the worktree, starting agent004", 1, 2)
        await until(pilot, lambda: steps(app) == [claiming])
        hold.set()
        status = app.query_one(StatusLine)
        await until(pilot, lambda: "spawn failed" in str(status.render()))
        assert "502 Bad Gateway" in str(status.render())
        assert not steps(app) and not app.steps_bar.display
