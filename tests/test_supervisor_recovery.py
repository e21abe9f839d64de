"""Recovery: a supervisor killed outright, a watcher killed under a live agent, a damaged
registry, a full or read-only state folder."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from clambake_tui.agents.registry import Registry
from clambake_tui.errors import StateError
from clambake_tui.model import AgentState, Issue
from clambake_tui.state import Paths
from tests.fixtures.agents import (
    agents_config,
    assert_gone,
    assert_no_zombies,
    make_manager,
    tree_pids,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

SUPERVISOR = """
import asyncio, sys
from pathlib import Path
from clambake_tui.model import Issue
from clambake_tui.state import Paths
from tests.fixtures.agents import agents_config, make_manager

async def main():
    manager = make_manager(Paths(Path(sys.argv[1])), agents_config(sys.argv[2]))
    await manager.start()
    for n in (1, 2, 3):
        await manager.spawn_agent(f"agent00{n}", Issue(n, "gated"))
    print("spawned", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def gated_agent(folder: Path, gate: Path) -> Path:
    """An agent that says hello, waits until `gate` exists, then succeeds."""
    script = folder / "gated-agent"
    script.write_text(
        "#!/bin/sh\n"
        f"echo '{INIT}'\n"
        f'while [ ! -e "{gate}" ]; do sleep 0.05; done\n'
        f"echo '{RESULT}'\n"
    )
    script.chmod(0o755)
    return script


INIT = '{"type":"system","subtype":"init","session_id":"00000000-0000-4000-8000-000000000002"}'
RESULT = '{"type":"result","subtype":"success","is_error":false,"num_turns":1,"result":"ok"}'


async def test_a_new_supervisor_readopts_agents_after_the_old_one_is_sigkilled(
    agent_paths: Paths, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    agent = gated_agent(tmp_path, gate)
    supervisor = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SUPERVISOR,
        str(agent_paths.root),
        str(agent),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    assert supervisor.stdout is not None
    line = await asyncio.wait_for(supervisor.stdout.readline(), 60)
    assert line.strip() == b"spawned"
    before = Registry(agent_paths).load()
    supervisor.send_signal(signal.SIGKILL)
    await supervisor.wait()

    async with make_manager(agent_paths, agents_config(agent)) as manager:
        active = manager.list_active_agents()
        assert len(active) == 3
        gate.touch()
        finals = await asyncio.gather(
            *(manager.wait_finished(p.process_id, timeout=60) for p in active)
        )
        assert [p.status.state for p in finals] == [AgentState.COMPLETED] * 3
        for process in finals:
            # Re-adopted: the same watcher saw its agent through, no second one was needed.
            record = manager.record(process.process_id)
            assert record.watcher_pid == before[process.process_id].watcher_pid
            assert not tree_pids(record)


async def test_a_live_agent_whose_watcher_died_is_adopted_and_judged_by_its_log(
    agent_paths: Paths, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    async with make_manager(agent_paths, agents_config(gated_agent(tmp_path, gate))) as manager:
        process = await manager.spawn_agent("agent001", Issue(1, "gated"))
        record = manager.record(process.process_id)
        assert record.watcher_pid is not None
        os.kill(record.watcher_pid, signal.SIGKILL)
        while manager.record(process.process_id).watcher_pid == record.watcher_pid:
            await asyncio.sleep(0.05)  # the manager notices (pidfd) and starts a new watcher
        gate.touch()
        final = await manager.wait_finished(process.process_id, timeout=60)
    assert final.status.state is AgentState.COMPLETED, final.status
    assert final.result is not None and final.result.succeeded
    assert_gone([process.pid or 0])
    assert_no_zombies()


async def test_an_agent_that_ended_while_unsupervised_is_reconciled_from_its_result(
    agent_paths: Paths, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    manager = make_manager(agent_paths, agents_config(gated_agent(tmp_path, gate)))
    process = await manager.spawn_agent("agent001", Issue(1, "gated"))
    record = manager.record(process.process_id)
    await manager.close()
    assert record.watcher_pid is not None
    os.kill(record.watcher_pid, signal.SIGKILL)
    agent = psutil.Process(process.pid)
    gate.touch()
    await asyncio.to_thread(agent.wait, 60)
    assert Registry(agent_paths).get(process.process_id).is_active  # nobody recorded the end

    async with make_manager(agent_paths) as manager:
        final = await manager.wait_finished(process.process_id, timeout=60)
    assert final.status.state is AgentState.COMPLETED
    assert final.result is not None and final.result.succeeded


async def test_a_damaged_registry_is_moved_aside_and_rebuilt_with_one_warning(
    agent_paths: Paths, tiny_agent: Path
) -> None:
    async with make_manager(agent_paths, agents_config(tiny_agent)) as manager:
        running = await manager.spawn_agent("agent001", Issue(1, "one"))
        agent_paths.registry.write_text('{"version": 1, "agents": {"agent001-1-x": ')
        rebuilt = manager.list_agents()
        assert [p.process_id for p in rebuilt] == [running.process_id]
        assert rebuilt[0].is_active
        assert len(manager.warnings) == 1
        assert "damaged" in manager.warnings[0]
        backups = list(agent_paths.state.glob("registry.json.corrupt-*"))
        assert len(backups) == 1
        json.loads(agent_paths.registry.read_text())  # whole again
        final = await manager.terminate_agent(running.process_id)
        assert final.status.state is AgentState.TERMINATED


@pytest.fixture
def tiny_state(agent_paths: Paths) -> Iterator[Path]:
    """The state folder on a 2 MB tmpfs (needs root and mount permission: skipped otherwise)."""
    state = agent_paths.state
    for child in state.iterdir():
        if child.is_dir():
            continue
        child.unlink()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(state)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()})")
    agent_paths.ensure_state()
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], capture_output=True, check=False)


async def test_a_full_disk_fails_the_spawn_clearly_and_keeps_the_registry_intact(
    agent_paths: Paths, tiny_agent: Path, tiny_state: Path
) -> None:
    async with make_manager(agent_paths, agents_config(tiny_agent)) as manager:
        first = await manager.spawn_agent("agent001", Issue(1, "one"))
        before = agent_paths.registry.read_bytes()
        filler = tiny_state / "filler"
        with filler.open("wb") as handle, pytest.raises(OSError):
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        with pytest.raises(StateError, match=r"No space left on device \(disk full"):
            await manager.spawn_agent("agent002", Issue(2, "two"))
        assert agent_paths.registry.read_bytes() == before
        filler.unlink()
        assert [p.process_id for p in manager.list_active_agents()] == [first.process_id]
        await manager.terminate_all()


async def test_a_read_only_state_folder_fails_the_spawn_clearly(
    agent_paths: Paths, tiny_agent: Path, tiny_state: Path
) -> None:
    manager = make_manager(agent_paths, agents_config(tiny_agent))
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_state)], check=True)
    try:
        with pytest.raises(StateError, match="Read-only file system"):
            await manager.spawn_agent("agent001", Issue(1, "one"))
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tiny_state)], check=True)
        await manager.close()
    assert manager.list_agents() == []


async def test_a_terminate_outlives_the_watcher_it_was_sent_to(
    agent_paths: Paths, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"  # never opened: only a terminate ends this agent
    async with make_manager(agent_paths, agents_config(gated_agent(tmp_path, gate))) as manager:
        process = await manager.spawn_agent("agent001", Issue(1, "gated"))
        watcher = manager.record(process.process_id).watcher_pid
        assert watcher is not None
        os.kill(watcher, signal.SIGSTOP)  # it will never act on the SIGTERM ...
        stopping = asyncio.create_task(manager.terminate_agent(process.process_id))
        while not manager.record(process.process_id).stop_requested:
            await asyncio.sleep(0.02)
        os.kill(watcher, signal.SIGKILL)  # ... and dies: the watcher adopting the run must end it
        final = await asyncio.wait_for(stopping, 60)
    assert final.status.state is AgentState.TERMINATED
    assert_gone([process.pid or 0])
    assert_no_zombies()
