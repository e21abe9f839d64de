"""`clambake land <agent | process-id> | --all`: land finished runs by hand, as the watcher does."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clambake_tui.errors import AgentError, ClambakeError
from clambake_tui.model import AGENT_ID_PATTERN, AgentProcess

if TYPE_CHECKING:
    from clambake_tui.agents.supervisor import AgentProcessManager
    from clambake_tui.bundling.landing import LandingOutcome
    from clambake_tui.cli import Context
    from clambake_tui.config import Config
    from clambake_tui.github.client import GitHubClient
    from clambake_tui.state import Paths

__all__ = ["register"]

DESCRIPTION = """\
Land a finished run by hand: push its branch, route its issue to route:review (removing
route:ready and the agent's label), comment on the issue, then start the train, exactly as the
watcher does when a run completes. Use it when that automatic landing failed (GitHub down for
longer than the retries, a watcher killed at that moment): the run is `completed` but its issue
was never routed to review.

AGENT lands that agent's latest finished run; a process id (agent001-12-1f2e3d4c, from
`clambake status --all --json`) lands that exact run. A run still active, a run that did not
succeed, and a run whose branch another run is working on now are refused, each with the
reason.

--all lands every successful finished run (the latest per branch) whose issue is open and not
yet labelled route:review. Landing is idempotent, but runs whose issue is routed or closed were
landed already or their work has moved on (bundled, merged, the branch deleted): landing those
again could push back a branch deleted after its merge. A landing stopped halfway after the
label was added is finished by landing that run by name.

The configuration is clambake.toml as it is now (so `github_actions.enabled = false` bundles
locally); a run spawned with Actions switched off stays off, as in the automatic landing.
Landing twice changes nothing the second time: no second push, comment or pull request.

Exit status: 0 when every run landed, was landed already or had no commits to land; 1 when a
landing failed or a run was refused; 2 on a configuration or authentication error or an
unknown agent.
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "land",
        help="land a finished run by hand (push, route:review, comment, the train)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "target",
        nargs="?",
        metavar="AGENT|PROCESS-ID",
        help="an agent (its latest finished run) or one run's process id",
    )
    which.add_argument(
        "--all",
        action="store_true",
        help="every successful finished run whose issue is open and not yet routed to review",
    )
    parser.add_argument(
        "--no-bundle",
        action="store_true",
        help="stop after the comment: no workflow dispatch, no local bundle",
    )
    parser.add_argument(
        "--force-bundle",
        action="store_true",
        help="the train leaves now instead of waiting for its departure window",
    )
    parser.add_argument("--json", action="store_true", help="print JSON (a list, one per run)")
    parser.set_defaults(run=run)


@dataclass
class _Landed:
    """What happened to one run: a landing's outcome, a refusal or a failure."""

    process: AgentProcess
    status: str
    lines: list[str]
    exit_code: int = 0
    outcome: LandingOutcome | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        process, outcome = self.process, self.outcome
        trigger = outcome.trigger if outcome else None
        return {
            "process_id": process.process_id,
            "agent_id": process.agent_id,
            "issue_number": process.issue_number,
            "branch": process.branch_name,
            "status": self.status,
            "lines": self.lines,
            "sha": outcome.sha if outcome else None,
            "commits_ahead": outcome.commits_ahead if outcome else 0,
            "comment_url": outcome.comment_url if outcome else None,
            "bundle": ({"path": trigger.path.value, "reason": trigger.reason} if trigger else None),
            "bundle_error": outcome.bundle_error if outcome else None,
            "error": self.error,
        }


def _unknown(message: str) -> ClambakeError:
    error = AgentError(message)
    error.exit_code = 2
    return error


def _refused(process: AgentProcess, reason: str) -> _Landed:
    line = f"#{process.issue_number}: {process.process_id} {reason}; not landed"
    return _Landed(process, "refused", [line], exit_code=1, error=reason)


def _refusal(process: AgentProcess, runs: list[AgentProcess]) -> str | None:
    """Why this run must not be landed now, or None."""
    from clambake_tui.bundling.landing import succeeded

    if process.is_active:
        return f"is still running ({process.status}): it lands by itself when it ends"
    if not succeeded(process):
        result = process.result
        why = str(process.status)
        if result is not None and not result.succeeded:
            why += f", result {'error' if result.is_error else result.subtype}"
        return f"did not succeed ({why}): there is nothing to land"
    for other in runs:
        if other.is_active and other.branch_name == process.branch_name:
            return (
                f"shares {process.branch_name} with {other.process_id}, still running: "
                "that run lands it when it ends"
            )
    return None


def _select_one(target: str, runs: list[AgentProcess]) -> AgentProcess:
    if AGENT_ID_PATTERN.match(target):
        mine = [p for p in runs if p.agent_id == target]
        if not mine:
            raise _unknown(
                f"unknown agent {target}: it has no run here; `clambake status` lists them"
            )
        finished = [p for p in mine if not p.is_active]
        return finished[-1] if finished else mine[-1]
    for process in runs:
        if process.process_id == target:
            return process
    raise _unknown(
        f"unknown agent or run {target!r}: give an agent (agent001) or a process id "
        "from `clambake status --all --json`"
    )


def _latest_successful(runs: list[AgentProcess]) -> list[AgentProcess]:
    """The latest successful finished run of each branch no active run is working on."""
    from clambake_tui.bundling.landing import succeeded

    busy = {p.branch_name for p in runs if p.is_active}
    latest: dict[str, AgentProcess] = {}
    for process in runs:  # oldest first: a later run of the same branch replaces an earlier one
        if not process.is_active and process.branch_name not in busy:
            latest[process.branch_name] = process
    return [p for p in latest.values() if succeeded(p)]


def _spawn_config(paths: Paths, process_id: str) -> Config | None:
    """The configuration the run was spawned with (its spec.json), if it can be read."""
    from clambake_tui.agents.watcher import read_spec

    try:
        return read_spec(paths, process_id).config
    except (OSError, ValueError, KeyError, TypeError):
        return None


async def _land(
    ctx: Context, client: GitHubClient, process: AgentProcess, config: Config
) -> _Landed:
    from clambake_tui.agents.hooks import landing_config
    from clambake_tui.bundling.landing import land_agent

    args = ctx.args
    config = landing_config(config, _spawn_config(ctx.paths, process.process_id))
    try:
        outcome = await land_agent(
            process,
            ctx.paths,
            config,
            client,
            bundle=not args.no_bundle,
            force_bundle=args.force_bundle,
        )
    except ClambakeError as exc:
        line = f"#{process.issue_number}: landing {process.branch_name} failed: {exc}"
        return _Landed(process, "failed", [line], exit_code=exc.exit_code, error=str(exc))
    return _Landed(process, outcome.status.value, outcome.lines(), outcome=outcome)


async def _routed(client: GitHubClient, process: AgentProcess) -> str | None:
    """Why --all leaves this run's issue alone (routed to review or closed), or None."""
    from clambake_tui.bundling.naming import REVIEW_LABEL

    issue = await client.get_issue(process.issue_number)
    if issue.state != "open":
        return "closed"
    if REVIEW_LABEL in issue.labels:
        return f"routed to {REVIEW_LABEL}"
    return None


def _manager(ctx: Context) -> AgentProcessManager:
    from clambake_tui.agents.issue_source import LocalIssueSource
    from clambake_tui.agents.supervisor import AgentProcessManager

    config = ctx.config()
    ctx.ensure_state()
    return AgentProcessManager(ctx.paths, config, issues=LocalIssueSource())


async def _run(ctx: Context) -> tuple[list[_Landed], list[str]]:
    from clambake_tui.github.client import GitHubClient

    args = ctx.args
    config = ctx.config()
    if not ctx.paths.state.is_dir():
        if args.all:
            return [], ["no finished runs to land: no agent has run here"]
        raise _unknown(
            f"unknown agent or run {args.target!r}: no agent has run here; "
            "`clambake status` lists them"
        )
    manager = _manager(ctx)
    try:
        await manager.reconcile()
        for warning in manager.warnings:
            print(f"clambake: warning: {warning}", file=sys.stderr)
        runs = manager.list_agents()
    finally:
        await manager.close()

    results: list[_Landed] = []
    candidates: list[AgentProcess]
    if args.all:
        candidates = _latest_successful(runs)
        if not candidates:
            return [], ["no successful finished runs to land"]
    else:
        process = _select_one(args.target, runs)
        reason = _refusal(process, runs)
        if reason is not None:
            return [_refused(process, reason)], []
        candidates = [process]

    notes: list[str] = []
    async with GitHubClient.from_config(
        config, ctx.paths.root, require_token=True, metrics_path=ctx.paths.metrics
    ) as client:
        left_alone: dict[str, int] = {}
        for process in candidates:
            if args.all:
                try:
                    why = await _routed(client, process)
                except ClambakeError as exc:
                    line = f"#{process.issue_number}: cannot read the issue: {exc}"
                    results.append(
                        _Landed(process, "failed", [line], exit_code=exc.exit_code, error=str(exc))
                    )
                    continue
                if why is not None:
                    left_alone[why] = left_alone.get(why, 0) + 1
                    continue
            results.append(await _land(ctx, client, process, config))
    if args.all:
        for why, count in sorted(left_alone.items()):
            notes.append(f"{count} run{'s' if count != 1 else ''} left alone: issue {why}")
        if not results and not left_alone:
            notes.append("no successful finished runs to land")
    return results, notes


def run(ctx: Context) -> int:
    results, notes = asyncio.run(_run(ctx))
    if ctx.args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
        for note in notes:  # stdout stays one JSON document
            print(f"clambake: {note}", file=sys.stderr)
    else:
        for result in results:
            for line in result.lines:
                print(line, flush=True)
        for note in notes:
            print(note)
    return max((r.exit_code for r in results), default=0)
