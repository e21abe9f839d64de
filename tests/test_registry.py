"""The agent registry file: round trips, concurrent writers, damage, pruning."""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import replace
from pathlib import Path

from clambake_tui.agents.registry import AgentRecord, Registry, agent_dir
from clambake_tui.model import AgentProcess, AgentResult, ProcessStatus, utcnow
from clambake_tui.state import Paths


def _record(paths: Paths, n: int, status: ProcessStatus | None = None) -> AgentRecord:
    process_id = f"agent{n:03d}-{n}-abc"
    agent_dir(paths, process_id).mkdir(parents=True, exist_ok=True)
    return AgentRecord(
        process=AgentProcess(
            process_id=process_id,
            agent_id=f"agent{n:03d}",
            issue_number=n,
            branch_name=f"agent{n:03d}/{n}-thing",
            status=status or ProcessStatus.starting(),
            started_at=utcnow(),
            pid=1000 + n,
            worktree=paths.worktrees / f"agent{n:03d}-{n}",
            log_path=agent_dir(paths, process_id) / "stdout.log",
            session_id="3f0c8f5e-0000-4000-8000-000000000000",
            pid_create_time=123.5,
            issue_title="Ünïcode title",
        ),
        base_branch="main",
        watcher_pid=2000 + n,
        watcher_create_time=99.25,
    )


def _paths(tmp_path: Path) -> Paths:
    paths = Paths(tmp_path)
    paths.ensure_state()
    return paths


def test_a_record_round_trips_through_the_file_unchanged(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    done = _record(paths, 1).with_status(
        ProcessStatus.failed("boom", exit_code=1),
        ended_at=utcnow(),
        result=AgentResult(is_error=True, subtype="success", errors=("Not logged in",)),
    )
    done = replace(done, failure_mode="auth_error", warning="quiet", log_offset=42)
    Registry(paths).put(done)
    loaded = Registry(paths).get(done.process_id)
    assert loaded is not None
    assert replace(loaded, updated_at=None) == done


def test_every_write_is_mirrored_in_the_agents_folder(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    record = Registry(paths).put(_record(paths, 2))
    mirror = json.loads((agent_dir(paths, record.process_id) / "record.json").read_text())
    assert mirror["process_id"] == record.process_id


def _bump(root: str, process_id: str, times: int) -> None:
    registry = Registry(Paths(Path(root)))
    for _ in range(times):
        registry.update(
            process_id,
            lambda r: replace(r, process=replace(r.process, restarts=r.process.restarts + 1)),
        )


def test_writers_in_several_processes_never_lose_an_update(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    record = Registry(paths).put(_record(paths, 3))
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_bump, args=(str(tmp_path), record.process_id, 25)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert Registry(paths).get(record.process_id).process.restarts == 100


def test_garbage_in_the_registry_is_backed_up_and_rebuilt_from_the_mirrors(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    registry = Registry(paths)
    for n in (1, 2, 3):
        registry.put(_record(paths, n))
    paths.registry.write_bytes(b"\x00\xffnot json at all")
    fresh = Registry(paths)
    records = fresh.load()
    assert sorted(records) == ["agent001-1-abc", "agent002-2-abc", "agent003-3-abc"]
    assert len(fresh.warnings) == 1
    assert "rebuilt 3 record(s)" in fresh.warnings[0]
    [backup] = paths.state.glob("registry.json.corrupt-*")
    assert backup.read_bytes() == b"\x00\xffnot json at all"
    # Only the first reader rebuilds; the next one sees a whole file.
    again = Registry(paths)
    assert len(again.load()) == 3
    assert again.warnings == []


def test_a_registry_of_the_wrong_shape_counts_as_damaged(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    Registry(paths).put(_record(paths, 1))
    paths.registry.write_text(json.dumps({"version": 1, "agents": {"x": {"agent_id": 5}}}))
    registry = Registry(paths)
    assert list(registry.load()) == ["agent001-1-abc"]
    assert registry.warnings


def test_old_finished_records_are_pruned_beyond_the_limit(tmp_path: Path, monkeypatch) -> None:
    import clambake_tui.agents.registry as module

    monkeypatch.setattr(module, "KEEP_FINISHED", 3)
    paths = _paths(tmp_path)
    registry = Registry(paths)
    for n in range(1, 7):
        registry.put(_record(paths, n, ProcessStatus.completed(0)))
    registry.put(_record(paths, 7))
    records = registry.load()
    assert len([r for r in records.values() if not r.is_active]) == 3
    assert "agent007-7-abc" in records


def test_the_stamp_changes_on_every_write(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    registry = Registry(paths)
    assert registry.stamp() is None
    registry.put(_record(paths, 1))
    first = registry.stamp()
    registry.update("agent001-1-abc", lambda r: replace(r, warning="x"))
    assert registry.stamp() != first
