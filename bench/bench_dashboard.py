"""The dashboard under a log flood: memory, key-press latency and CPU; and `--once` wall time.

Ten stand-in agents (flood mode) are spawned by the real supervisor in a sandbox served by the
GitHub emulator, each writing CLAMBAKE_STANDIN_FLOOD_RATE stream-json lines a second for the
flood's length, while the real dashboard (headless, 200x60 so that all ten panes show their log
tails, the real Engine) shows them. Every
250 ms a key moves the focus between panes; its latency is the time from the key press until
the app is idle again with the new focus painted. The dashboard process's RSS and CPU are
sampled every second (the agents are other processes and are not counted).

    .venv/bin/python bench/bench_dashboard.py [--agents 10] [--rate 5000] [--seconds 20] [--json]

Goals: memory flat once every pane is full; key press to screen change p99 under 100 ms;
`clambake-tui --once` under 1 s against the emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from clambake_tui.config import load_config
from clambake_tui.engine import Engine
from clambake_tui.model import AgentState
from clambake_tui.sandbox.emulator import Emulator
from clambake_tui.sandbox.setup import SeedIssue, build_sandbox
from clambake_tui.state import Paths
from clambake_tui.tui.app import make_app

LATENCY_GOAL_MS = 100.0
# Big enough for all ten panes to show their logs (no compact list): the costly case.
SIZE = (200, 60)
ONCE_GOAL_S = 1.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def flood(work: Path, agents: int, seconds: float) -> dict[str, Any]:
    paths = Paths(work)
    paths.ensure_state()
    engine = Engine(
        paths, load_config(work / "clambake.toml"), tail_lines=0, supervisor_thread=True
    )
    app = make_app(engine, blink=False)
    me = psutil.Process()
    latencies: list[float] = []
    rss: list[tuple[float, int]] = []
    async with app.run_test(size=SIZE) as pilot:
        for number in range(1, agents + 1):
            await engine.spawn(f"agent{number:03}", number)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await pilot.pause(0.1)
            snapshot = app.snapshot
            if snapshot and sum(v.state is AgentState.WORKING for v in snapshot.agents) == agents:
                break
        app.grid.panes()[0].focus()
        await pilot.pause()
        logs = [view.process.log_path for view in app.snapshot.agents] if app.snapshot else []
        flood_start = [flood_progress(path) for path in logs]
        print(f"measuring for {seconds:g} s (pid {os.getpid()})", file=sys.stderr, flush=True)
        cpu_start = me.cpu_times()
        wall_start = time.monotonic()
        next_sample = wall_start
        keys = ("right", "left")
        presses = 0
        painted: asyncio.Future[float] | None = None
        before: object = None
        display = app._display

        def timed_display(screen: Any, update: Any) -> None:
            # The frame that shows the new focus is the moment the screen changed.
            display(screen, update)
            if painted is not None and not painted.done() and app.focused is not before:
                painted.set_result(time.perf_counter())

        app._display = timed_display  # type: ignore[method-assign]
        while time.monotonic() - wall_start < seconds:
            before = app.focused
            painted = asyncio.get_running_loop().create_future()
            t0 = time.perf_counter()
            press = asyncio.create_task(pilot.press(keys[presses % 2]))
            try:
                latencies.append((await asyncio.wait_for(painted, 10) - t0) * 1000)
            except TimeoutError:
                latencies.append(10_000.0)
            await press
            presses += 1
            now = time.monotonic()
            if now >= next_sample:
                rss.append((now - wall_start, me.memory_info().rss))
                next_sample += 1.0
            await asyncio.sleep(max(0.0, 0.25 - (time.perf_counter() - t0)))
        wall = time.monotonic() - wall_start
        compact = app.grid.compact
        visible = sum(1 for pane in app.grid.panes() if pane.is_on_screen)
        cpu_end = me.cpu_times()
        shown = sum(pane.log_widget.line_count for pane in app.grid.panes())
        # What each stand-in wrote while we measured (its lines are numbered).
        written = sum(flood_progress(path) for path in logs) - sum(flood_start)
        await engine.terminate_all()
        await pilot.press("q")
    cpu = (cpu_end.user - cpu_start.user + cpu_end.system - cpu_start.system) / wall
    return {
        "agents": agents,
        "flood_seconds": round(wall, 1),
        "lines_written": written,
        "lines_per_agent_per_s": round(written / agents / wall) if agents else 0,
        "lines_in_panes": shown,
        "panes_visible": visible,
        "compact_list": compact,
        "key_presses_measured": len(latencies),
        "latency_ms_p50": round(statistics.median(latencies), 1) if latencies else None,
        "latency_ms_p99": round(percentile(latencies, 0.99), 1) if latencies else None,
        "latency_ms_max": round(max(latencies), 1) if latencies else None,
        "dashboard_cpu_cores": round(cpu, 2),
        "rss_mb_first": round(rss[0][1] / 2**20, 1) if rss else None,
        "rss_mb_max": round(max(r for _, r in rss) / 2**20, 1) if rss else None,
        "rss_mb_last": round(rss[-1][1] / 2**20, 1) if rss else None,
        "rss_mb_series": [round(r / 2**20, 1) for _, r in rss],
    }


def flood_progress(log_path: Path) -> int:
    """The number of the last flood line in an agent's log (0 before its flood)."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(max(0, os.fstat(handle.fileno()).st_size - 64 * 1024))
            tail = handle.read()
    except OSError:
        return 0
    numbers = re.findall(rb"flood line (\d+) of", tail)
    return int(numbers[-1]) if numbers else 0


def once_timings(work: Path, runs: int = 5) -> list[float]:
    exe = Path(sys.executable).with_name("clambake-tui")
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([str(exe), "--once", "--json"], cwd=work, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clambake-bench-dash-") as tmp:
        emulator = Emulator(workspace_root=Path(tmp) / "actions").start()
        try:
            issues = [
                SeedIssue(f"Flood {n}", "standin-mode: flood", ("route:ready",))
                for n in range(1, args.agents + 1)
            ]
            layout = build_sandbox(Path(tmp) / "sandbox", emulator=emulator, issues=issues)
            os.environ.update(
                {
                    "GH_TOKEN": layout.token,
                    "CLAMBAKE_STANDIN_MODE": "flood",
                    "CLAMBAKE_STANDIN_FLOOD_RATE": str(args.rate),
                    # A little longer than the measurement, so it ends inside the flood.
                    "CLAMBAKE_STANDIN_FLOOD_SECONDS": str(args.seconds + 15),
                    "CLAMBAKE_AGENTS__MAX_CONCURRENT": str(args.agents),
                }
            )
            once = once_timings(layout.work)
            result = asyncio.run(flood(layout.work, args.agents, args.seconds))
        finally:
            emulator.stop()
    result["once_s_p50"] = round(statistics.median(once), 3)
    result["once_s_max"] = round(max(once), 3)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    result["cpus"] = os.cpu_count()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    p99 = result["latency_ms_p99"]
    print(
        f"\nkey press -> screen p99 {p99} ms (goal < {LATENCY_GOAL_MS:g}); "
        f"--once p50 {result['once_s_p50']} s (goal < {ONCE_GOAL_S:g})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
