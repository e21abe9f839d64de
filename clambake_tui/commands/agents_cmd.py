"""`clambake spawn | monitor | terminate | status`: the agent supervisor's commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from clambake_tui.agents.issue_source import GitHubIssueSource, IssueSource, LocalIssueSource
from clambake_tui.agents.registry import AgentRecord, process_to_json
from clambake_tui.agents.supervisor import (
    AgentEventKind,
    AgentProcessManager,
    validate_agent_id,
)
from clambake_tui.errors import AgentError, ClambakeError
from clambake_tui.model import AgentProcess, AgentState, AgentStatus, Issue, utcnow

if TYPE_CHECKING:
    from clambake_tui.cli import Context

__all__ = ["register"]

FOLLOW_TAIL_LINES = 20


def register(sub: argparse._SubParsersAction[Any]) -> None:
    spawn = sub.add_parser(
        "spawn",
        help="start an agent on an issue (its own worktree, branch and process)",
        description="Start an agent on an issue: it gets the worktree "
        ".clambake/worktrees/<agent>-<issue> on branch <agent>/<issue>-<slug> (an existing "
        "branch for the issue is reused), runs in its own session under a watcher process and "
        "keeps running after this command returns. The issue is claimed on GitHub first (the "
        "agent's label, and you as assignee) and given back if the spawn fails.",
        epilog="Over [agents] max_concurrent the spawn is refused, not queued: wait for an agent "
        "to finish (clambake status) or raise the limit. agents.enabled = false refuses every "
        "spawn.",
    )
    spawn.add_argument("--agent", required=True, metavar="AGENT", help="agent001 ... agent999")
    spawn.add_argument("--issue", required=True, type=int, metavar="N", help="issue number")
    spawn.add_argument(
        "--title", help="the issue's title: use it instead of asking GitHub (no GitHub call)"
    )
    spawn.add_argument("--body", default="", help="with --title: the issue's description")
    spawn.set_defaults(run=_spawn)

    monitor = sub.add_parser(
        "monitor",
        help="an agent's status, then its log as it happens",
        description="Show an agent's status (last activity, current tool, CPU and memory of its "
        "whole process tree), then follow its readable log until it ends. Exit status: 0 "
        "when the agent completed or is still running (--once), 1 when it failed or was "
        "terminated.",
    )
    monitor.add_argument("--agent", required=True, metavar="AGENT")
    monitor.add_argument("--once", action="store_true", help="print the status and exit")
    monitor.add_argument("--json", action="store_true", help="JSON (one object a line)")
    monitor.set_defaults(run=_monitor)

    terminate = sub.add_parser(
        "terminate",
        help="stop an agent (SIGTERM, grace, then SIGKILL to its whole tree)",
        description="Stop an agent: SIGTERM to its process group, [agents] "
        "terminate_grace_seconds of grace, then SIGKILL to every process left in its tree. Its "
        "worktree and branch are kept.",
    )
    which = terminate.add_mutually_exclusive_group(required=True)
    which.add_argument("--agent", metavar="AGENT")
    which.add_argument("--all", action="store_true", help="every running agent")
    terminate.set_defaults(run=_terminate)

    status = sub.add_parser(
        "status",
        help="a table of agents: status, issue, branch, activity",
        description="Each agent's current or latest run, from the registry in .clambake/ "
        "(running agents whose watcher died are re-adopted first).",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--all", action="store_true", help="every run, not only the latest")
    status.set_defaults(run=_status)


# ---------------------------------------------------------------- helpers


def _manager(
    ctx: Context, issues: IssueSource | None = None, token: str | None = None
) -> AgentProcessManager:
    config = ctx.config()
    ctx.ensure_state()
    return AgentProcessManager(
        ctx.paths,
        config,
        issues=issues or LocalIssueSource(),
        token=token,
    )


def _warn(manager: AgentProcessManager) -> None:
    for warning in manager.warnings:
        print(f"clambake: warning: {warning}", file=sys.stderr)


def _find(manager: AgentProcessManager, agent_id: str) -> AgentProcess:
    validate_agent_id(agent_id)
    found = manager.find_by_agent(agent_id)
    if found is None:
        raise AgentError(
            f"unknown agent {agent_id}: it has no run here; `clambake status` lists them"
        )
    return found


def _ago(when: datetime | None) -> str:
    if when is None:
        return "-"
    seconds = max(0, int((utcnow() - when).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"


def _mb(value: int) -> str:
    return f"{value / (1024 * 1024):.0f} MB"


def _status_json(status: AgentStatus, record: AgentRecord | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": "status",
        **process_to_json(status.process),
        "last_activity": status.last_activity.isoformat() if status.last_activity else None,
        "current_tool": status.current_tool,
        "last_text": status.last_text,
        "resources": {
            "cpu_percent": status.resources.cpu_percent,
            "rss_bytes": status.resources.rss_bytes,
            "open_files": status.resources.open_files,
            "num_processes": status.resources.num_processes,
        },
    }
    if record is not None:
        data["failure_mode"] = record.failure_mode
        data["warning"] = record.warning
    return data


def _print_status(status: AgentStatus, record: AgentRecord) -> None:
    process = status.process
    res = status.resources
    title = f" {process.issue_title}" if process.issue_title else ""
    print(f"{process.agent_id}  #{process.issue_number}{title}")
    print(f"  status    {process.status}   last activity {_ago(status.last_activity)}")
    print(f"  branch    {process.branch_name}")
    print(f"  worktree  {process.worktree}")
    if process.is_active:
        print(
            f"  process   pid {process.pid}  cpu {res.cpu_percent:.1f}%  rss {_mb(res.rss_bytes)}"
            f"  fds {res.open_files}  processes {res.num_processes}  restarts {process.restarts}"
        )
    if status.current_tool:
        print(f"  tool      {status.current_tool}")
    if status.last_text:
        print(f"  said      {status.last_text}")
    if record.warning:
        print(f"  warning   {record.warning}")
    if status.result and status.result.total_cost_usd is not None:
        print(f"  cost      ${status.result.total_cost_usd:.2f}, {status.result.num_turns} turns")
    print(f"  log       {process.log_path}")


def _exit_code(process: AgentProcess) -> int:
    return 1 if process.status.state in (AgentState.FAILED, AgentState.TERMINATED) else 0


# ---------------------------------------------------------------- commands


def _spawn(ctx: Context) -> int:
    args = ctx.args
    validate_agent_id(args.agent)
    config = ctx.config()
    token: str | None = None
    issues: IssueSource
    issue: int | Issue
    if args.title:
        issues = LocalIssueSource()
        issue = Issue(number=args.issue, title=args.title, body=args.body or "")
    else:
        from clambake_tui.github.auth import find_token, resolve_api_url

        found = find_token(resolve_api_url(config.github.api_url))
        token = found.value if found else None
        issues = GitHubIssueSource(config, ctx.paths.root)
        issue = args.issue

    async def run() -> AgentProcess:
        manager = _manager(ctx, issues, token)
        try:
            if isinstance(issue, int):
                try:
                    details = await issues.get_issue(issue)
                except ClambakeError as exc:
                    error = ClambakeError(
                        f"cannot read issue #{issue} from GitHub: {exc.message} "
                        "(or give the issue with --title/--body)"
                    )
                    error.exit_code = exc.exit_code
                    raise error from None
                return await manager.spawn_agent(args.agent, details)
            return await manager.spawn_agent(args.agent, issue)
        finally:
            _warn(manager)
            await manager.close()

    process = asyncio.run(run())
    print(
        f"{process.agent_id} started on #{process.issue_number} {process.issue_title!r}: "
        f"branch {process.branch_name}, pid {process.pid}"
    )
    print(f"  log: {process.log_path}")
    print(f"  follow it: clambake monitor --agent {process.agent_id}")
    return 0


def _monitor(ctx: Context) -> int:
    args = ctx.args

    async def run() -> int:
        manager = _manager(ctx)
        try:
            await manager.reconcile()
            _warn(manager)
            process = _find(manager, args.agent)
            status = await manager.monitor_agent(process.process_id)
            record = manager.record(process.process_id)
            if args.json:
                print(json.dumps(_status_json(status, record)), flush=True)
            else:
                _print_status(status, record)
            if args.once:
                return _exit_code(status.process) if not status.process.is_active else 0
            if not status.process.is_active:
                # Already over: its last words, then the outcome, as a follow would end.
                for line in manager.tail(process.process_id, FOLLOW_TAIL_LINES):
                    _print_line(line, args.json)
                _print_final(status.process, args.json)
                return _exit_code(status.process)
            return await _follow(manager, process, as_json=args.json)
        finally:
            await manager.close()

    return asyncio.run(run())


async def _follow(manager: AgentProcessManager, process: AgentProcess, *, as_json: bool) -> int:
    queue = manager.subscribe()
    for line in manager.tail(process.process_id, FOLLOW_TAIL_LINES):
        _print_line(line, as_json)
    while True:
        event = await queue.get()
        if event.process.process_id != process.process_id:
            continue
        if event.kind is AgentEventKind.ACTIVITY:
            for line in event.lines:
                _print_line(line, as_json)
            continue
        if event.process.is_active:
            if event.warning and not as_json:
                print(f"[{event.process.agent_id}] warning: {event.warning}", flush=True)
            continue
        _print_final(event.process, as_json)
        return _exit_code(event.process)


def _print_final(final: AgentProcess, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"type": "final", **process_to_json(final)}), flush=True)
    else:
        print(f"{final.agent_id} {final.status}", flush=True)


def _print_line(line: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"type": "line", "line": line}), flush=True)
    else:
        print(line, flush=True)


def _terminate(ctx: Context) -> int:
    args = ctx.args

    async def run() -> int:
        manager = _manager(ctx)
        try:
            await manager.reconcile()
            _warn(manager)
            if args.all:
                active = manager.list_active_agents()
                if not active:
                    print("no agent is running")
                    return 0
                for process in await manager.terminate_all():
                    print(f"{process.agent_id} (#{process.issue_number}): {process.status}")
                return 0
            process = _find(manager, args.agent)
            if not process.is_active:
                print(
                    f"{process.agent_id} is not running (#{process.issue_number}: {process.status})"
                )
                return 0
            final = await manager.terminate_agent(process.process_id)
            print(f"{final.agent_id} (#{final.issue_number}): {final.status}")
            return 0
        finally:
            await manager.close()

    return asyncio.run(run())


def _status(ctx: Context) -> int:
    args = ctx.args
    if not ctx.paths.state.is_dir():
        if args.json:
            print("[]")
        else:
            print("no agents yet: `clambake spawn --agent agent001 --issue N` starts one")
        return 0

    async def run() -> list[AgentRecord]:
        manager = _manager(ctx)
        try:
            await manager.reconcile()
            _warn(manager)
            return manager.records()
        finally:
            await manager.close()

    records = asyncio.run(run())
    if not args.all:
        latest: dict[str, AgentRecord] = {}
        for record in records:
            current = latest.get(record.process.agent_id)
            if current is None or record.is_active or not current.is_active:
                latest[record.process.agent_id] = record
        records = sorted(latest.values(), key=lambda r: r.process.agent_id)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        **process_to_json(r.process),
                        "failure_mode": r.failure_mode,
                        "warning": r.warning,
                    }
                    for r in records
                ],
                indent=2,
            )
        )
        return 0
    if not records:
        print("no agents yet: `clambake spawn --agent agent001 --issue N` starts one")
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="agents", title_justify="left")
    for column in ("agent", "issue", "status", "branch", "pid", "started", "activity", "restarts"):
        table.add_column(column, no_wrap=column in ("agent", "issue", "pid"))
    styles = {
        AgentState.COMPLETED: "green",
        AgentState.FAILED: "red",
        AgentState.TERMINATED: "yellow",
        AgentState.WORKING: "cyan",
        AgentState.STARTING: "cyan",
    }
    for record in records:
        process = record.process
        status_text = str(process.status)
        if record.warning and process.is_active:
            status_text += f" ({record.warning})"
        table.add_row(
            process.agent_id,
            f"#{process.issue_number}",
            f"[{styles[process.status.state]}]{_escape(status_text)}[/]",
            _escape(process.branch_name),
            str(process.pid or "-") if process.is_active else "-",
            _ago(process.started_at),
            _ago(process.status.last_activity) if process.is_active else _ago(process.ended_at),
            str(process.restarts),
        )
    # A pipe or a file gets the whole table rather than an 80-column squeeze.
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(table)
    return 0


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
