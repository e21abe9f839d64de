"""Metric events: one JSON object per line in .clambake/metrics.jsonl, recorded where things happen.

Numbers are computed from these records later (`clambake metrics`); nothing is invented.
Event names in use (fields beyond `ts` and `event`):

- agent.spawned        agent_id, issue_number, process_id, spawn_ms
- agent.spawn_failed   agent_id, issue_number, reason
- agent.restarted      agent_id, issue_number, process_id, restarts
- agent.finished       agent_id, issue_number, process_id, state, failure_mode, duration_s,
                       exit_code, restarts, cpu_peak, rss_peak, open_files_peak, exited_at
- github.request       method, route, status, cached, remaining
- actions.dispatch     ok, workflow, latency_s (trigger to run visible), run_id, error
- bundle.run           path ("actions" | "local"), ok, duration_s, issues, prs, reason
- landing.pushed       agent_id, issue_number, exited_at, pushed_at
- bundle.pr_created    pr_number, issues, created_at
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clambake_tui.logs import get_logger

__all__ = ["record", "read_events", "METRICS_PATH_ENV"]

METRICS_PATH_ENV = "CLAMBAKE_METRICS_FILE"
log = get_logger(__name__)


def record(metrics_file: Path | None, event: str, **fields: Any) -> None:
    """Append one event. Never raises: a metric that cannot be written must not stop the work."""
    target = metrics_file or (Path(p) if (p := os.environ.get(METRICS_PATH_ENV)) else None)
    if target is None:
        return
    entry = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event, **fields}
    line = (json.dumps(entry, default=str, separators=(",", ":")) + "\n").encode()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND with one write per line: concurrent writers never interleave within a line.
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("cannot record metric %s: %s", event, exc)


def read_events(metrics_file: Path) -> list[dict[str, Any]]:
    """Every well-formed event in the file, oldest first; damaged lines are skipped."""
    events: list[dict[str, Any]] = []
    try:
        text = metrics_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return events
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and "event" in entry:
            events.append(entry)
    return events
