"""The GitHub client's costs against the emulator: pages, polling with ETags, dispatch visibility.

    .venv/bin/python bench/github_client.py [--issues 250] [--polls 50] [--dispatches 5] [--json]

Reports: time to list every issue (and how many requests that took), what a dashboard-style poll
of one run costs in rate-limit budget (ETags make an unchanged answer free), and the seconds from
a dispatch to its run being visible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from clambake_tui.github.client import GitHubClient
from clambake_tui.sandbox.emulator import Emulator, JobSpec, RunContext, StepSpec

WORKFLOW = ".github/workflows/clambake-bundling.yml"
WORKFLOW_YML = (
    "name: clambake-bundling\non:\n  workflow_dispatch:\n    inputs:\n      force_bundle:\n"
    "        type: boolean\n      dry_run:\n        type: boolean\njobs:\n  bundle:\n"
    "    runs-on: ubuntu-latest\n    steps:\n      - run: clambake bundle\n"
)


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _origin(folder: Path) -> Path:
    seed = folder / "seed"
    seed.mkdir()
    _git(seed, "init", "-q", "-b", "main")
    target = seed / WORKFLOW
    target.parent.mkdir(parents=True)
    target.write_text(WORKFLOW_YML)
    _git(seed, "add", "-A")
    _git(seed, "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-q", "-m", "seed")
    bare = folder / "origin.git"
    _git(folder, "clone", "-q", "--bare", str(seed), str(bare))
    return bare


def _quick(ctx: RunContext) -> list[JobSpec]:
    return [JobSpec("bundle", (StepSpec("Bundle", lines=("ok",)),))]


async def _measure(emu: Emulator, issues: int, polls: int, dispatches: int) -> dict[str, Any]:
    for n in range(issues):
        emu.add_issue(f"issue {n}")
    async with GitHubClient("bench", "repo", api_url=emu.url, token=emu.token) as gh:
        emu.clear_requests()
        started = time.perf_counter()
        listed = await gh.list_issues()
        list_s = time.perf_counter() - started
        list_requests = len(emu.requests)

        run_id = emu.dispatch(WORKFLOW, "main", {})
        emu.wait_for_run(run_id)
        await gh.get_run(run_id)
        before = emu.rate_limit_remaining()
        started = time.perf_counter()
        for _ in range(polls):
            await gh.get_run(run_id)
            await gh.list_jobs(run_id)
        poll_ms = (time.perf_counter() - started) / polls * 1000
        budget_spent = before - emu.rate_limit_remaining()

        visible: list[float] = []
        for _ in range(dispatches):
            result = await gh.dispatch_workflow(WORKFLOW, ref="main", inputs={})
            if result.seconds_to_visible is not None:
                visible.append(result.seconds_to_visible)
    return {
        "issues_listed": len(listed),
        "list_seconds": round(list_s, 3),
        "list_requests": list_requests,
        "poll_cycles": polls,
        "poll_cycle_ms": round(poll_ms, 2),
        "poll_budget_spent": budget_spent,
        "dispatch_to_visible_median_s": round(statistics.median(visible), 3) if visible else None,
        "dispatch_to_visible_max_s": round(max(visible), 3) if visible else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=250)
    parser.add_argument("--polls", type=int, default=50)
    parser.add_argument("--dispatches", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        emu = Emulator(queue_delay=0.05, workspace_root=folder / "runs")
        emu.add_repo("bench", "repo", _origin(folder))
        emu.register_workflow_steps("clambake-bundling.yml", _quick)
        with emu:
            numbers = asyncio.run(_measure(emu, args.issues, args.polls, args.dispatches))
    if args.json:
        print(json.dumps(numbers, indent=2))
    else:
        for key, value in numbers.items():
            print(f"{key:32} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
