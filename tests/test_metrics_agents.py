"""Agent metrics read back from events the real supervisor and watchers record."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from clambake_tui.agents.supervisor import AgentProcessManager
from clambake_tui.errors import AgentError
from clambake_tui.metrics import collect_metrics, read_events
from clambake_tui.model import AgentState
from clambake_tui.state import Paths
from tests.fixtures.agents import agents_config, fast_limits, make_manager, standin_issue

RATE_LIMITED_RESULT = (
    '{"type":"result","subtype":"success","is_error":true,"duration_ms":10,"num_turns":1,'
    '"session_id":"00000000-0000-4000-8000-000000000002",'
    '"result":"API Error: 429 {\\"type\\":\\"error\\",\\"error\\":{\\"type\\":\\"rate_limit_error\\"}}"}'
)


def script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


async def recorded(paths: Paths, event: str, count: int, timeout: float = 20.0) -> None:
    """Wait until `count` `event`s are in the metrics file.

    The watcher writes the final status to the registry first and the metric just after, so a
    reader woken by the status may be a moment early.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while sum(e["event"] == event for e in read_events(paths.metrics)) < count:
        assert loop.time() < deadline, f"fewer than {count} {event} events recorded"
        await asyncio.sleep(0.02)


async def run_to_end(manager: AgentProcessManager, agent_id: str, issue: object) -> AgentState:
    process = await manager.spawn_agent(agent_id, issue)  # type: ignore[arg-type]
    done = await manager.wait_finished(process.process_id, timeout=60)
    return done.status.state


async def test_runs_of_every_outcome_are_counted_by_state_mode_and_restart(
    agent_paths: Paths, tmp_path: Path, tiny_agent: Path
) -> None:
    rate_limited = script(
        tmp_path,
        "rate-limited-agent",
        'echo \'{"type":"system","subtype":"init","session_id":"00000000-0000-4000-8000-000000000002"}\'\n'
        f"echo '{RATE_LIMITED_RESULT}'\nexit 1\n",
    )
    standin = make_manager(agent_paths, limits=fast_limits(max_restarts=1))
    limited = make_manager(agent_paths, agents_config(rate_limited))
    sleeper = make_manager(agent_paths, agents_config(tiny_agent))
    for mgr in (standin, limited, sleeper):
        await mgr.start()
    try:
        states = await asyncio.gather(
            run_to_end(standin, "agent001", standin_issue(1, "succeed")),
            run_to_end(standin, "agent002", standin_issue(2, "auth-error")),
            run_to_end(standin, "agent003", standin_issue(3, "crash")),  # restarted once
            run_to_end(limited, "agent004", standin_issue(4)),
        )
        assert list(states) == [AgentState.COMPLETED] + [AgentState.FAILED] * 3
        held = await sleeper.spawn_agent("agent005", standin_issue(5))
        assert collect_metrics(agent_paths).agents.active == 1  # read from the registry
        await sleeper.terminate_agent(held.process_id)
    finally:
        for mgr in (standin, limited, sleeper):
            await mgr.close()

    await recorded(agent_paths, "agent.finished", 5)
    a = collect_metrics(agent_paths).agents
    assert a.active == 0
    assert (a.spawned, a.spawn_failed, a.spawn_success_rate) == (5, 0, 1.0)
    assert (a.completed, a.failed, a.terminated) == (1, 3, 1)
    assert a.completion_rate == 0.2
    assert dict(a.failure_modes) == {
        "timeout": 0,
        "crash": 1,
        "auth_error": 1,
        "rate_limited": 1,
        "killed": 1,
        "error": 0,
    }
    assert a.restarts == 1
    assert a.duration.count == 5 and a.duration.avg is not None and a.duration.avg > 0
    assert a.duration.p90 is not None and a.duration.p90 >= a.duration.avg
    peaks = {p.agent_id: p for p in a.peaks}
    assert sorted(peaks) == ["agent001", "agent002", "agent003", "agent004", "agent005"]
    # The sleeping agent lived long enough to be sampled: its tree had memory and open files.
    assert (peaks["agent005"].rss_bytes or 0) > 0
    assert (peaks["agent005"].open_files or 0) > 0
    assert peaks["agent005"].issue_number == 5


async def test_a_run_past_its_wall_time_counts_as_a_timeout(agent_paths: Paths) -> None:
    manager = make_manager(agent_paths, limits=fast_limits(timeout_s=0.5, terminate_grace_s=0.2))
    await manager.start()
    try:
        state = await run_to_end(manager, "agent001", standin_issue(1, "hang"))
    finally:
        await manager.close()
    assert state is AgentState.FAILED
    await recorded(agent_paths, "agent.finished", 1)
    a = collect_metrics(agent_paths).agents
    assert a.failure_modes["timeout"] == 1
    assert (a.failed, a.completion_rate) == (1, 0.0)


async def test_a_spawn_that_cannot_start_counts_as_spawn_failed(
    agent_paths: Paths, tmp_path: Path
) -> None:
    manager = make_manager(agent_paths, agents_config(tmp_path / "no-such-claude"))
    await manager.start()
    try:
        with pytest.raises(AgentError, match="cannot spawn agent001 on #1"):
            await manager.spawn_agent("agent001", standin_issue(1))
    finally:
        await manager.close()
    events = [e for e in read_events(agent_paths.metrics) if e["event"] == "agent.spawn_failed"]
    assert [(e["agent_id"], e["issue_number"]) for e in events] == [("agent001", 1)]
    a = collect_metrics(agent_paths).agents
    assert (a.spawned, a.spawn_failed, a.spawn_success_rate) == (0, 1, 0.0)
