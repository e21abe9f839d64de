"""`clambake-tui --demo`: the real dashboard on a throwaway sandbox, with no account and no network.

The embedded GitHub emulator serves a sandbox repository (a bare origin and a clone in a temp
folder) with a handful of route:ready issues; agents are the stand-in for Claude Code. Nothing
here imports Textual: the dashboard command opens the app inside `demo_sandbox()`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from clambake_tui.config import Config, load_config
from clambake_tui.logs import get_logger
from clambake_tui.sandbox.emulator import Emulator
from clambake_tui.sandbox.setup import SandboxLayout, build_sandbox
from clambake_tui.state import Paths

__all__ = ["DemoSandbox", "demo_sandbox", "stop_demo_agents", "DEMO_STANDIN_DELAY"]

log = get_logger(__name__)

# Seconds between the stand-in's events: slow enough to watch an agent work, quick to finish.
DEMO_STANDIN_DELAY = "0.6"
# Environment the demo sets for itself (and the agents it starts); restored on exit.
_DEMO_ENV = ("GH_TOKEN", "CLAMBAKE_STANDIN_DELAY", "CLAMBAKE_ROOT")


@dataclass(frozen=True, slots=True)
class DemoSandbox:
    """A running demo: the emulator, the sandbox on disk, and the clone's paths and config."""

    folder: Path
    emulator: Emulator
    layout: SandboxLayout
    paths: Paths
    config: Config


@contextmanager
def demo_sandbox(folder: Path | None = None, *, keep: bool = False) -> Iterator[DemoSandbox]:
    """Start the emulator and build a sandbox; stop the emulator (and remove the folder) on exit."""
    own_folder = folder is None
    root = Path(tempfile.mkdtemp(prefix="clambake-demo-")) if folder is None else folder
    saved = {name: os.environ.get(name) for name in _DEMO_ENV}
    emulator = Emulator(workspace_root=root / "actions").start()
    try:
        layout = build_sandbox(root / "sandbox", emulator=emulator)
        # The clone's clambake.toml already points at the emulator and the stand-in agent; the
        # token is the emulator's own (it grants nothing anywhere else).
        os.environ["GH_TOKEN"] = layout.token
        os.environ["CLAMBAKE_ROOT"] = str(layout.work)
        os.environ.setdefault("CLAMBAKE_STANDIN_DELAY", DEMO_STANDIN_DELAY)
        paths = Paths(layout.work)
        paths.ensure_state()
        config = load_config(layout.config_path)
        yield DemoSandbox(root, emulator, layout, paths, config)
    finally:
        emulator.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if own_folder and not keep:
            shutil.rmtree(root, ignore_errors=True)


def stop_demo_agents(demo: DemoSandbox) -> list[str]:
    """Terminate whatever the demo still runs (its sandbox is about to go); their ids."""
    from clambake_tui.agents.supervisor import AgentProcessManager

    async def stop() -> list[str]:
        manager = AgentProcessManager(demo.paths, demo.config)
        try:
            active = manager.list_active_agents()
            if active:
                await manager.terminate_all()
            return [process.agent_id for process in active]
        finally:
            await manager.close()

    return asyncio.run(stop())
