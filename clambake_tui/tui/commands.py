"""The command palette provider: the dashboard's key actions, searchable by name."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from clambake_tui.tui.app import ClambakeApp

__all__ = ["DashboardCommands", "COMMANDS"]

# (action, title, help) — the same actions the keys run.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("spawn", "Spawn agent", "Start an agent on an issue from the route:ready queue"),
    ("terminate", "Terminate focused agent", "Stop the focused agent and its process tree"),
    ("bundle", "Trigger bundling", "Run the bundling workflow now (locally if Actions is down)"),
    ("run_logs", "Show run logs", "Fetch and show the logs of the selected bundling run"),
    ("agent_log", "Open agent log", "Show the focused agent's full log"),
    ("refresh", "Refresh now", "Ask the supervisor and GitHub for fresh data"),
    ("metrics", "Show metrics", "Agent, GitHub and bundling numbers from the recorded events (m)"),
    ("quit", "Quit dashboard", "Leave; running agents keep running"),
)


class DashboardCommands(Provider):
    """Spawn, terminate, bundle, logs, refresh, quit."""

    def _app(self) -> ClambakeApp:
        from clambake_tui.tui.app import ClambakeApp

        app = self.app
        assert isinstance(app, ClambakeApp)
        return app

    async def discover(self) -> Hits:
        app = self._app()
        for action, title, help_text in COMMANDS:
            yield DiscoveryHit(title, partial(app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        app = self._app()
        matcher = self.matcher(query)
        for action, title, help_text in COMMANDS:
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(title), partial(app.run_action, action), help=help_text
                )
