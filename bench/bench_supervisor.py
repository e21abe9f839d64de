"""Benchmark of the agent supervisor (not a test): prints numbers, asserts nothing.

    .venv/bin/python bench/bench_supervisor.py [--exits 40] [--idle 50] [--window 20]

Measures, with real processes in a scratch repository (bare origin + clone):
- exit-to-detected latency: from a tiny agent's last instruction before exiting to the moment a
  manager's subscriber receives its final status (p50/p99);
- spawn overhead: the time `spawn_agent` takes (worktree + watcher + agent start), p50/p95;
- idle cost with N agents alive: CPU of the manager process (following the registry and the
  logs for a dashboard) and of each agent's watcher, per idle agent.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clambake_tui.agents.issue_source import LocalIssueSource  # noqa: E402
from clambake_tui.agents.limits import Limits  # noqa: E402
from clambake_tui.agents.supervisor import AgentEventKind, AgentProcessManager  # noqa: E402
from clambake_tui.config import AgentsConfig, Config  # noqa: E402
from clambake_tui.model import Issue  # noqa: E402
from clambake_tui.state import Paths  # noqa: E402

INIT = '{"type":"system","subtype":"init","session_id":"00000000-0000-4000-8000-000000000001"}'
RESULT = '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"ok"}'


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _scratch_repo(base: Path) -> Path:
    seed = base / "seed"
    seed.mkdir()
    _git(seed, "init", "-q", "-b", "main")
    (seed / "README.md").write_text("bench\n")
    _git(seed, "add", "README.md")
    _git(seed, "commit", "-q", "-m", "seed")
    _git(base, "clone", "-q", "--bare", str(seed), str(base / "origin.git"))
    _git(base, "clone", "-q", str(base / "origin.git"), str(base / "work"))
    return base / "work"


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def _manager(paths: Paths, agent: Path, limit: int) -> AgentProcessManager:
    config = Config(agents=AgentsConfig(claude_code_path=str(agent), max_restarts=0))
    limits = Limits(max_concurrent=limit, terminate_grace_s=2.0, linger_grace_s=5.0)
    return AgentProcessManager(paths, config, issues=LocalIssueSource(), limits=limits)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench_exits(paths: Paths, scratch: Path, count: int) -> tuple[list[float], list[float]]:
    exits = scratch / "exits"
    exits.mkdir()
    agent = _script(
        scratch / "exiting-agent",
        f"echo '{INIT}'\nsleep 2\necho '{RESULT}'\n"
        f'date +%s.%N > "{exits}/$CLAMBAKE_ISSUE"\nexit 0\n',
    )
    manager = _manager(paths, agent, 5)
    await manager.start()
    queue = manager.subscribe(maxsize=10000)
    detected: dict[int, float] = {}
    spawn_ms: list[float] = []

    async def listen() -> None:
        while True:
            event = await queue.get()
            if event.kind is AgentEventKind.STATUS and not event.process.is_active:
                detected.setdefault(event.process.issue_number, time.time())

    listener = asyncio.create_task(listen())
    issue = 1000
    while issue < 1000 + count:
        batch = []
        for _ in range(5):
            if issue >= 1000 + count:
                break
            started = time.perf_counter()
            process = await manager.spawn_agent(f"agent{len(batch) + 1:03d}", Issue(issue, "x"))
            spawn_ms.append((time.perf_counter() - started) * 1000)
            batch.append(process)
            issue += 1
        for process in batch:
            await manager.wait_finished(process.process_id, timeout=60)
    await asyncio.sleep(0.2)
    listener.cancel()
    await manager.close()
    latencies = []
    for number, seen in detected.items():
        exit_file = exits / str(number)
        if exit_file.exists():
            latencies.append((seen - float(exit_file.read_text())) * 1000)
    return latencies, spawn_ms


async def bench_idle(paths: Paths, scratch: Path, count: int, window: float) -> None:
    agent = _script(scratch / "idle-agent", f"echo '{INIT}'\nexec sleep 3600\n")
    manager = _manager(paths, agent, 64)
    await manager.start()
    manager.subscribe(maxsize=10000)  # follow as a dashboard would
    for n in range(1, count + 1):
        await manager.spawn_agent(f"agent{n:03d}", Issue(2000 + n, "idle"))
    await asyncio.sleep(2.0)  # let start-up work settle
    me = psutil.Process()
    watchers = [
        psutil.Process(r.watcher_pid) for r in manager.records() if r.is_active and r.watcher_pid
    ]
    before_me = sum(me.cpu_times()[:2])
    before_w = [sum(w.cpu_times()[:2]) for w in watchers]
    await asyncio.sleep(window)
    used_me = sum(me.cpu_times()[:2]) - before_me
    used_w = [sum(w.cpu_times()[:2]) - b for w, b in zip(watchers, before_w, strict=True)]
    rss_mb = statistics.mean(w.memory_info().rss for w in watchers) / 2**20
    uss_mb = statistics.mean(w.memory_full_info().uss for w in watchers) / 2**20
    await manager.terminate_all()
    await manager.close()
    per_watcher = statistics.mean(used_w) / window * 100
    print(f"idle agents alive: {count} (window {window:g} s)")
    print(
        f"  manager process (following registry + logs): {used_me / window * 100:.2f}% of a core total, "
        f"{used_me / window * 100 / count:.3f}% per idle agent"
    )
    print(
        f"  watcher process per idle agent: {per_watcher:.3f}% of a core (mean), "
        f"max {max(used_w) / window * 100:.3f}%"
    )
    print(f"  watcher memory: {rss_mb:.1f} MB resident, {uss_mb:.1f} MB unique, each (mean)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exits", type=int, default=40, help="agents for the latency figures")
    parser.add_argument("--idle", type=int, default=50, help="idle agents for the CPU figures")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of idle measurement")
    args = parser.parse_args()
    for name, value in (
        ("GIT_AUTHOR_NAME", "bench"),
        ("GIT_AUTHOR_EMAIL", "bench@clambake.invalid"),
        ("GIT_COMMITTER_NAME", "bench"),
        ("GIT_COMMITTER_EMAIL", "bench@clambake.invalid"),
    ):
        os.environ.setdefault(name, value)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="clambake-bench-") as tmp:
        scratch = Path(tmp)
        paths = Paths(_scratch_repo(scratch))
        paths.ensure_state()
        latencies, spawn_ms = asyncio.run(bench_exits(paths, scratch, args.exits))
        print(
            f"exit-to-detected latency over {len(latencies)} agents: "
            f"p50 {_pct(latencies, 0.5):.1f} ms, p99 {_pct(latencies, 0.99):.1f} ms, "
            f"max {max(latencies):.1f} ms"
        )
        print(
            f"spawn_agent over {len(spawn_ms)} spawns: p50 {_pct(spawn_ms, 0.5):.0f} ms, "
            f"p95 {_pct(spawn_ms, 0.95):.0f} ms"
        )
        asyncio.run(bench_idle(paths, scratch, args.idle, args.window))


if __name__ == "__main__":
    main()
