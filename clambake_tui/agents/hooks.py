"""What happens after an agent's run ends (landing its work); called by whoever reaps the agent."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from clambake_tui.errors import ClambakeError
from clambake_tui.logs import agent_event, get_logger

if TYPE_CHECKING:
    from clambake_tui.config import Config
    from clambake_tui.model import AgentProcess
    from clambake_tui.state import Paths

log = get_logger(__name__)


async def on_agent_finished(process: AgentProcess, paths: Paths, config: Config) -> None:
    """Called once per finished run, after the registry records its final status.

    A successful run is landed (push, labels, comment, bundling dispatch or local bundle); any
    other run is left alone. Never raises: a landing that fails is logged with its reason and
    can be repeated safely (`clambake bundle` and landing are idempotent).
    """
    # Imported here: the supervisor must not pay for the GitHub client when nothing succeeded.
    from clambake_tui.bundling.landing import land_agent, succeeded

    if not succeeded(process):
        return
    config = _with_current_levers(config)
    try:
        from clambake_tui.github.client import GitHubClient

        async with GitHubClient.from_config(
            config, paths.root, require_token=True, metrics_path=paths.metrics
        ) as client:
            outcome = await land_agent(process, paths, config, client)
    except ClambakeError as exc:
        agent_event(
            log,
            "landing failed",
            agent_id=process.agent_id,
            issue_number=process.issue_number,
            process_id=process.process_id,
            level=logging.ERROR,
            error=str(exc),
        )
        return
    except Exception:
        # A bug here must not take the supervisor down with it; the traceback goes to the log.
        log.exception("landing crashed", extra={"issue_number": process.issue_number})
        return
    agent_event(
        log,
        "landing finished",
        agent_id=process.agent_id,
        issue_number=process.issue_number,
        process_id=process.process_id,
        status=outcome.status.value,
        detail=" | ".join(outcome.lines()),
    )


def landing_config(config: Config, spawned: Config | None = None) -> Config:
    """The configuration a landing happening now uses, by hand or by the watcher: `config` with
    its levers read again from the file, and a lever the run's spawn had switched off (`spawned`,
    from its spec.json) kept off, as the watcher's own landing keeps it."""
    config = _with_current_levers(config)
    if spawned is None or spawned.github_actions.enabled or not config.github_actions.enabled:
        return config
    from dataclasses import replace

    return replace(config, github_actions=replace(config.github_actions, enabled=False))


def _with_current_levers(config: Config) -> Config:
    """The watcher holds the configuration of its spawn, maybe hours old; the rollback lever
    `config set github_actions.enabled false` must still reach a landing happening now, so the
    file is read again. A lever only ever switches off here: what the spawn had switched off (in
    the file or by an override of its environment) stays off. A file that no longer loads keeps
    the spawn-time values (and says so in the log)."""
    if config.path is None or not config.path.is_file() or not config.github_actions.enabled:
        return config
    from dataclasses import replace

    from clambake_tui.config import load_config

    try:
        current = load_config(config.path)
    except ClambakeError as exc:
        log.warning("landing uses the configuration of the spawn: %s", exc)
        return config
    if current.github_actions.enabled:
        return config
    return replace(config, github_actions=replace(config.github_actions, enabled=False))
