"""Where an agent's issue comes from and how it is claimed: GitHub, or a local stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from clambake_tui.errors import ClambakeError, GitHubError
from clambake_tui.logs import get_logger
from clambake_tui.model import Issue

if TYPE_CHECKING:
    from clambake_tui.config import Config
    from clambake_tui.github.client import GitHubClient

__all__ = ["IssueSource", "LocalIssueSource", "GitHubIssueSource"]

log = get_logger(__name__)


@runtime_checkable
class IssueSource(Protocol):
    """Looks issues up and claims them for an agent before its process starts."""

    async def get_issue(self, number: int) -> Issue: ...

    async def claim(self, issue: Issue, agent_id: str) -> None:
        """Mark the issue as held: the agent's label, and the authenticated user assigned."""

    async def release(self, issue: Issue, agent_id: str) -> None:
        """Give a claim back (the spawn failed). Never raises."""


class LocalIssueSource:
    """Issues given on the command line (--title/--body) or by tests: nothing to claim remotely."""

    def __init__(self, issues: dict[int, Issue] | None = None) -> None:
        self.issues = dict(issues or {})
        self.claims: dict[int, str] = {}

    async def get_issue(self, number: int) -> Issue:
        return self.issues.get(number) or Issue(number=number, title=f"Issue {number}")

    async def claim(self, issue: Issue, agent_id: str) -> None:
        self.claims[issue.number] = agent_id

    async def release(self, issue: Issue, agent_id: str) -> None:
        if self.claims.get(issue.number) == agent_id:
            del self.claims[issue.number]


class GitHubIssueSource:
    """Issues read from GitHub through `GitHubClient`; claiming labels and assigns."""

    def __init__(self, config: Config, root: Path) -> None:
        self.config = config
        self.root = root
        # Assignees we added, so a release takes back only what the claim gave.
        self._assigned: dict[int, str] = {}

    def _client(self, *, require_token: bool) -> GitHubClient:
        from clambake_tui.github.client import GitHubClient

        return GitHubClient.from_config(self.config, self.root, require_token=require_token)

    async def get_issue(self, number: int) -> Issue:
        try:
            async with self._client(require_token=False) as gh:
                return await gh.get_issue(number)
        except NotImplementedError:
            raise GitHubError(
                "this build cannot read issues from GitHub yet; pass --title (and --body)"
            ) from None

    async def claim(self, issue: Issue, agent_id: str) -> None:
        try:
            async with self._client(require_token=True) as gh:
                await gh.add_labels(issue.number, [agent_id])
                login = await gh.get_authenticated_login()
                if login and login not in issue.assignees:
                    await gh.add_assignees(issue.number, [login])
                    self._assigned[issue.number] = login
        except NotImplementedError:
            raise GitHubError(
                "this build cannot claim issues on GitHub yet; pass --title (and --body)"
            ) from None

    async def release(self, issue: Issue, agent_id: str) -> None:
        try:
            async with self._client(require_token=True) as gh:
                await gh.remove_label(issue.number, agent_id)
                login = self._assigned.pop(issue.number, None)
                if login:
                    await gh.remove_assignees(issue.number, [login])
        except (ClambakeError, NotImplementedError, OSError) as exc:
            log.warning("cannot give back the claim on issue %s: %s", issue.number, exc)
