"""`clambake metrics [--json] [--hours N]`: numbers computed from recorded events."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from clambake_tui.metrics import (
    DEFAULT_HOURS,
    Metrics,
    Summary,
    collect_metrics,
    record_actions_runs,
    record_bundle_pulls,
)

if TYPE_CHECKING:
    from clambake_tui.cli import Context
    from clambake_tui.model import PullRequest, WorkflowRun


def _hours(raw: str) -> float | None:
    """A positive number of hours, or 0 / "all" for every recorded event."""
    if raw.lower() == "all":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of hours, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of hours, got {raw!r}")
    return value or None


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "metrics",
        help="numbers computed from recorded events",
        description="Agent, GitHub/Actions and end-to-end numbers computed from the events "
        "recorded in .clambake/metrics.jsonl (docs/metrics.md describes each one).",
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON (stable; see docs/metrics.md)"
    )
    parser.add_argument(
        "--hours",
        type=_hours,
        default=DEFAULT_HOURS,
        metavar="N",
        help=f"only events of the last N hours (default {DEFAULT_HOURS:g}; 0 or 'all': every event)",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="first record the bundling workflow's completed runs on GitHub Actions and the "
        "bundle pull requests they opened (asks GitHub; a train that left on Actions is "
        "otherwise not counted here)",
    )
    parser.set_defaults(run=_run)


def _run(ctx: Context) -> int:
    if ctx.args.refresh:
        _refresh(ctx)
    metrics = collect_metrics(ctx.paths, hours=ctx.args.hours)
    if ctx.args.json:
        print(json.dumps(metrics.to_json(), indent=2))
        return 0
    render(metrics, Console(highlight=False))
    return 0


def _refresh(ctx: Context) -> None:
    """Record the Actions runs GitHub reports; a failure is a warning, local numbers still print."""
    from clambake_tui.errors import ClambakeError
    from clambake_tui.github.client import GitHubClient

    config = ctx.config()
    hours = ctx.args.hours
    since = datetime.now(UTC) - timedelta(hours=hours) if hours is not None else None

    async def fetch() -> tuple[list[WorkflowRun], list[PullRequest]]:
        async with GitHubClient.from_config(
            config, ctx.paths.root, metrics_path=ctx.paths.metrics
        ) as client:
            runs = await client.list_runs(
                config.github_actions.bundling_workflow, per_page=100, created_after=since
            )
            # Newest first: the last hundred pull requests hold every recent train's.
            pulls = await client.list_pulls(state="all", max_items=100)
            return runs, pulls

    try:
        ctx.ensure_state()
        runs, pulls = asyncio.run(fetch())
    except ClambakeError as exc:
        print(f"clambake: warning: Actions runs not refreshed: {exc}", file=sys.stderr)
        return
    added = record_actions_runs(ctx.paths.metrics, runs)
    prs = record_bundle_pulls(ctx.paths.metrics, pulls)
    if (added or prs) and not ctx.args.json:
        print(
            f"recorded {added} completed bundling run(s) and {prs} bundle pull request(s) "
            "from GitHub",
            file=sys.stderr,
        )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f}s"
    if value < 3600:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def _summary(summary: Summary) -> str:
    if not summary.count:
        return "-"
    return f"avg {_secs(summary.avg)}, p90 {_secs(summary.p90)} (n={summary.count})"


def _bytes(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / (1024 * 1024):.0f} MiB"


def _opt(value: object) -> str:
    return "-" if value is None else str(value)


def _table(title: str) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", min_width=30)
    table.add_column()
    return table


def render(metrics: Metrics, console: Console) -> None:
    """The readable summary `clambake metrics` prints."""
    window = f"last {metrics.window_hours:g} h" if metrics.window_hours is not None else "all time"
    console.print(f"[bold]clambake metrics[/] ({window}, {metrics.events} events)")
    a = metrics.agents
    agents = _table("\nAgents")
    agents.add_row("active now", _opt(a.active))
    agents.add_row(
        "spawned / spawn failed",
        f"{a.spawned} / {a.spawn_failed}  ({_pct(a.spawn_success_rate)} ok)",
    )
    agents.add_row(
        "completed / failed / terminated",
        f"{a.completed} / {a.failed} / {a.terminated}  ({_pct(a.completion_rate)} completed)",
    )
    agents.add_row("duration", _summary(a.duration))
    modes = ", ".join(f"{name} {count}" for name, count in a.failure_modes.items() if count)
    agents.add_row("failure modes", modes or "none")
    agents.add_row("restarts", str(a.restarts))
    console.print(agents)
    if a.peaks:
        peaks = Table(title="\nPeaks per agent", title_justify="left", box=None, pad_edge=False)
        for column in ("agent", "issue", "cpu", "memory", "open files"):
            peaks.add_column(column, justify="left" if column == "agent" else "right")
        for peak in a.peaks:
            cpu = "-" if peak.cpu_percent is None else f"{peak.cpu_percent:.0f}%"
            peaks.add_row(
                peak.agent_id,
                _opt(peak.issue_number),
                cpu,
                _bytes(peak.rss_bytes),
                _opt(peak.open_files),
            )
        console.print(peaks)
    g = metrics.github
    github = _table("\nGitHub and Actions")
    github.add_row(
        "workflow triggers",
        f"{g.dispatches_ok} of {g.dispatches} ok ({_pct(g.trigger_success_rate)})",
    )
    github.add_row("trigger -> run visible", _summary(g.trigger_latency))
    github.add_row(
        "bundling runs",
        f"{g.bundle_runs_ok} of {g.bundle_runs} ok ({_pct(g.bundle_success_rate)}); "
        f"{g.actions_runs} on Actions, {g.local_fallbacks} local",
    )
    github.add_row("bundling duration", _summary(g.bundle_duration))
    github.add_row("API requests / 304s", f"{g.api_requests} / {g.api_not_modified}")
    github.add_row(
        "rate limit remaining",
        _opt(g.rate_limit_remaining)
        + (f" (at {g.rate_limit_seen_at})" if g.rate_limit_seen_at else ""),
    )
    console.print(github)
    e = metrics.end_to_end
    e2e = _table("\nEnd to end")
    e2e.add_row("branches pushed / in a bundle PR", f"{e.pushed} / {e.in_pr}")
    e2e.add_row("agent exit -> pushed", _summary(e.exit_to_push))
    e2e.add_row("pushed -> bundle PR", _summary(e.push_to_pr))
    e2e.add_row("agent exit -> bundle PR", _summary(e.exit_to_pr))
    console.print(e2e)
