"""GitHub client edge cases at the byte level, which the emulator does not produce on purpose.

These use httpx.MockTransport only to shape odd answers (HTTP-date Retry-After, a redirect to a
foreign host, a BOM in a log file); the happy paths run against the emulator in
test_github_client.py.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from clambake_tui.errors import AuthError, GitHubError
from clambake_tui.github.auth import TokenSource, find_token, resolve_api_url
from clambake_tui.github.client import GitHubClient
from clambake_tui.github.errors import (
    GitHubAPIError,
    GitHubUnavailableError,
    RateLimitError,
    TokenNeededError,
)
from clambake_tui.github.logs_zip import job_file_name, read_logs_zip
from clambake_tui.github.pagination import parse_link_header
from clambake_tui.github.transport import ClientSettings

API = "https://api.github.test"
TOKEN = "ghp_" + "E" * 36
FAST = ClientSettings(
    backoff_base=0.01,
    backoff_max=0.05,
    secondary_wait=0.05,
    max_wait=5.0,
    dispatch_poll_interval=0.01,
    dispatch_confirm_seconds=0.05,
    dispatch_visible_timeout=0.2,
)

Handler = Callable[[httpx.Request], httpx.Response]


def client_with(handler: Handler, *, token: str | None = TOKEN, **kw: object) -> GitHubClient:
    return GitHubClient(
        "octo",
        "demo",
        api_url=API,
        token=token,
        settings=kw.pop("settings", FAST),  # type: ignore[arg-type]
        transport=httpx.MockTransport(handler),
        **kw,  # type: ignore[arg-type]
    )


def issue(number: int, **extra: object) -> dict[str, object]:
    return {"number": number, "title": f"issue {number}", "labels": [], "state": "open", **extra}


# ---------------------------------------------------------------- Link headers


def test_link_header_gives_every_relation_with_its_url_as_written():
    value = (
        '<https://api.github.com/repositories/1300192/issues?per_page=30&page=1>; rel="prev", '
        '<https://api.github.com/repositories/1300192/issues?per_page=30&page=3>; rel="next", '
        '<https://api.github.com/repositories/1300192/issues?per_page=30&page=5>; rel="last", '
        '<https://api.github.com/repositories/1300192/issues?per_page=30&page=1>; rel="first"'
    )
    links = parse_link_header(value)
    assert links["next"].endswith("/repositories/1300192/issues?per_page=30&page=3")
    assert set(links) == {"prev", "next", "last", "first"}


def test_link_header_absent_or_without_next_means_last_page():
    assert parse_link_header(None) == {}
    assert "next" not in parse_link_header('<https://x/y?page=1>; rel="prev"')


async def test_pages_are_followed_at_the_url_given_not_rebuilt():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        if request.url.path == "/repos/octo/demo/issues":
            nxt = f"{API}/repositories/42/issues?page=2&per_page=100&state=open"
            return httpx.Response(
                200,
                json=[issue(1), issue(2, pull_request={})],
                headers={"link": f'<{nxt}>; rel="next"'},
            )
        assert request.url.path == "/repositories/42/issues"
        return httpx.Response(200, json=[issue(3)])

    async with client_with(handler) as gh:
        issues = await gh.list_issues()
    assert [i.number for i in issues] == [1, 3]  # the pull request is filtered out
    assert seen[1] == f"{API}/repositories/42/issues?page=2&per_page=100&state=open"


# ---------------------------------------------------------------- headers and ETags


async def test_every_request_carries_githubs_headers_and_a_bearer_token():
    captured: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200, json=issue(7))

    async with client_with(handler) as gh:
        await gh.get_issue(7)
    headers = captured[0].headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"].startswith("clambake-tui/")


async def test_a_304_answer_returns_the_cached_body():
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("if-none-match"))
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304, headers={"etag": '"v1"'})
        return httpx.Response(200, json=issue(5, title="cached title"), headers={"etag": '"v1"'})

    async with client_with(handler) as gh:
        first = await gh.get_issue(5)
        second = await gh.get_issue(5)
    assert calls == [None, '"v1"']
    assert second == first
    assert second.title == "cached title"


# ---------------------------------------------------------------- rate limits and retries


async def test_retry_after_given_as_an_http_date_is_honoured():
    answers = iter(
        [
            httpx.Response(
                429,
                json={"message": "slow down"},
                headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"},  # already past
            ),
            httpx.Response(200, json=issue(1)),
        ]
    )
    async with client_with(lambda request: next(answers)) as gh:
        assert (await gh.get_issue(1)).number == 1


async def test_secondary_rate_limit_without_retry_after_waits_then_succeeds():
    waits: list[str] = []
    answers = iter(
        [
            httpx.Response(
                403,
                json={
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
                },
            ),
            httpx.Response(200, json=issue(1)),
        ]
    )
    async with client_with(
        lambda request: next(answers), on_wait=lambda w: waits.append(w.describe() if w else "done")
    ) as gh:
        assert (await gh.get_issue(1)).number == 1
    assert waits[0].startswith("GitHub: secondary rate limit, retrying in")
    assert waits[-1] == "done"
    assert gh.waiting is None


async def test_a_rate_limit_longer_than_the_max_wait_fails_at_once_saying_when_to_retry():
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(429, json={"message": "slow"}, headers={"retry-after": "3600"})

    async with client_with(handler) as gh:
        with pytest.raises(
            RateLimitError, match=r"retry after \d\d:\d\d:\d\d UTC \(in 60 min\)"
        ) as info:
            await gh.get_issue(1)
    assert calls == 1
    assert info.value.retry_at is not None


async def test_spent_primary_budget_with_a_far_reset_fails_clearly():
    import time

    reset = str(int(time.time()) + 3000)
    headers = {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": reset,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            403, json={"message": "API rate limit exceeded for user ID 123."}, headers=headers
        )

    async with client_with(handler) as gh:
        with pytest.raises(RateLimitError, match="rate limit"):
            await gh.get_issue(1)
        assert gh.rate_limit is not None and gh.rate_limit.remaining == 0
        # The next call does not even go out: the budget is known to be spent.
        with pytest.raises(RateLimitError, match=r"budget .*5000/h.* is spent"):
            await gh.get_issue(2)


async def test_a_permission_403_is_not_mistaken_for_a_rate_limit():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"message": "Resource not accessible by integration"})

    async with client_with(handler) as gh:
        with pytest.raises(
            GitHubAPIError, match="GitHub said 403 for issue #1: Resource not accessible"
        ):
            await gh.get_issue(1)


async def test_a_comment_answered_502_is_not_posted_twice_when_it_went_through():
    posts = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal posts
        if request.method == "POST":
            posts += 1
            return httpx.Response(502, json={"message": "Server Error"})
        body = [
            {
                "body": "hello",
                "html_url": "https://github.test/c/1",
                "created_at": "2099-01-01T00:00:00Z",
            }
        ]
        return httpx.Response(200, json=body)

    async with client_with(handler) as gh:
        url = await gh.create_comment(3, "hello")
    assert posts == 1
    assert url == "https://github.test/c/1"


async def test_a_dispatch_answered_503_is_retried_only_after_finding_no_new_run():
    dispatches = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal dispatches
        if request.method == "POST":
            dispatches += 1
            return httpx.Response(503, json={"message": "Service Unavailable"})
        return httpx.Response(200, json={"total_count": 0, "workflow_runs": []})

    async with client_with(handler) as gh:
        with pytest.raises(
            GitHubUnavailableError,
            match=r"did not take the dispatch of x\.yml on main: GitHub said 503",
        ) as info:
            await gh.dispatch_workflow(".github/workflows/x.yml", ref="main")
    assert dispatches == FAST.unsafe_write_attempts
    assert "3 attempts, none applied" in str(info.value)


async def test_unreachable_github_is_one_line_after_bounded_attempts():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with client_with(handler) as gh:
        with pytest.raises(GitHubUnavailableError) as info:
            await gh.get_issue(1)
    text = str(info.value)
    assert "\n" not in text
    assert "connection refused" in text and f"after {FAST.max_attempts} attempts" in text


# ---------------------------------------------------------------- logs


def logs_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text.encode("utf-8"))
    return buf.getvalue()


def test_logs_zip_splits_jobs_and_steps_and_drops_the_bom():
    data = logs_zip(
        {
            "1_test (ubuntu).txt": "\ufeff2026-04-07T12:57:33.2904078Z whole test\n",
            "0_build.txt": "whole build\n",
            "build/2_Run tests.txt": "\ufeffstep two\n",
            "build/1_Set up job.txt": "step one\n",
            "build/system.txt": "runner chatter\n",
        }
    )
    jobs = read_logs_zip(data)
    assert [j.name for j in jobs] == ["build", "test (ubuntu)"]
    assert [(s.number, s.name, s.text) for s in jobs[0].steps] == [
        (1, "Set up job", "step one\n"),
        (2, "Run tests", "step two\n"),
    ]
    assert jobs[1].whole == "2026-04-07T12:57:33.2904078Z whole test\n"
    assert jobs[1].steps == []


def test_job_names_lose_slashes_and_colons_and_stop_at_90_characters():
    assert job_file_name("deploy: prod/eu") == "deploy prodeu"
    assert len(job_file_name("x" * 200)) == 90


def test_a_damaged_logs_archive_is_one_clear_line():
    with pytest.raises(GitHubError, match="not a zip file"):
        read_logs_zip(b"PK\x03\x04 truncated", what="run 9")


def run_body(run_id: int, status: str = "completed") -> dict[str, object]:
    return {
        "id": run_id,
        "name": "clambake-bundling",
        "run_number": 1,
        "event": "workflow_dispatch",
        "status": status,
        "conclusion": "success" if status == "completed" else None,
        "head_branch": "main",
        "head_sha": "0" * 40,
        "created_at": "2026-04-07T12:57:00Z",
        "updated_at": "2026-04-07T12:58:00Z",
    }


def jobs_body(*names: str) -> dict[str, object]:
    jobs = [
        {"id": 100 + i, "run_id": 9, "name": n, "status": "completed", "steps": []}
        for i, n in enumerate(names)
    ]
    return {"total_count": len(jobs), "jobs": jobs}


async def test_run_logs_redirect_to_another_host_carries_no_token_and_falls_back_per_job():
    storage: list[httpx.Request] = []
    archive = logs_zip({"0_build.txt": "whole build\n", "build/system.txt": "x"})

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host == "storage.test":
            storage.append(request)
            if path == "/run.zip":
                return httpx.Response(200, content=archive)
            return httpx.Response(200, content="\ufeffjob endpoint text\n".encode())
        if path == "/repos/octo/demo/actions/runs/9":
            return httpx.Response(200, json=run_body(9))
        if path == "/repos/octo/demo/actions/runs/9/logs":
            return httpx.Response(302, headers={"location": "https://storage.test/run.zip?sig=abc"})
        if path == "/repos/octo/demo/actions/runs/9/jobs":
            return httpx.Response(200, json=jobs_body("build", "lint"))
        if path == "/repos/octo/demo/actions/jobs/101/logs":
            return httpx.Response(302, headers={"location": "https://storage.test/job.txt"})
        return httpx.Response(404, json={"message": "Not Found"})

    async with client_with(handler) as gh:
        logs = await gh.run_logs(9)
    assert [(s.job, s.step_number, s.text) for s in logs.sections] == [
        ("build", None, "whole build\n"),  # no step files: the whole-job file
        ("lint", None, "job endpoint text\n"),  # not in the zip: the job logs endpoint
    ]
    assert storage and all("authorization" not in r.headers for r in storage)


async def test_logs_of_an_unfinished_run_say_when_they_will_be_available():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=run_body(9, status="in_progress"))

    async with client_with(handler) as gh:
        with pytest.raises(
            GitHubError, match="still in_progress; its logs will be available when it completes"
        ):
            await gh.run_logs(9)


# ---------------------------------------------------------------- auth


def test_token_order_is_gh_token_then_github_token(tmp_path: Path):
    env = {"GH_TOKEN": "first-token", "GITHUB_TOKEN": "second-token", "PATH": str(tmp_path)}
    token = find_token(env=env)
    assert token is not None and token.source is TokenSource.GH_TOKEN
    assert "first-token" not in repr(token)
    env.pop("GH_TOKEN")
    token = find_token(env=env)
    assert token is not None and token.value == "second-token"


def fake_gh(folder: Path, script: str) -> None:
    gh = folder / "gh"
    gh.write_text("#!/bin/sh\n" + script)
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)


def test_gh_auth_token_is_asked_for_the_right_host_when_no_variable_is_set(tmp_path: Path):
    fake_gh(tmp_path, 'echo "from-gh-for-$4"\n')
    token = find_token("https://ghe.example.com/api/v3", env={"PATH": str(tmp_path)})
    assert token is not None and token.source is TokenSource.GH_CLI
    assert token.value == "from-gh-for-ghe.example.com"


def test_a_hanging_gh_counts_as_no_token(tmp_path: Path):
    fake_gh(tmp_path, "exec sleep 30\n")
    assert find_token(env={"PATH": str(tmp_path)}, gh_timeout=0.3) is None


def test_gh_host_names_an_enterprise_api_unless_api_url_is_set():
    assert (
        resolve_api_url("https://api.github.com", {"GH_HOST": "ghe.corp"})
        == "https://ghe.corp/api/v3"
    )
    assert (
        resolve_api_url("https://api.github.com", {"GH_HOST": "github.com"})
        == "https://api.github.com"
    )
    assert resolve_api_url("http://127.0.0.1:9/", {"GH_HOST": "ghe.corp"}) == "http://127.0.0.1:9"


def test_no_token_when_one_is_required_says_how_to_provide_one(tmp_path: Path):
    from clambake_tui.config import Config, GitHubConfig

    env = {"PATH": os.defpath.replace("/usr/bin", "/nonexistent")}
    with pytest.raises(AuthError, match=r"no GitHub token .*GH_TOKEN.*gh auth login"):
        config = Config(github=GitHubConfig(owner="octo", repo="demo"))
        GitHubClient.from_config(config, tmp_path, require_token=True, env=env)


async def test_without_a_token_a_404_says_how_to_add_one():
    def handler(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers
        return httpx.Response(404, json={"message": "Not Found", "status": "404"})

    async with client_with(handler, token=None) as gh:
        with pytest.raises(TokenNeededError, match="no token was sent: export GH_TOKEN") as info:
            await gh.get_issue(1)
    assert isinstance(info.value, AuthError) and info.value.exit_code == 2
    assert isinstance(info.value, GitHubAPIError) and info.value.status == 404


async def test_a_422_names_each_validation_error():
    body = {
        "message": "Validation Failed",
        "errors": [
            {
                "resource": "PullRequest",
                "code": "custom",
                "message": "A pull request already exists for octo:feature.",
            }
        ],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json=body)

    async with client_with(handler) as gh:
        with pytest.raises(
            GitHubAPIError, match=r"422 .*Validation Failed: A pull request already exists"
        ) as info:
            await gh.create_pull(title="t", head="feature", base="main", body="")
    assert info.value.status == 422
    assert json.dumps(body)  # the body itself is never echoed beyond its messages


async def test_a_dispatch_answered_204_finds_its_run_by_branch_event_and_new_id():
    listings = 0
    old = {**run_body(1), "id": 1}
    new = {**run_body(2), "id": 2, "status": "queued"}

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal listings
        if request.method == "POST":
            assert json.loads(request.content) == {
                "ref": "main",
                "inputs": {"force_bundle": "true", "dry_run": "false"},
                "return_run_details": True,
            }
            return httpx.Response(204)  # an older GitHub Enterprise Server
        listings += 1
        assert request.url.params["event"] == "workflow_dispatch"
        assert request.url.params["branch"] == "main"
        runs = [old] if listings < 3 else [new, old]
        return httpx.Response(200, json={"total_count": len(runs), "workflow_runs": runs})

    async with client_with(handler) as gh:
        result = await gh.dispatch_workflow(
            "clambake-bundling.yml", ref="main", inputs={"force_bundle": True, "dry_run": False}
        )
    assert result.run is not None and result.run.id == 2
    assert result.seconds_to_visible is not None and result.seconds_to_visible >= 0
    assert listings == 3  # the snapshot, one look without it, one with it


async def test_a_dispatch_is_not_repeated_when_nobody_can_tell_whether_it_went_through():
    posts = 0
    lists = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal posts, lists
        if request.method == "POST":
            posts += 1
            return httpx.Response(502, json={"message": "Bad Gateway"})
        lists += 1
        if lists == 1:  # the snapshot before dispatching
            return httpx.Response(200, json={"total_count": 0, "workflow_runs": []})
        return httpx.Response(503, json={"message": "Service Unavailable"})

    async with client_with(handler) as gh:
        with pytest.raises(GitHubUnavailableError, match="whether it went through is unknown"):
            await gh.dispatch_workflow("x.yml", ref="main")
    assert posts == 1
