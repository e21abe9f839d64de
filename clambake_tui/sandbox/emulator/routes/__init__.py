"""The REST routes, one module per part of GitHub's API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from clambake_tui.sandbox.emulator.routes import account, actions, git, issues, labels, pulls

if TYPE_CHECKING:
    from clambake_tui.sandbox.emulator.actions import Actions
    from clambake_tui.sandbox.emulator.http import Router
    from clambake_tui.sandbox.emulator.server import ApiServer

__all__ = ["register_routes"]


def register_routes(router: Router, api: ApiServer, runs: Actions) -> None:
    account.register(router, api)
    issues.register(router)
    labels.register(router)
    pulls.register(router)
    git.register(router)
    actions.register(router, runs)
