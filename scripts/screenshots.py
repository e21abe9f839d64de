"""SVG screenshots of the real dashboard in demo mode, for the README and docs.

Runs the same thing as `clambake-tui --demo` (emulator, sandbox, stand-in agents), drives it
with the keys an operator would press, and saves what the terminal shows:

    .venv/bin/python scripts/screenshots.py [--out screenshots]

dashboard.svg (two agents at work), spawn-form.svg, finished.svg (after bundling),
run-logs.svg (the bundling run's logs per step).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from clambake_tui.demo import demo_sandbox
from clambake_tui.engine import Engine
from clambake_tui.model import AgentState
from clambake_tui.tui.app import ClambakeApp, make_app
from clambake_tui.tui.screens import RunLogScreen, SpawnScreen

SIZE = (160, 44)


async def until(pilot: Pilot[object], check: Callable[[], bool], seconds: float = 90) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await pilot.pause(0.05)
    raise SystemExit(f"screenshots: gave up waiting ({check})")


def states(app: ClambakeApp) -> list[AgentState]:
    return [view.state for view in app.snapshot.agents] if app.snapshot else []


async def shoot(out: Path) -> None:
    # Slow agents, so the first screenshot catches them at work.
    os.environ["CLAMBAKE_STANDIN_DELAY"] = "1.5"
    with demo_sandbox() as demo:
        engine = Engine(demo.paths, demo.config, tail_lines=0, supervisor_thread=True)
        app = make_app(engine, blink=False)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.snapshot is not None)
            for count in (1, 2):
                await pilot.press("s")
                await until(
                    pilot, lambda: isinstance(app.screen, SpawnScreen) and bool(app.screen.issues)
                )
                if count == 2:
                    await pilot.pause(0.3)
                    app.save_screenshot("spawn-form.svg", str(out))
                await pilot.press("enter")
                await until(pilot, lambda count=count: len(states(app)) == count)
            await until(pilot, lambda: states(app).count(AgentState.WORKING) == 2)
            await pilot.pause(4)
            app.grid.panes()[0].focus()
            await pilot.pause(1.0)
            app.save_screenshot("dashboard.svg", str(out))

            await until(pilot, lambda: states(app) == [AgentState.COMPLETED] * 2, seconds=120)
            before = {run.id for run in app.runs_pane.runs}
            await pilot.press("b")
            await until(
                pilot,
                lambda: (
                    bool(app.runs_pane.runs)
                    and app.runs_pane.runs[0].id not in before
                    and app.runs_pane.runs[0].is_completed
                ),
                seconds=120,
            )
            await pilot.pause(1.5)
            app.save_screenshot("finished.svg", str(out))
            # The run `b` started: its bundle step merged the agents' branches into one PR.
            await pilot.press("l")
            await until(pilot, lambda: isinstance(app.screen, RunLogScreen))
            await pilot.pause(0.5)
            await pilot.press("down", "down", "down", "down", "down")
            await pilot.pause(0.5)
            app.save_screenshot("run-logs.svg", str(out))
            await pilot.press("escape")
            await pilot.press("q")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(shoot(args.out.resolve()))
    for path in sorted(args.out.glob("*.svg")):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
