"""The async GitHub REST client (contract; the implementation fills these methods in).

Every method returns domain dataclasses from `clambake_tui.model` (never raw dicts beyond this
package) and raises `clambake_tui.errors.GitHubError` / `AuthError` with one clear line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clambake_tui.model import Issue, Job, PullRequest, RateLimit, WorkflowRun

if TYPE_CHECKING:
    from clambake_tui.config import Config

__all__ = ["GitHubClient", "DispatchResult", "RunLogs", "LogSection"]


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


class GitHubClient:
    """One repository's view of GitHub. Use as `async with GitHubClient.from_config(...) as gh:`."""

    owner: str
    repo: str

    @classmethod
    def from_config(
        cls, config: Config, root: Path, *, require_token: bool = False
    ) -> GitHubClient:
        raise NotImplementedError

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        raise NotImplementedError

    @property
    def has_token(self) -> bool:
        raise NotImplementedError

    @property
    def rate_limit(self) -> RateLimit | None:
        """The budget as read from the last response's X-RateLimit-* headers."""
        raise NotImplementedError

    # repository, branches
    async def default_branch(self) -> str:
        raise NotImplementedError

    async def branch_exists(self, branch: str) -> bool:
        raise NotImplementedError

    async def get_authenticated_login(self) -> str | None:
        raise NotImplementedError

    # issues
    async def list_issues(
        self, *, labels: tuple[str, ...] = (), state: str = "open"
    ) -> list[Issue]:
        """Issues only (pull requests filtered out), every page followed."""
        raise NotImplementedError

    async def get_issue(self, number: int) -> Issue:
        raise NotImplementedError

    async def add_labels(self, number: int, labels: list[str]) -> list[str]:
        raise NotImplementedError

    async def remove_label(self, number: int, label: str) -> list[str]:
        """Removing a label the issue does not have is not an error."""
        raise NotImplementedError

    async def add_assignees(self, number: int, logins: list[str]) -> None:
        raise NotImplementedError

    async def remove_assignees(self, number: int, logins: list[str]) -> None:
        raise NotImplementedError

    async def create_comment(self, number: int, body: str) -> str:
        """Returns the comment's html_url."""
        raise NotImplementedError

    async def list_comments(self, number: int) -> list[dict[str, Any]]:
        raise NotImplementedError

    # pulls
    async def list_pulls(
        self, *, state: str = "open", head: str | None = None
    ) -> list[PullRequest]:
        raise NotImplementedError

    async def get_pull(self, number: int) -> PullRequest:
        raise NotImplementedError

    async def create_pull(
        self, *, title: str, head: str, base: str, body: str, labels: tuple[str, ...] = ()
    ) -> PullRequest:
        raise NotImplementedError

    # actions
    async def list_workflows(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    async def dispatch_workflow(
        self, workflow: str, *, ref: str, inputs: dict[str, str | bool] | None = None
    ) -> DispatchResult:
        """`workflow` is a file name or path (.github/workflows/x.yml) or numeric id."""
        raise NotImplementedError

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
        raise NotImplementedError

    async def get_run(self, run_id: int) -> WorkflowRun:
        raise NotImplementedError

    async def list_jobs(self, run_id: int) -> list[Job]:
        raise NotImplementedError

    async def run_logs(self, run_id: int) -> RunLogs:
        """Follow the 302 to the zip, unzip, split per job and step (falling back as GitHub does)."""
        raise NotImplementedError

    async def job_logs(self, job_id: int) -> str:
        raise NotImplementedError

    async def cancel_run(self, run_id: int) -> None:
        raise NotImplementedError

    async def rerun(self, run_id: int, *, failed_only: bool = False) -> None:
        raise NotImplementedError

    async def fetch_rate_limit(self) -> RateLimit:
        raise NotImplementedError
