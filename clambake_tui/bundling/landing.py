"""Landing: a successful agent's branch is pushed, its issue routed to review and a bundle started.

Idempotent: every step first looks whether it was already done (the branch on the remote at the
same commit, the labels, a comment carrying this run's marker), so running it twice changes
nothing the second time and a landing interrupted halfway is finished by the next attempt.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from clambake_tui import metrics
from clambake_tui.bundling import git
from clambake_tui.bundling.naming import READY_LABEL, REVIEW_LABEL
from clambake_tui.bundling.trigger import Dispatcher, TriggerOutcome, trigger_bundle
from clambake_tui.errors import ClambakeError
from clambake_tui.logs import agent_event, get_logger
from clambake_tui.model import AgentProcess, AgentState

if TYPE_CHECKING:
    from clambake_tui.config import Config
    from clambake_tui.github.client import GitHubClient
    from clambake_tui.state import Paths

__all__ = ["LandingStatus", "LandingOutcome", "land_agent", "succeeded", "landing_comment"]

log = get_logger(__name__)


class LandingStatus(enum.StrEnum):
    LANDED = "landed"
    ALREADY_LANDED = "already-landed"
    NO_COMMITS = "no-commits"  # succeeded but changed nothing: reported, not landed
    NOT_SUCCESSFUL = "not-successful"


@dataclass(frozen=True, slots=True)
class LandingOutcome:
    status: LandingStatus
    issue_number: int
    branch: str
    message: str
    sha: str | None = None
    commits_ahead: int = 0
    comment_url: str | None = None
    trigger: TriggerOutcome | None = None
    # Landed, but no bundle could be started (Actions down and no fallback, ...): why.
    bundle_error: str | None = None

    def lines(self) -> list[str]:
        out = [self.message]
        if self.trigger is not None:
            out += self.trigger.lines()
        if self.bundle_error is not None:
            out.append(f"bundling not started: {self.bundle_error}")
        return out


def succeeded(process: AgentProcess) -> bool:
    """A clean exit with a result that is not an error (design: both are needed)."""
    if process.status.state is not AgentState.COMPLETED:
        return False
    if process.status.exit_code not in (0, None):
        return False
    return process.result is None or process.result.succeeded


def _marker(kind: str, process: AgentProcess, sha: str | None = None) -> str:
    """A hidden tag in our comments: the same landing (branch at a commit) is commented once,
    whichever run of the agent lands it; a run without commits is reported once per run."""
    if sha is not None:
        return f"<!-- clambake:{kind} branch={process.branch_name} sha={sha} -->"
    return f"<!-- clambake:{kind} process={process.process_id} -->"


def _duration(ms: int) -> str:
    seconds = round(ms / 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def _result_summary(process: AgentProcess) -> str:
    result = process.result
    if result is None:
        return "no result summary recorded"
    parts: list[str] = []
    if result.num_turns is not None:
        parts.append(f"{result.num_turns} turns")
    if result.duration_ms is not None:
        parts.append(f"duration {_duration(result.duration_ms)}")
    if result.total_cost_usd is not None:
        parts.append(f"cost ${result.total_cost_usd:.2f}")
    return ", ".join(parts) or "no result summary recorded"


def landing_comment(process: AgentProcess, sha: str, ahead: int) -> str:
    commits = f"{ahead} commit{'s' if ahead != 1 else ''}"
    return "\n".join(
        [
            f"**{process.agent_id}** finished and pushed `{process.branch_name}` "
            f"({commits}, head `{sha[:12]}`).",
            "",
            f"Result: {_result_summary(process)}.",
            "",
            f"Routed to `{REVIEW_LABEL}`: the next bundling train takes it into a pull request.",
            _marker("landed", process, sha),
        ]
    )


def _no_commits_comment(process: AgentProcess) -> str:
    return "\n".join(
        [
            f"**{process.agent_id}** finished successfully but made no commits on "
            f"`{process.branch_name}`; nothing was pushed or routed to review.",
            "",
            f"Result: {_result_summary(process)}.",
            _marker("no-commits", process),
        ]
    )


def _event(process: AgentProcess, event: str, **fields: str) -> None:
    agent_event(
        log,
        event,
        agent_id=process.agent_id,
        issue_number=process.issue_number,
        process_id=process.process_id,
        level=logging.INFO,
        **fields,
    )


async def _has_comment(client: GitHubClient, number: int, marker: str) -> bool:
    return any(marker in str(c.get("body") or "") for c in await client.list_comments(number))


def _git_dir(process: AgentProcess, paths: Paths) -> Path:
    """The agent's worktree while it exists, else the repository (worktrees share its refs)."""
    return process.worktree if process.worktree.is_dir() else paths.root


async def land_agent(
    process: AgentProcess,
    paths: Paths,
    config: Config,
    client: GitHubClient,
    *,
    bundle: bool = True,
    force_bundle: bool = False,
    dispatch: Dispatcher | None = None,
) -> LandingOutcome:
    """Land one finished run. `bundle=False` stops after the comment (no dispatch, no local run).

    `force_bundle` asks the bundle to leave now rather than wait for its departure window.
    """
    number, branch = process.issue_number, process.branch_name
    if not succeeded(process):
        return LandingOutcome(
            LandingStatus.NOT_SUCCESSFUL, number, branch, f"#{number}: {process.status}; not landed"
        )
    repo = _git_dir(process, paths)
    base = config.github.default_branch or await client.default_branch()
    base_ref = f"refs/remotes/origin/{base}"
    if await git.rev_parse(repo, base_ref) is None:
        # The agent's branch was cut from this ref; it is only missing in odd set-ups.
        await git.fetch_branches(repo, [base])
    sha = await git.rev_parse(repo, f"refs/heads/{branch}")
    ahead = 0 if sha is None else await git.commits_ahead(repo, base_ref, sha)
    if sha is None or ahead == 0:
        _event(process, "agent succeeded without commits; not landed", branch=branch)
        marker = _marker("no-commits", process)
        url = None
        if not await _has_comment(client, number, marker):
            url = await client.create_comment(number, _no_commits_comment(process))
        return LandingOutcome(
            LandingStatus.NO_COMMITS,
            number,
            branch,
            f"#{number}: {process.agent_id} succeeded with no commits on {branch}; not landed",
            sha=sha,
            comment_url=url,
        )

    changed = False
    if await git.push(repo, sha, branch):
        changed = True
    issue = await client.get_issue(number)
    if REVIEW_LABEL not in issue.labels:
        await client.add_labels(number, [REVIEW_LABEL])
        changed = True
    for stale in (READY_LABEL, process.agent_id):
        if stale in issue.labels:
            await client.remove_label(number, stale)
            changed = True
    marker = _marker("landed", process, sha)
    url = None
    if not await _has_comment(client, number, marker):
        url = await client.create_comment(number, landing_comment(process, sha, ahead))
        changed = True
    if not changed:
        return LandingOutcome(
            LandingStatus.ALREADY_LANDED,
            number,
            branch,
            f"#{number}: {branch} already landed at {sha[:12]}; nothing to do",
            sha=sha,
            commits_ahead=ahead,
        )
    pushed_at = datetime.now(UTC)
    metrics.record(
        paths.metrics,
        "landing.pushed",
        agent_id=process.agent_id,
        issue_number=number,
        exited_at=(process.ended_at.isoformat() if process.ended_at else None),
        pushed_at=pushed_at.isoformat(),
    )
    _event(process, "landed", branch=branch, sha=sha, commits_ahead=str(ahead))
    outcome = LandingOutcome(
        LandingStatus.LANDED,
        number,
        branch,
        f"#{number}: pushed {branch} ({ahead} commits) and routed it to {REVIEW_LABEL}",
        sha=sha,
        commits_ahead=ahead,
        comment_url=url,
    )
    if not bundle:
        return outcome
    try:
        triggered = await trigger_bundle(
            client,
            paths.root,
            config,
            force=force_bundle,
            dispatch=dispatch,
            lock_dir=paths.locks,
            metrics_file=paths.metrics,
        )
    except ClambakeError as exc:
        # The work is landed and queued: the next train (or `clambake bundle`) takes it.
        _event(process, "landed but bundling not started", error=str(exc))
        return replace(outcome, bundle_error=str(exc))
    return replace(outcome, trigger=triggered)
