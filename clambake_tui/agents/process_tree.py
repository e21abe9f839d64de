"""An agent's process tree: identity (pid + start time), tracking, signals, resources, subreaping."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable

import psutil

from clambake_tui.agents.launcher import become_subreaper
from clambake_tui.model import ResourceUsage

__all__ = [
    "ProcKey",
    "descendants",
    "create_time",
    "is_alive",
    "become_subreaper",
    "TreeTracker",
    "ResourceSampler",
    "end_tree",
]

ProcKey = tuple[int, float]
# psutil's create_time is rounded differently across calls on some kernels; allow a little slack.
_CT_SLACK = 0.05


def create_time(pid: int) -> float | None:
    """The process's start time, or None when there is no such (live) process."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def is_alive(pid: int | None, started: float | None) -> bool:
    """True when `pid` is running and is the same process (same start time): pids get reused."""
    if not pid or started is None:
        return False
    now = create_time(pid)
    return now is not None and abs(now - started) <= _CT_SLACK


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class TreeTracker:
    """Remembers every process ever seen under the agent, identified by (pid, create_time).

    A grandchild that called setsid() and whose parent died is no longer a descendant of the agent
    in the process table; having seen it once is how we still find it to kill it.
    """

    def __init__(self, roots: Iterable[int] = ()) -> None:
        self._roots: set[int] = set(roots)
        self._seen: dict[ProcKey, psutil.Process] = {}

    def add_root(self, pid: int) -> None:
        self._roots.add(pid)
        self.update()

    def discard_root(self, pid: int) -> None:
        self._roots.discard(pid)

    def update(self, extra_roots: Iterable[int] = ()) -> None:
        """Record the current descendants of the roots (and the roots themselves)."""
        for pid in descendants((*self._roots, *extra_roots)):
            if any(key[0] == pid for key in self._seen):
                continue
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                proc = psutil.Process(pid)
                self._seen[(pid, proc.create_time())] = proc
        self._forget_dead()

    def _forget_dead(self) -> None:
        for key, proc in list(self._seen.items()):
            if not _alive(proc):
                del self._seen[key]

    def alive(self, exclude: Iterable[int] = ()) -> list[psutil.Process]:
        """Processes of the tree still running (zombies count as gone)."""
        skip = set(exclude)
        self._forget_dead()
        return [p for p in self._seen.values() if p.pid not in skip]

    def keys(self) -> list[ProcKey]:
        return list(self._seen)


def _proc_children(pid: int) -> list[int] | None:
    """Direct children from /proc/<pid>/task/*/children (cost grows with the tree, not with the
    number of processes on the machine); None where the kernel does not offer it."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    except OSError:
        return None
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                found.extend(int(part) for part in handle.read().split())
        except FileNotFoundError:
            if tid == str(pid):
                return None
        except OSError:
            continue
    return found


def descendants(roots: Iterable[int]) -> list[int]:
    """The roots that exist and all their descendants, as pids."""
    result: list[int] = []
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        children = _proc_children(pid)
        if children is None:
            try:
                proc = psutil.Process(pid)
                children = [c.pid for c in proc.children(recursive=True)]
            except psutil.Error:
                continue
        elif not children and not os.path.exists(f"/proc/{pid}"):
            continue
        result.append(pid)
        stack.extend(children)
    return result


def _signal_group(pgid: int | None, sig: int) -> None:
    if pgid is None or pgid <= 1:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal(procs: Iterable[psutil.Process], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.send_signal(sig)


async def end_tree(
    tracker: TreeTracker,
    *,
    pgid: int | None,
    grace_s: float,
    reap: Callable[[], None] = lambda: None,
    exclude: Iterable[int] = (),
    settle_s: float = 10.0,
    tick_s: float = 0.02,
) -> list[int]:
    """SIGTERM the group, wait `grace_s`, SIGKILL every process left in the tree, wait until gone.

    `reap` is called on every tick so that a parent collects its children as they exit (zero
    zombies). Returns the pids that were still alive after `settle_s` (normally none).
    """
    skip = set(exclude)
    tracker.update()
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        reap()
        tracker.update()
        if not tracker.alive(skip) and not _group_alive(pgid):
            return []
        await asyncio.sleep(tick_s)
    tracker.update()
    _signal_group(pgid, signal.SIGKILL)
    _signal(tracker.alive(skip), signal.SIGKILL)
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        reap()
        tracker.update()
        left = tracker.alive(skip)
        if not left and not _group_alive(pgid):
            return []
        # Anything forked between the two signals gets its SIGKILL too.
        _signal(left, signal.SIGKILL)
        await asyncio.sleep(tick_s)
    return [p.pid for p in tracker.alive(skip)]


def _group_alive(pgid: int | None) -> bool:
    if pgid is None or pgid <= 1:
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombies still count for killpg(0); only live members matter here.
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if os.getpgid(proc.pid) == pgid and _alive(proc):
                return True
    return False


class ResourceSampler:
    """CPU %, RSS, open files and process count of a tree, keeping psutil handles between samples
    so CPU % is measured over the time since the previous sample."""

    def __init__(self) -> None:
        self._procs: dict[ProcKey, psutil.Process] = {}

    def sample(self, procs: Iterable[psutil.Process]) -> ResourceUsage:
        seen: dict[ProcKey, psutil.Process] = {}
        cpu = 0.0
        rss = 0
        files = 0
        count = 0
        for proc in procs:
            try:
                key = (proc.pid, proc.create_time())
                handle = self._procs.get(key, proc)
                with handle.oneshot():
                    if handle.status() == psutil.STATUS_ZOMBIE:
                        continue
                    cpu += handle.cpu_percent(None)
                    rss += handle.memory_info().rss
                    with contextlib.suppress(psutil.AccessDenied):
                        files += handle.num_fds()
                seen[key] = handle
                count += 1
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        self._procs = seen
        return ResourceUsage(
            cpu_percent=round(cpu, 1), rss_bytes=rss, open_files=files, num_processes=count
        )
