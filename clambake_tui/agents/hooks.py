"""What happens after an agent's run ends (landing its work); called by whoever reaps the agent."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clambake_tui.config import Config
    from clambake_tui.model import AgentProcess
    from clambake_tui.state import Paths


async def on_agent_finished(process: AgentProcess, paths: Paths, config: Config) -> None:
    """Called once per finished run, after the registry records its final status.

    Landing (push, labels, comment, bundling dispatch) is wired in here by the bundling package.
    """
    return None
