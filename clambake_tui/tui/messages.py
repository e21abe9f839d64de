"""Typed messages the dashboard's workers post as their work goes on and when it ends."""

from __future__ import annotations

from textual.message import Message

from clambake_tui.engine import Snapshot
from clambake_tui.github.client import RunLogs
from clambake_tui.model import WorkflowRun

__all__ = ["SnapshotReady", "ActionDone", "RunLogsReady", "StepProgress"]


class SnapshotReady(Message):
    """A refresh finished. A newer one replaces an older one still queued."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady)


class ActionDone(Message):
    """A spawn, terminate or bundling trigger finished; `text` is for the operator."""

    def __init__(self, text: str, *, ok: bool = True) -> None:
        super().__init__()
        self.text = text
        self.ok = ok


class RunLogsReady(Message):
    def __init__(self, run: WorkflowRun, logs: RunLogs) -> None:
        super().__init__()
        self.run = run
        self.logs = logs


class StepProgress(Message):
    """A long step said how far it is. Posted from whatever thread did the work (posting is
    thread-safe); `step` is the key the step was begun under."""

    def __init__(self, step: object, label: str, done: int | None, total: int | None) -> None:
        super().__init__()
        self.step = step
        self.label = label
        self.done = done
        self.total = total
