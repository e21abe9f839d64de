"""The agent registry: `.clambake/registry.json`, written atomically under a cross-process lock.

Every clambake process (the dashboard, `clambake status`, each agent's watcher) reads and writes
the same file. Writers hold `.clambake/locks/registry.lock` for the read-modify-write; readers need
no lock because the file is only ever replaced whole (atomic rename).

Each record is mirrored to `.clambake/agents/<process_id>/record.json`. A registry file that is
damaged is moved aside and rebuilt from those mirrors; the supervisor then reconciles the rebuilt
records with the live processes and the agents' logs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from clambake_tui.atomic import atomic_write_text
from clambake_tui.errors import StateError
from clambake_tui.logs import get_logger
from clambake_tui.model import AgentProcess, AgentResult, AgentState, ProcessStatus, utcnow
from clambake_tui.state import Paths

__all__ = [
    "AgentRecord",
    "Registry",
    "RegistryStamp",
    "agent_dir",
    "process_to_json",
    "process_from_json",
]

log = get_logger(__name__)

FORMAT_VERSION = 1
LOCK_TIMEOUT_S = 30.0
# Finished records beyond this many are dropped from the registry (their folders stay on disk).
KEEP_FINISHED = 1000

RegistryStamp = tuple[int, int, int]


def agent_dir(paths: Paths, process_id: str) -> Path:
    """`.clambake/agents/<process_id>/`: logs, the watcher's spec and the record's mirror."""
    return paths.agents / process_id


@dataclass(frozen=True, slots=True)
class AgentRecord:
    """One run as the registry stores it: the public AgentProcess plus what supervising needs."""

    process: AgentProcess
    base_branch: str = ""
    # The per-agent watcher process (the agent's parent); (pid, create_time) identifies it.
    watcher_pid: int | None = None
    watcher_create_time: float | None = None
    # The clambake process that reserved the slot, so a spawn interrupted half-way is noticed.
    spawner_pid: int | None = None
    spawner_create_time: float | None = None
    failure_mode: str | None = None
    warning: str | None = None
    stderr_path: Path | None = None
    # Where the current run's output starts in the stdout log (restarts append to the same file).
    log_offset: int = 0
    # `terminate` was asked: any watcher of this run (a new one adopting it too) ends it.
    stop_requested: bool = False
    updated_at: datetime | None = None

    @property
    def process_id(self) -> str:
        return self.process.process_id

    @property
    def is_active(self) -> bool:
        return self.process.is_active

    def with_status(self, status: ProcessStatus, **changes: Any) -> AgentRecord:
        """A copy with a new status (and other AgentProcess fields, e.g. pid=, ended_at=)."""
        return replace(self, process=replace(self.process, status=status, **changes))


# ---------------------------------------------------------------- JSON form


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_dt(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _status_to_json(status: ProcessStatus) -> dict[str, Any]:
    return {
        "state": status.state.value,
        "last_activity": _dt(status.last_activity),
        "exit_code": status.exit_code,
        "error": status.error,
    }


def _status_from_json(data: dict[str, Any]) -> ProcessStatus:
    return ProcessStatus(
        AgentState(data["state"]),
        last_activity=_parse_dt(data.get("last_activity")),
        exit_code=data.get("exit_code"),
        error=data.get("error"),
    )


def _result_to_json(result: AgentResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "is_error": result.is_error,
        "subtype": result.subtype,
        "num_turns": result.num_turns,
        "duration_ms": result.duration_ms,
        "total_cost_usd": result.total_cost_usd,
        "session_id": result.session_id,
        "text": result.text,
        "errors": list(result.errors),
    }


def _result_from_json(data: dict[str, Any] | None) -> AgentResult | None:
    if not data:
        return None
    return AgentResult(
        is_error=bool(data["is_error"]),
        subtype=str(data["subtype"]),
        num_turns=data.get("num_turns"),
        duration_ms=data.get("duration_ms"),
        total_cost_usd=data.get("total_cost_usd"),
        session_id=data.get("session_id"),
        text=data.get("text"),
        errors=tuple(str(e) for e in data.get("errors") or ()),
    )


def process_to_json(process: AgentProcess) -> dict[str, Any]:
    return {
        "process_id": process.process_id,
        "agent_id": process.agent_id,
        "issue_number": process.issue_number,
        "issue_title": process.issue_title,
        "branch_name": process.branch_name,
        "status": _status_to_json(process.status),
        "started_at": _dt(process.started_at),
        "ended_at": _dt(process.ended_at),
        "pid": process.pid,
        "pid_create_time": process.pid_create_time,
        "worktree": str(process.worktree),
        "log_path": str(process.log_path),
        "restarts": process.restarts,
        "session_id": process.session_id,
        "result": _result_to_json(process.result),
    }


def process_from_json(data: dict[str, Any]) -> AgentProcess:
    started = _parse_dt(data.get("started_at"))
    return AgentProcess(
        process_id=str(data["process_id"]),
        agent_id=str(data["agent_id"]),
        issue_number=int(data["issue_number"]),
        issue_title=str(data.get("issue_title") or ""),
        branch_name=str(data["branch_name"]),
        status=_status_from_json(data["status"]),
        started_at=started or utcnow(),
        ended_at=_parse_dt(data.get("ended_at")),
        pid=data.get("pid"),
        pid_create_time=data.get("pid_create_time"),
        worktree=Path(data["worktree"]),
        log_path=Path(data["log_path"]),
        restarts=int(data.get("restarts") or 0),
        session_id=data.get("session_id"),
        result=_result_from_json(data.get("result")),
    )


def record_to_json(record: AgentRecord) -> dict[str, Any]:
    return {
        **process_to_json(record.process),
        "base_branch": record.base_branch,
        "watcher_pid": record.watcher_pid,
        "watcher_create_time": record.watcher_create_time,
        "spawner_pid": record.spawner_pid,
        "spawner_create_time": record.spawner_create_time,
        "failure_mode": record.failure_mode,
        "warning": record.warning,
        "stderr_path": str(record.stderr_path) if record.stderr_path else None,
        "log_offset": record.log_offset,
        "stop_requested": record.stop_requested,
        "updated_at": _dt(record.updated_at),
    }


def record_from_json(data: dict[str, Any]) -> AgentRecord:
    stderr = data.get("stderr_path")
    return AgentRecord(
        process=process_from_json(data),
        base_branch=str(data.get("base_branch") or ""),
        watcher_pid=data.get("watcher_pid"),
        watcher_create_time=data.get("watcher_create_time"),
        spawner_pid=data.get("spawner_pid"),
        spawner_create_time=data.get("spawner_create_time"),
        failure_mode=data.get("failure_mode"),
        warning=data.get("warning"),
        stderr_path=Path(stderr) if stderr else None,
        log_offset=int(data.get("log_offset") or 0),
        stop_requested=bool(data.get("stop_requested")),
        updated_at=_parse_dt(data.get("updated_at")),
    )


class _Corrupt(Exception):
    pass


# ---------------------------------------------------------------- the registry


class Registry:
    """Load, change and persist agent records. Safe to use from several processes at once."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.path = paths.registry
        self._lock = FileLock(str(paths.locks / "registry.lock"), timeout=LOCK_TIMEOUT_S)
        # Warnings for the user (a rebuilt registry); the caller decides where to show them.
        self.warnings: list[str] = []

    # -- reading

    def stamp(self) -> RegistryStamp | None:
        """A cheap fingerprint of the file: it changes whenever the registry is rewritten."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def load(self) -> dict[str, AgentRecord]:
        """Every record by process id. A damaged file is rebuilt (under the lock) first."""
        try:
            return self._read()
        except _Corrupt:
            with self.locked():
                try:
                    return self._read()
                except _Corrupt as exc:
                    return self._rebuild(str(exc))

    def get(self, process_id: str) -> AgentRecord | None:
        return self.load().get(process_id)

    def _read(self) -> dict[str, AgentRecord]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StateError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("agents"), dict):
                raise ValueError("not a registry object")
            return {pid: record_from_json(entry) for pid, entry in data["agents"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise _Corrupt(f"{type(exc).__name__}: {exc}") from exc

    # -- writing

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        try:
            self._lock.acquire()
        except Timeout:
            raise StateError(
                f"the agent registry is locked by another clambake process for over "
                f"{LOCK_TIMEOUT_S:g} s ({self._lock.lock_file}); retry, or remove that file if "
                "no clambake process is running"
            ) from None
        except OSError as exc:
            raise StateError(
                f"cannot lock the agent registry ({self._lock.lock_file}): "
                f"{exc.strerror or exc}; .clambake/ must be writable"
            ) from exc
        try:
            yield
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, AgentRecord]]:
        """Lock, load, let the caller change the dict, write it back if it changed."""
        with self.locked():
            try:
                records = self._read()
            except _Corrupt as exc:
                records = self._rebuild(str(exc))
            before = dict(records)
            yield records
            changed = [pid for pid, rec in records.items() if before.get(pid) is not rec]
            if changed or set(before) != set(records):
                self._write(records, changed)

    def put(self, record: AgentRecord) -> AgentRecord:
        with self.transaction() as records:
            records[record.process_id] = record
        return records[record.process_id]

    def update(
        self, process_id: str, change: Callable[[AgentRecord], AgentRecord]
    ) -> AgentRecord | None:
        """Apply `change` to the current on-disk record (others may have changed other fields)."""
        with self.transaction() as records:
            current = records.get(process_id)
            if current is None:
                return None
            records[process_id] = change(current)
        return records[process_id]

    def _write(self, records: dict[str, AgentRecord], changed: list[str]) -> None:
        now = utcnow()
        for pid in changed:
            records[pid] = replace(records[pid], updated_at=now)
        self._prune(records)
        body = {
            "version": FORMAT_VERSION,
            "agents": {pid: record_to_json(rec) for pid, rec in records.items()},
        }
        atomic_write_text(self.path, json.dumps(body, indent=1) + "\n")
        for pid in changed:
            if pid in records:
                self._mirror(records[pid])

    def _mirror(self, record: AgentRecord) -> None:
        folder = agent_dir(self.paths, record.process_id)
        if not folder.is_dir():
            return
        try:
            atomic_write_text(folder / "record.json", json.dumps(record_to_json(record)) + "\n")
        except StateError as exc:
            # The registry itself was written; the mirror only serves a later rebuild.
            log.warning("cannot mirror agent record: %s", exc)

    @staticmethod
    def _prune(records: dict[str, AgentRecord]) -> None:
        finished = [r for r in records.values() if not r.is_active]
        if len(finished) <= KEEP_FINISHED:
            return
        finished.sort(key=lambda r: r.process.ended_at or r.process.started_at)
        for rec in finished[: len(finished) - KEEP_FINISHED]:
            del records[rec.process_id]

    # -- recovery

    def _rebuild(self, reason: str) -> dict[str, AgentRecord]:
        """Move the damaged file aside and rebuild the records from their mirrors (lock held)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        backup = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
        try:
            os.replace(self.path, backup)
        except OSError as exc:
            raise StateError(
                f"the agent registry {self.path} is damaged and cannot be moved aside: "
                f"{exc.strerror or exc}"
            ) from exc
        records: dict[str, AgentRecord] = {}
        if self.paths.agents.is_dir():
            for mirror in sorted(self.paths.agents.glob("*/record.json")):
                try:
                    record = record_from_json(json.loads(mirror.read_text(encoding="utf-8")))
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                records[record.process_id] = record
        message = (
            f"the agent registry was damaged ({reason}); kept it as {backup.name} and rebuilt "
            f"{len(records)} record(s) from the agent folders"
        )
        log.warning(message)
        self.warnings.append(message)
        body = {
            "version": FORMAT_VERSION,
            "agents": {pid: record_to_json(rec) for pid, rec in records.items()},
        }
        atomic_write_text(self.path, json.dumps(body, indent=1) + "\n")
        return records
