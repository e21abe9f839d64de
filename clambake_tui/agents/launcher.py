"""How an agent's watcher process begins: start the agent first, then load the watcher proper.

`python -m clambake_tui.agents.launcher --root ROOT --process-id ID [--adopt] [--ready-fd N]`

The watcher needs asyncio, psutil, the stream-json parser and the configuration code: importing
them costs most of a Python start-up. The agent does not need any of it, so this module (standard
library only) starts the agent as soon as the interpreter is up, tells the spawning process, and
only then hands over to `clambake_tui.agents.watcher`. `spawn` waits for the agent's start, not
for our imports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EarlyStart",
    "become_subreaper",
    "launch",
    "report",
    "main",
    "stop_was_requested",
    "LAUNCH_KEY",
    "TOKEN_ENV",
]

# The key of spec.json holding what to start: argv, cwd, stdout and stderr paths.
LAUNCH_KEY = "launch"
# The GitHub token travels to the watcher in this variable (never on disk) and from there to the
# agent as GH_TOKEN/GITHUB_TOKEN; it is removed from what the agent itself inherits.
TOKEN_ENV = "CLAMBAKE_WATCHER_TOKEN"  # noqa: S105 - a variable name, not a secret
_PR_SET_CHILD_SUBREAPER = 36
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_stop_requested = False


def _note_stop(signum: int, frame: object) -> None:
    global _stop_requested
    _stop_requested = True


def stop_was_requested() -> bool:
    """True when a stop signal arrived before the watcher installed its own handlers."""
    return _stop_requested


@dataclass(frozen=True, slots=True)
class EarlyStart:
    """The agent process this launcher started (or why it could not)."""

    pid: int | None
    log_offset: int
    started: float
    error: str | None = None


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux), so setsid grandchildren
    stay in reach after their parent dies. Returns False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def report(fd: int | None, message: str) -> None:
    """Tell the process that started us how the start went (one line), then close the pipe."""
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, (message.replace("\n", " ") + "\n").encode())
    with contextlib.suppress(OSError):
        os.close(fd)


def launch(spec_path: Path) -> EarlyStart | None:
    """Start the agent described in spec.json: own session, stdin /dev/null, output appended to
    its log files. None when the spec holds no launch (the watcher then starts it itself)."""
    try:
        plan = json.loads(spec_path.read_text(encoding="utf-8")).get(LAUNCH_KEY)
    except (OSError, ValueError):
        return None
    if not isinstance(plan, dict):
        return None
    now = time.monotonic()
    cwd = Path(plan["cwd"])
    if not cwd.is_dir():
        return EarlyStart(
            None, 0, now, error=f"cannot start the agent: its worktree {cwd} is missing"
        )
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    try:
        out_fd = os.open(plan["stdout"], flags, 0o644)
        err_fd = os.open(plan["stderr"], flags, 0o644)
    except OSError as exc:
        return EarlyStart(None, 0, now, error=f"cannot open the agent's log: {exc.strerror or exc}")
    env = dict(os.environ)
    env.pop(TOKEN_ENV, None)
    try:
        offset = os.fstat(out_fd).st_size
        child = subprocess.Popen(
            plan["argv"],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out_fd,
            stderr=err_fd,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        return EarlyStart(
            None, 0, now, error=f"cannot start {plan['argv'][0]}: {exc.strerror or exc}"
        )
    finally:
        os.close(out_fd)
        os.close(err_fd)
    # The watcher reaps it (waitpid(-1) as subreaper); Popen must never try to.
    child.returncode = 0
    return EarlyStart(child.pid, offset, time.monotonic())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="clambake-watcher", description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--process-id", required=True)
    parser.add_argument("--adopt", action="store_true")
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)
    # A terminate that arrives while we start must not kill us before the agent is in our care:
    # remember it; the watcher acts on it as soon as it runs.
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _note_stop)
    os.chdir(args.root)
    become_subreaper()
    early: EarlyStart | None = None
    if not args.adopt:
        from clambake_tui.state import Paths

        early = launch(Paths(Path(args.root)).agents / args.process_id / "spec.json")
        if early is not None:
            report(args.ready_fd, f"error {early.error}" if early.error else f"ok {early.pid}")
            args.ready_fd = None
    from clambake_tui.agents import watcher

    return watcher.main_after_launch(args, early)


if __name__ == "__main__":
    # `python -m` runs this file as `__main__`, a second copy of the module beside the one the
    # watcher imports: run the importable one, so that the stop noted while starting is the one
    # the watcher checks (a terminate sent right after the spawn was lost before).
    from clambake_tui.agents import launcher

    sys.exit(launcher.main())
