"""Structured logs: JSON lines to .clambake/logs/clambake.jsonl (rotated), readable text on -v.

Every line passes through `redact` before it is written, whatever handler writes it.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clambake_tui.redact import redact

__all__ = ["configure_logging", "get_logger", "agent_event", "LOG_FILE_NAME"]

LOG_FILE_NAME = "clambake.jsonl"
_ROOT = "clambake"
_MAX_BYTES = 10 * 1024 * 1024
_BACKUPS = 5
# Attributes every LogRecord has; anything else was passed as `extra=` and belongs in the JSON.
_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(_extras(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """`12:00:01 info  agent spawned agent_id=agent001 issue_number=12` for people."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        line = f"{ts} {record.levelname.lower():<7} {record.getMessage()}"
        if fields:
            line += f"  {fields}"
        if record.exc_info:
            # Tracebacks stay in the JSON file; people get the one-line reason.
            line += f"  ({record.exc_info[1]})"
        return redact(line)


_configured: list[logging.Handler] = []


def configure_logging(log_dir: Path | None, *, verbose: bool = False) -> None:
    """Send clambake's logs to `log_dir/clambake.jsonl` and, when verbose, to stderr.

    A log folder that cannot be written is not fatal: the command still runs.
    """
    logger = logging.getLogger(_ROOT)
    for old in _configured:
        logger.removeHandler(old)
        old.close()
    _configured.clear()
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    if log_dir is not None:
        handler: logging.Handler
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                log_dir / LOG_FILE_NAME, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8"
            )
        except OSError:
            handler = logging.NullHandler()
        handler.setFormatter(JsonFormatter())
        handler.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        _configured.append(handler)
    if not _configured:
        # No file and no -v: stay silent rather than fall back to logging's last-resort stderr.
        null = logging.NullHandler()
        logger.addHandler(null)
        _configured.append(null)
    if verbose:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(TextFormatter())
        stream.setLevel(logging.DEBUG)
        logger.addHandler(stream)
        _configured.append(stream)


def get_logger(name: str) -> logging.Logger:
    """A logger under `clambake`; pass `__name__`."""
    short = name.removeprefix("clambake_tui.")
    return logging.getLogger(f"{_ROOT}.{short}")


def agent_event(
    logger: logging.Logger,
    event: str,
    *,
    agent_id: str,
    issue_number: int,
    process_id: str,
    level: int = logging.INFO,
    **fields: Any,
) -> None:
    """Log an agent event; the three identifying fields are required by signature."""
    logger.log(
        level,
        event,
        extra={
            "agent_id": agent_id,
            "issue_number": issue_number,
            "process_id": process_id,
            **fields,
        },
    )
