"""Soak: hundreds of spawn/terminate cycles leave no zombie, no orphan, no descriptor growth."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from clambake_tui.agents.process_tree import is_alive
from clambake_tui.model import AgentState, Issue
from clambake_tui.state import Paths
from tests.fixtures.agents import (
    agents_config,
    assert_no_zombies,
    fast_limits,
    make_manager,
    wait_until,
)

BATCH = 5


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _soak(paths: Paths, agent: Path, cycles: int) -> None:
    fds_before = _open_fds()
    manager = make_manager(paths, agents_config(agent), limits=fast_limits(max_concurrent=BATCH))
    await manager.start()
    most_fds = 0
    spawned: list[str] = []
    try:
        for _ in range(cycles // BATCH):
            batch_runs = await asyncio.gather(
                *(
                    manager.spawn_agent(f"agent{slot:03d}", Issue(slot, f"soak {slot}"))
                    for slot in range(1, BATCH + 1)
                )
            )
            spawned.extend(p.process_id for p in batch_runs)
            finals = await manager.terminate_all()
            assert [p.status.state for p in finals] == [AgentState.TERMINATED] * BATCH
            most_fds = max(most_fds, _open_fds())
        records = {r.process_id: r for r in manager.records()}
    finally:
        await manager.close()
    assert len(spawned) == cycles
    assert set(spawned) <= set(records), "a run is missing from the registry"
    for process_id in spawned:
        record = records[process_id]
        assert not record.is_active
        assert not is_alive(record.process.pid, record.process.pid_create_time), "orphaned agent"
        # A watcher exits right after writing the final status (and running the finish hook).
        wait_until(lambda r=record: not is_alive(r.watcher_pid, r.watcher_create_time), 30)
    assert_no_zombies()
    # While running: a pidfd per live agent and watcher at most; afterwards: back to the start.
    assert most_fds <= fds_before + 4 * BATCH, (fds_before, most_fds)
    assert _open_fds() <= fds_before, (fds_before, _open_fds())


async def test_200_spawn_terminate_cycles_leave_nothing_behind(
    agent_paths: Paths, tiny_agent: Path
) -> None:
    await _soak(agent_paths, tiny_agent, 200)


@pytest.mark.slow
@pytest.mark.timeout(1200)
async def test_500_spawn_terminate_cycles_leave_nothing_behind(
    agent_paths: Paths, tiny_agent: Path
) -> None:
    await _soak(agent_paths, tiny_agent, 500)
