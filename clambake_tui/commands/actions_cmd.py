"""`clambake actions`: the bundling workflow on GitHub Actions (trigger, status, logs, watch).

Seams for other parts of clambake:
- `dispatch_bundle(client, config, force, dry_run)` dispatches the configured bundling workflow
  on the default branch with exactly the inputs it declares; it raises `ActionsDisabledError`
  when clambake.toml switched Actions bundling off and a `GitHubError` when Actions cannot take
  it (after the client's bounded retries). A local fallback wraps this function.
- `trigger_bundle(ctx, force, dry_run)` is what `--trigger-bundle` runs, replaceable as a whole
  through `TRIGGER_BUNDLE` (the bundling command installs its Actions-or-local version there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from clambake_tui.errors import ClambakeError, GitHubError
from clambake_tui.github.client import DispatchResult, GitHubClient, LogSection, workflow_ref
from clambake_tui.github.errors import ActionsDisabledError
from clambake_tui.github.transport import Waiting
from clambake_tui.model import Job, WorkflowRun

if TYPE_CHECKING:
    from clambake_tui.cli import Context
    from clambake_tui.config import Config

__all__ = [
    "register",
    "run",
    "dispatch_bundle",
    "bundle_inputs",
    "trigger_bundle",
    "TRIGGER_BUNDLE",
    "format_age",
]

WATCH_INTERVAL_SECONDS = 3.0  # what `gh run watch` polls at


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "actions",
        help="the bundling workflow on GitHub Actions: trigger, status, logs, watch",
        description="The bundling workflow on GitHub Actions. A token comes from GH_TOKEN, "
        "GITHUB_TOKEN or `gh auth token`; the workflow is [github_actions] bundling_workflow.",
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--trigger-bundle",
        action="store_true",
        help="dispatch the bundling workflow on the default branch and report the run it started "
        "(bundles locally instead when Actions cannot, if [bundling] fallback_local allows)",
    )
    what.add_argument(
        "--install-workflow",
        action="store_true",
        help="write the bundling workflow to [github_actions] bundling_workflow in this "
        "repository (--force replaces a copy that differs)",
    )
    what.add_argument("--status", action="store_true", help="recent runs of the bundling workflow")
    what.add_argument("--logs", action="store_true", help="a run's logs per job and step")
    what.add_argument(
        "--watch", action="store_true", help="follow a run (default: the latest) until it completes"
    )
    what.add_argument("--cancel", action="store_true", help="cancel a run")
    what.add_argument("--rerun", action="store_true", help="re-run a run (--failed: failed jobs)")
    parser.add_argument(
        "--force", action="store_true", help="--trigger-bundle: bundle even outside the window"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="--trigger-bundle: plan the bundle, change nothing"
    )
    parser.add_argument("--run-id", type=int, metavar="ID", help="the run for --logs/--watch/...")
    parser.add_argument("--job", metavar="NAME", help="--logs: only this job")
    parser.add_argument("--failed", action="store_true", help="--rerun: only the failed jobs")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--limit", type=int, default=10, metavar="N", help="--status: runs shown (default 10)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=WATCH_INTERVAL_SECONDS,
        metavar="SECONDS",
        help=f"--watch: seconds between polls (default {WATCH_INTERVAL_SECONDS:g})",
    )
    parser.set_defaults(run=run)


def run(ctx: Context) -> int:
    args = ctx.args
    needs_run = args.logs or args.cancel or args.rerun
    if needs_run and args.run_id is None:
        raise ClambakeError("--run-id ID is needed (`clambake actions --status` lists run ids)")
    if args.install_workflow:
        from clambake_tui.commands.bundle_cmd import install_workflow_command

        return install_workflow_command(ctx)
    if args.trigger_bundle:
        return asyncio.run(TRIGGER_BUNDLE(ctx, args.force, args.dry_run))
    if args.status:
        return asyncio.run(_status(ctx))
    if args.logs:
        return asyncio.run(_logs(ctx))
    if args.watch:
        return asyncio.run(_watch(ctx))
    if args.cancel:
        return asyncio.run(_cancel(ctx))
    return asyncio.run(_rerun(ctx))


# ---------------------------------------------------------------------- shared


def _say_waiting(waiting: Waiting | None) -> None:
    if waiting is not None:
        print(f"clambake: {waiting.describe()}", file=sys.stderr)


def _client(ctx: Context, *, require_token: bool) -> GitHubClient:
    metrics = ctx.paths.metrics if ctx.paths.state.is_dir() else None
    return GitHubClient.from_config(
        ctx.config(),
        ctx.paths.root,
        require_token=require_token,
        metrics_path=metrics,
        on_wait=_say_waiting,
    )


def _workflow(config: Config) -> str:
    return workflow_ref(config.github_actions.bundling_workflow)


def format_age(moment: datetime, now: datetime | None = None) -> str:
    seconds = max(0.0, ((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 60:
        return f"{int(seconds)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86400)}d ago"


def _run_json(run: WorkflowRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "run_number": run.run_number,
        "name": run.name,
        "status": run.status,
        "conclusion": run.conclusion,
        "branch": run.head_branch,
        "event": run.event,
        "created_at": run.created_at.isoformat(),
        "age_seconds": round((datetime.now(UTC) - run.created_at).total_seconds()),
        "run_attempt": run.run_attempt,
        "html_url": run.html_url,
    }


# ---------------------------------------------------------------------- trigger


def bundle_inputs(force: bool, dry_run: bool) -> dict[str, str | bool]:
    """Exactly the inputs the bundling workflow declares (any other gets a 422)."""
    return {"force_bundle": force, "dry_run": dry_run}


async def dispatch_bundle(
    client: GitHubClient, config: Config, force: bool, dry_run: bool
) -> DispatchResult:
    """Dispatch the bundling workflow on the default branch (where it must live to be dispatched)."""
    if not config.github_actions.enabled:
        raise ActionsDisabledError(
            "GitHub Actions bundling is switched off (github_actions.enabled = false); "
            "`clambake config set github_actions.enabled true` turns it back on"
        )
    if not config.github_actions.manual_trigger_enabled:
        raise ActionsDisabledError(
            "dispatching the bundling workflow by hand is switched off "
            "(github_actions.manual_trigger_enabled = false); the schedule still runs it"
        )
    ref = await client.default_branch()
    return await client.dispatch_workflow(
        config.github_actions.bundling_workflow, ref=ref, inputs=bundle_inputs(force, dry_run)
    )


def _report_dispatch(result: DispatchResult, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "workflow": result.workflow,
                    "ref": result.ref,
                    "run": _run_json(result.run) if result.run else None,
                    "seconds_to_visible": round(result.seconds_to_visible, 3)
                    if result.seconds_to_visible is not None
                    else None,
                },
                indent=2,
            )
        )
        return
    if result.run is None:
        print(
            f"dispatched {result.workflow} on {result.ref}, but no run showed up yet; "
            "`clambake actions --status` will list it"
        )
        return
    run = result.run
    seconds = result.seconds_to_visible or 0.0
    print(
        f"dispatched {result.workflow} on {result.ref}: run {run.id} (#{run.run_number}) "
        f"showed up after {seconds:.1f} s, {run.status}"
    )
    if run.html_url:
        print(f"  {run.html_url}")
    print(f"  follow it: clambake actions --watch --run-id {run.id}")


async def trigger_bundle(ctx: Context, force: bool, dry_run: bool = False) -> int:
    """`--trigger-bundle`: dispatch on Actions and report the run it started."""
    config = ctx.config()
    if ctx.paths.root.is_dir():
        ctx.ensure_state()  # the dispatch is a metric worth keeping
    async with _client(ctx, require_token=True) as gh:
        result = await dispatch_bundle(gh, config, force, dry_run)
    _report_dispatch(result, ctx.args.json)
    return 0


# The bundling command replaces this with its Actions-or-local trigger.
TRIGGER_BUNDLE: Callable[[Context, bool, bool], Coroutine[Any, Any, int]] = trigger_bundle


# ---------------------------------------------------------------------- status


async def _status(ctx: Context) -> int:
    config = ctx.config()
    workflow = _workflow(config)
    async with _client(ctx, require_token=False) as gh:
        runs = await gh.list_runs(workflow, per_page=max(1, min(ctx.args.limit, 100)))
    if ctx.args.json:
        print(json.dumps([_run_json(run) for run in runs], indent=2))
        return 0
    if not runs:
        print(f"no runs of {workflow} yet (`clambake actions --trigger-bundle` starts one)")
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        # Piped: never cut URLs to the 80 columns Rich assumes without a terminal.
        console = Console(width=220)
    table = Table(title=f"{workflow} runs", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("run id", justify="right")
    table.add_column("status")
    table.add_column("conclusion")
    table.add_column("branch")
    table.add_column("event")
    table.add_column("age", justify="right")
    table.add_column("URL", no_wrap=True, overflow="fold")
    for item in runs:
        table.add_row(
            str(item.run_number),
            str(item.id),
            item.status,
            item.conclusion or "-",
            item.head_branch,
            item.event,
            format_age(item.created_at),
            item.html_url,
        )
    console.print(table)
    return 0


# ---------------------------------------------------------------------- logs


def _pick_job(sections: tuple[LogSection, ...], job: str | None, run_id: int) -> list[LogSection]:
    if not job:
        return list(sections)
    wanted = job.casefold()
    exact = [s for s in sections if s.job.casefold() == wanted]
    if exact:
        return exact
    partial = [s for s in sections if wanted in s.job.casefold()]
    if partial:
        return partial
    names = sorted({s.job for s in sections})
    raise GitHubError(f"run {run_id} has no job named {job!r} (its jobs: {', '.join(names)})")


async def _logs(ctx: Context) -> int:
    run_id: int = ctx.args.run_id
    async with _client(ctx, require_token=False) as gh:
        logs = await gh.run_logs(run_id)
    sections = _pick_job(logs.sections, ctx.args.job, run_id)
    if ctx.args.json:
        print(
            json.dumps(
                [
                    {"job": s.job, "step_number": s.step_number, "step": s.step, "text": s.text}
                    for s in sections
                ],
                indent=2,
            )
        )
        return 0
    out: list[str] = []
    job = None
    for section in sections:
        if section.job != job:
            job = section.job
            out.append(f"=== job: {job}")
        if section.step_number is not None:
            out.append(f"--- step {section.step_number}: {section.step}")
        out.append(section.text.rstrip("\n"))
    print("\n".join(out))
    return 0


# ---------------------------------------------------------------------- watch


def _clock() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")


def _state(status: str, conclusion: str | None) -> str:
    return f"{status} ({conclusion})" if conclusion else status


def _watch_lines(run: WorkflowRun, jobs: list[Job], seen: dict[str, str]) -> list[str]:
    """Lines for what changed since the last poll (`seen` is updated)."""
    lines: list[str] = []
    states = {f"run {run.id}": _state(run.status, run.conclusion)}
    for job in jobs:
        states[f"  job {job.name}"] = _state(job.status, job.conclusion)
        for step in job.steps:
            states[f"    {job.name} / {step.number} {step.name}"] = _state(
                step.status, step.conclusion
            )
    for key, value in states.items():
        if seen.get(key) != value:
            seen[key] = value
            lines.append(f"{_clock()} {key}: {value}")
    return lines


async def _watch(ctx: Context) -> int:
    config = ctx.config()
    interval = max(0.2, float(ctx.args.interval))
    async with _client(ctx, require_token=False) as gh:
        run_id: int | None = ctx.args.run_id
        if run_id is None:
            latest = await gh.list_runs(_workflow(config), per_page=1)
            if not latest:
                raise GitHubError(f"no runs of {_workflow(config)} to watch yet")
            run_id = latest[0].id
        seen: dict[str, str] = {}
        print(f"watching run {run_id} (every {interval:g} s; Ctrl-C stops watching, not the run)")
        while True:
            # Both requests are conditional: an unchanged run costs no rate-limit budget.
            current = await gh.get_run(run_id)
            jobs = await gh.list_jobs(run_id)
            for line in _watch_lines(current, jobs, seen):
                print(line, flush=True)
            if current.is_completed:
                break
            await asyncio.sleep(interval)
    took = current.duration_seconds()
    print(
        f"run {current.id} completed: {current.conclusion or 'no conclusion'} "
        f"after {took:.0f} s {current.html_url}".rstrip()
    )
    return 0 if current.conclusion in ("success", "skipped", "neutral") else 1


# ---------------------------------------------------------------------- cancel, rerun


async def _cancel(ctx: Context) -> int:
    async with _client(ctx, require_token=True) as gh:
        await gh.cancel_run(ctx.args.run_id)
    print(f"cancel requested for run {ctx.args.run_id}")
    return 0


async def _rerun(ctx: Context) -> int:
    async with _client(ctx, require_token=True) as gh:
        await gh.rerun(ctx.args.run_id, failed_only=ctx.args.failed)
    which = "its failed jobs" if ctx.args.failed else "all jobs"
    print(f"re-run requested for run {ctx.args.run_id} ({which})")
    return 0
