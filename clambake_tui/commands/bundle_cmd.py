"""`clambake bundle`: queued agent branches into one pull request (the train)."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clambake_tui.cli import Context

DESCRIPTION = """\
Gather the open issues labelled route:review whose agent branch (agentNNN/<issue> or
agentNNN/<issue>-<slug>) is on origin with commits ahead of the base and that no open pull
request covers, in priority then issue order; merge them in turn onto a new
bundle/YYYYMMDD_HHMM__issues_N_M branch and open one [BUNDLE] pull request closing them all.
A branch that conflicts gets its own [AUTO] pull request labelled merge-conflict; a train of
one branch is that branch's own [AUTO] pull request.

Train schedule: departures every [bundling] schedule_minutes (default 10) counted from
midnight UTC, so :00 :10 :20 ... A train may leave only inside its departure window, the first
half of the interval after a departure (at least one minute): with 10 minutes, from :20:00 up
to but not including :25:00. Outside it nothing happens unless --force, and the output says
when the next train leaves. CLAMBAKE_NOW (an ISO-8601 UTC time) fixes the clock the schedule
reads, for demos and tests.

Without --local, a run outside GitHub Actions dispatches the bundling workflow when
[github_actions] enabled is true (falling back to a local bundle when that fails and
[bundling] fallback_local allows it); on an Actions runner, or with --local, it bundles here.
Running it again is safe: it never opens a second pull request for the same issues.
"""


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "bundle",
        help="bundle route:review agent branches into pull requests (the train)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--force", action="store_true", help="bundle now, even outside the departure window"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan (branches, conflicts, pull requests) and change nothing",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="bundle in this checkout instead of dispatching the workflow to GitHub Actions",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="print should_bundle=true|false (also to $GITHUB_OUTPUT) and change nothing",
    )
    parser.set_defaults(run=run)
    # `clambake actions --trigger-bundle` runs the Actions-or-local trigger (the seam it offers).
    from clambake_tui.commands import actions_cmd

    actions_cmd.TRIGGER_BUNDLE = trigger_with_fallback


def _append(path_var: str, text: str) -> None:
    """Append to the file an Actions runner names in `path_var` (when it names one)."""
    target = os.environ.get(path_var)
    if not target:
        return
    with Path(target).open("a", encoding="utf-8") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")


def run(ctx: Context) -> int:
    return asyncio.run(_run(ctx))


async def _run(ctx: Context) -> int:
    from clambake_tui.bundling.bundler import Bundler
    from clambake_tui.bundling.trigger import running_on_actions, trigger_bundle
    from clambake_tui.github.client import GitHubClient

    args = ctx.args
    config = ctx.config()
    ctx.ensure_state()
    paths = ctx.paths
    async with GitHubClient.from_config(
        config, paths.root, require_token=True, metrics_path=paths.metrics
    ) as client:
        bundler = Bundler(
            client, paths.root, config, lock_dir=paths.locks, metrics_file=paths.metrics
        )
        if args.check:
            should, why = await bundler.check(force=args.force)
            value = "true" if should else "false"
            print(f"should_bundle={value}")
            print(f"reason: {why}")
            _append("GITHUB_OUTPUT", f"should_bundle={value}")
            return 0
        here = args.local or running_on_actions() or not config.github_actions.enabled
        if not here:
            outcome = await trigger_bundle(
                client,
                paths.root,
                config,
                force=args.force,
                dry_run=args.dry_run,
                lock_dir=paths.locks,
                metrics_file=paths.metrics,
            )
            print("\n".join(outcome.lines()))
            if outcome.report is not None:
                _append("GITHUB_STEP_SUMMARY", outcome.report.markdown())
            return 0
        report = await bundler.run(
            force=args.force,
            dry_run=args.dry_run,
            path="actions" if running_on_actions() else "local",
        )
        print("\n".join(report.lines()))
        _append("GITHUB_STEP_SUMMARY", report.markdown())
        return 0


def install_workflow_command(ctx: Context) -> int:
    """`clambake actions --install-workflow`: write the bundling workflow into the repository."""
    from clambake_tui.bundling.workflow import install_workflow

    result = install_workflow(ctx.paths.root, ctx.config(), overwrite=ctx.args.force)
    relative = result.path.relative_to(ctx.paths.root.resolve())
    if not result.changed:
        print(f"{relative} is already up to date")
        return 0
    print(f"wrote {relative}; commit it to the default branch so Actions can run it")
    return 0


async def trigger_with_fallback(ctx: Context, force: bool, dry_run: bool = False) -> int:
    """`clambake actions --trigger-bundle`: Actions first, a local bundle when it can't run there."""
    from clambake_tui.bundling.trigger import BundlePath, trigger_bundle
    from clambake_tui.commands.actions_cmd import dispatch_bundle
    from clambake_tui.github.client import GitHubClient

    config = ctx.config()
    ctx.ensure_state()
    paths = ctx.paths
    async with GitHubClient.from_config(
        config, paths.root, require_token=True, metrics_path=paths.metrics
    ) as client:
        outcome = await trigger_bundle(
            client,
            paths.root,
            config,
            force=force,
            dry_run=dry_run,
            dispatch=dispatch_bundle,
            lock_dir=paths.locks,
            metrics_file=paths.metrics,
            manual=True,
        )
    print("\n".join(outcome.lines()))
    run = outcome.dispatch.run if outcome.dispatch else None
    if outcome.path is BundlePath.ACTIONS and run is not None:
        print(f"  follow it: clambake actions --watch --run-id {run.id}")
    return 0
