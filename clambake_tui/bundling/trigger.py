"""Start a bundle: dispatch the bundling workflow on Actions, or bundle locally when it can't run.

The order is always Actions first. The local path runs when `github_actions.enabled` is false,
or when the dispatch failed after the client's own bounded retries, and only if
`bundling.fallback_local` allows it. The outcome says which path ran and why.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from clambake_tui.bundling.bundler import Bundler, BundleReport
from clambake_tui.errors import ClambakeError, GitHubError
from clambake_tui.github.errors import ActionsDisabledError
from clambake_tui.logs import get_logger
from clambake_tui.progress import Progress
from clambake_tui.progress import report as report_progress

if TYPE_CHECKING:
    from clambake_tui.config import Config
    from clambake_tui.github.client import DispatchResult, GitHubClient

__all__ = [
    "BundlePath",
    "TriggerOutcome",
    "Dispatcher",
    "dispatch_inputs",
    "dispatch_bundling",
    "bundle_locally",
    "trigger_bundle",
    "ActionsUnavailableError",
]

log = get_logger(__name__)

# `(client, config, force, dry_run) -> DispatchResult`; raises GitHubError when Actions is down.
Dispatcher = Callable[["GitHubClient", "Config", bool, bool], Awaitable["DispatchResult"]]


class ActionsUnavailableError(ClambakeError):
    """Actions could not run the bundle and the local fallback is switched off."""


class BundlePath(enum.StrEnum):
    ACTIONS = "actions"
    LOCAL = "local"


@dataclass(frozen=True, slots=True)
class TriggerOutcome:
    path: BundlePath
    reason: str
    dispatch: DispatchResult | None = None
    report: BundleReport | None = None

    def lines(self) -> list[str]:
        if self.path is BundlePath.ACTIONS:
            run = self.dispatch.run if self.dispatch else None
            where = f": run {run.id} {run.html_url}".rstrip() if run else ""
            seconds = self.dispatch.seconds_to_visible if self.dispatch else None
            shown = f" (showed up after {seconds:.1f} s)" if run and seconds is not None else ""
            return [f"bundling on GitHub Actions ({self.reason}){where}{shown}"]
        head = f"bundled locally ({self.reason})"
        return [head, *(self.report.lines() if self.report else [])]


def dispatch_inputs(force: bool, dry_run: bool) -> dict[str, str | bool]:
    """Exactly the inputs the workflow declares; GitHub answers 422 to any other."""
    return {"force_bundle": force, "dry_run": dry_run}


async def dispatch_bundling(
    client: GitHubClient,
    config: Config,
    force: bool,
    dry_run: bool,
    *,
    progress: Progress | None = None,
) -> DispatchResult:
    """Dispatch the bundling workflow on the default branch (it must live there to be dispatched)."""
    ref = config.github.default_branch or await client.default_branch()
    return await client.dispatch_workflow(
        config.github_actions.bundling_workflow,
        ref=ref,
        inputs=dispatch_inputs(force, dry_run),
        progress=progress,
    )


async def bundle_locally(
    client: GitHubClient,
    repo: Path,
    config: Config,
    *,
    force: bool,
    dry_run: bool,
    lock_dir: Path | None = None,
    metrics_file: Path | None = None,
    progress: Progress | None = None,
) -> BundleReport:
    bundler = Bundler(client, repo, config, lock_dir=lock_dir, metrics_file=metrics_file)
    return await bundler.run(force=force, dry_run=dry_run, path="local", progress=progress)


async def trigger_bundle(
    client: GitHubClient,
    repo: Path,
    config: Config,
    *,
    force: bool = False,
    dry_run: bool = False,
    dispatch: Dispatcher | None = None,
    lock_dir: Path | None = None,
    metrics_file: Path | None = None,
    manual: bool = False,
    progress: Progress | None = None,
) -> TriggerOutcome:
    """Bundle on Actions if it can run there, else locally (when allowed); say which and why.

    `manual`: an operator asked (dashboard `b`, --trigger-bundle), so the workflow is only
    dispatched if `github_actions.manual_trigger_enabled` allows it. `progress` hears the
    stages: dispatching and waiting for the run, or the local bundler's own.
    """
    if (
        manual
        and config.github_actions.enabled
        and not config.github_actions.manual_trigger_enabled
    ):
        reason = (
            "dispatching the bundling workflow by hand is switched off "
            "(github_actions.manual_trigger_enabled = false)"
        )
    elif config.github_actions.enabled:
        try:
            if dispatch is None:
                result = await dispatch_bundling(client, config, force, dry_run, progress=progress)
            else:
                report_progress(progress, "dispatching the bundling workflow")
                result = await dispatch(client, config, force, dry_run)
        except (GitHubError, ActionsDisabledError) as exc:
            reason = f"Actions dispatch failed: {exc}"
            log.warning("bundling dispatch failed", extra={"error": str(exc)})
        else:
            return TriggerOutcome(BundlePath.ACTIONS, "workflow dispatched", dispatch=result)
    else:
        reason = "github_actions.enabled is false"
    if not config.bundling.fallback_local:
        raise ActionsUnavailableError(
            f"not bundling: {reason}, and bundling.fallback_local is false; "
            "fix Actions or run `clambake bundle --local`"
        )
    log.info("bundling locally", extra={"reason": reason})
    report = await bundle_locally(
        client,
        repo,
        config,
        force=force,
        dry_run=dry_run,
        lock_dir=lock_dir,
        metrics_file=metrics_file,
        progress=progress,
    )
    return TriggerOutcome(BundlePath.LOCAL, reason, report=report)


def running_on_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"
