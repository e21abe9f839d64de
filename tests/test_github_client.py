"""The GitHub client against the emulator over real HTTP, every answer checked against GitHub's schema.

Waiting-based cases use the fast settings of tests/fixtures/github.py (backoffs of tens of ms);
the Retry-After case really waits the 2 s the emulator asks for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from clambake_tui.errors import GitHubError
from clambake_tui.github.client import GitHubClient
from clambake_tui.github.errors import GitHubAPIError, GitHubUnavailableError
from clambake_tui.github.transport import ClientSettings, Waiting
from clambake_tui.metrics import read_events
from clambake_tui.sandbox.emulator import Emulator, Fault, JobSpec, RunContext, StepSpec
from tests.fixtures.common import git
from tests.fixtures.emulator import EMULATOR_OWNER, EMULATOR_REPO
from tests.fixtures.github import FAST_GITHUB_SETTINGS, SchemaCheck

WORKFLOW = ".github/workflows/clambake-bundling.yml"
WORKFLOW_YML = """\
name: clambake-bundling
on:
  workflow_dispatch:
    inputs:
      force_bundle:
        type: boolean
        default: false
      dry_run:
        type: boolean
        default: false
jobs:
  bundle:
    runs-on: ubuntu-latest
    steps:
      - name: Check the queue
        run: clambake bundle --check
"""


def quick_steps(ctx: RunContext) -> list[JobSpec]:
    """Two jobs whose steps only log: runs complete in a fraction of a second."""
    return [
        JobSpec(
            "bundle",
            (
                StepSpec(
                    "Check the queue", lines=(f"force_bundle={ctx.inputs.get('force_bundle')}",)
                ),
                StepSpec("Bundle", lines=("bundled 0 issues",)),
            ),
        ),
        JobSpec("report: summary/all", (StepSpec("Summarise", lines=("all good",)),)),
    ]


def push_workflow(origin: Path, tmp_path: Path) -> None:
    clone = tmp_path / "workflow-clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    target = clone / WORKFLOW
    target.parent.mkdir(parents=True)
    target.write_text(WORKFLOW_YML)
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "bundling workflow")
    git(clone, "push", "-q", "origin", "HEAD:main")


@pytest.fixture
def actions_emulator(emulator: Emulator, origin_repo: Path, tmp_path: Path) -> Emulator:
    push_workflow(origin_repo, tmp_path)
    emulator.register_workflow_steps("clambake-bundling.yml", quick_steps)
    return emulator


def make_client(
    emulator: Emulator,
    schema: SchemaCheck,
    *,
    settings: ClientSettings = FAST_GITHUB_SETTINGS,
    metrics: Path | None = None,
    waits: list[Waiting | None] | None = None,
) -> GitHubClient:
    return GitHubClient(
        EMULATOR_OWNER,
        EMULATOR_REPO,
        api_url=emulator.url,
        token=emulator.token,
        settings=settings,
        metrics_path=metrics,
        on_wait=waits.append if waits is not None else None,
        event_hooks=schema.hooks(),
    )


@pytest.fixture
async def gh(
    emulator: Emulator, github_schema: SchemaCheck, tmp_path: Path
) -> AsyncIterator[GitHubClient]:
    async with make_client(emulator, github_schema, metrics=tmp_path / "metrics.jsonl") as client:
        yield client


def requests_to(emulator: Emulator, method: str, suffix: str) -> int:
    return sum(
        1 for r in emulator.requests if r.method == method and r.path.split("?")[0].endswith(suffix)
    )


# ---------------------------------------------------------------- manners


async def test_pagination_follows_links_over_250_issues(
    emulator: Emulator, gh: GitHubClient, github_schema: SchemaCheck
):
    for n in range(250):
        emulator.add_issue(f"issue {n + 1}", labels=["route:ready"] if n % 2 else [])
    issues = await gh.list_issues()
    assert sorted(i.number for i in issues) == list(range(1, 251))
    pages = [r for r in emulator.requests if r.method == "GET" and "/issues" in r.path]
    assert len(pages) == 3  # 100 + 100 + 50
    assert any(r.path.startswith("/repositories/") for r in pages[1:])  # followed as given
    ready = await gh.list_issues(labels=("route:ready",))
    assert len(ready) == 125 and all("route:ready" in i.labels for i in ready)
    assert github_schema.validated


async def test_a_304_round_trip_costs_no_budget(
    emulator: Emulator, gh: GitHubClient, tmp_path: Path
):
    number = emulator.add_issue("cache me")
    first = await gh.get_issue(number)
    before = emulator.rate_limit_remaining()
    second = await gh.get_issue(number)
    assert second == first
    assert emulator.rate_limit_remaining() == before
    assert gh.rate_limit is not None and gh.rate_limit.remaining == before
    events = [e for e in read_events(tmp_path / "metrics.jsonl") if e["event"] == "github.request"]
    assert [e["cached"] for e in events] == [False, True]
    assert (
        events[1]["status"] == 304 and events[1]["route"] == "/repos/{owner}/{repo}/issues/{number}"
    )


async def test_a_changed_resource_is_fetched_again_despite_the_etag(
    emulator: Emulator, gh: GitHubClient
):
    number = emulator.add_issue("before")
    await gh.get_issue(number)
    await gh.add_labels(number, ["route:review"])
    assert "route:review" in (await gh.get_issue(number)).labels


async def test_a_429_with_retry_after_2_is_waited_out(
    emulator: Emulator, github_schema: SchemaCheck
):
    number = emulator.add_issue("patience")
    emulator.add_fault(Fault.too_many_requests(retry_after=2, times=1, path=r"/issues/\d+$"))
    waits: list[Waiting | None] = []
    async with make_client(emulator, github_schema, waits=waits) as gh:
        issue = await gh.get_issue(number)
        assert gh.waiting is None
    assert issue.title == "patience"
    told = [w for w in waits if w is not None]
    assert told and told[0].reason == "rate limited"
    assert told[0].describe().startswith("GitHub: rate limited, retrying in ")
    assert waits[-1] is None
    assert requests_to(emulator, "GET", f"/issues/{number}") == 2


async def test_three_consecutive_502s_then_a_200_succeed(emulator: Emulator, gh: GitHubClient):
    number = emulator.add_issue("flaky")
    emulator.add_fault(Fault.burst(502, times=3, path=r"/issues/\d+$"))
    assert (await gh.get_issue(number)).title == "flaky"
    assert requests_to(emulator, "GET", f"/issues/{number}") == 4


async def test_endless_5xx_gives_up_after_bounded_attempts(emulator: Emulator, gh: GitHubClient):
    emulator.add_fault(Fault.burst(500, times=None, path=r"/issues/1$"))
    with pytest.raises(
        GitHubUnavailableError,
        match=r"GitHub said 500 for issue #1.* after 5 attempts; try again later",
    ):
        await gh.get_issue(1)
    assert requests_to(emulator, "GET", "/issues/1") == FAST_GITHUB_SETTINGS.max_attempts


async def test_a_secondary_rate_limit_is_waited_out(emulator: Emulator, gh: GitHubClient):
    number = emulator.add_issue("secondary")
    emulator.add_fault(Fault.secondary_rate_limit(retry_after=None, times=1, path=r"/issues/\d+$"))
    assert (await gh.get_issue(number)).title == "secondary"


async def test_a_spent_primary_budget_is_waited_out_when_the_reset_is_near(
    emulator: Emulator, gh: GitHubClient
):
    number = emulator.add_issue("budget")
    await gh.get_issue(number)
    emulator.set_rate_limit(remaining=0, reset_in=1)
    emulator.add_fault(Fault.primary_rate_limit(times=1, path=r"/issues/\d+$"))
    assert (await gh.get_issue(number)).title == "budget"


# ---------------------------------------------------------------- issues, labels, pulls


async def test_labels_assignees_and_comments_round_trip(emulator: Emulator, gh: GitHubClient):
    number = emulator.add_issue("work", labels=["route:ready"])
    assert set(await gh.add_labels(number, ["agent001"])) == {"route:ready", "agent001"}
    assert await gh.remove_label(number, "route:ready") == ["agent001"]
    # Not on the issue any more: GitHub says 404 "Label does not exist"; not an error for us.
    assert await gh.remove_label(number, "route:ready") == ["agent001"]
    login = await gh.get_authenticated_login()
    assert login
    await gh.add_assignees(number, [login])
    assert (await gh.get_issue(number)).assignees == (login,)
    await gh.remove_assignees(number, [login])
    assert (await gh.get_issue(number)).assignees == ()
    url = await gh.create_comment(number, "picked up by agent001")
    assert url.startswith("http")
    assert [c["body"] for c in await gh.list_comments(number)] == ["picked up by agent001"]


async def test_removing_a_label_from_a_missing_issue_is_an_error(gh: GitHubClient):
    with pytest.raises(GitHubAPIError, match="GitHub said 404 for issue #999"):
        await gh.remove_label(999, "route:ready")


async def test_pull_requests_are_created_listed_and_not_issues(
    emulator: Emulator, gh: GitHubClient, origin_repo: Path, tmp_path: Path
):
    clone = tmp_path / "pr-clone"
    git(tmp_path, "clone", "-q", str(origin_repo), str(clone))
    git(clone, "checkout", "-q", "-b", "agent001/1-fix")
    (clone / "fix.txt").write_text("fixed\n")
    git(clone, "add", "fix.txt")
    git(clone, "commit", "-q", "-m", "fix")
    git(clone, "push", "-q", "origin", "agent001/1-fix")
    emulator.add_issue("the bug")
    assert await gh.default_branch() == "main"
    assert await gh.branch_exists("agent001/1-fix")
    assert not await gh.branch_exists("agent002/nothing")
    pull = await gh.create_pull(
        title="Fix it",
        head="agent001/1-fix",
        base="main",
        body="Fixes #1",
        labels=("route:review",),
    )
    assert (pull.head, pull.base, pull.labels) == ("agent001/1-fix", "main", ("route:review",))
    assert [p.number for p in await gh.list_pulls(head="agent001/1-fix")] == [pull.number]
    assert (await gh.get_pull(pull.number)).title == "Fix it"
    assert [i.number for i in await gh.list_issues()] == [1]  # the PR is filtered out
    with pytest.raises(GitHubAPIError, match="422") as again:
        await gh.create_pull(title="Again", head="agent001/1-fix", base="main", body="")
    assert again.value.status == 422


async def test_rate_limit_endpoint_reads_the_core_budget(gh: GitHubClient):
    limit = await gh.fetch_rate_limit()
    assert limit.limit == 5000 and 0 < limit.remaining <= 5000
    assert gh.rate_limit == limit


# ---------------------------------------------------------------- actions


async def test_dispatch_reports_the_run_it_started_and_how_long_until_it_showed_up(
    actions_emulator: Emulator, gh: GitHubClient, tmp_path: Path
):
    result = await gh.dispatch_workflow(
        WORKFLOW, ref="main", inputs={"force_bundle": True, "dry_run": False}
    )
    assert result.run is not None and result.seconds_to_visible is not None
    assert (result.run.event, result.run.head_branch) == ("workflow_dispatch", "main")
    assert result.workflow == "clambake-bundling.yml"
    runs = await gh.list_runs(WORKFLOW, event="workflow_dispatch")
    assert [r.id for r in runs] == [result.run.id]
    dispatched = [
        e for e in read_events(tmp_path / "metrics.jsonl") if e["event"] == "actions.dispatch"
    ]
    assert dispatched[-1]["ok"] is True and dispatched[-1]["run_id"] == result.run.id


async def test_dispatch_of_a_workflow_that_is_not_there_says_where_it_must_be(
    actions_emulator: Emulator, gh: GitHubClient
):
    with pytest.raises(
        GitHubAPIError,
        match=r"^GitHub said 404 for workflow nope\.yml: is it on the default branch\?$",
    ):
        await gh.dispatch_workflow("nope.yml", ref="main")


async def test_dispatch_during_actions_down_fails_clearly_after_bounded_retries(
    actions_emulator: Emulator, gh: GitHubClient, tmp_path: Path
):
    actions_emulator.add_fault(Fault.actions_down(503))
    with pytest.raises(GitHubUnavailableError) as info:
        await gh.dispatch_workflow(
            WORKFLOW, ref="main", inputs={"force_bundle": False, "dry_run": False}
        )
    message = str(info.value)
    assert message.startswith(
        "GitHub Actions did not take the dispatch of clambake-bundling.yml on main"
    )
    assert "503" in message and "3 attempts, none applied" in message and "\n" not in message
    assert (
        requests_to(actions_emulator, "POST", "/dispatches")
        == FAST_GITHUB_SETTINGS.unsafe_write_attempts
    )
    assert actions_emulator.runs() == []
    failed = [
        e for e in read_events(tmp_path / "metrics.jsonl") if e["event"] == "actions.dispatch"
    ]
    assert failed[-1]["ok"] is False and "503" in failed[-1]["error"]


async def test_a_dispatch_that_went_through_despite_a_502_is_not_repeated(
    actions_emulator: Emulator, github_schema: SchemaCheck
):
    created: list[int] = []

    async def applied_then_lost(request: httpx.Request) -> None:
        # GitHub creates the run, then a proxy answers 502: the run exists, the answer is lost.
        if request.method == "POST" and request.url.path.endswith("/dispatches"):
            created.append(actions_emulator.dispatch(WORKFLOW, "main", {}))

    fault = actions_emulator.add_fault(Fault.actions_down(502, times=1))
    hooks = {**github_schema.hooks(), "request": [applied_then_lost]}
    async with GitHubClient(
        EMULATOR_OWNER,
        EMULATOR_REPO,
        api_url=actions_emulator.url,
        token=actions_emulator.token,
        settings=FAST_GITHUB_SETTINGS,
        event_hooks=hooks,
    ) as gh:
        result = await gh.dispatch_workflow(WORKFLOW, ref="main", inputs={"force_bundle": False})
    assert fault.spent
    assert result.run is not None and [result.run.id] == created
    assert requests_to(actions_emulator, "POST", "/dispatches") == 1


async def test_run_logs_come_per_job_and_step(actions_emulator: Emulator, gh: GitHubClient):
    actions_emulator.hold_runs()
    run_id = actions_emulator.dispatch(WORKFLOW, "main", {"force_bundle": "true"})
    try:
        with pytest.raises(
            GitHubError, match="still queued; its logs will be available when it completes"
        ):
            await gh.run_logs(run_id)
    finally:
        actions_emulator.release_runs()
    actions_emulator.wait_for_run(run_id, timeout=30)
    jobs = await gh.list_jobs(run_id)
    assert [j.name for j in jobs] == ["bundle", "report: summary/all"]
    logs = await gh.run_logs(run_id)
    by_step = {(s.job, s.step): s.text for s in logs.sections}
    assert "force_bundle=true" in by_step[("bundle", "Check the queue")]
    assert "bundled 0 issues" in by_step[("bundle", "Bundle")]
    assert any(job == "report: summary/all" for job, _ in by_step)
    whole = await gh.job_logs(jobs[0].id)
    assert "bundled 0 issues" in whole


async def test_cancel_and_rerun(actions_emulator: Emulator, gh: GitHubClient):
    actions_emulator.hold_runs()
    run_id = actions_emulator.dispatch(WORKFLOW, "main", {})
    await gh.cancel_run(run_id)
    actions_emulator.release_runs()
    run = actions_emulator.wait_for_run(run_id, timeout=30)
    assert run["conclusion"] == "cancelled"
    with pytest.raises(GitHubAPIError, match="409"):
        await gh.cancel_run(run_id)
    await gh.rerun(run_id)
    again = actions_emulator.wait_for_run(run_id, timeout=30)
    assert again["run_attempt"] == 2
    assert (await gh.get_run(run_id)).run_attempt == 2


# ---------------------------------------------------------------- secrets


async def test_the_token_never_appears_in_logs_errors_or_metrics(
    actions_emulator: Emulator,
    github_schema: SchemaCheck,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    from clambake_tui.config import Config, GitHubConfig
    from clambake_tui.logs import configure_logging

    token = actions_emulator.token
    monkeypatch.setenv("GH_TOKEN", token)
    configure_logging(tmp_path / "logs", verbose=True)
    config = Config(
        github=GitHubConfig(owner=EMULATOR_OWNER, repo=EMULATOR_REPO, api_url=actions_emulator.url)
    )
    texts: list[str] = []
    actions_emulator.add_fault(Fault.burst(502, times=2, path=r"/issues/1$"))
    actions_emulator.add_fault(Fault.actions_down(500))
    async with GitHubClient.from_config(
        config,
        tmp_path,
        require_token=True,
        metrics_path=tmp_path / "metrics.jsonl",
        settings=FAST_GITHUB_SETTINGS,
    ) as gh:
        assert gh.has_token
        for attempt in (
            gh.get_issue(1),
            gh.get_run(424242),
            gh.dispatch_workflow(WORKFLOW, ref="main"),
            gh.create_pull(title="x", head="nowhere", base="main", body=""),
        ):
            try:
                await attempt
            except Exception as exc:
                texts.extend([str(exc), repr(exc)])
        texts.append(repr(gh))
    configure_logging(None)
    captured = capsys.readouterr()
    texts += [captured.out, captured.err, (tmp_path / "metrics.jsonl").read_text()]
    texts += [p.read_text() for p in (tmp_path / "logs").glob("*")]
    assert len(texts) > 8
    leaked = [t for t in texts if token in t]
    assert not leaked
    assert token[4:20] not in "".join(texts)


# ---------------------------------------------------------------- pacing and timeouts


async def test_requests_slow_down_when_the_budget_runs_low(
    emulator: Emulator, github_schema: SchemaCheck
):
    emulator.add_issue("one")
    emulator.add_issue("two")
    emulator.set_rate_limit(limit=100, remaining=4, reset_in=600)
    settings = _with(FAST_GITHUB_SETTINGS, slow_down_fraction=0.05, pace_max_delay=0.05)
    waits: list[Waiting | None] = []
    async with make_client(emulator, github_schema, settings=settings, waits=waits) as gh:
        await gh.get_issue(1)
        assert waits == []  # nothing known about the budget before the first answer
        await gh.get_issue(2)
    reasons = [w.reason for w in waits if w is not None]
    assert reasons and reasons[0].startswith("rate limit low (")


async def test_a_request_that_times_out_is_retried(
    emulator: Emulator, github_schema: SchemaCheck, tmp_path: Path
):
    number = emulator.add_issue("slow")
    emulator.add_fault(Fault.timeout(seconds=3, times=1, path=r"/issues/\d+$"))
    settings = _with(FAST_GITHUB_SETTINGS, timeout=0.5)
    metrics = tmp_path / "metrics.jsonl"
    async with make_client(emulator, github_schema, settings=settings, metrics=metrics) as gh:
        assert (await gh.get_issue(number)).title == "slow"
    outcomes = [(e["status"], e.get("error")) for e in read_events(metrics)]
    assert outcomes == [(None, "ReadTimeout"), (200, None)]


def _with(settings: ClientSettings, **changes: float) -> ClientSettings:
    import dataclasses

    return dataclasses.replace(settings, **changes)
