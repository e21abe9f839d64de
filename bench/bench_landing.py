"""Latency from an agent's exit to its bundle pull request, against the GitHub emulator.

Each round: an issue, a stand-in agent spawned by the real supervisor (watcher process,
worktree), its watcher lands the work through the `on_agent_finished` hook (push, labels,
comment, dispatch), the emulator's Actions runs the bundling workflow (`clambake bundle
--check`, then `clambake bundle`, as subprocesses in a fresh clone) and the PR appears.
The train schedule is set to one minute so that every dispatch finds the window open.

    .venv/bin/python bench/bench_landing.py [--rounds 5] [--json]

Goal: exit -> PR under 5 s (median of the rounds; the load average is printed beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from clambake_tui.agents.supervisor import AgentProcessManager
from clambake_tui.config import load_config
from clambake_tui.metrics import read_events
from clambake_tui.sandbox.emulator import Emulator
from clambake_tui.sandbox.setup import build_sandbox
from clambake_tui.state import Paths

GOAL_S = 5.0


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _pr_for(emulator: Emulator, number: int) -> dict[str, Any] | None:
    for pull in emulator.pulls():
        if f"Fixes #{number}" in (pull.get("body") or ""):
            return pull
    return None


async def _round(
    mgr: AgentProcessManager, emulator: Emulator, paths: Paths, index: int
) -> dict[str, float]:
    number = emulator.add_issue(
        f"Bench change {index}",
        f"standin-file: bench/change_{index}.txt\nstandin-content: change {index}\n",
        labels=["route:ready"],
    )
    process = await mgr.spawn_agent(f"agent{index + 1:03d}", number)
    done = await mgr.wait_finished(process.process_id, timeout=60)
    assert done.ended_at is not None, done
    exited = done.ended_at.timestamp()
    deadline = time.monotonic() + 60
    while (pull := _pr_for(emulator, number)) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"no pull request for #{number} within 60 s")
        await asyncio.sleep(0.01)
    seen = time.time()
    pushed = next(
        datetime.fromisoformat(e["pushed_at"]).timestamp()
        for e in read_events(paths.metrics)
        if e["event"] == "landing.pushed" and e["issue_number"] == number
    )
    dispatched = next(
        (
            datetime.fromisoformat(e["ts"]).timestamp()
            for e in read_events(paths.metrics)
            if e["event"] == "actions.dispatch"
            and datetime.fromisoformat(e["ts"]).timestamp() >= pushed
        ),
        pushed,
    )
    return {
        "issue": number,
        "push_to_run_visible_s": dispatched - pushed,
        "run_visible_to_pr_s": seen - dispatched,
        "exit_to_push_s": pushed - exited,
        "push_to_pr_s": seen - pushed,
        "exit_to_pr_s": seen - exited,
        "pr": pull["number"],
    }


async def bench(rounds: int) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="clambake-bench-") as tmp:
        emulator = Emulator(queue_delay=0.0, workspace_root=Path(tmp) / "runs").start()
        try:
            layout = build_sandbox(Path(tmp) / "sandbox", emulator=emulator, issues=())
            os.environ.update(layout.env)
            os.environ.setdefault("GIT_AUTHOR_NAME", "Bench")
            os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@clambake.invalid")
            os.environ.setdefault("GIT_COMMITTER_NAME", "Bench")
            os.environ.setdefault("GIT_COMMITTER_EMAIL", "bench@clambake.invalid")
            # A train every minute: the window is always open, so a dispatch bundles at once.
            with layout.config_path.open("a") as handle:
                handle.write("\n[bundling]\nschedule_minutes = 1\n")
            _git(layout.work, "commit", "-qam", "Trains every minute")
            _git(layout.work, "push", "-q", "origin", "main")
            config = load_config(layout.config_path)
            paths = Paths(layout.work)
            results = []
            async with AgentProcessManager(paths, config, token=layout.token) as mgr:
                for index in range(rounds):
                    results.append(await _round(mgr, emulator, paths, index))
            return results
        finally:
            emulator.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(bench(args.rounds))
    totals = [r["exit_to_pr_s"] for r in results]
    summary = {
        "rounds": len(results),
        "exit_to_pr_median_s": round(statistics.median(totals), 3),
        "exit_to_pr_max_s": round(max(totals), 3),
        "exit_to_push_median_s": round(statistics.median(r["exit_to_push_s"] for r in results), 3),
        "push_to_pr_median_s": round(statistics.median(r["push_to_pr_s"] for r in results), 3),
        "goal_s": GOAL_S,
        # The median: on a shared two-core machine a single slow round measures the neighbours.
        "met": statistics.median(totals) < GOAL_S,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps({"summary": summary, "rounds": results}, indent=2))
    else:
        for r in results:
            print(
                f"#{r['issue']:<3} exit->push {r['exit_to_push_s']:.2f} s   "
                f"push->run visible {r['push_to_run_visible_s']:.2f} s   "
                f"run->PR {r['run_visible_to_pr_s']:.2f} s   exit->PR {r['exit_to_pr_s']:.2f} s"
            )
        print(
            f"median exit->PR {summary['exit_to_pr_median_s']:.2f} s, max "
            f"{summary['exit_to_pr_max_s']:.2f} s (goal: median < {GOAL_S:g} s): "
            f"{'met' if summary['met'] else 'NOT met'}; load average {summary['load_average_1m']}"
        )
    return 0 if summary["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
