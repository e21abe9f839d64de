"""`clambake-tui`: the dashboard, its headless `--once` and the `--demo`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clambake_tui.cli import Context
    from clambake_tui.config import Config
    from clambake_tui.state import Paths


def run(ctx: Context) -> int:
    args = ctx.args
    if args.json and not args.once:
        print("clambake-tui: error: --json goes with --once", file=sys.stderr)
        return 2
    if args.demo:
        return _demo(once=args.once, as_json=args.json)
    config = ctx.config()
    if args.once:
        from clambake_tui.headless import run_once

        return run_once(ctx.paths, config, as_json=args.json)
    ctx.ensure_state()
    return _dashboard(ctx.paths, config)


def _dashboard(paths: Paths, config: Config, *, demo: bool = False) -> int:
    # Textual is imported here only: `clambake` and `--once` never load it.
    from clambake_tui.tui.app import make_app

    app = make_app(paths=paths, config=config)
    report = app.run()
    running = report.running if report is not None else ()
    if running and not demo:
        names = ", ".join(running)
        print(
            f"clambake-tui: {len(running)} agent(s) keep running: {names}. They outlive the "
            "dashboard: `clambake-tui` shows them again, `clambake terminate AGENT` stops one."
        )
    return 0 if app.return_code in (None, 0) else app.return_code


def _demo(*, once: bool, as_json: bool) -> int:
    from clambake_tui.demo import demo_sandbox, stop_demo_agents

    if not as_json:
        print("clambake-tui: starting the demo (GitHub emulator + sandbox repository)…")
    with demo_sandbox() as demo:
        if once:
            from clambake_tui.headless import run_once

            return run_once(demo.paths, demo.config, as_json=as_json)
        code = _dashboard(demo.paths, demo.config, demo=True)
        stopped = stop_demo_agents(demo)
    if stopped:
        print(
            f"clambake-tui: terminated the demo's agents ({', '.join(stopped)}): "
            "their sandbox is removed with the demo."
        )
    print("clambake-tui: demo over; the emulator is stopped and the sandbox removed.")
    return code
