"""The bundler: queued agent branches -> one bundle branch and PR per train, own PRs for conflicts.

Safe to run again at any time: a rerun after success finds every queued issue covered by an open
PR and creates nothing; a rerun after a crash reuses the bundle branch and PRs already made.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from clambake_tui import metrics
from clambake_tui.bundling import git
from clambake_tui.bundling.naming import (
    CONFLICT_LABEL,
    OPENED_BY,
    REVIEW_LABEL,
    bundle_branch_name,
    bundle_title,
    parse_agent_branch,
    parse_bundle_branch,
    single_title,
    train_label,
)
from clambake_tui.bundling.queue import BranchInfo, Queue, QueuedIssue, select_queue
from clambake_tui.bundling.schedule import ScheduleStatus, TrainSchedule, now_utc
from clambake_tui.errors import ClambakeError, GitHubError
from clambake_tui.logs import get_logger
from clambake_tui.model import PullRequest
from clambake_tui.progress import Progress
from clambake_tui.progress import report as report_progress

if TYPE_CHECKING:
    from clambake_tui.config import Config
    from clambake_tui.github.client import GitHubClient

__all__ = [
    "PRKind",
    "PlannedPR",
    "BundlePlan",
    "BundleOutcome",
    "BundleReport",
    "BundleLockedError",
    "Bundler",
    "plan_merges",
    "gather_queue",
]

log = get_logger(__name__)
LOCK_WAIT_SECONDS = 600.0


class BundleLockedError(ClambakeError):
    """Another bundler holds this repository's lock."""


class PRKind(enum.StrEnum):
    BUNDLE = "bundle"  # several issues merged together
    SINGLE = "single"  # a bundle of one: the agent branch's own PR
    CONFLICT = "conflict"  # left out of the bundle: own PR, labelled merge-conflict


@dataclass(frozen=True, slots=True)
class PlannedPR:
    kind: PRKind
    head: str
    title: str
    body: str
    issues: tuple[int, ...]
    labels: tuple[str, ...] = ()
    # The commit to push to `head` before opening the PR (None: nothing to push, the head
    # is an agent branch or a bundle branch an earlier run already pushed).
    push_sha: str | None = None


@dataclass(frozen=True, slots=True)
class BundlePlan:
    train: datetime
    base: str
    queue: Queue
    merged: tuple[QueuedIssue, ...]
    conflicts: tuple[QueuedIssue, ...]
    prs: tuple[PlannedPR, ...]


class BundleOutcome(enum.StrEnum):
    DEPARTED = "departed"  # PRs made (or found made by an earlier, interrupted run)
    DRY_RUN = "dry-run"
    NOTHING_QUEUED = "nothing-queued"
    OUTSIDE_WINDOW = "outside-window"


@dataclass(frozen=True, slots=True)
class BundleReport:
    outcome: BundleOutcome
    schedule: ScheduleStatus
    forced: bool
    plan: BundlePlan | None = None
    created: tuple[PullRequest, ...] = ()
    reused: tuple[PullRequest, ...] = ()
    duration_s: float = 0.0
    messages: tuple[str, ...] = field(default=())

    @property
    def pull_requests(self) -> tuple[PullRequest, ...]:
        return self.created + self.reused

    def lines(self) -> list[str]:
        """The report for people, one fact a line."""
        out: list[str] = []
        if self.outcome is BundleOutcome.OUTSIDE_WINDOW:
            return [f"not bundling: {self.schedule.describe()} (use --force to bundle now)"]
        plan = self.plan
        if plan is None or self.outcome is BundleOutcome.NOTHING_QUEUED:
            out.append("nothing to bundle: no route:review issue has unbundled pushed work")
            if plan is not None:
                out += [f"  #{s.issue_number}: {s.reason.value}" for s in plan.queue.skipped]
            return out
        prefix = "would " if self.outcome is BundleOutcome.DRY_RUN else ""
        out.append(
            f"{train_label(plan.train)} from {plan.base}: "
            f"{len(plan.queue.entries)} queued, {len(plan.merged)} bundled, "
            f"{len(plan.conflicts)} conflicting"
        )
        for entry in plan.queue.entries:
            state = "conflicts, own PR" if entry in plan.conflicts else "merged"
            out.append(f"  #{entry.number} {entry.branch.name} ({entry.ahead} commits): {state}")
        for skip in plan.queue.skipped:
            out.append(f"  #{skip.issue_number} skipped: {skip.reason.value}")
        for pr in plan.prs:
            out.append(f"  {prefix}open PR {pr.title!r} from {pr.head}")
        out += [f"  created #{pr.number} {pr.html_url}".rstrip() for pr in self.created]
        out += [f"  already open #{pr.number} {pr.html_url}".rstrip() for pr in self.reused]
        out += [f"  {m}" for m in self.messages]
        return out

    def markdown(self) -> str:
        """A job summary for $GITHUB_STEP_SUMMARY."""
        title = "## Clambake bundling"
        if self.outcome is BundleOutcome.OUTSIDE_WINDOW:
            return f"{title}\n\nNot bundling: {self.schedule.describe()}.\n"
        plan = self.plan
        if plan is None or not plan.queue.entries:
            return f"{title}\n\nNothing to bundle.\n"
        rows = ["| issue | branch | commits | result |", "|---|---|---|---|"]
        for entry in plan.queue.entries:
            state = "conflict: own PR" if entry in plan.conflicts else "bundled"
            rows.append(f"| #{entry.number} | `{entry.branch.name}` | {entry.ahead} | {state} |")
        text = f"{title}\n\n**{train_label(plan.train)}** from `{plan.base}`"
        text += " (dry run: nothing changed)" if self.outcome is BundleOutcome.DRY_RUN else ""
        text += "\n\n" + "\n".join(rows) + "\n"
        links = [f"- created [#{p.number} {p.title}]({p.html_url})" for p in self.created]
        links += [f"- already open [#{p.number} {p.title}]({p.html_url})" for p in self.reused]
        links += [
            f"- would open {p.title} from `{p.head}`"
            for p in plan.prs
            if self.outcome is BundleOutcome.DRY_RUN
        ]
        if links:
            text += "\n### Pull requests\n\n" + "\n".join(links) + "\n"
        return text


# ---------------------------------------------------------------- queue


async def gather_queue(
    client: GitHubClient, repo: Path, base: str
) -> tuple[Queue, list[PullRequest], dict[str, str]]:
    """Ask GitHub for route:review issues and open PRs and the remote for agent branches."""
    issues, pulls, heads = await asyncio.gather(
        client.list_issues(labels=(REVIEW_LABEL,)),
        client.list_pulls(state="open"),
        git.remote_heads(repo),
    )
    if base not in heads:
        raise ClambakeError(
            f"the base branch {base!r} is not on origin; set [github] default_branch"
        )
    wanted = {i.number for i in issues}
    candidates = [n for n in heads if (b := parse_agent_branch(n)) and b.issue_number in wanted]
    await git.fetch_branches(repo, [base, *candidates])

    # A few git processes at a time: a long queue must not fork hundreds at once.
    slots = asyncio.Semaphore(4)

    async def describe(name: str) -> BranchInfo:
        ref = f"refs/remotes/origin/{name}"
        async with slots:
            ahead = await git.commits_ahead(repo, f"refs/remotes/origin/{base}", ref)
            at = await git.commit_time(repo, ref)
        return BranchInfo(sha=heads[name], ahead=ahead, committed_at=at)

    described = await asyncio.gather(*(describe(name) for name in candidates))
    infos = dict(zip(candidates, described, strict=True))
    return select_queue(base, issues, infos, pulls), pulls, heads


# ---------------------------------------------------------------- plan


def _issue_line(entry: QueuedIssue) -> str:
    return f"- Fixes #{entry.number} — {entry.issue.title} (`{entry.branch.name}`, {entry.branch.agent_id})"


def _bundle_body(
    plan_train: datetime, merged: list[QueuedIssue], conflicts: list[QueuedIssue]
) -> str:
    lines = [
        f"The {train_label(plan_train)} (UTC): {len(merged)} agent branches merged in order.",
        "",
        *(_issue_line(e) for e in merged),
    ]
    if conflicts:
        lines += ["", "Left out (conflicting, each has its own PR labelled `merge-conflict`):"]
        lines += [f"- #{e.number} `{e.branch.name}`" for e in conflicts]
    lines += ["", OPENED_BY]
    return "\n".join(lines)


def _single_body(entry: QueuedIssue, conflict_with: list[QueuedIssue], train: datetime) -> str:
    lines = [
        _issue_line(entry),
        "",
    ]
    if conflict_with:
        others = ", ".join(f"#{e.number}" for e in conflict_with) or "the base branch"
        lines.append(
            f"This branch conflicts with the {train_label(train)} ({others}); resolve the "
            "conflicts here, or merge the bundle first and rebase."
        )
    else:
        lines.append(f"The only branch on the {train_label(train)}.")
    lines += ["", OPENED_BY]
    return "\n".join(lines)


def _merge_message(entry: QueuedIssue, train: datetime) -> str:
    return f"Merge {entry.branch.name} (#{entry.number}) into the {train_label(train)}"


def _merging(progress: Progress | None, index: int, entries: tuple[QueuedIssue, ...]) -> None:
    # One unit per merge and one for publishing what they made (see `Bundler.run`).
    count = len(entries)
    name = entries[index].branch.name
    report_progress(progress, f"merging {index + 1} of {count}: {name}", index, count + 1)


async def _merge_in_memory(
    repo: Path,
    base_ref: str,
    entries: tuple[QueuedIssue, ...],
    train: datetime,
    progress: Progress | None = None,
) -> tuple[list[QueuedIssue], list[QueuedIssue], str | None]:
    head = await git.rev_parse(repo, base_ref)
    if head is None:
        raise git.GitError(f"{base_ref} is missing in {repo}; fetch the base branch first")
    merged: list[QueuedIssue] = []
    conflicts: list[QueuedIssue] = []
    for index, entry in enumerate(entries):
        _merging(progress, index, entries)
        ref = f"refs/remotes/origin/{entry.branch.name}"
        result = await git.merge_in_memory(repo, head, ref, _merge_message(entry, train))
        if result is None:
            conflicts.append(entry)
        else:
            merged.append(entry)
            head = result
    return merged, conflicts, head


async def _merge_in_worktree(
    repo: Path,
    base_ref: str,
    entries: tuple[QueuedIssue, ...],
    train: datetime,
    progress: Progress | None = None,
) -> tuple[list[QueuedIssue], list[QueuedIssue], str | None]:
    merged: list[QueuedIssue] = []
    conflicts: list[QueuedIssue] = []
    async with git.scratch_worktree(repo, base_ref) as work:
        for index, entry in enumerate(entries):
            _merging(progress, index, entries)
            ref = f"refs/remotes/origin/{entry.branch.name}"
            if await git.merge(work, ref, _merge_message(entry, train)):
                merged.append(entry)
            else:
                conflicts.append(entry)
        head = await git.rev_parse(work, "HEAD")
    return merged, conflicts, head


async def plan_merges(
    repo: Path,
    queue: Queue,
    train: datetime,
    heads: dict[str, str],
    *,
    in_memory: bool = True,
    progress: Progress | None = None,
) -> BundlePlan:
    """Merge each queued branch in turn onto the base (real git merges, nothing pushed).

    With git 2.38 or newer the merges happen in the object store (`merge-tree`); with an older
    git, or `in_memory=False`, in a scratch worktree that is removed afterwards. The result says
    which branches merged, which conflicted, and the PRs to open. An existing bundle branch on
    the remote holding exactly the same issues (a run interrupted before its PR) is reused
    instead of a new one. `progress` hears "merging i of n: branch" before each merge.
    """
    base_ref = f"refs/remotes/origin/{queue.base}"
    try:
        if not in_memory:
            raise git.MergeTreeUnsupported("worktree merges asked for")
        merged, conflicts, head = await _merge_in_memory(
            repo, base_ref, queue.entries, train, progress
        )
    except git.MergeTreeUnsupported:
        merged, conflicts, head = await _merge_in_worktree(
            repo, base_ref, queue.entries, train, progress
        )
    bundle_sha = head if len(merged) > 1 else None
    prs: list[PlannedPR] = []
    if len(merged) > 1:
        numbers = tuple(e.number for e in merged)
        head = bundle_branch_name(train, numbers)
        push_sha = bundle_sha
        existing = await _reusable_bundle_branch(repo, heads, numbers, merged)
        if existing is not None:
            head, push_sha = existing, None
        prs.append(
            PlannedPR(
                kind=PRKind.BUNDLE,
                head=head,
                title=bundle_title(len(merged), train),
                body=_bundle_body(train, merged, conflicts),
                issues=numbers,
                push_sha=push_sha,
            )
        )
    elif merged:
        only = merged[0]
        prs.append(
            PlannedPR(
                kind=PRKind.SINGLE,
                head=only.branch.name,
                title=single_title(only.issue.title),
                body=_single_body(only, [], train),
                issues=(only.number,),
            )
        )
    for entry in conflicts:
        prs.append(
            PlannedPR(
                kind=PRKind.CONFLICT,
                head=entry.branch.name,
                title=single_title(entry.issue.title),
                body=_single_body(entry, merged, train),
                issues=(entry.number,),
                labels=(CONFLICT_LABEL,),
            )
        )
    return BundlePlan(
        train=train,
        base=queue.base,
        queue=queue,
        merged=tuple(merged),
        conflicts=tuple(conflicts),
        prs=tuple(prs),
    )


async def _reusable_bundle_branch(
    repo: Path, heads: dict[str, str], numbers: tuple[int, ...], merged: list[QueuedIssue]
) -> str | None:
    """A remote bundle branch for exactly these issues that already holds every queued commit."""
    same = sorted(
        (name for name in heads if (p := parse_bundle_branch(name)) and p[1] == numbers),
        reverse=True,
    )
    for name in same:
        await git.fetch_branches(repo, [name])
        ref = f"refs/remotes/origin/{name}"
        holds_all = True
        for entry in merged:
            if not await git.is_ancestor(repo, entry.sha, ref):
                holds_all = False
                break
        if holds_all:
            return name
    return None


# ---------------------------------------------------------------- run


class Bundler:
    """One repository's bundler. `repo` is a clone whose `origin` is the GitHub repository."""

    def __init__(
        self,
        client: GitHubClient,
        repo: Path,
        config: Config,
        *,
        lock_dir: Path | None = None,
        metrics_file: Path | None = None,
        clock: Callable[[], datetime] = now_utc,
        lock_wait_seconds: float = LOCK_WAIT_SECONDS,
    ) -> None:
        self.client = client
        self.repo = repo
        self.config = config
        self.lock_dir = lock_dir
        self.metrics_file = metrics_file
        self.clock = clock
        self.lock_wait_seconds = lock_wait_seconds
        self.schedule = TrainSchedule(config.bundling.schedule_minutes)

    async def base_branch(self) -> str:
        return self.config.github.default_branch or await self.client.default_branch()

    async def check(self, *, force: bool = False) -> tuple[bool, str]:
        """(should_bundle, why): forced, or inside a departure window with a non-empty queue.

        Forced is true without looking: the bundle step then reports what it found, including
        why each waiting issue was skipped.
        """
        if force:
            return True, "forced"
        status = self.schedule.status(self.clock())
        if not status.in_window:
            return False, status.describe()
        queue, _, _ = await gather_queue(self.client, self.repo, await self.base_branch())
        if not queue:
            return False, f"nothing queued ({status.describe()})"
        return True, f"{len(queue.entries)} queued ({status.describe()})"

    async def run(
        self,
        *,
        force: bool = False,
        dry_run: bool = False,
        path: str = "local",
        progress: Progress | None = None,
    ) -> BundleReport:
        """Bundle the queue into PRs. `progress` hears each stage: waiting for another
        bundler's lock, fetching the queue, "merging i of n: branch" (i-1 of n+1 done), then
        pushing and opening each PR (n of n+1 done)."""
        started = time.monotonic()
        try:
            if dry_run:
                report = await self._run_locked(
                    force=force, dry_run=True, started=started, progress=progress
                )
            else:
                async with self._lock(progress):
                    report = await self._run_locked(
                        force=force, dry_run=False, started=started, progress=progress
                    )
        except ClambakeError as exc:
            metrics.record(
                self.metrics_file,
                "bundle.run",
                path=path,
                ok=False,
                duration_s=round(time.monotonic() - started, 3),
                issues=[],
                prs=[],
                reason=str(exc),
            )
            raise
        metrics.record(
            self.metrics_file,
            "bundle.run",
            path=path,
            ok=True,
            duration_s=round(time.monotonic() - started, 3),
            issues=list(report.plan.queue.numbers) if report.plan else [],
            prs=[pr.number for pr in report.pull_requests],
            reason=report.outcome.value,
        )
        return report

    def _lock(self, progress: Progress | None = None) -> _RepoLock:
        folder = self.lock_dir or (self.repo / ".clambake" / "locks")
        return _RepoLock(
            folder / f"bundle-{self.client.owner}-{self.client.repo}.lock",
            self.lock_wait_seconds,
            progress,
        )

    async def _run_locked(
        self, *, force: bool, dry_run: bool, started: float, progress: Progress | None = None
    ) -> BundleReport:
        now = self.clock()
        status = self.schedule.status(now)
        if not force and not status.in_window:
            return BundleReport(BundleOutcome.OUTSIDE_WINDOW, status, force)
        report_progress(progress, "fetching the queue: route:review issues and agent branches")
        base = await self.base_branch()
        queue, pulls, heads = await gather_queue(self.client, self.repo, base)
        # Off-schedule (forced) trains are named for the minute they leave.
        train = status.train if status.in_window else now.replace(second=0, microsecond=0)
        if not queue:
            empty = BundlePlan(train, base, queue, (), (), ())
            return BundleReport(BundleOutcome.NOTHING_QUEUED, status, force, plan=empty)
        plan = await plan_merges(self.repo, queue, train, heads, progress=progress)
        if dry_run:
            return BundleReport(BundleOutcome.DRY_RUN, status, force, plan=plan)
        created: list[PullRequest] = []
        reused: list[PullRequest] = []
        open_by_head = {pr.head: pr for pr in pulls if pr.state == "open"}
        # Conflict PRs first: a run that dies after them but before the bundle PR leaves the
        # bundle's issues queued for the next run, which then rebuilds the same bundle.
        ordered = sorted(plan.prs, key=lambda p: p.kind is not PRKind.CONFLICT)
        merges = len(queue.entries)
        for number, planned in enumerate(ordered, start=1):
            which = f"PR {number} of {len(ordered)}" if len(ordered) > 1 else "the PR"

            def stage(doing: str) -> None:
                report_progress(progress, doing, merges, merges + 1)

            pr, is_new = await self._open(
                planned, base, open_by_head, heads, stage=stage, which=which
            )
            (created if is_new else reused).append(pr)
            if is_new:
                metrics.record(
                    self.metrics_file,
                    "bundle.pr_created",
                    pr_number=pr.number,
                    issues=list(planned.issues),
                    # Wall time, never the fixed schedule clock: latencies are computed from it.
                    created_at=datetime.now(UTC).isoformat(),
                )
        return BundleReport(
            BundleOutcome.DEPARTED,
            status,
            force,
            plan=plan,
            created=tuple(created),
            reused=tuple(reused),
            duration_s=time.monotonic() - started,
        )

    async def _open(
        self,
        planned: PlannedPR,
        base: str,
        open_by_head: dict[str, PullRequest],
        heads: dict[str, str],
        *,
        stage: Callable[[str], None] | None = None,
        which: str = "the PR",
    ) -> tuple[PullRequest, bool]:
        if planned.push_sha is not None and heads.get(planned.head) != planned.push_sha:
            if stage is not None:
                stage(f"pushing {planned.head}")
            # The name holds the issue set; a branch of that name from a failed run is ours.
            await git.push(self.repo, planned.push_sha, planned.head, force=True)
        existing = open_by_head.get(planned.head)
        if existing is not None:
            return existing, False
        if stage is not None:
            stage(f"opening {which}: {planned.head}")
        try:
            pr = await self.client.create_pull(
                title=planned.title,
                head=planned.head,
                base=base,
                body=planned.body,
                labels=planned.labels,
            )
        except GitHubError as exc:
            if "already exists" not in str(exc):
                raise
            # Opened between our listing and now (or by a run that died before recording it).
            for pr in await self.client.list_pulls(state="open"):
                if pr.head == planned.head:
                    return pr, False
            raise
        log.info(
            "pull request opened",
            extra={"pr": pr.number, "head": planned.head, "issues": list(planned.issues)},
        )
        return pr, True


class _RepoLock:
    """One bundler per repository on this machine (Actions runs are serialised by `concurrency:`)."""

    def __init__(self, path: Path, wait_seconds: float, progress: Progress | None = None) -> None:
        self.path = path
        self.wait_seconds = wait_seconds
        self.progress = progress
        self._lock = FileLock(str(path), thread_local=False)

    async def __aenter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait_seconds
        delay = 0.05
        while True:
            try:
                self._lock.acquire(timeout=0)
                return
            except Timeout:
                if delay == 0.05:
                    report_progress(self.progress, "waiting for another bundler to finish")
                if time.monotonic() >= deadline:
                    raise BundleLockedError(
                        f"another bundler has held {self.path} for {self.wait_seconds:.0f} s; "
                        "wait for it to finish, or remove the lock if no clambake is running"
                    ) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def __aexit__(self, *exc: object) -> None:
        self._lock.release()
