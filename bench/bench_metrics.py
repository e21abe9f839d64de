"""How long `clambake metrics` takes to read and compute a large metrics file.

A synthetic but realistic mix of events (per agent run: spawn, finish, about 40 GitHub
requests, a landing; a dispatch and a bundle run every few runs), written with the real
recorder's line format, then read and computed as the command and the dashboard do.

    .venv/bin/python bench/bench_metrics.py [--runs 2000] [--repeat 5] [--json]

Goal: under 1 s for a month of a busy repository (2,000 agent runs, about 100,000 events).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clambake_tui.metrics import compute_metrics, read_events

GOAL_S = 1.0


def _line(ts: datetime, event: str, **fields: Any) -> str:
    entry = {"ts": ts.isoformat(timespec="milliseconds"), "event": event, **fields}
    return json.dumps(entry, separators=(",", ":")) + "\n"


def write_events(path: Path, runs: int, now: datetime) -> int:
    rng = random.Random(7)
    lines: list[str] = []
    start = now - timedelta(days=30)
    step = timedelta(days=30) / max(runs, 1)
    for n in range(runs):
        at = start + step * n
        agent = f"agent{n % 20 + 1:03d}"
        issue = 1000 + n
        pid = f"{agent}-{issue}-{n:08x}"
        lines.append(
            _line(
                at,
                "agent.spawned",
                agent_id=agent,
                issue_number=issue,
                process_id=pid,
                spawn_ms=rng.uniform(200, 900),
            )
        )
        for _ in range(40):
            lines.append(
                _line(
                    at,
                    "github.request",
                    method="GET",
                    route="/repos/{owner}/{repo}/issues",
                    status=rng.choice((200, 304, 304)),
                    cached=False,
                    remaining=rng.randint(0, 5000),
                )
            )
        ok = rng.random() < 0.8
        duration = rng.uniform(60, 1800)
        end = at + timedelta(seconds=duration)
        lines.append(
            _line(
                end,
                "agent.finished",
                agent_id=agent,
                issue_number=issue,
                process_id=pid,
                state="completed" if ok else "failed",
                failure_mode=None if ok else rng.choice(("timeout", "crash", "error")),
                duration_s=duration,
                exit_code=0 if ok else 1,
                restarts=0,
                cpu_peak=rng.uniform(0, 200),
                rss_peak=rng.randint(10**8, 10**9),
                open_files_peak=rng.randint(5, 80),
                exited_at=end.isoformat(),
            )
        )
        if ok:
            pushed = end + timedelta(seconds=rng.uniform(1, 5))
            lines.append(
                _line(
                    pushed,
                    "landing.pushed",
                    agent_id=agent,
                    issue_number=issue,
                    exited_at=end.isoformat(),
                    pushed_at=pushed.isoformat(),
                )
            )
        if n % 5 == 4:
            lines.append(
                _line(
                    end,
                    "actions.dispatch",
                    ok=True,
                    workflow="clambake-bundling.yml",
                    latency_s=rng.uniform(1, 8),
                    run_id=n,
                    error=None,
                )
            )
            lines.append(
                _line(
                    end,
                    "bundle.run",
                    path="actions",
                    ok=True,
                    duration_s=rng.uniform(20, 90),
                    issues=[issue - 4 + k for k in range(5)],
                    prs=[n],
                    reason="departed",
                )
            )
            lines.append(
                _line(
                    end + timedelta(seconds=60),
                    "bundle.pr_created",
                    pr_number=n,
                    issues=[issue - 4 + k for k in range(5)],
                    created_at=(end + timedelta(seconds=60)).isoformat(),
                )
            )
    path.write_text("".join(lines))
    return len(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "metrics.jsonl"
        count = write_events(path, args.runs, now)
        size = path.stat().st_size
        timings: dict[str, list[float]] = {
            "read": [],
            "compute_all": [],
            "read_and_compute_24h": [],
        }
        for _ in range(args.repeat):
            started = time.perf_counter()
            events = read_events(path)
            timings["read"].append(time.perf_counter() - started)
            started = time.perf_counter()
            compute_metrics(events, now, None)
            timings["compute_all"].append(time.perf_counter() - started)
            started = time.perf_counter()
            compute_metrics(read_events(path, now - timedelta(hours=24)), now, 24)
            timings["read_and_compute_24h"].append(time.perf_counter() - started)
    result = {
        "events": count,
        "file_mb": round(size / 1e6, 1),
        **{f"{k}_p50_s": round(statistics.median(v), 3) for k, v in timings.items()},
        "goal_s": GOAL_S,
    }
    total = result["read_p50_s"] + result["compute_all_p50_s"]
    result["read_and_compute_p50_s"] = round(total, 3)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{count} events ({result['file_mb']} MB): read {result['read_p50_s']} s, "
            f"compute all {result['compute_all_p50_s']} s; last 24 h read and computed in "
            f"{result['read_and_compute_24h_p50_s']} s (median of {args.repeat}; goal < {GOAL_S} s "
            "read + compute)"
        )
    return 0 if total < GOAL_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
