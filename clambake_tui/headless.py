"""`clambake-tui --once`: one refresh of the dashboard's engine, printed, without Textual.

Exit codes: 0 healthy, 1 an agent failed or the last bundling run failed, 2 configuration or
auth trouble. This is what CI and cron call, so it stays fast and never loads the TUI.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, TextIO

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from clambake_tui.engine import (
    Engine,
    Snapshot,
    TokenStatus,
    format_age,
    format_bytes,
    format_duration,
)
from clambake_tui.model import AgentState

if TYPE_CHECKING:
    from clambake_tui.config import Config
    from clambake_tui.state import Paths

__all__ = ["take_snapshot", "run_once", "render_snapshot"]

STATE_STYLE = {
    AgentState.STARTING: "yellow",
    AgentState.WORKING: "green",
    AgentState.COMPLETED: "cyan",
    AgentState.FAILED: "bold red",
    AgentState.TERMINATED: "bright_black",
}


async def take_snapshot(paths: Paths, config: Config, *, tail_lines: int = 3) -> Snapshot:
    """One forced refresh of a fresh engine (supervisor reconciled once, GitHub asked once)."""
    from clambake_tui.github.transport import ClientSettings

    # Cron and CI want an answer, not patience: a GitHub that does not answer at once is
    # reported as unreachable after one short retry.
    settings = ClientSettings(
        timeout=5.0, max_attempts=2, backoff_base=0.2, backoff_max=1.0, max_wait=5.0
    )
    engine = Engine(paths, config, tail_lines=tail_lines, follow=False, client_settings=settings)
    try:
        return await engine.refresh(force=True)
    finally:
        await engine.aclose()


def run_once(paths: Paths, config: Config, *, as_json: bool, out: TextIO | None = None) -> int:
    snapshot = asyncio.run(take_snapshot(paths, config))
    stream = out or sys.stdout
    if as_json:
        stream.write(json.dumps(snapshot.to_json(), indent=2) + "\n")
    else:
        console = Console(file=stream, highlight=False, soft_wrap=False)
        console.print(render_snapshot(snapshot))
    return snapshot.exit_code


def render_snapshot(snapshot: Snapshot) -> Group:
    """The snapshot as people read it: header line, agents table, runs table, trouble."""
    now = snapshot.taken_at
    header = Text()
    header.append(snapshot.repo, style="bold")
    header.append("  ·  ")
    header.append(
        snapshot.token.value,
        style="green" if snapshot.token is TokenStatus.PRESENT else "yellow",
    )
    header.append(f"  ·  agents {snapshot.active_count}/{snapshot.max_concurrent}")
    header.append(f"  ·  GitHub {snapshot.budget_line()}")
    if snapshot.next_train is not None:
        wait = format_age((snapshot.next_train - now).total_seconds())
        header.append(f"  ·  next train {snapshot.next_train:%H:%M} UTC (in {wait})")

    agents = Table(title="Agents", title_justify="left", expand=False)
    for column in ("agent", "issue", "branch", "status", "elapsed", "last activity", "CPU", "mem"):
        agents.add_column(column, no_wrap=column != "last activity", overflow="ellipsis")
    agents.add_column("restarts", justify="right")
    for view in snapshot.agents:
        process = view.process
        res = view.status.resources
        agents.add_row(
            view.agent_id,
            f"#{process.issue_number} {process.issue_title}".strip(),
            process.branch_name,
            Text(str(view.status.status), style=STATE_STYLE[view.state]),
            format_duration(view.elapsed_seconds(now)),
            view.activity_line(now),
            f"{res.cpu_percent:.0f}%" if view.is_active else "",
            format_bytes(res.rss_bytes) if view.is_active else "",
            str(process.restarts),
        )
    if not snapshot.agents:
        agents.add_row("(none)", "", "", "", "", "", "", "", "")

    runs = Table(title="Bundling runs", title_justify="left", expand=False)
    for column in ("run", "status", "event", "branch", "age", "took"):
        runs.add_column(column, no_wrap=True)
    for run in snapshot.runs:
        outcome = run.conclusion or run.status
        style = {"success": "green", "failure": "bold red"}.get(outcome, "yellow")
        runs.add_row(
            f"#{run.run_number}",
            Text(outcome, style=style),
            run.event,
            run.head_branch,
            format_age((now - run.created_at).total_seconds()),
            format_duration(run.duration_seconds(now)),
        )
    if not snapshot.runs:
        runs.add_row("(none)", "", "", "", "", "")

    parts: list[Text | Table] = [header, agents, runs]
    if snapshot.github_status:
        parts.append(Text(f"⚠ {snapshot.github_status}", style="bold yellow"))
    for error in snapshot.errors:
        parts.append(Text(f"error: {error}", style="red"))
    verdict = {0: ("healthy", "green"), 1: ("unhealthy", "bold red"), 2: ("misconfigured", "red")}
    word, style = verdict[snapshot.exit_code]
    parts.append(Text(f"status: {word} (exit {snapshot.exit_code})", style=style))
    return Group(*parts)
