"""Tails agents' log files into bounded per-agent buffers; the dashboard drains them on a timer.

Reading and parsing never touch widgets. A reader thread follows each agent's stream-json log,
renders every event as readable lines and appends them to a bounded deque; when an agent writes
faster than anyone could read, the oldest buffered lines go and a marker says how much was
skipped. No Textual import here: the benchmark drives the same path.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clambake_tui.agents import claude
from clambake_tui.logs import get_logger

__all__ = ["LogFeed", "ReadableStream", "Renderer", "cut", "readable_lines"]

# A fresh renderer per followed file: stream-json parsing keeps state between chunks.
Renderer = Callable[[bytes], list[str]]
RendererFactory = Callable[[], Renderer]

log = get_logger(__name__)

MAX_LINE_CHARS = 400
# More new output than this in one poll (about 250 stream-json lines, several screens of a pane)
# is skipped to its end: nobody reads thousands of lines a second, and parsing them all would
# cost the dashboard a core. The pane says how much it skipped.
MAX_READ_BYTES = 64 * 1024
# Of what one poll read, only this many last lines are parsed and shown: a pane shows a few
# dozen rows and is repainted four times a second, so a flood's earlier lines would only cost
# CPU (and the key presses of the operator, who shares the process) without being seen.
MAX_READ_LINES = 20


def cut(line: str, limit: int = MAX_LINE_CHARS) -> str:
    """One display line: tabs expanded, control characters dropped, cut at `limit`."""
    if len(line) > limit:
        line = line[: limit - 1] + "…"
    if line.isprintable():
        return line
    return "".join(ch if ch.isprintable() else " " for ch in line.expandtabs(4))


class ReadableStream:
    """Bytes of one agent's stream-json log in, readable lines out (claude.render per event)."""

    def __init__(self) -> None:
        self._parser = claude.StreamParser()

    def __call__(self, chunk: bytes) -> list[str]:
        lines: list[str] = []
        for event in self._parser.feed(chunk):
            line = claude.render(event)
            if line:
                lines.extend(line.splitlines())
        return lines


def readable_lines(data: bytes) -> list[str]:
    """Whole stream-json lines as the lines a person reads (not JSON)."""
    return ReadableStream()(data if data.endswith(b"\n") else data + b"\n")


@dataclass
class _Tail:
    path: Path
    render: Renderer
    offset: int = 0
    lines: deque[str] = field(default_factory=deque)
    dropped: int = 0
    total: int = 0


class LogFeed:
    """Per-agent bounded buffers filled by `poll()` (called from one reader thread)."""

    def __init__(
        self,
        *,
        renderer: RendererFactory = ReadableStream,
        buffer_lines: int = 2000,
        max_read_bytes: int = MAX_READ_BYTES,
        max_read_lines: int = MAX_READ_LINES,
        interval: float = 0.1,
    ) -> None:
        self._renderer = renderer
        self._buffer_lines = buffer_lines
        self._max_read = max_read_bytes
        self._max_lines = max_read_lines
        self._interval = interval
        self._tails: dict[str, _Tail] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def track(self, process_id: str, path: Path, *, backlog_bytes: int = 64 * 1024) -> None:
        """Follow `path`, starting with (at most) its last `backlog_bytes`."""
        with self._lock:
            if process_id in self._tails:
                return
            tail = _Tail(path=path, render=self._renderer(), lines=deque(maxlen=self._buffer_lines))
            try:
                size = path.stat().st_size
            except OSError:
                size = 0
            tail.offset = max(0, size - backlog_bytes)
            if tail.offset:
                tail.dropped = -1  # the first read starts mid-line: drop that line quietly
            self._tails[process_id] = tail

    def untrack(self, process_id: str) -> None:
        with self._lock:
            self._tails.pop(process_id, None)

    def tracked(self) -> list[str]:
        with self._lock:
            return list(self._tails)

    def drain(self, process_id: str) -> list[str]:
        """Every line buffered for the agent since the last drain (thread-safe, non-blocking)."""
        tail = self._tails.get(process_id)
        if tail is None:
            return []
        out: list[str] = []
        pop = tail.lines.popleft
        try:
            while True:
                out.append(pop())
        except IndexError:
            pass
        return out

    def pending(self, process_id: str) -> int:
        tail = self._tails.get(process_id)
        return len(tail.lines) if tail else 0

    def poll(self) -> int:
        """Read what every followed file gained; returns how many lines were buffered."""
        with self._lock:
            tails = list(self._tails.values())
        return sum(self._poll_one(tail) for tail in tails)

    def run(self) -> None:
        """The reader loop; returns once `stop()` is called. A failed read is logged and tried
        again: the panes must not go quiet for good because of one bad moment."""
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:
                log.exception("reading the agents' logs failed; trying again")
            self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()

    def _poll_one(self, tail: _Tail) -> int:
        try:
            size = os.stat(tail.path).st_size
        except OSError:
            return 0
        if size < tail.offset:  # truncated or replaced: start over
            tail.offset, tail.render = 0, self._renderer()
        if size == tail.offset:
            return 0
        skipped = 0
        if size - tail.offset > self._max_read:
            skipped = size - self._max_read - tail.offset
            tail.offset = size - self._max_read
        try:
            with open(tail.path, "rb") as handle:
                handle.seek(tail.offset)
                data = handle.read(size - tail.offset)
        except OSError:
            return 0
        tail.offset += len(data)
        new: list[str] = []
        if skipped or tail.dropped < 0:
            # The read starts mid-line: drop that partial line, parse from the next one.
            tail.render = self._renderer()
            newline = data.find(b"\n")
            data = data[newline + 1 :] if newline >= 0 else b""
            tail.dropped = max(0, tail.dropped)
        start = _start_of_last_lines(data, self._max_lines)
        if start:
            # Cut at a line start: whatever the renderer held of an earlier line goes too.
            skipped += start
            data = data[start:]
            tail.render = self._renderer()
        if skipped:
            new.append(f"… {_size(skipped)} of output skipped (too fast to show) …")
        new.extend(cut(line) for line in tail.render(data))
        overflow = len(tail.lines) + len(new) - self._buffer_lines
        if overflow > 0:
            tail.dropped += overflow
        tail.lines.extend(new)
        tail.total += len(new)
        return len(new)


def _start_of_last_lines(data: bytes, count: int) -> int:
    """Where the last `count` complete lines of `data` (and its unfinished end) begin."""
    at = data.rfind(b"\n")
    for _ in range(count):
        if at < 0:
            return 0
        at = data.rfind(b"\n", 0, at)
    return at + 1 if at >= 0 else 0


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MB"
    return f"{max(1, count // 1024)} KB"
