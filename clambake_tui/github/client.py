"""The async GitHub REST client: one repository's issues, pull requests and Actions runs.

Every method returns domain dataclasses from `clambake_tui.model` (never raw dicts beyond this
package, except comments and workflows) and raises `clambake_tui.errors.GitHubError` /
`AuthError` with one clear line. Headers, ETags, rate limits and retries live in `transport`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

import httpx

from clambake_tui.errors import GitHubError
from clambake_tui.github.auth import (
    DEFAULT_API_URL,
    find_token,
    missing_token_error,
    resolve_api_url,
)
from clambake_tui.github.errors import GitHubAPIError, GitHubUnavailableError
from clambake_tui.github.logs_zip import decode_log, job_file_name, read_logs_zip
from clambake_tui.github.parse import (
    label_names,
    parse_issue,
    parse_job,
    parse_pull,
    parse_rate_limit_body,
    parse_run,
    parse_time,
)
from clambake_tui.github.transport import ClientSettings, Reply, Transport, Waiting, WaitListener
from clambake_tui.logs import get_logger
from clambake_tui.metrics import record
from clambake_tui.model import Issue, Job, PullRequest, RateLimit, WorkflowRun
from clambake_tui.progress import Progress, format_bytes
from clambake_tui.progress import report as report_progress
from clambake_tui.redact import register_secret
from clambake_tui.state import Paths

if TYPE_CHECKING:
    from clambake_tui.config import Config

__all__ = [
    "GitHubClient",
    "DispatchResult",
    "RunLogs",
    "LogSection",
    "ClientSettings",
    "Waiting",
    "workflow_ref",
]

T = TypeVar("T")
log = get_logger(__name__)
_REDIRECTS = (301, 302, 303, 307, 308)
# Pages followed at most for one listing: a loop in Link headers must not spin forever.
_MAX_PAGES = 500
# How far back (our clock) a dispatched run may look created: clocks differ; the snapshot of
# run ids taken before dispatching is what really tells the new run from older ones.
_CLOCK_SLACK = timedelta(minutes=2)
# GitHub knows a workflow only once its file is on the default branch.
_WORKFLOW_HINTS = {404: "is it on the default branch?"}


@dataclass(frozen=True, slots=True)
class DispatchResult:
    """A workflow dispatch and the run it started (None when it never showed up)."""

    workflow: str
    ref: str
    run: WorkflowRun | None
    seconds_to_visible: float | None


@dataclass(frozen=True, slots=True)
class LogSection:
    """The log of one step of one job (step None: the whole job's file)."""

    job: str
    step_number: int | None
    step: str | None
    text: str


@dataclass(frozen=True, slots=True)
class RunLogs:
    run_id: int
    sections: tuple[LogSection, ...]


def workflow_ref(workflow: str | int) -> str:
    """What the API takes for a workflow: its numeric id or its file name (not its path)."""
    text = str(workflow).strip()
    return text if text.isdigit() else PurePosixPath(text).name


class GitHubClient:
    """One repository's view of GitHub. Use as `async with GitHubClient.from_config(...) as gh:`.

    Beyond the methods: `rate_limit` (the budget from the last answer), `waiting` (set while the
    client holds back for a rate limit or a backoff; `Waiting.describe()` reads "GitHub: rate
    limited, retrying in 20 s") and `on_wait` (called with a `Waiting`, then with None).
    """

    owner: str
    repo: str

    def __init__(
        self,
        owner: str,
        repo: str,
        *,
        api_url: str = DEFAULT_API_URL,
        token: str | None = None,
        settings: ClientSettings | None = None,
        metrics_path: Path | None = None,
        default_branch: str | None = None,
        on_wait: WaitListener | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    ) -> None:
        register_secret(token)
        self.owner = owner
        self.repo = repo
        self.api_url = api_url.rstrip("/")
        self.settings = settings or ClientSettings()
        self.metrics_path = metrics_path
        self._default_branch = default_branch
        self._t = Transport(
            self.api_url,
            token,
            settings=self.settings,
            metrics_path=metrics_path,
            transport=transport,
            event_hooks=event_hooks,
            on_wait=on_wait,
        )
        self._repo = f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"

    @classmethod
    def from_config(
        cls,
        config: Config,
        root: Path,
        *,
        require_token: bool = False,
        metrics_path: Path | None = None,
        settings: ClientSettings | None = None,
        on_wait: WaitListener | None = None,
        env: Mapping[str, str] | None = None,
    ) -> GitHubClient:
        """owner/repo from [github] or the origin remote; token in gh's order (see `auth`).

        `require_token`: raise AuthError (saying how to provide one) when there is none; without
        it the client goes unauthenticated and says how to add a token when GitHub refuses.
        """
        from clambake_tui.config import infer_owner_repo

        owner, repo = infer_owner_repo(config, root)
        if metrics_path is None:
            # Every client of a repository with a state folder counts its requests there.
            state = Paths(root)
            metrics_path = state.metrics if state.state.is_dir() else None
        api_url = resolve_api_url(config.github.api_url, env)
        token = find_token(api_url, env)
        if token is None and require_token:
            raise missing_token_error()
        return cls(
            owner,
            repo,
            api_url=api_url,
            token=token.value if token else None,
            settings=settings,
            metrics_path=metrics_path,
            default_branch=config.github.default_branch,
            on_wait=on_wait,
        )

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._t.aclose()

    @property
    def has_token(self) -> bool:
        return self._t.has_token

    @property
    def rate_limit(self) -> RateLimit | None:
        """The budget as read from the last response's X-RateLimit-* headers."""
        return self._t.rate_limit

    @property
    def waiting(self) -> Waiting | None:
        """Set while a request waits for a rate limit or a retry; None otherwise."""
        return self._t.waiting

    @property
    def on_wait(self) -> WaitListener | None:
        return self._t.on_wait

    @on_wait.setter
    def on_wait(self, listener: WaitListener | None) -> None:
        self._t.on_wait = listener

    # ------------------------------------------------------------------ plumbing

    async def _get(
        self,
        path: str,
        *,
        route: str,
        what: str,
        params: Mapping[str, str | int] | None = None,
        hints: Mapping[int, str] | None = None,
    ) -> Any:
        reply = await self._t.request(
            "GET", path, route=route, what=what, params=params, hints=hints
        )
        return reply.json()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        route: str,
        what: str,
        json: Any = None,
        retry_unsafe: bool = False,
        hints: Mapping[int, str] | None = None,
    ) -> Reply:
        return await self._t.request(
            method, path, route=route, what=what, json=json, retry_unsafe=retry_unsafe, hints=hints
        )

    async def _pages(
        self,
        path: str,
        *,
        route: str,
        what: str,
        params: Mapping[str, str | int] | None = None,
        key: str | None = None,
        hints: Mapping[int, str] | None = None,
        max_items: int | None = None,
    ) -> list[Any]:
        """Every item over every page, following `Link: rel="next"` URLs exactly as given."""
        items: list[Any] = []
        url: str | None = path
        query = params
        seen: set[str] = set()
        while url is not None and len(seen) < _MAX_PAGES:
            reply = await self._t.request(
                "GET", url, route=route, what=what, params=query, hints=hints
            )
            seen.add(reply.url)
            body = reply.json()
            chunk = body.get(key) if key and isinstance(body, dict) else body
            if not isinstance(chunk, list):
                raise GitHubError(f"GitHub's answer for {what} is not a list; is api_url right?")
            items.extend(chunk)
            if max_items is not None and len(items) >= max_items:
                return items[:max_items]
            url = reply.next_url
            query = None  # the next URL carries its own query string
            if url in seen:
                break
        return items

    async def _write_once(
        self,
        send: Callable[[], Awaitable[T]],
        applied: Callable[[], Awaitable[T | None]],
        *,
        what: str,
    ) -> T:
        """A write that must not happen twice: repeat it only when `applied` finds no trace.

        A 5xx or a timeout after the request went out is ambiguous (a proxy may answer 502 after
        GitHub applied the write), so before each repeat we look: `applied` returns what the
        earlier attempt produced, or None when it did not happen. If looking fails too, we
        cannot prove the write was not applied: we stop, and the error says so.
        """
        attempts = max(1, self.settings.unsafe_write_attempts)
        last: GitHubUnavailableError | None = None
        for attempt in range(1, attempts + 1):
            try:
                return await send()
            except GitHubUnavailableError as exc:
                last = exc
                log.warning("ambiguous write failure", extra={"what": what, "attempt": attempt})
            try:
                found = await applied()
            except GitHubError as exc:
                raise GitHubUnavailableError(
                    f"{last}; whether it went through is unknown ({exc}): check before trying again",
                    status=last.status,
                ) from None
            if found is not None:
                return found
            if attempt < attempts:
                delay = min(
                    self.settings.backoff_max,
                    self.settings.backoff_base * 2 ** (attempt - 1),
                ) + random.uniform(0, self.settings.backoff_base)
                await self._t.wait(delay, f"GitHub {last.status or 'unavailable'}")
        assert last is not None
        raise GitHubUnavailableError(
            f"{last} ({attempts} attempts, none applied); try again later", status=last.status
        )

    # ------------------------------------------------------------------ repository, branches

    async def default_branch(self) -> str:
        if self._default_branch is None:
            data = await self._get(
                self._repo,
                route="/repos/{owner}/{repo}",
                what=f"repository {self.owner}/{self.repo}",
                hints={404: "no such repository, or the token cannot see it"},
            )
            branch = data.get("default_branch") if isinstance(data, dict) else None
            if not isinstance(branch, str) or not branch:
                raise GitHubError(
                    f"GitHub did not say the default branch of {self.owner}/{self.repo}"
                )
            self._default_branch = branch
        return self._default_branch

    async def branch_exists(self, branch: str) -> bool:
        try:
            await self._get(
                f"{self._repo}/branches/{quote(branch, safe='/')}",
                route="/repos/{owner}/{repo}/branches/{branch}",
                what=f"branch {branch}",
            )
        except GitHubAPIError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def get_authenticated_login(self) -> str | None:
        if not self.has_token:
            return None
        try:
            data = await self._get("/user", route="/user", what="the authenticated user")
        except GitHubAPIError as exc:
            # An installation token (Actions' GITHUB_TOKEN) has no user behind it.
            if exc.status in (401, 403, 404):
                return None
            raise
        login = data.get("login") if isinstance(data, dict) else None
        return login if isinstance(login, str) else None

    # ------------------------------------------------------------------ issues

    async def list_issues(
        self, *, labels: tuple[str, ...] = (), state: str = "open"
    ) -> list[Issue]:
        """Issues only (pull requests filtered out), every page followed."""
        params: dict[str, str | int] = {"state": state, "per_page": 100}
        if labels:
            params["labels"] = ",".join(labels)
        items = await self._pages(
            f"{self._repo}/issues",
            route="/repos/{owner}/{repo}/issues",
            what="issues",
            params=params,
        )
        return [parse_issue(item) for item in items if "pull_request" not in item]

    async def get_issue(self, number: int) -> Issue:
        data = await self._get(
            f"{self._repo}/issues/{number}",
            route="/repos/{owner}/{repo}/issues/{number}",
            what=f"issue #{number}",
        )
        return parse_issue(data)

    async def add_labels(self, number: int, labels: list[str]) -> list[str]:
        # Adding a label twice leaves it there once: safe to repeat after a 5xx.
        reply = await self._send(
            "POST",
            f"{self._repo}/issues/{number}/labels",
            route="/repos/{owner}/{repo}/issues/{number}/labels",
            what=f"labels of issue #{number}",
            json={"labels": list(labels)},
            retry_unsafe=True,
        )
        return list(label_names(reply.json()))

    async def remove_label(self, number: int, label: str) -> list[str]:
        """Removing a label the issue does not have is not an error."""
        try:
            reply = await self._send(
                "DELETE",
                f"{self._repo}/issues/{number}/labels/{quote(label, safe='')}",
                route="/repos/{owner}/{repo}/issues/{number}/labels/{name}",
                what=f"label {label} of issue #{number}",
            )
        except GitHubAPIError as exc:
            if exc.status != 404:
                raise
            # "Label does not exist" (not on the issue): what we wanted. A missing issue makes
            # get_issue raise its own 404.
            return list((await self.get_issue(number)).labels)
        return list(label_names(reply.json()))

    async def add_assignees(self, number: int, logins: list[str]) -> None:
        await self._send(
            "POST",
            f"{self._repo}/issues/{number}/assignees",
            route="/repos/{owner}/{repo}/issues/{number}/assignees",
            what=f"assignees of issue #{number}",
            json={"assignees": list(logins)},
            retry_unsafe=True,  # assigning twice is assigning once
        )

    async def remove_assignees(self, number: int, logins: list[str]) -> None:
        await self._send(
            "DELETE",
            f"{self._repo}/issues/{number}/assignees",
            route="/repos/{owner}/{repo}/issues/{number}/assignees",
            what=f"assignees of issue #{number}",
            json={"assignees": list(logins)},
        )

    async def create_comment(self, number: int, body: str) -> str:
        """Returns the comment's html_url."""
        since = datetime.now(UTC) - _CLOCK_SLACK

        async def send() -> str:
            reply = await self._send(
                "POST",
                f"{self._repo}/issues/{number}/comments",
                route="/repos/{owner}/{repo}/issues/{number}/comments",
                what=f"a comment on issue #{number}",
                json={"body": body},
            )
            data = reply.json()
            return str(data.get("html_url", "")) if isinstance(data, dict) else ""

        async def applied() -> str | None:
            for comment in reversed(await self.list_comments(number)):
                created = parse_time(comment.get("created_at"))
                if comment.get("body") == body and (created is None or created >= since):
                    return str(comment.get("html_url", ""))
            return None

        return await self._write_once(send, applied, what=f"comment on issue #{number}")

    async def list_comments(self, number: int) -> list[dict[str, Any]]:
        items = await self._pages(
            f"{self._repo}/issues/{number}/comments",
            route="/repos/{owner}/{repo}/issues/{number}/comments",
            what=f"comments of issue #{number}",
            params={"per_page": 100},
        )
        return [item for item in items if isinstance(item, dict)]

    # ------------------------------------------------------------------ pulls

    async def list_pulls(
        self, *, state: str = "open", head: str | None = None, max_items: int | None = None
    ) -> list[PullRequest]:
        """Pull requests, newest first (GitHub's order); `max_items` stops paging early."""
        params: dict[str, str | int] = {"state": state, "per_page": 100}
        if head:
            # GitHub filters by `owner:branch`; a bare branch means one of ours.
            params["head"] = head if ":" in head else f"{self.owner}:{head}"
        items = await self._pages(
            f"{self._repo}/pulls",
            route="/repos/{owner}/{repo}/pulls",
            what="pull requests",
            params=params,
            max_items=max_items,
        )
        return [parse_pull(item) for item in items]

    async def get_pull(self, number: int) -> PullRequest:
        data = await self._get(
            f"{self._repo}/pulls/{number}",
            route="/repos/{owner}/{repo}/pulls/{number}",
            what=f"pull request #{number}",
        )
        return parse_pull(data)

    async def create_pull(
        self, *, title: str, head: str, base: str, body: str, labels: tuple[str, ...] = ()
    ) -> PullRequest:
        async def send() -> PullRequest:
            reply = await self._send(
                "POST",
                f"{self._repo}/pulls",
                route="/repos/{owner}/{repo}/pulls",
                what=f"a pull request from {head} to {base}",
                json={"title": title, "head": head, "base": base, "body": body},
            )
            return parse_pull(reply.json())

        async def applied() -> PullRequest | None:
            # Only one open PR can exist per head and base: if there is one, it is ours.
            for pull in await self.list_pulls(state="open", head=head):
                if pull.base == base:
                    return pull
            return None

        pull = await self._write_once(send, applied, what=f"pull request from {head}")
        if labels:
            names = await self.add_labels(pull.number, list(labels))
            pull = PullRequest(
                number=pull.number,
                title=pull.title,
                head=pull.head,
                base=pull.base,
                state=pull.state,
                body=pull.body,
                html_url=pull.html_url,
                draft=pull.draft,
                merged=pull.merged,
                labels=tuple(names),
                created_at=pull.created_at,
            )
        return pull

    # ------------------------------------------------------------------ actions

    async def list_workflows(self) -> list[dict[str, Any]]:
        items = await self._pages(
            f"{self._repo}/actions/workflows",
            route="/repos/{owner}/{repo}/actions/workflows",
            what="workflows",
            params={"per_page": 100},
            key="workflows",
        )
        return [item for item in items if isinstance(item, dict)]

    async def dispatch_workflow(
        self,
        workflow: str,
        *,
        ref: str,
        inputs: dict[str, str | bool] | None = None,
        progress: Progress | None = None,
    ) -> DispatchResult:
        """`workflow` is a file name or path (.github/workflows/x.yml) or numeric id.

        Only `inputs` are sent (the caller passes the ones the workflow declares). GitHub now
        answers 200 with the run's id when asked (`return_run_details`); older servers answer
        204, and the run is then found by workflow, branch, event and ids seen before.
        `progress` hears two stages: dispatching, then waiting for the run to show up.
        """
        name = workflow_ref(workflow)
        started = time.monotonic()
        try:
            report_progress(progress, f"dispatching {name} on {ref}", 0, 2)
            result = await self._dispatch(
                name, ref=ref, inputs=inputs or {}, started=started, progress=progress
            )
        except GitHubError as exc:
            record(
                self.metrics_path,
                "actions.dispatch",
                ok=False,
                workflow=name,
                latency_s=None,
                run_id=None,
                error=str(exc),
            )
            raise
        record(
            self.metrics_path,
            "actions.dispatch",
            ok=True,
            workflow=name,
            latency_s=round(result.seconds_to_visible, 3)
            if result.seconds_to_visible is not None
            else None,
            run_id=result.run.id if result.run else None,
            error=None if result.run else "run did not show up",
        )
        return result

    async def _dispatch(
        self,
        name: str,
        *,
        ref: str,
        inputs: dict[str, str | bool],
        started: float,
        progress: Progress | None = None,
    ) -> DispatchResult:
        # The runs that exist before we dispatch: any other id afterwards is a new run.
        known = {
            run.id
            for run in await self.list_runs(
                name, branch=ref, event="workflow_dispatch", per_page=50
            )
        }
        since = datetime.now(UTC) - _CLOCK_SLACK
        # Input values travel as strings, as `gh workflow run` sends them: GitHub has refused
        # JSON booleans for inputs ("true is not a string"), and "true"/"false" always work.
        values = {
            k: ("true" if v else "false") if isinstance(v, bool) else v for k, v in inputs.items()
        }
        body: dict[str, Any] = {"ref": ref, "inputs": values, "return_run_details": True}

        async def send() -> Reply:
            return await self._send(
                "POST",
                f"{self._repo}/actions/workflows/{quote(name, safe='')}/dispatches",
                route="/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
                what=f"workflow {name}",
                json=body,
                hints=_WORKFLOW_HINTS,
            )

        async def applied() -> Reply | None:
            # Dispatch is not idempotent (two runs would bundle twice): repeat it only when no
            # new run shows up within a short grace. A 5xx from Actions may come from a proxy
            # after the run was created, so "no answer" is not "not applied".
            run = await self._find_new_run(
                name, ref, known, since, within=self.settings.dispatch_confirm_seconds
            )
            if run is None:
                return None
            return Reply(200, httpx.Headers(), f'{{"workflow_run_id": {run.id}}}'.encode(), "")

        try:
            reply = await self._write_once(send, applied, what=f"dispatch of {name}")
        except GitHubUnavailableError as exc:
            raise GitHubUnavailableError(
                f"GitHub Actions did not take the dispatch of {name} on {ref}: {exc}",
                status=exc.status,
            ) from None
        report_progress(progress, f"waiting for the run of {name} to show up", 1, 2)
        data = reply.json() if reply.status == 200 else None
        run_id = data.get("workflow_run_id") if isinstance(data, dict) else None
        deadline = self.settings.dispatch_visible_timeout
        if isinstance(run_id, int):
            run = await self._wait_for_run(run_id, within=deadline)
        else:
            run = await self._find_new_run(name, ref, known, since, within=deadline)
        seconds = time.monotonic() - started if run is not None else None
        return DispatchResult(workflow=name, ref=ref, run=run, seconds_to_visible=seconds)

    async def _wait_for_run(self, run_id: int, *, within: float) -> WorkflowRun | None:
        deadline = time.monotonic() + within
        while True:
            try:
                return await self.get_run(run_id)
            except GitHubAPIError as exc:
                if exc.status != 404:
                    raise
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(self.settings.dispatch_poll_interval)

    async def _find_new_run(
        self, name: str, ref: str, known: set[int], since: datetime, *, within: float
    ) -> WorkflowRun | None:
        deadline = time.monotonic() + within
        while True:
            runs = await self.list_runs(
                name, branch=ref, event="workflow_dispatch", created_after=since, per_page=50
            )
            fresh = [run for run in runs if run.id not in known]
            if fresh:
                return min(fresh, key=lambda run: (run.created_at, run.id))
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(self.settings.dispatch_poll_interval)

    async def list_runs(
        self,
        workflow: str,
        *,
        branch: str | None = None,
        event: str | None = None,
        status: str | None = None,
        created_after: datetime | None = None,
        per_page: int = 20,
    ) -> list[WorkflowRun]:
        """The most recent runs of one workflow (one page of at most 100), newest first."""
        name = workflow_ref(workflow)
        params: dict[str, str | int] = {"per_page": max(1, min(per_page, 100))}
        if branch:
            params["branch"] = branch
        if event:
            params["event"] = event
        if status:
            params["status"] = status
        if created_after is not None:
            stamp = created_after.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            params["created"] = f">={stamp}"
        data = await self._get(
            f"{self._repo}/actions/workflows/{quote(name, safe='')}/runs",
            route="/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs",
            what=f"workflow {name}",
            params=params,
            hints=_WORKFLOW_HINTS,
        )
        runs = data.get("workflow_runs") if isinstance(data, dict) else None
        if not isinstance(runs, list):
            raise GitHubError(f"GitHub's answer for the runs of {name} lacks `workflow_runs`")
        return [parse_run(run) for run in runs]

    async def get_run(self, run_id: int) -> WorkflowRun:
        data = await self._get(
            f"{self._repo}/actions/runs/{run_id}",
            route="/repos/{owner}/{repo}/actions/runs/{run_id}",
            what=f"run {run_id}",
        )
        return parse_run(data)

    async def list_jobs(self, run_id: int) -> list[Job]:
        items = await self._pages(
            f"{self._repo}/actions/runs/{run_id}/jobs",
            route="/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
            what=f"the jobs of run {run_id}",
            params={"filter": "latest", "per_page": 100},
            key="jobs",
        )
        return [parse_job(item) for item in items]

    async def _follow(
        self,
        path: str,
        *,
        route: str,
        what: str,
        hints: dict[int, str],
        progress: Callable[[int, int | None], None] | None = None,
    ) -> bytes:
        reply = await self._t.request("GET", path, route=route, what=what, hints=hints)
        if reply.status in _REDIRECTS:
            location = reply.headers.get("location")
            if not location:
                raise GitHubError(f"GitHub redirected the download of {what} nowhere; try again")
            # The target may be another host (storage): resolve relative to GitHub's answer.
            target = str(httpx.URL(reply.url).join(location))
            return await self._t.download(
                target, route=route + " (download)", what=what, progress=progress
            )
        return reply.content

    async def run_logs(self, run_id: int, *, progress: Progress | None = None) -> RunLogs:
        """Follow the 302 to the zip, unzip, split per job and step (falling back as GitHub does).

        `progress` hears three stages (checking the run, downloading, reading its jobs); while
        the zip downloads, bytes received of its size when the storage says it.
        """
        report_progress(progress, f"checking that run {run_id} has finished", 0, 3)
        run = await self.get_run(run_id)
        if not run.is_completed:
            raise GitHubError(
                f"run {run_id} is still {run.status or 'running'}; its logs will be available "
                "when it completes (`clambake actions --watch --run-id "
                f"{run_id}` follows it)"
            )
        what = f"the logs of run {run_id}"
        shown = f"the logs of run #{run.run_number}"
        # Known size: bytes of the zip; unknown: the download is stage 2 of 3.
        sized = False

        def received(done: int, size: int | None) -> None:
            nonlocal sized
            if size:
                sized = True
                got = f"{format_bytes(done)} of {format_bytes(size)}"
                report_progress(progress, f"downloading {shown}: {got}", min(done, size), size)
            else:
                got = f"{format_bytes(done)} so far"
                report_progress(progress, f"downloading {shown}: {got}", 1, 3)

        report_progress(progress, f"downloading {shown}", 1, 3)
        data = await self._follow(
            f"{self._repo}/actions/runs/{run_id}/logs",
            route="/repos/{owner}/{repo}/actions/runs/{run_id}/logs",
            what=what,
            hints={404: "no logs (expired, deleted, or the token lacks actions:read)"},
            progress=received if progress is not None else None,
        )
        files = read_logs_zip(data, what=f"run {run_id}")
        reading = f"reading the jobs of run #{run.run_number}"
        report_progress(progress, reading, *((1, 1) if sized else (2, 3)))
        jobs = await self.list_jobs(run_id)
        by_name = {f.name: f for f in files}
        sections: list[LogSection] = []
        placed: set[str] = set()
        for job in jobs:
            entry = by_name.get(job_file_name(job.name))
            if entry is not None:
                placed.add(entry.name)
            step_names = {step.number: step.name for step in job.steps}
            if entry is not None and entry.steps:
                sections.extend(
                    LogSection(job.name, s.number, step_names.get(s.number, s.name), s.text)
                    for s in entry.steps
                )
            elif entry is not None and entry.whole is not None:
                sections.append(LogSection(job.name, None, None, entry.whole))
            else:
                # Neither step files nor a whole-job file: ask the job logs endpoint.
                sections.append(LogSection(job.name, None, None, await self.job_logs(job.id)))
        for entry in files:
            if entry.name in placed:
                continue
            # A job the listing no longer shows (an earlier attempt): keep what the zip has.
            if entry.steps:
                sections.extend(
                    LogSection(entry.name, s.number, s.name, s.text) for s in entry.steps
                )
            elif entry.whole is not None:
                sections.append(LogSection(entry.name, None, None, entry.whole))
        return RunLogs(run_id=run_id, sections=tuple(sections))

    async def job_logs(self, job_id: int) -> str:
        data = await self._follow(
            f"{self._repo}/actions/jobs/{job_id}/logs",
            route="/repos/{owner}/{repo}/actions/jobs/{job_id}/logs",
            what=f"the logs of job {job_id}",
            hints={404: "no logs yet (still running), expired, or deleted"},
        )
        return decode_log(data)

    async def cancel_run(self, run_id: int) -> None:
        # Cancelling twice is harmless (the second answers 202 or 409 "completed"): repeatable.
        await self._send(
            "POST",
            f"{self._repo}/actions/runs/{run_id}/cancel",
            route="/repos/{owner}/{repo}/actions/runs/{run_id}/cancel",
            what=f"run {run_id}",
            retry_unsafe=True,
            hints={409: "it has already completed"},
        )

    async def rerun(self, run_id: int, *, failed_only: bool = False) -> None:
        before = await self.get_run(run_id)
        action = "rerun-failed-jobs" if failed_only else "rerun"

        async def send() -> bool:
            await self._send(
                "POST",
                f"{self._repo}/actions/runs/{run_id}/{action}",
                route="/repos/{owner}/{repo}/actions/runs/{run_id}/" + action,
                what=f"run {run_id}",
                hints={403: "it is still running; wait for it to complete (or cancel it)"},
            )
            return True

        async def applied() -> bool | None:
            # A re-run bumps run_attempt and leaves `completed`: then the first try went through.
            now = await self.get_run(run_id)
            if now.run_attempt > before.run_attempt or not now.is_completed:
                return True
            return None

        await self._write_once(send, applied, what=f"re-run of run {run_id}")

    async def fetch_rate_limit(self) -> RateLimit:
        data = await self._get("/rate_limit", route="/rate_limit", what="the rate limit")
        limit = parse_rate_limit_body(data)
        self._t.rate_limit = limit
        return limit
