"""How fast the stand-in agent starts and how fast stream-json is read.

Run: .venv/bin/python bench/standin_and_parser.py [--runs N]

- stand-in start: wall time of `clambake-standin-agent` from spawn to exit, in a mode that stops
  at once (auth-error: three events, no git) and in `succeed` (an edit and a git commit), beside
  the bare interpreter (`python -c pass`) as the floor.
- parser: stream-json lines read per second (StreamParser + AgentActivity + render), for the
  recorded transcripts and for a flood of short assistant text lines; and the same flood skimmed
  (`StreamParser.skim`, what watchers and the supervisor do with a flood).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from clambake_tui.agents.claude import AgentActivity, StreamParser, render

ROOT = Path(__file__).resolve().parents[1]
STANDIN = Path(sys.executable).parent / "clambake-standin-agent"
IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@clambake.invalid",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@clambake.invalid",
}


def timed(command: list[str], runs: int, cwd: Path, env: dict[str, str]) -> str:
    times = []
    for n in range(runs):
        started = time.perf_counter()
        subprocess.run(
            command,
            cwd=cwd,
            env={**env, "CLAMBAKE_ISSUE": str(n)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        times.append(time.perf_counter() - started)
    times.sort()
    p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
    # The minimum is the cost itself; p50 and p90 add whatever else the machine was doing.
    return (
        f"min {times[0] * 1000:6.1f} ms   p50 {statistics.median(times) * 1000:6.1f} ms"
        f"   p90 {p90 * 1000:6.1f} ms"
    )


def parse_rate(data: bytes, repeat: int) -> tuple[int, float]:
    parser, activity, now = StreamParser(), AgentActivity(), datetime.now(UTC)
    lines = data.count(b"\n") * repeat
    started = time.perf_counter()
    for _ in range(repeat):
        for event in parser.feed(data):
            activity.apply(event, now)
            render(event)
    return lines, time.perf_counter() - started


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--runs", type=int, default=30)
    runs = args.parse_args().runs
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch)
        env = {**os.environ, **IDENTITY, "CLAMBAKE_STANDIN_DELAY": "0"}
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
        subprocess.run(
            ["git", "commit", "-q", "--allow-empty", "-m", "init"], cwd=repo, env=env, check=True
        )
        agent = [
            str(STANDIN),
            "-p",
            "Issue #1: bench",
            "--output-format",
            "stream-json",
            "--verbose",
        ]
        print(
            f"stand-in start, {runs} runs each ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})"
        )
        print(f"  python -c pass          {timed([sys.executable, '-c', 'pass'], runs, repo, env)}")
        print(
            f"  stand-in auth-error     {timed([*agent, '--standin-mode', 'auth-error'], runs, repo, env)}"
        )
        print(f"  stand-in succeed+commit {timed(agent, runs, repo, env)}")
    recordings = b"".join(
        p.read_bytes() for p in sorted((ROOT / "tests/data/claude").glob("*.jsonl"))
    )
    lines, seconds = parse_rate(recordings, 100)
    print(
        f"parser, recorded transcripts: {lines / seconds:9,.0f} lines/s  {len(recordings) * 100 / seconds / 1e6:5.1f} MB/s"
    )
    flood = b"".join(
        b'{"type":"assistant","message":{"id":"msg_1","role":"assistant","content":[{"type":"text",'
        b'"text":"flood line %d"}],"usage":{"input_tokens":1200,"output_tokens":60}},'
        b'"parent_tool_use_id":null,"session_id":"s"}\n' % n
        for n in range(50_000)
    )
    lines, seconds = parse_rate(flood, 1)
    print(
        f"parser, short text lines:     {lines / seconds:9,.0f} lines/s  ({seconds / lines * 1e6:.1f} us a line)"
    )
    # What a watcher does with the same flood: skim it, 1 MB at a time (its read size).
    parser, activity, now = StreamParser(), AgentActivity(), datetime.now(UTC)
    t0 = time.perf_counter()
    for at in range(0, len(flood), 1 << 20):
        for event in parser.skim(flood[at : at + (1 << 20)]):
            activity.apply(event, now)
    seconds = time.perf_counter() - t0
    print(
        f"skim, short text lines:       {parser.lines / seconds:9,.0f} lines/s  ({seconds / parser.lines * 1e6:.1f} us a line)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
