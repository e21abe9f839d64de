"""Progress of a long step, reported by the code doing the work.

A `Progress` is a plain callable: `progress(label, done, total)`. `label` says what is happening
right now ("merging 2 of 3: agent002/15-add-csv-export"); `done` of `total` is how far along
the step is when its parts are known (stages, merges, bytes), and both are None when they are
not. Every step that reports takes one as an optional keyword (`progress=None`: nothing is
reported), so the command line and `--once` run exactly as without it.

A reporter is called on whatever thread and event loop does the work; one that reaches a
screen must hand the update over to its own thread.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress", "report", "format_bytes"]

Progress = Callable[[str, int | None, int | None], None]


def report(
    progress: Progress | None, label: str, done: int | None = None, total: int | None = None
) -> None:
    """Tell `progress` (when there is one) what the step is doing now."""
    if progress is not None:
        progress(label, done, total)


def format_bytes(size: int) -> str:
    """512 B, 12 KB, 3.4 MB."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover - the loop always returns
